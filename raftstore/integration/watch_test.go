package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestWatch runs the watch suite on a 3-member cluster whose progress notify
// interval is short enough to observe.
func TestWatch(t *testing.T) {
	c := newCluster(t, 3, opts{ProgressNotifyInterval: time.Second})
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, c *Cluster)
	}{
		{"ManyPerStream", testWatchManyPerStream},
		{"ReplayFromRevision", testWatchReplay},
		{"PrevKVAndFilters", testWatchPrevKVFilters},
		{"TxnEventsOneResponse", testWatchTxnAtomic},
		{"ProgressNotify", testWatchProgressNotify},
		{"RequestProgress", testWatchRequestProgress},
		{"Cancel", testWatchCancel},
		{"OnFollower", testWatchOnFollower},
		{"Compacted", testWatchCompacted},
		{"SlowConsumerAcrossCompaction", testWatchSlowConsumer},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, c) })
	}
}

// ev is an event reduced to what tests compare.
type ev struct {
	typ   mvccpb.Event_EventType
	key   string
	value string
	rev   int64
}

func (e ev) String() string { return fmt.Sprintf("%v %s=%q@%d", e.typ, e.key, e.value, e.rev) }

// collect reads n events from wch (skipping progress notifications), failing
// after d.
func collect(t *testing.T, wch clientv3.WatchChan, n int, d time.Duration) []ev {
	t.Helper()
	var out []ev
	timeout := time.After(d)
	for len(out) < n {
		select {
		case resp, ok := <-wch:
			if !ok {
				t.Fatalf("watch channel closed after %d of %d events: %v", len(out), n, out)
			}
			if err := resp.Err(); err != nil {
				t.Fatalf("watch error after %d events: %v", len(out), err)
			}
			for _, e := range resp.Events {
				out = append(out, ev{e.Type, string(e.Kv.Key), string(e.Kv.Value), e.Kv.ModRevision})
			}
		case <-timeout:
			t.Fatalf("waited %v for %d events, got %d: %v", d, n, len(out), out)
		}
	}
	if len(out) > n {
		t.Fatalf("got %d events, want %d: %v", len(out), n, out)
	}
	return out
}

// firstEvents reads until it has at least n events and returns the first n
// (a replay may deliver many in one response).
func firstEvents(t *testing.T, wch clientv3.WatchChan, n int, d time.Duration) []ev {
	t.Helper()
	var out []ev
	timeout := time.After(d)
	for len(out) < n {
		select {
		case resp, ok := <-wch:
			if !ok {
				t.Fatalf("watch channel closed after %d of %d events", len(out), n)
			}
			if err := resp.Err(); err != nil {
				t.Fatalf("watch error after %d events: %v", len(out), err)
			}
			for _, e := range resp.Events {
				out = append(out, ev{e.Type, string(e.Kv.Key), string(e.Kv.Value), e.Kv.ModRevision})
			}
		case <-timeout:
			t.Fatalf("waited %v for %d events, got %d", d, n, len(out))
		}
	}
	return out[:n]
}

