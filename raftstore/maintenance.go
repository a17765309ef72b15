package raftstore

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// etcdAPIVersion is the etcd API level Skiff implements; clients enable
// features by it.
const etcdAPIVersion = "3.5.0"

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	s *Server
}

var _ pb.MaintenanceServer = (*maintenanceServer)(nil)

func (m *maintenanceServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	s := m.s
	st := s.fsm.kv()
	size := st.Size()
	return &pb.StatusResponse{
		Header:           s.header(st.Rev()),
		Version:          etcdAPIVersion,
		DbSize:           size,
		DbSizeInUse:      size,
		Leader:           s.leaderID(),
		RaftIndex:        s.raft.CommitIndex(),
		RaftTerm:         s.raft.CurrentTerm(),
		RaftAppliedIndex: s.fsm.applied.Load(),
		IsLearner:        false,
		StorageVersion:   etcdAPIVersion,
	}, nil
}

func (m *maintenanceServer) Hash(ctx context.Context, _ *pb.HashRequest) (*pb.HashResponse, error) {
	h, rev, _, err := m.s.fsm.kv().HashKV(0)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.HashResponse{Header: m.s.header(rev), Hash: h}, nil
}

func (m *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	st := m.s.fsm.kv()
	rev := st.Rev()
	h, hashRev, compactRev, err := st.HashKV(r.Revision)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.HashKVResponse{Header: m.s.header(rev), Hash: h, HashRevision: hashRev, CompactRevision: compactRev}, nil
}

func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	// Skiff raises no alarms (no space quota, no corruption checker), so
	// the list is always empty and there is nothing to deactivate.
	return &pb.AlarmResponse{Header: m.s.header(m.s.fsm.kv().Rev())}, nil
}

func (m *maintenanceServer) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	// The MVCC state lives in memory; there is no file to defragment.
	return &pb.DefragmentResponse{Header: m.s.header(m.s.fsm.kv().Rev())}, nil
}

func (m *maintenanceServer) Snapshot(*pb.SnapshotRequest, pb.Maintenance_SnapshotServer) error {
	return status.Error(codes.Unimplemented, "skiff: Maintenance.Snapshot is not implemented (snapshots are taken by Raft in the data dir)")
}

func (m *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	return nil, status.Error(codes.Unimplemented, "skiff: Maintenance.MoveLeader is not implemented")
}

func (m *maintenanceServer) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return nil, status.Error(codes.Unimplemented, "skiff: Maintenance.Downgrade is not implemented")
}
