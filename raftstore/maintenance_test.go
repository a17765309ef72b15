package raftstore

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Maintenance.Snapshot streams the member's state in the format Restore
// reads: restoring it gives the same keys, history hash, leases and applied
// index.
func TestMaintenanceSnapshotStreamsRestorableState(t *testing.T) {
	ms := startCluster(t, 3)
	leader, _ := leaderAndFollowers(t, ms)
	c := newClient(t, leader)
	ctx := testCtx(t)
	var lease *clientv3.LeaseGrantResponse
	retryUnknown(t, ctx, "grant", func() (err error) { lease, err = c.Grant(ctx, 60); return err })
	// Enough data for several 32 KiB chunks.
	val := bytes.Repeat([]byte("v"), 1000)
	for i := range 200 {
		opts := []clientv3.OpOption{}
		if i%10 == 0 {
			opts = append(opts, clientv3.WithLease(lease.ID))
		}
		retryUnknown(t, ctx, "put", func() error { _, err := c.Put(ctx, fmt.Sprintf("k%03d", i), string(val), opts...); return err })
	}
	retryUnknown(t, ctx, "delete", func() error { _, err := c.Delete(ctx, "k000"); return err })
	// A snapshot is the serving member's own state, as in etcd. If
	// leadership moved during the writes (the retries above), that member
	// may not have applied the last ones yet: a linearizable read makes it
	// catch up first.
	retryUnknown(t, ctx, "linearizable read", func() error { _, err := c.Get(ctx, "k001"); return err })

	rc, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read snapshot stream: %v", err)
	}
	if len(data)%512 != 32 {
		t.Errorf("backup is %d bytes: etcdctl snapshot save wants 32 mod 512 (a sha256 after whole pages)", len(data))
	}
	data, err = readBackup(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 200*1000 {
		t.Fatalf("snapshot is %d bytes, want at least the 200 KB of values", len(data))
	}
	// Nothing was written since: the snapshot is the leader's current state.
	f := newFSM()
	if err := f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatalf("restore the streamed snapshot: %v", err)
	}
	want, _, _, err := leader.fsm.kv().HashKV(0)
	if err != nil {
		t.Fatal(err)
	}
	got, _, _, err := f.kv().HashKV(0)
	if err != nil || got != want || f.kv().Rev() != leader.fsm.kv().Rev() {
		t.Fatalf("restored: hash %x rev %d (%v), want the leader's %x rev %d", got, f.kv().Rev(), err, want, leader.fsm.kv().Rev())
	}
	if f.applied.Load() == 0 || f.applied.Load() > leader.fsm.applied.Load() || f.clusterID.Load() != leader.fsm.clusterID.Load() {
		t.Errorf("restored meta: applied %d cluster %x; leader applied %d cluster %x",
			f.applied.Load(), f.clusterID.Load(), leader.fsm.applied.Load(), leader.fsm.clusterID.Load())
	}
	if ttl, ok := f.leaseTTL(int64(lease.ID)); !ok || ttl != 60 {
		t.Errorf("restored lease: ttl %d, %v", ttl, ok)
	}
	if keys := f.kv().LeaseKeys(int64(lease.ID)); len(keys) != 19 {
		t.Errorf("restored lease keys: %d, want 19", len(keys))
	}

	// A damaged backup is refused.
	rc, err = c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	raw[100] ^= 1
	if _, err := readBackup(raw); err == nil {
		t.Error("readBackup of a damaged file: got nil error")
	}

	// Defragment is a documented no-op that succeeds, on every member.
	for _, m := range ms {
		if _, err := c.Defragment(ctx, m.ClientAddr()); err != nil {
			t.Errorf("defragment %s: %v", m.cfg.Name, err)
		}
	}
}

// fsm.Snapshot runs on the FSM goroutine and must not encode the store
// there (that paused every apply for the length of the encoding): it takes
// an O(1) image, and Persist encodes.
func TestFSMSnapshotDefersEncodingToPersist(t *testing.T) {
	f := newFSM()
	val := bytes.Repeat([]byte("x"), 4096)
	var logs []*raft.Log
	for i := range 2000 {
		logs = append(logs, requestEntry(t, uint64(i+1), &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: fmt.Appendf(nil, "key%05d", i), Value: val}}))
	}
	f.ApplyBatch(logs) // ~8 MB of values

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	snap, err := f.Snapshot()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("fsm.Snapshot allocated %d bytes: it encodes the store on the FSM goroutine", alloc)
	}

	// Writes after the capture do not leak into the persisted image.
	f.ApplyBatch([]*raft.Log{requestEntry(t, 2001, &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("key"), RangeEnd: []byte("kez")}})})
	var sink sinkBuffer
	if err := snap.Persist(&sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v (closed %v)", err, sink.closed)
	}
	snap.Release()
	g := newFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if g.applied.Load() != 2000 || g.kv().Rev() != 2001 {
		t.Fatalf("restored applied %d rev %d, want 2000 and 2001", g.applied.Load(), g.kv().Rev())
	}
	rr, err := g.kv().Range(&pb.RangeRequest{Key: []byte("key"), RangeEnd: []byte("kez"), CountOnly: true})
	if err != nil || rr.Count != 2000 {
		t.Fatalf("restored count: %v, %v; want 2000", rr, err)
	}
}
