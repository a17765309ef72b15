package raftstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

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

// Defragment succeeds and does nothing: the MVCC state lives in memory and
// raft.db is bbolt, which reuses its free pages (etcdctl defrag, run by
// operators and by tools out of habit, must not fail).
func (m *maintenanceServer) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	return &pb.DefragmentResponse{Header: m.s.header(m.s.fsm.kv().Rev())}, nil
}

// snapshotChunk is the blob size of one SnapshotResponse (etcd's too).
const snapshotChunk = 32 << 10

// Snapshot streams this member's state as a Skiff backup file (see
// backupEnvelope), not etcd's bolt file: etcdctl snapshot save writes it,
// but etcdctl snapshot status/restore cannot read it. As etcd's, it is the
// local member's state (not a linearizable read), taken at one applied
// index; applies go on while it streams.
func (m *maintenanceServer) Snapshot(_ *pb.SnapshotRequest, stream pb.Maintenance_SnapshotServer) error {
	snap, err := m.s.fsm.captureLive()
	if err != nil {
		return toGRPCError(err)
	}
	defer snap.Release()
	// The image is immutable: one pass to learn the size (remaining_bytes
	// in every message, and the padding), one to send.
	size, err := snap.WriteTo(io.Discard)
	if err != nil {
		return toGRPCError(err)
	}
	w := &snapshotSender{stream: stream, remaining: backupSize(size), header: m.s.header(snap.rev), buf: make([]byte, 0, snapshotChunk)}
	if err := writeBackup(w, snap, size); err != nil {
		return err
	}
	return w.flush()
}

// A backup file (what Maintenance.Snapshot streams) is the Raft snapshot
// format wrapped so that etcd's clients accept it: etcdctl snapshot save
// refuses a stream whose length is not 32 mod 512 (a bolt file, whose size
// is a multiple of the page size, plus its sha256). So:
//
//	snapshot bytes (fsm.Restore's format) | zero padding |
//	snapshot length, 8 bytes big endian | sha256 of everything before
//
// with the padding making the whole length 32 mod 512.
const backupTrailer = 8 + sha256.Size

func backupSize(snapshot int64) int64 {
	n := snapshot + backupTrailer
	if r := (n - sha256.Size) % 512; r != 0 {
		n += 512 - r
	}
	return n
}

func writeBackup(w io.Writer, snap *fsmSnapshot, size int64) error {
	h := sha256.New()
	mw := io.MultiWriter(w, h)
	n, err := snap.WriteTo(mw)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("snapshot changed size while written (%d, then %d bytes)", size, n)
	}
	tail := make([]byte, backupSize(size)-size-backupTrailer, backupSize(size)-size)
	tail = binary.BigEndian.AppendUint64(tail, uint64(size))
	if _, err := mw.Write(tail); err != nil {
		return err
	}
	_, err = w.Write(h.Sum(nil))
	return err
}

// readBackup checks a backup file and returns the snapshot inside.
func readBackup(data []byte) ([]byte, error) {
	if len(data) < backupTrailer || len(data)%512 != sha256.Size {
		return nil, fmt.Errorf("not a skiff backup: length %d", len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, errors.New("skiff backup: sha256 mismatch")
	}
	n := binary.BigEndian.Uint64(body[len(body)-8:])
	if n > uint64(len(body)-8) || backupSize(int64(n)) != int64(len(data)) {
		return nil, fmt.Errorf("skiff backup: snapshot length %d does not fit the file (%d bytes)", n, len(data))
	}
	return body[:n], nil
}

// snapshotSender cuts a byte stream into SnapshotResponses of
// snapshotChunk bytes.
type snapshotSender struct {
	stream    pb.Maintenance_SnapshotServer
	remaining int64
	header    *pb.ResponseHeader
	buf       []byte
	sent      bool
}

func (w *snapshotSender) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		c := min(len(p), snapshotChunk-len(w.buf))
		w.buf = append(w.buf, p[:c]...)
		p = p[c:]
		if len(w.buf) == snapshotChunk {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *snapshotSender) flush() error {
	if len(w.buf) == 0 && w.sent {
		return nil
	}
	w.remaining -= int64(len(w.buf))
	resp := &pb.SnapshotResponse{Header: w.header, RemainingBytes: uint64(max(w.remaining, 0)), Blob: w.buf}
	if !w.sent {
		resp.Version = etcdAPIVersion
	}
	if err := w.stream.Send(resp); err != nil {
		return err
	}
	w.sent = true
	w.buf = make([]byte, 0, snapshotChunk)
	return nil
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
