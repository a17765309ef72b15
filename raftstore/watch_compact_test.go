package raftstore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A watch from exactly the compaction revision gets every event at that
// revision and after, DELETEs included, with prev_kv. etcd 3.4 loses the
// DELETEs at that revision (its compaction drops the tombstone); Skiff keeps
// them. A watch from below the compaction revision is cancelled.
func TestWatchFromCompactionRevisionKeepsDeletes(t *testing.T) {
	ms := startCluster(t, 3)
	c := newClient(t, ms...)
	ctx := testCtx(t)
	// Writes that fail with an unknown outcome (leader change) are
	// repeated: a repeated put of the same value changes no event below.
	for _, kv := range [][2]string{{"wc/a", "1"}, {"wc/b", "1"}, {"wc/a", "2"}} {
		retryUnknown(t, ctx, "put", func() error { _, err := c.Put(ctx, kv[0], kv[1]); return err })
	}
	// One revision with a DELETE, a PUT, and a delete of a key with a lease.
	var lease *clientv3.LeaseGrantResponse
	retryUnknown(t, ctx, "grant", func() (err error) { lease, err = c.Grant(ctx, 60); return err })
	retryUnknown(t, ctx, "put", func() error { _, err := c.Put(ctx, "wc/l", "x", clientv3.WithLease(lease.ID)); return err })
	var rc int64
	retryUnknown(t, ctx, "txn", func() error {
		tr, err := c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision("wc/c"), "=", 0)).
			Then(clientv3.OpDelete("wc/a"), clientv3.OpPut("wc/c", "1"), clientv3.OpDelete("wc/l")).
			Else(clientv3.OpGet("wc/c")).Commit()
		if err != nil {
			return err
		}
		rc = tr.Header.Revision
		if !tr.Succeeded { // an earlier attempt did apply
			rc = tr.Responses[0].GetResponseRange().Kvs[0].ModRevision
		}
		return nil
	})
	retryUnknown(t, ctx, "compact", func() error {
		_, err := c.Compact(ctx, rc, clientv3.WithCompactPhysical())
		if errors.Is(err, rpctypes.ErrCompacted) { // an earlier attempt did apply
			return nil
		}
		return err
	})
	var pr *clientv3.PutResponse
	retryUnknown(t, ctx, "put", func() (err error) { pr, err = c.Put(ctx, "wc/b", "2"); return err })
	want := []string{"DELETE wc/a prev=2", "PUT wc/c=1", "DELETE wc/l prev=x", "PUT wc/b=2 prev=1"}
	for _, m := range ms {
		// Wait for the member to have applied the last put, so the watch
		// must replay everything from history.
		deadline := time.After(10 * time.Second)
		for m.fsm.kv().Rev() < pr.Header.Revision {
			select {
			case <-m.fsm.changed.wait():
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatalf("%s: revision %d not applied", m.cfg.Name, pr.Header.Revision)
			}
		}
		mc := newClient(t, m)
		wctx, cancel := context.WithCancel(ctx)
		wch := mc.Watch(wctx, "wc/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(rc))
		var got []string
		timeout := time.After(10 * time.Second)
		for len(got) < len(want) {
			select {
			case wr, ok := <-wch:
				if !ok || wr.Err() != nil {
					t.Fatalf("%s: watch from %d ended: %v (compact revision %d)", m.cfg.Name, rc, wr.Err(), wr.CompactRevision)
				}
				for _, e := range wr.Events {
					s := e.Type.String() + " " + string(e.Kv.Key)
					if e.Type == mvccpb.PUT {
						s += "=" + string(e.Kv.Value)
					}
					if e.PrevKv != nil {
						s += " prev=" + string(e.PrevKv.Value)
					}
					got = append(got, s)
				}
			case <-timeout:
				t.Fatalf("%s: watch from the compaction revision %d: got %q, want %q", m.cfg.Name, rc, got, want)
			}
		}
		cancel()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: watch from the compaction revision %d: got %q, want %q", m.cfg.Name, rc, got, want)
		}
		// One revision below is gone.
		wr := <-mc.Watch(ctx, "wc/", clientv3.WithPrefix(), clientv3.WithRev(rc-1))
		if wr.CompactRevision != rc || !wr.Canceled {
			t.Fatalf("%s: watch from %d: canceled %v compact revision %d, want cancelled at %d", m.cfg.Name, rc-1, wr.Canceled, wr.CompactRevision, rc)
		}
	}
}
