package workload

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiffhq/skiff/jepsen/checker"
)

// watcher records one watch stream.
type watcher struct {
	mu     sync.Mutex
	w      checker.Watcher
	lastEv int64
	cancel context.CancelFunc
	done   chan struct{}
}

// Watchers are the run's watchers: on every member, one on the register
// prefix with prev_kv from revision 1 and one on everything from the
// revision current when it starts (a resume from a past revision when
// started late; see StartLate).
type Watchers struct {
	rec  *Recorder
	list []*watcher
}

func convertEvents(evs []*clientv3.Event) []checker.Event {
	out := make([]checker.Event, 0, len(evs))
	for _, e := range evs {
		ce := checker.Event{
			Type:      "PUT",
			Key:       string(e.Kv.Key),
			Value:     string(e.Kv.Value),
			CreateRev: e.Kv.CreateRevision,
			ModRev:    e.Kv.ModRevision,
			Version:   e.Kv.Version,
		}
		if e.Type == mvccpb.DELETE {
			ce.Type, ce.Value = "DELETE", ""
		}
		if e.PrevKv != nil {
			ce.HasPrev, ce.PrevValue, ce.PrevMod = true, string(e.PrevKv.Value), e.PrevKv.ModRevision
		}
		out = append(out, ce)
	}
	return out
}

// StartWatchers opens the watchers on runner's members.
func (w *Runner) StartWatchers(ctx context.Context) *Watchers {
	ws := &Watchers{rec: w.rec}
	for i, c := range w.clients {
		node := w.rig.Members[i].Name
		ws.start(ctx, c, checker.Watcher{ID: len(ws.list), Node: node, Prefix: RegisterPrefix, StartRev: 1, PrevKV: true})
	}
	return ws
}

// StartLate opens, on every member, a watcher on all keys from a revision
// some way in the past (rev - back, at least 1): a resume from history.
func (w *Runner) StartLate(ctx context.Context, ws *Watchers, rev, back int64) {
	start := max(1, rev-back)
	for i, c := range w.clients {
		node := w.rig.Members[i].Name
		ws.start(ctx, c, checker.Watcher{ID: len(ws.list), Node: node, Prefix: "", StartRev: start})
	}
}

func (ws *Watchers) start(ctx context.Context, c *clientv3.Client, spec checker.Watcher) {
	wctx, cancel := context.WithCancel(ctx)
	x := &watcher{w: spec, cancel: cancel, done: make(chan struct{})}
	ws.list = append(ws.list, x)
	opts := []clientv3.OpOption{clientv3.WithRev(spec.StartRev), clientv3.WithPrefix()}
	if spec.PrevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	ch := c.Watch(wctx, spec.Prefix, opts...)
	go func() {
		defer close(x.done)
		for resp := range ch {
			if err := resp.Err(); err != nil {
				x.mu.Lock()
				if wctx.Err() == nil {
					x.w.Err = err.Error()
				}
				x.mu.Unlock()
				continue
			}
			if len(resp.Events) == 0 {
				continue
			}
			r := checker.WatchResponse{Time: ws.rec.Now(), Revision: resp.Header.Revision, Events: convertEvents(resp.Events)}
			x.mu.Lock()
			x.w.Responses = append(x.w.Responses, r)
			x.lastEv = r.Events[len(r.Events)-1].ModRev
			x.mu.Unlock()
		}
	}()
}

// CatchUp waits until every watcher has seen the last event of the
// reference under its prefix, or timeout; then it stops all watchers and
// returns what they saw.
func (ws *Watchers) CatchUp(ref []checker.Event, timeout time.Duration) []checker.Watcher {
	deadline := time.Now().Add(timeout)
	for _, x := range ws.list {
		var want int64
		for _, e := range ref {
			if e.ModRev >= x.w.StartRev && len(e.Key) >= len(x.w.Prefix) && e.Key[:len(x.w.Prefix)] == x.w.Prefix {
				want = e.ModRev
			}
		}
		for time.Now().Before(deadline) {
			x.mu.Lock()
			got := x.lastEv
			x.mu.Unlock()
			if got >= want {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var out []checker.Watcher
	for _, x := range ws.list {
		x.cancel()
		<-x.done
		x.mu.Lock()
		out = append(out, x.w)
		x.mu.Unlock()
	}
	return out
}

// Reference reads the full history: a watch on all keys from revision 1
// through revision upTo, on the given member's client.
func (w *Runner) Reference(ctx context.Context, member int, upTo int64, timeout time.Duration) ([]checker.Event, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var ref []checker.Event
	ch := w.clients[member].Watch(wctx, "", clientv3.WithPrefix(), clientv3.WithRev(1), clientv3.WithPrevKV())
	for resp := range ch {
		if err := resp.Err(); err != nil {
			return ref, fmt.Errorf("reference watch on %s: %w", w.rig.Members[member].Name, err)
		}
		ref = append(ref, convertEvents(resp.Events)...)
		if len(ref) > 0 && ref[len(ref)-1].ModRev >= upTo {
			return ref, nil
		}
	}
	last := int64(0)
	if len(ref) > 0 {
		last = ref[len(ref)-1].ModRev
	}
	return ref, fmt.Errorf("reference watch on %s reached revision %d of %d within %v", w.rig.Members[member].Name, last, upTo, timeout)
}
