package raftstore

import (
	"context"
	"math"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// Lease expiry is leader-only state, as in etcd: the replicated lease table
// (fsm.leases) holds each lease's TTL, and the leader alone keeps deadlines
// in memory. A new leader starts every deadline afresh at now+TTL (the
// previous leader's keep-alives are unknown to it; extending is safe,
// expiring early is not). Keep-alives refresh deadlines on the leader;
// followers forward them. Expired leases are revoked by proposing
// LeaseRevoke, so every member deletes the attached keys at the same
// revision and watchers see DELETE events.

// lessor holds the deadlines. Its clock is injectable for tests.
type lessor struct {
	fsm *fsm
	now func() time.Time

	mu        sync.Mutex
	leader    bool
	deadlines map[int64]time.Time
	revoking  map[int64]bool
}

func newLessor(f *fsm) *lessor {
	return &lessor{fsm: f, now: time.Now}
}

// promote starts keeping deadlines (this member became leader).
func (l *lessor) promote() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leader {
		return
	}
	l.leader = true
	l.deadlines = make(map[int64]time.Time)
	l.revoking = make(map[int64]bool)
}

// demote forgets deadlines (this member is no longer leader).
func (l *lessor) demote() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leader = false
	l.deadlines = nil
	l.revoking = nil
}

type leaseInfo struct {
	found     bool
	granted   int64
	remaining int64
}

// leaderLease looks at (and with keepAlive refreshes) a lease on the leader.
// A lease the table knows but the lessor has not seen yet starts its
// deadline now.
func (l *lessor) leaderLease(id int64, keepAlive bool) (leaseInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.leader {
		return leaseInfo{}, rpctypes.ErrGRPCNotLeader
	}
	ttl, ok := l.fsm.leaseTTL(id)
	if !ok {
		delete(l.deadlines, id)
		return leaseInfo{}, nil
	}
	now := l.now()
	d, seen := l.deadlines[id]
	if keepAlive || !seen {
		d = now.Add(time.Duration(ttl) * time.Second)
		l.deadlines[id] = d
	}
	return leaseInfo{found: true, granted: ttl, remaining: ceilSeconds(d.Sub(now))}, nil
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// expired returns the leases past their deadline that are not already
// being revoked, and marks them as being revoked. It also starts deadlines
// for leases it had not seen and forgets leases gone from the table.
func (l *lessor) expired() []int64 {
	table := l.fsm.leaseTable()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.leader {
		return nil
	}
	now := l.now()
	var out []int64
	for id, ttl := range table {
		d, ok := l.deadlines[id]
		if !ok {
			l.deadlines[id] = now.Add(time.Duration(ttl) * time.Second)
			continue
		}
		if !d.After(now) && !l.revoking[id] {
			l.revoking[id] = true
			out = append(out, id)
		}
	}
	for id := range l.deadlines {
		if _, ok := table[id]; !ok {
			delete(l.deadlines, id)
			delete(l.revoking, id)
		}
	}
	return out
}

// revokeFailed lets a failed revocation be retried on the next scan.
func (l *lessor) revokeFailed(id int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.revoking != nil {
		delete(l.revoking, id)
	}
}

// leaseCheckInterval is how often the leader looks for expired leases: the
// granularity of expiry beyond the TTL.
const leaseCheckInterval = 200 * time.Millisecond

// expireLeases runs on the leader and revokes expired leases, a few at a
// time in parallel so a mass expiry does not take one commit per lease.
func (s *Server) expireLeases(ctx context.Context) {
	t := time.NewTicker(leaseCheckInterval)
	defer t.Stop()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, id := range s.lessor.expired() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func(id int64) {
				defer wg.Done()
				defer func() { <-sem }()
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				_, _, err := s.propose(pctx, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
				if err != nil && err != rpctypes.ErrGRPCLeaseNotFound {
					s.lessor.revokeFailed(id)
					s.log.Warn("revoke expired lease failed; will retry", "lease", id, "err", err)
					return
				}
				s.log.Debug("lease expired", "lease", id)
			}(id)
		}
	}
}

// autoCompact runs on the leader in etcd's periodic mode: every retention/10
// it samples the revision, and compacts to the revision that was current one
// retention ago.
func (s *Server) autoCompact(ctx context.Context) {
	retention := s.cfg.AutoCompactionRetention
	interval := max(retention/10, 10*time.Millisecond)
	type sample struct {
		at  time.Time
		rev int64
	}
	samples := []sample{{time.Now(), s.fsm.kv().Rev()}}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			samples = append(samples, sample{now, s.fsm.kv().Rev()})
			// The newest sample at least one retention old is the target.
			target := int64(0)
			i := 0
			for i < len(samples) && now.Sub(samples[i].at) >= retention {
				target = samples[i].rev
				i++
			}
			if i > 1 {
				samples = samples[i-1:]
			}
			if target == 0 || target <= s.fsm.kv().CompactRev() {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, _, err := s.propose(pctx, &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: target}})
			cancel()
			if err != nil && err != rpctypes.ErrGRPCCompacted {
				s.log.Warn("auto-compaction failed", "revision", target, "err", err)
				continue
			}
			s.log.Info("auto-compacted", "revision", target)
		}
	}
}