func wantEvents(t *testing.T, what string, got []ev, want ...ev) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func testWatchManyPerStream(t *testing.T, c *Cluster) {
	cli := c.Client()
	ctx := tctx(t, 30*time.Second)
	// One client and one context: the client multiplexes these on one stream.
	const n = 20
	var chans []clientv3.WatchChan
	for i := 0; i < n; i++ {
		chans = append(chans, cli.Watch(ctx, fmt.Sprintf("wm/%d", i), clientv3.WithCreatedNotify()))
	}
	for i, wch := range chans {
		select {
		case r := <-wch:
			if !r.Created {
				t.Fatalf("watch %d: first response %+v, want created", i, r)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watch %d not created", i)
		}
	}
	revs := map[int]int64{}
	for i := 0; i < n; i++ {
		revs[i] = mustPut(t, cli, fmt.Sprintf("wm/%d", i), fmt.Sprint(i)).Header.Revision
	}
	for i, wch := range chans {
		got := collect(t, wch, 1, 10*time.Second)
		wantEvents(t, fmt.Sprintf("watch %d", i), got, ev{mvccpb.PUT, fmt.Sprintf("wm/%d", i), fmt.Sprint(i), revs[i]})
	}
	// A prefix watch sees all of them, in revision order.
	wch := cli.Watch(ctx, "wm/", clientv3.WithPrefix(), clientv3.WithRev(revs[0]))
	got := collect(t, wch, n, 10*time.Second)
	for i := 1; i < len(got); i++ {
		if got[i].rev <= got[i-1].rev {
			t.Fatalf("prefix watch: revisions not increasing: %v then %v", got[i-1], got[i])
		}
	}
}

func testWatchReplay(t *testing.T, c *Cluster) {
	cli := c.Client()
	r1 := mustPut(t, cli, "wr/a", "1").Header.Revision
	r2 := mustPut(t, cli, "wr/b", "1").Header.Revision
	d, err := cli.Delete(tctx(t, opTimeout), "wr/a")
	if err != nil {
		t.Fatal(err)
	}
	r3 := d.Header.Revision
	wch := cli.Watch(tctx(t, 30*time.Second), "wr/", clientv3.WithPrefix(), clientv3.WithRev(r1))
	got := collect(t, wch, 3, 10*time.Second)
	wantEvents(t, "replay from "+fmt.Sprint(r1), got,
		ev{mvccpb.PUT, "wr/a", "1", r1}, ev{mvccpb.PUT, "wr/b", "1", r2}, ev{mvccpb.DELETE, "wr/a", "", r3})
	// Replay continues into live events.
	r4 := mustPut(t, cli, "wr/c", "live").Header.Revision
	wantEvents(t, "live after replay", collect(t, wch, 1, 10*time.Second), ev{mvccpb.PUT, "wr/c", "live", r4})
	// Replay from the middle.
	wch = cli.Watch(tctx(t, 30*time.Second), "wr/", clientv3.WithPrefix(), clientv3.WithRev(r3))
	wantEvents(t, "replay from "+fmt.Sprint(r3), collect(t, wch, 2, 10*time.Second),
		ev{mvccpb.DELETE, "wr/a", "", r3}, ev{mvccpb.PUT, "wr/c", "live", r4})
}

func testWatchPrevKVFilters(t *testing.T, c *Cluster) {
	cli := c.Client()
	ctx := tctx(t, 30*time.Second)
	start := mustPut(t, cli, "wf/a", "old").Header.Revision + 1
	all := cli.Watch(ctx, "wf/a", clientv3.WithRev(start), clientv3.WithPrevKV())
	noPut := cli.Watch(ctx, "wf/a", clientv3.WithRev(start), clientv3.WithFilterPut())
	noDel := cli.Watch(ctx, "wf/a", clientv3.WithRev(start), clientv3.WithFilterDelete())
	rp := mustPut(t, cli, "wf/a", "new").Header.Revision
	d, err := cli.Delete(tctx(t, opTimeout), "wf/a")
	if err != nil {
		t.Fatal(err)
	}
	rd := d.Header.Revision
	// prev_kv on both events.
	timeout := time.After(10 * time.Second)
	var evs []*clientv3.Event
	for len(evs) < 2 {
		select {
		case r := <-all:
			evs = append(evs, r.Events...)
		case <-timeout:
			t.Fatalf("prev_kv watch: %d events", len(evs))
		}
	}
	if evs[0].PrevKv == nil || string(evs[0].PrevKv.Value) != "old" {
		t.Errorf("put event prev_kv %v, want old", evs[0].PrevKv)
	}
	if evs[1].Type != mvccpb.DELETE || evs[1].PrevKv == nil || string(evs[1].PrevKv.Value) != "new" {
		t.Errorf("delete event %v prev_kv %v, want DELETE with prev new", evs[1].Type, evs[1].PrevKv)
	}
	if evs[1].Kv.ModRevision != rd {
		t.Errorf("delete event mod revision %d, want %d", evs[1].Kv.ModRevision, rd)
	}
	// Marker write so filtered watches have something after the filtered event.
	rm := mustPut(t, cli, "wf/a", "marker").Header.Revision
	wantEvents(t, "NOPUT filter", collect(t, noPut, 1, 10*time.Second), ev{mvccpb.DELETE, "wf/a", "", rd})
	wantEvents(t, "NODELETE filter", collect(t, noDel, 2, 10*time.Second),
		ev{mvccpb.PUT, "wf/a", "new", rp}, ev{mvccpb.PUT, "wf/a", "marker", rm})
}

// testWatchTxnAtomic: the events of one revision arrive in one response.
func testWatchTxnAtomic(t *testing.T, c *Cluster) {
	cli := c.Client()
	wch := cli.Watch(tctx(t, 30*time.Second), "wt/", clientv3.WithPrefix())
	var ops []clientv3.Op
	for i := 0; i < 50; i++ {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("wt/%02d", i), "v"))
	}
	r, err := cli.Txn(tctx(t, opTimeout)).Then(ops...).Commit()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-wch:
		if len(resp.Events) != 50 {
			t.Fatalf("first response has %d events of the 50-put txn at revision %d, want all 50 in one response", len(resp.Events), r.Header.Revision)
		}
		for _, e := range resp.Events {
			if e.Kv.ModRevision != r.Header.Revision {
				t.Errorf("event %s at %d, want %d", e.Kv.Key, e.Kv.ModRevision, r.Header.Revision)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no events for the txn")
	}
}

