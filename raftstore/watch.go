package raftstore

import (
	"context"
	"errors"
	"io"
	"sort"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiffhq/skiff/raftstore/mvcc"
)

// Watch streams. Each stream has one goroutine that owns all of its
// watchers and is the only sender. Apply never pushes events: after every
// applied batch the state machine broadcasts, and each stream pulls the
// events each of its watchers needs from the MVCC history, from the
// watcher's next revision. A slow client therefore only delays itself, and
// a watcher that falls behind a compaction is cancelled with the compact
// revision, as etcd does.

// watchMaxEvents bounds the events in one response; mvcc.Events never
// splits a revision, so a larger revision still goes out whole.
const watchMaxEvents = 1000

type watchServer struct {
	pb.UnimplementedWatchServer
	s *Server
}

var _ pb.WatchServer = (*watchServer)(nil)

type watcher struct {
	id             int64
	key, end       []byte
	next           int64 // the first revision not yet sent
	prevKV         bool
	noPut, noDel   bool
	progressNotify bool
	sentSinceTick  bool
}

type watchStream struct {
	s        *Server
	stream   pb.Watch_WatchServer
	watchers map[int64]*watcher
	nextID   int64
	order    []int64 // watcher ids, sorted, for a stable sync order
}

func (ws *watchServer) Watch(stream pb.Watch_WatchServer) error {
	ctx := stream.Context()
	reqs := make(chan *pb.WatchRequest, 16)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	w := &watchStream{s: ws.s, stream: stream, watchers: make(map[int64]*watcher)}
	err := w.run(ctx, reqs, recvErr)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func (w *watchStream) run(ctx context.Context, reqs <-chan *pb.WatchRequest, recvErr <-chan error) error {
	tick := time.NewTicker(w.s.cfg.ProgressNotifyInterval)
	defer tick.Stop()
	for {
		wake := w.s.fsm.changed.wait()
		if _, err := w.sync(); err != nil {
			return err
		}
		select {
		case req := <-reqs:
			// Creates already queued behind this one share its
			// barrier: all of them arrived before it starts.
			batch := []*pb.WatchRequest{req}
		drain:
			for len(batch) < cap(reqs) {
				select {
				case r := <-reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			barrierDone := false
			for _, r := range batch {
				if r.GetCreateRequest() != nil && !barrierDone {
					// A watch starts from a state at least as new as
					// every write acknowledged before it was created,
					// through any member (a replay from a revision
					// learnt elsewhere, a compaction just asked for, or
					// "from now" just after a write): one read-index
					// barrier, as for a linearizable range. Without a
					// leader the watch still starts, from this
					// member's state, as etcd's would.
					_ = w.barrier()
					barrierDone = true
				}
				if err := w.handle(r); err != nil {
					return err
				}
			}
		case <-wake:
		case <-tick.C:
			if err := w.progress(); err != nil {
				return err
			}
		case err := <-recvErr:
			return err
		case <-ctx.Done():
			return nil
		case <-w.s.ctx.Done():
			return status.Error(codes.Unavailable, "etcdserver: server stopped")
		}
	}
}

// barrier is a read-index barrier bounded in time: it runs on the stream's
// only goroutine, so it must not hold the other watchers up for long.
func (w *watchStream) barrier() error {
	ctx, cancel := context.WithTimeout(w.stream.Context(), watchBarrierTimeout)
	defer cancel()
	return w.s.linearizableBarrier(ctx)
}

const watchBarrierTimeout = 3 * time.Second

func (w *watchStream) send(resp *pb.WatchResponse) error {
	return w.stream.Send(resp)
}

func (w *watchStream) handle(req *pb.WatchRequest) error {
	switch {
	case req.GetCreateRequest() != nil:
		return w.create(req.GetCreateRequest())
	case req.GetCancelRequest() != nil:
		id := req.GetCancelRequest().WatchId
		if _, ok := w.watchers[id]; !ok {
			return nil
		}
		w.remove(id)
		return w.send(&pb.WatchResponse{Header: w.s.header(w.s.fsm.kv().Rev()), WatchId: id, Canceled: true})
	case req.GetProgressRequest() != nil:
		// Answered only once every watcher has been sent everything up to
		// the revision reported, so the client may trust it as a floor;
		// and after a read-index barrier, so that floor covers every write
		// acknowledged before the request, through any member.
		// Without a leader there is no answer (a stale floor would be
		// worse); the client may ask again.
		if err := w.barrier(); err != nil {
			return nil
		}
		rev, err := w.sync()
		if err != nil {
			return err
		}
		return w.send(&pb.WatchResponse{Header: w.s.header(rev), WatchId: -1})
	}
	return nil
}

func (w *watchStream) create(c *pb.WatchCreateRequest) error {
	// The caller (run) has passed a read-index barrier for this create.
	st := w.s.fsm.kv()
	rev := st.Rev()
	id := c.WatchId
	if id != 0 {
		if _, dup := w.watchers[id]; dup {
			return w.send(&pb.WatchResponse{Header: w.s.header(rev), WatchId: id, Created: true, Canceled: true,
				CancelReason: "mvcc: duplicate watch ID provided on the WatchStream"})
		}
	} else {
		for {
			if _, used := w.watchers[w.nextID]; !used {
				break
			}
			w.nextID++
		}
		id = w.nextID
		w.nextID++
	}
	nw := &watcher{
		id: id, key: c.Key, prevKV: c.PrevKv, progressNotify: c.ProgressNotify,
		next: c.StartRevision,
	}
	if len(c.RangeEnd) > 0 {
		nw.end = c.RangeEnd
	}
	if nw.next <= 0 {
		nw.next = rev + 1
	}
	for _, f := range c.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			nw.noPut = true
		case pb.WatchCreateRequest_NODELETE:
			nw.noDel = true
		}
	}
	if err := w.send(&pb.WatchResponse{Header: w.s.header(rev), WatchId: id, Created: true}); err != nil {
		return err
	}
	w.watchers[id] = nw
	w.order = append(w.order, id)
	sort.Slice(w.order, func(i, j int) bool { return w.order[i] < w.order[j] })
	return nil
}

func (w *watchStream) remove(id int64) {
	delete(w.watchers, id)
	for i, x := range w.order {
		if x == id {
			w.order = append(w.order[:i], w.order[i+1:]...)
			break
		}
	}
}

// sync sends every watcher the events up to the current revision and
// returns that revision.
func (w *watchStream) sync() (int64, error) {
	st := w.s.fsm.kv()
	rev := st.Rev()
	for _, id := range append([]int64(nil), w.order...) {
		wt := w.watchers[id]
		for wt.next <= rev {
			// From the compaction revision itself works: mvcc keeps
			// that revision's events, DELETEs included.
			evs, next, err := st.Events(wt.next, wt.key, wt.end, wt.prevKV, watchMaxEvents)
			if errors.Is(err, mvcc.ErrCompacted) {
				w.remove(id)
				if err := w.send(&pb.WatchResponse{Header: w.s.header(rev), WatchId: id, Canceled: true,
					CompactRevision: st.CompactRev(), CancelReason: "etcdserver: mvcc: required revision has been compacted"}); err != nil {
					return 0, err
				}
				break
			}
			if err != nil {
				return 0, toGRPCError(err)
			}
			if next <= wt.next {
				break // defensive: no progress possible
			}
			wt.next = next
			evs = wt.filter(evs)
			if len(evs) == 0 {
				continue
			}
			hrev := max(rev, evs[len(evs)-1].Kv.ModRevision)
			wt.sentSinceTick = true
			if err := w.send(&pb.WatchResponse{Header: w.s.header(hrev), WatchId: id, Events: evs}); err != nil {
				return 0, err
			}
		}
	}
	return rev, nil
}

func (wt *watcher) filter(evs []*mvccpb.Event) []*mvccpb.Event {
	if !wt.noPut && !wt.noDel {
		return evs
	}
	out := evs[:0:0]
	for _, e := range evs {
		if (e.Type == mvccpb.PUT && wt.noPut) || (e.Type == mvccpb.DELETE && wt.noDel) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// progress sends progress_notify responses to caught-up watchers that asked
// for them and had nothing sent since the last tick.
func (w *watchStream) progress() error {
	rev, err := w.sync()
	if err != nil {
		return err
	}
	for _, id := range w.order {
		wt := w.watchers[id]
		if wt.progressNotify && !wt.sentSinceTick && wt.next > rev {
			if err := w.send(&pb.WatchResponse{Header: w.s.header(rev), WatchId: id}); err != nil {
				return err
			}
		}
		wt.sentSinceTick = false
	}
	return nil
}
