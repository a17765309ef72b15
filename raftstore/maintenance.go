package raftstore

import (
	"context"

	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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

// MoveLeader hands leadership to another voter (raft's leadership
// transfer). As etcd, only the leader accepts it.
func (m *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	s := m.s
	if !s.IsLeader() {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	cf := s.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, toGRPCError(err)
	}
	for _, srv := range cf.Configuration().Servers {
		if srv.ID == formatMemberID(r.TargetID) && srv.Suffrage == raft.Voter && r.TargetID != s.id {
			if err := s.raft.LeadershipTransferToServer(srv.ID, srv.Address).Error(); err != nil {
				return nil, toGRPCError(err)
			}
			return &pb.MoveLeaderResponse{Header: s.header(s.fsm.kv().Rev())}, nil
		}
	}
	return nil, rpctypes.ErrGRPCBadLeaderTransferee
}

// authServer answers that authentication is disabled, so tools that ask
// (etcdctl auth status) get a clear answer; everything else is refused.
type authServer struct {
	pb.UnimplementedAuthServer
	s *Server
}

var _ pb.AuthServer = (*authServer)(nil)

func (a *authServer) AuthStatus(ctx context.Context, _ *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return &pb.AuthStatusResponse{Header: a.s.header(a.s.fsm.kv().Rev()), Enabled: false}, nil
}

func (a *authServer) AuthEnable(ctx context.Context, _ *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return nil, status.Error(codes.Unimplemented, "skiff: authentication is not supported by the store (the API server authenticates its clients)")
}

func (m *maintenanceServer) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return nil, status.Error(codes.Unimplemented, "skiff: Maintenance.Downgrade is not implemented")
}