func testWatchProgressNotify(t *testing.T, c *Cluster) {
	cli := c.Client()
	rev := mustPut(t, cli, "wp/other", "x").Header.Revision
	wch := cli.Watch(tctx(t, 30*time.Second), "wp/quiet", clientv3.WithProgressNotify())
	deadline := time.After(15 * time.Second)
	for {
		select {
		case r := <-wch:
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			if r.IsProgressNotify() {
				if r.Header.Revision < rev {
					t.Errorf("progress notify at revision %d, before the put at %d", r.Header.Revision, rev)
				}
				return
			}
		case <-deadline:
			t.Fatal("no progress notification within 15s with a 1s interval")
		}
	}
}

func testWatchRequestProgress(t *testing.T, c *Cluster) {
	cli := c.Client()
	ctx := tctx(t, 30*time.Second)
	wch := cli.Watch(ctx, "wq/quiet", clientv3.WithCreatedNotify())
	if r := <-wch; !r.Created {
		t.Fatalf("first response %+v, want created", r)
	}
	rev := mustPut(t, cli, "wq/other", "x").Header.Revision
	// The member serving the watch answers with the revision it has applied,
	// which may trail an acknowledged write for a moment (as on etcd); asking
	// again must reach it, and revisions never go backwards.
	var last int64
	eventually(t, 10*time.Second, fmt.Sprintf("progress notification at revision >= %d", rev), func() error {
		if err := cli.RequestProgress(ctx); err != nil {
			return fmt.Errorf("request progress: %w", err)
		}
		select {
		case r := <-wch:
			if !r.IsProgressNotify() {
				t.Fatalf("response to RequestProgress: %+v, want a progress notification", r)
			}
			if r.Header.Revision < last {
				t.Fatalf("progress revision went backwards: %d after %d", r.Header.Revision, last)
			}
			last = r.Header.Revision
			if last < rev {
				return fmt.Errorf("progress at %d", last)
			}
			return nil
		case <-time.After(5 * time.Second):
			t.Fatal("no answer to RequestProgress within 5s")
		}
		return nil
	})
}

func testWatchCancel(t *testing.T, c *Cluster) {
	cli := c.Client()
	ctx := tctx(t, 30*time.Second)
	wctx, cancel := context.WithCancel(ctx)
	wch := cli.Watch(wctx, "wc/a", clientv3.WithCreatedNotify())
	keep := cli.Watch(ctx, "wc/b", clientv3.WithCreatedNotify())
	<-wch
	<-keep
	cancel()
	eventually(t, 10*time.Second, "cancelled watch channel closed", func() error {
		select {
		case _, ok := <-wch:
			if ok {
				return errors.New("still open")
			}
			return nil
		default:
			return errors.New("still open")
		}
	})
	// The other watch on the same stream is unaffected.
	rev := mustPut(t, cli, "wc/b", "after").Header.Revision
	wantEvents(t, "sibling watch after cancel", collect(t, keep, 1, 10*time.Second), ev{mvccpb.PUT, "wc/b", "after", rev})
}

