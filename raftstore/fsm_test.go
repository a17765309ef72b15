package raftstore

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

func requestEntry(t *testing.T, index uint64, r *pb.InternalRaftRequest) *raft.Log {
	t.Helper()
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 2, Type: raft.LogCommand, Data: append([]byte{entryRequest}, b...)}
}

// sinkBuffer is a raft.SnapshotSink in memory.
type sinkBuffer struct {
	bytes.Buffer
	closed, canceled bool
}

func (s *sinkBuffer) ID() string    { return "test" }
func (s *sinkBuffer) Close() error  { s.closed = true; return nil }
func (s *sinkBuffer) Cancel() error { s.canceled = true; return nil }

func TestFSMApplyAndSnapshotRestore(t *testing.T) {
	f := newFSM()
	init, _ := proto.Marshal(&skiffv1.ClusterInit{ClusterId: 0xc1})
	init2, _ := proto.Marshal(&skiffv1.ClusterInit{ClusterId: 0xc2})
	logs := []*raft.Log{
		{Index: 3, Term: 2, Type: raft.LogCommand, Data: append([]byte{entryClusterInit}, init...)},
		{Index: 4, Term: 2, Type: raft.LogCommand, Data: append([]byte{entryClusterInit}, init2...)},
		requestEntry(t, 5, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 30}}),
		requestEntry(t, 6, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("a"), Value: []byte("1"), Lease: 7}}),
		requestEntry(t, 7, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("b"), Value: []byte("2")}}),
		requestEntry(t, 8, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("c"), Value: []byte("3"), Lease: 99}}),
		requestEntry(t, 9, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 30}}),
		requestEntry(t, 10, &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
			Member_ID: 0xabc, MemberAttributes: &membershippb.Attributes{Name: "m0", ClientUrls: []string{"http://127.0.0.1:2379"}}}}),
	}
	res := f.ApplyBatch(logs)
	if len(res) != len(logs) {
		t.Fatalf("results: got %d, want %d", len(res), len(logs))
	}
	if got := f.clusterID.Load(); got != 0xc1 {
		t.Errorf("cluster id: got %x, want the first one applied (c1)", got)
	}
	if r := res[3].(applyResult); r.err != nil || r.resp.(*pb.PutResponse).Header.Revision != 2 {
		t.Errorf("put a: got %+v, want revision 2", r)
	}
	if r := res[5].(applyResult); r.err != rpctypes.ErrGRPCLeaseNotFound {
		t.Errorf("put with an unknown lease: got %v, want ErrGRPCLeaseNotFound", r.err)
	}
	if r := res[6].(applyResult); r.err != rpctypes.ErrGRPCLeaseExist {
		t.Errorf("grant of an existing lease: got %v, want ErrGRPCLeaseExist", r.err)
	}
	if f.applied.Load() != 10 || f.appliedTerm.Load() != 2 {
		t.Errorf("applied: got %d/%d, want 10/2", f.applied.Load(), f.appliedTerm.Load())
	}

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink sinkBuffer
	if err := snap.Persist(&sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v (closed %v)", err, sink.closed)
	}
	snap.Release()

	// Applying more after the snapshot must not leak into it.
	f.ApplyBatch([]*raft.Log{requestEntry(t, 11, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 7}})})

	g := newFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if g.clusterID.Load() != 0xc1 || g.applied.Load() != 10 || g.appliedTerm.Load() != 2 {
		t.Errorf("restored meta: cluster %x applied %d term %d; want c1, 10, 2", g.clusterID.Load(), g.applied.Load(), g.appliedTerm.Load())
	}
	if ttl, ok := g.leaseTTL(7); !ok || ttl != 30 {
		t.Errorf("restored lease 7: got %d, %v; want TTL 30", ttl, ok)
	}
	if a, ok := g.memberAttrs(0xabc); !ok || a.Name != "m0" || len(a.ClientURLs) != 1 {
		t.Errorf("restored member attrs: got %+v, %v", a, ok)
	}
	rr, err := g.kv().Range(&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("\x00")})
	if err != nil || len(rr.Kvs) != 2 || rr.Kvs[0].Lease != 7 {
		t.Fatalf("restored keys: got %v, %v; want a (lease 7) and b", rr, err)
	}
	if keys := g.kv().LeaseKeys(7); len(keys) != 1 || string(keys[0]) != "a" {
		t.Errorf("restored lease keys: got %q, want [a]", keys)
	}

	// The original, after revoking lease 7, lost key a; the restored copy
	// did not (it is the state at index 10). Replaying entry 11 converges.
	g.ApplyBatch([]*raft.Log{requestEntry(t, 11, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 7}})})
	h1, _, _, err1 := f.kv().HashKV(0)
	h2, _, _, err2 := g.kv().HashKV(0)
	if err1 != nil || err2 != nil || h1 != h2 {
		t.Fatalf("HashKV after the same entries: original %x (%v), restored %x (%v); want equal", h1, err1, h2, err2)
	}
	if _, ok := g.leaseTTL(7); ok {
		t.Error("lease 7 still present after revoke")
	}

	if err := newFSM().Restore(io.NopCloser(bytes.NewReader([]byte("garbage")))); err == nil {
		t.Error("restore of garbage: got nil error")
	}
}
