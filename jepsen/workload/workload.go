// Package workload drives clients against a rig's members and records what
// they did as a history of checker.Ops, with invocation and completion
// times relative to the run's origin.
//
// Every client is bound to one member's endpoint (client i to member
// i mod n), so when that member is cut off its client keeps asking it,
// exactly what a partition looks like to a real client. Reads that error are
// recorded as fail (a read has no effect), writes that error as info (the
// write may or may not have happened).
package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiffhq/skiff/jepsen/checker"
	"github.com/skiffhq/skiff/jepsen/rig"
)

// Key prefixes of the workloads.
const (
	RegisterPrefix = "reg/"
	SetPrefix      = "set/"
)

// Config tunes the workloads.
type Config struct {
	Keys            int           // register keys (default 3)
	RegisterClients int           // default 2 per member
	SetClients      int           // default 2
	OpTimeout       time.Duration // per operation (default 1s)
	OpInterval      time.Duration // pause between one client's operations (default 20ms)
	// SerializableReads makes register gets serializable (served from the
	// member's local state without a read-index): a planted bug for etcd.
	SerializableReads bool
	// Watch starts watchers (see Watchers).
	Watch bool
}

// Defaults fills zero fields for n members.
func (c *Config) Defaults(n int) {
	if c.Keys == 0 {
		c.Keys = 3
	}
	if c.RegisterClients == 0 {
		c.RegisterClients = 2 * n
	}
	if c.SetClients == 0 {
		c.SetClients = 2
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = time.Second
	}
	if c.OpInterval == 0 {
		c.OpInterval = 20 * time.Millisecond
	}
}

// Recorder collects ops from many clients; safe for concurrent use.
type Recorder struct {
	origin time.Time
	mu     sync.Mutex
	ops    []checker.Op
}

// NewRecorder starts a recorder whose times count from origin.
func NewRecorder(origin time.Time) *Recorder { return &Recorder{origin: origin} }

// Now returns nanoseconds since the origin.
func (r *Recorder) Now() int64 { return int64(time.Since(r.origin)) }

// Add records a completed op.
func (r *Recorder) Add(op checker.Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// Ops returns a copy of the recorded ops, in completion order.
func (r *Recorder) Ops() []checker.Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]checker.Op(nil), r.ops...)
}

// Runner owns the clients of one run.
type Runner struct {
	cfg     Config
	rig     *rig.Rig
	rec     *Recorder
	clients []*clientv3.Client // one per member
	wg      sync.WaitGroup
}

// NewRunner opens one client per member.
func NewRunner(r *rig.Rig, rec *Recorder, cfg Config) (*Runner, error) {
	cfg.Defaults(len(r.Members))
	w := &Runner{cfg: cfg, rig: r, rec: rec}
	for _, m := range r.Members {
		c, err := rig.Client([]*rig.Member{m})
		if err != nil {
			w.Close()
			return nil, err
		}
		w.clients = append(w.clients, c)
	}
	return w, nil
}

// Close closes the clients.
func (w *Runner) Close() {
	for _, c := range w.clients {
		c.Close()
	}
}

// Start launches the register and set clients; they run until ctx is done.
// Wait waits for them.
func (w *Runner) Start(ctx context.Context) {
	n := len(w.rig.Members)
	for i := 0; i < w.cfg.RegisterClients; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.registerClient(ctx, i, i%n)
		}()
	}
	for i := 0; i < w.cfg.SetClients; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.setClient(ctx, w.cfg.RegisterClients+i, i%n)
		}()
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.leaseClient(ctx, w.cfg.RegisterClients+w.cfg.SetClients, 1%n)
	}()
}

// Wait blocks until every client has stopped.
func (w *Runner) Wait() { w.wg.Wait() }