func testWatchOnFollower(t *testing.T, c *Cluster) {
	f := c.Followers()[0]
	fcli := c.memberClient(f)
	wch := fcli.Watch(tctx(t, 30*time.Second), "wo/", clientv3.WithPrefix())
	lcli := c.memberClient(c.Leader())
	rev := mustPut(t, lcli, "wo/a", "x").Header.Revision
	wantEvents(t, "watch on follower of a write via the leader", collect(t, wch, 1, 10*time.Second), ev{mvccpb.PUT, "wo/a", "x", rev})
}

func testWatchCompacted(t *testing.T, c *Cluster) {
	cli := c.Client()
	r1 := mustPut(t, cli, "wx/a", "1").Header.Revision
	r2 := mustPut(t, cli, "wx/a", "2").Header.Revision
	if _, err := cli.Compact(tctx(t, opTimeout), r2, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	// Watches are served by whichever member the client reaches; wait until
	// every member has applied the compaction.
	waitCompacted(t, c, "wx/a", r1)
	wch := cli.Watch(tctx(t, 30*time.Second), "wx/a", clientv3.WithRev(r1))
	select {
	case r, ok := <-wch:
		if !ok {
			t.Fatal("watch channel closed without a response")
		}
		if !r.Canceled || r.CompactRevision != r2 {
			t.Fatalf("watch from compacted revision %d: canceled=%v compact_revision=%d, want canceled with %d", r1, r.Canceled, r.CompactRevision, r2)
		}
		if !errors.Is(r.Err(), rpctypes.ErrCompacted) {
			t.Errorf("watch error %v, want %v", r.Err(), rpctypes.ErrCompacted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no response to a watch from a compacted revision")
	}
	// From the compacted revision itself is fine.
	wch = cli.Watch(tctx(t, 30*time.Second), "wx/a", clientv3.WithRev(r2))
	wantEvents(t, "watch from the compaction revision", collect(t, wch, 1, 10*time.Second), ev{mvccpb.PUT, "wx/a", "2", r2})
}

// testWatchSlowConsumer: a watcher that does not read while many writes and
// a compaction happen either gets every event, contiguous, or is cancelled
// with the compaction revision; never a silent gap. Resuming from the
// compaction revision then works.
func testWatchSlowConsumer(t *testing.T, c *Cluster) {
	cli := c.Client()
	start := mustPut(t, cli, "ws/k", "first").Header.Revision
	wch := cli.Watch(tctx(t, 60*time.Second), "ws/", clientv3.WithPrefix(), clientv3.WithRev(start))
	want := []int64{start}
	for i := 0; i < 500; i++ {
		want = append(want, mustPut(t, cli, fmt.Sprintf("ws/%d", i%10), fmt.Sprint(i)).Header.Revision)
	}
	if _, err := cli.Compact(tctx(t, opTimeout), want[len(want)-1]); err != nil {
		t.Fatal(err)
	}
	var got []int64
	deadline := time.After(30 * time.Second)
	for len(got) < len(want) {
		select {
		case r, ok := <-wch:
			if !ok {
				t.Fatalf("watch closed after %d events", len(got))
			}
			if r.CompactRevision != 0 {
				// Cancelled: what arrived before must be a prefix, and
				// the compaction must be past it.
				if len(got) > 0 && r.CompactRevision <= got[len(got)-1] {
					t.Errorf("cancelled with compact revision %d after delivering up to %d", r.CompactRevision, got[len(got)-1])
				}
				t.Logf("slow watcher cancelled at compact revision %d after %d of %d events", r.CompactRevision, len(got), len(want))
				rw := cli.Watch(tctx(t, 30*time.Second), "ws/", clientv3.WithPrefix(), clientv3.WithRev(r.CompactRevision))
				if ev := collect(t, rw, 1, 10*time.Second); ev[0].rev != r.CompactRevision {
					t.Errorf("resume from the compact revision %d: first event at %d", r.CompactRevision, ev[0].rev)
				}
				return
			}
			for _, e := range r.Events {
				got = append(got, e.Kv.ModRevision)
			}
		case <-deadline:
			t.Fatalf("slow watcher: %d of %d events in 30s", len(got), len(want))
		}
		for i := range got {
			if i >= len(want) || got[i] != want[i] {
				t.Fatalf("slow watcher: event %d at revision %d, want %d (a gap or a stray event)", i, got[i], want[min(i, len(want)-1)])
			}
		}
	}
}
