package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiffhq/skiff/jepsen/checker"
)

// LeasePrefix holds the lease workload's keys.
const LeasePrefix = "lease/"

// leaseTTL is short so that leases expire within a run.
const leaseTTL = 2 // seconds

// leaseClient grants short leases, attaches a key to each, and revokes half
// of them; the other half expire. It never keeps a lease alive.
func (w *Runner) leaseClient(ctx context.Context, id, member int) {
	c := w.clients[member]
	node := w.rig.Members[member].Name
	for seq := 0; ; seq++ {
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		octx, cancel := context.WithTimeout(ctx, w.cfg.OpTimeout)
		g, err := c.Grant(octx, leaseTTL)
		cancel()
		if err != nil {
			continue // a lease granted without a key attached is harmless
		}
		key := fmt.Sprintf("%s%d-%d", LeasePrefix, id, seq)
		op := checker.Op{Process: id, Node: node, F: checker.FLeasePut, Key: key, Value: key, Lease: int64(g.ID)}
		octx, cancel = context.WithTimeout(ctx, w.cfg.OpTimeout)
		op.Call = w.rec.Now()
		resp, err := c.Put(octx, key, key, clientv3.WithLease(g.ID))
		op.Return = w.rec.Now()
		cancel()
		op.Type = outcome(op.F, err)
		if err != nil {
			op.Error = err.Error()
		} else {
			op.Rev = resp.Header.Revision
		}
		w.rec.Add(op)
		if err != nil || rand.IntN(2) == 0 {
			continue
		}
		rop := checker.Op{Process: id, Node: node, F: checker.FRevoke, Lease: int64(g.ID)}
		octx, cancel = context.WithTimeout(ctx, w.cfg.OpTimeout)
		rop.Call = w.rec.Now()
		_, err = c.Revoke(octx, g.ID)
		rop.Return = w.rec.Now()
		cancel()
		rop.Type = outcome(rop.F, err)
		if err != nil {
			rop.Error = err.Error()
		}
		w.rec.Add(rop)
	}
}

// WaitLeasesGone polls a linearizable read of the lease prefix on the
// first member until it is empty or timeout, and records the last read.
func (w *Runner) WaitLeasesGone(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		op := checker.Op{Process: 9100, Node: w.rig.Members[0].Name, F: checker.FLeaseRead, Key: LeasePrefix}
		octx, cancel := context.WithTimeout(ctx, 3*time.Second)
		op.Call = w.rec.Now()
		resp, err := w.clients[0].Get(octx, LeasePrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		op.Return = w.rec.Now()
		cancel()
		if err == nil {
			op.Type, op.Rev = checker.OK, resp.Header.Revision
			for _, kv := range resp.Kvs {
				op.Values = append(op.Values, string(kv.Key))
			}
		} else {
			op.Type, op.Error = checker.Fail, err.Error()
		}
		if (err == nil && len(op.Values) == 0) || time.Now().After(deadline) || ctx.Err() != nil {
			w.rec.Add(op)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}