func (w *Runner) pause(ctx context.Context) bool {
	t := time.NewTimer(w.cfg.OpInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// registerClient issues get / put / cas on random keys. Its process id
// changes after every op with an unknown outcome, as in Jepsen (a process
// never has two ops in flight).
func (w *Runner) registerClient(ctx context.Context, id, member int) {
	c := w.clients[member]
	node := w.rig.Members[member].Name
	process := id
	stride := w.cfg.RegisterClients + w.cfg.SetClients
	lastRev := map[string]int64{}
	for seq := 0; w.pause(ctx); seq++ {
		key := fmt.Sprintf("%sk%d", RegisterPrefix, rand.IntN(w.cfg.Keys))
		op := checker.Op{Process: process, Node: node, Key: key}
		octx, cancel := context.WithTimeout(ctx, w.cfg.OpTimeout)
		op.Call = w.rec.Now()
		var err error
		switch p := rand.IntN(10); {
		case p < 4:
			op.F = checker.FGet
			var opts []clientv3.OpOption
			if w.cfg.SerializableReads {
				opts = append(opts, clientv3.WithSerializable())
			}
			var resp *clientv3.GetResponse
			resp, err = c.Get(octx, key, opts...)
			if err == nil && len(resp.Kvs) > 0 {
				op.Found, op.Value, op.Rev = true, string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision
				lastRev[key] = op.Rev
			} else if err == nil {
				lastRev[key] = 0
			}
		case p < 7:
			op.F, op.Value = checker.FPut, fmt.Sprintf("%d-%d", id, seq)
			var resp *clientv3.PutResponse
			resp, err = c.Put(octx, key, op.Value)
			if err == nil {
				op.Rev = resp.Header.Revision
				lastRev[key] = op.Rev
			}
		default:
			op.F, op.Value, op.ExpectRev = checker.FCAS, fmt.Sprintf("%d-%d", id, seq), lastRev[key]
			var resp *clientv3.TxnResponse
			resp, err = c.Txn(octx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", op.ExpectRev)).
				Then(clientv3.OpPut(key, op.Value)).Commit()
			if err == nil {
				op.Succeeded = resp.Succeeded
				if resp.Succeeded {
					op.Rev = resp.Header.Revision
					lastRev[key] = op.Rev
				}
			}
		}
		op.Return = w.rec.Now()
		cancel()
		op.Type = outcome(op.F, err)
		if err != nil {
			op.Error = err.Error()
		}
		if ctx.Err() != nil && err != nil {
			// Cut short by the end of the run: a read did not happen, a
			// write is unknown; record it as such.
			if op.F != checker.FGet {
				w.rec.Add(op)
			}
			return
		}
		w.rec.Add(op)
		if op.Type == checker.Info {
			process += stride
		}
		if err != nil {
			w.backoff(ctx)
		}
	}
}

// backoff waits a little after an error, so that a member that is down or
// cut off does not turn into a flood of unknown-outcome operations (each
// of which widens porcupine's search).
func (w *Runner) backoff(ctx context.Context) {
	t := time.NewTimer(250 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func outcome(f string, err error) checker.Outcome {
	switch {
	case err == nil:
		return checker.OK
	case f == checker.FGet || f == checker.FRead:
		return checker.Fail
	default:
		return checker.Info
	}
}

// setClient adds unique keys under SetPrefix.
func (w *Runner) setClient(ctx context.Context, id, member int) {
	c := w.clients[member]
	node := w.rig.Members[member].Name
	process := id
	stride := w.cfg.RegisterClients + w.cfg.SetClients
	for seq := 0; w.pause(ctx); seq++ {
		op := checker.Op{Process: process, Node: node, F: checker.FAdd, Key: fmt.Sprintf("%s%d-%d", SetPrefix, id, seq)}
		octx, cancel := context.WithTimeout(ctx, w.cfg.OpTimeout)
		op.Call = w.rec.Now()
		resp, err := c.Put(octx, op.Key, op.Key) // values stay unique
		op.Return = w.rec.Now()
		cancel()
		op.Type = outcome(op.F, err)
		if err != nil {
			op.Error = err.Error()
		} else {
			op.Rev = resp.Header.Revision
		}
		w.rec.Add(op)
		if ctx.Err() != nil {
			return
		}
		if op.Type == checker.Info {
			process += stride
			w.backoff(ctx)
		}
	}
}

// FinalReads reads the set's prefix through every member (linearizable)
// and records each as a read op; it retries each member until timeout.
// It returns the highest header revision seen.
func (w *Runner) FinalReads(ctx context.Context, timeout time.Duration) (int64, error) {
	var maxRev int64
	var errs []error
	for i, c := range w.clients {
		m := w.rig.Members[i]
		deadline := time.Now().Add(timeout)
		for {
			op := checker.Op{Process: 9000 + i, Node: m.Name, F: checker.FRead, Key: SetPrefix}
			octx, cancel := context.WithTimeout(ctx, 3*time.Second)
			op.Call = w.rec.Now()
			resp, err := c.Get(octx, SetPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
			op.Return = w.rec.Now()
			cancel()
			if err == nil {
				op.Type = checker.OK
				for _, kv := range resp.Kvs {
					op.Values = append(op.Values, string(kv.Key))
				}
				op.Rev = resp.Header.Revision
				maxRev = max(maxRev, op.Rev)
				w.rec.Add(op)
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				op.Type, op.Error = checker.Fail, err.Error()
				w.rec.Add(op)
				errs = append(errs, fmt.Errorf("final read on %s: %w", m.Name, err))
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return maxRev, errors.Join(errs...)
}

// Hashes asks every member for HashKV at revision rev, retrying a member
// until timeout (a member may not have applied rev yet).
func (w *Runner) Hashes(ctx context.Context, rev int64, timeout time.Duration) (map[string]uint32, map[string]string) {
	hashes, errs := map[string]uint32{}, map[string]string{}
	for i, c := range w.clients {
		m := w.rig.Members[i]
		deadline := time.Now().Add(timeout)
		for {
			octx, cancel := context.WithTimeout(ctx, 3*time.Second)
			resp, err := c.HashKV(octx, m.ClientAddr(), rev)
			cancel()
			if err == nil {
				hashes[m.Name] = resp.Hash
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				errs[m.Name] = err.Error()
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	return hashes, errs
}
