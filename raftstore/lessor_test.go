package raftstore

import (
	"slices"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLessorDeadlines(t *testing.T) {
	f := newFSM()
	f.leases[1] = 5
	f.leases[2] = 10
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLessor(f)
	l.now = clk.now

	if got := l.expired(); got != nil {
		t.Fatalf("expired on a follower: got %v, want nothing (deadlines are leader state)", got)
	}
	if _, err := l.leaderLease(1, true); err == nil {
		t.Fatal("keep-alive on a follower's lessor: got nil error, want not leader")
	}

	l.promote()
	// The first scan starts every deadline at now+TTL.
	if got := l.expired(); len(got) != 0 {
		t.Fatalf("first scan after promotion: got %v expired, want none", got)
	}
	clk.advance(4 * time.Second)
	info, err := l.leaderLease(1, true) // refresh lease 1: now 1004, deadline 1009
	if err != nil || !info.found || info.granted != 5 || info.remaining != 5 {
		t.Fatalf("keep-alive lease 1: got %+v, %v; want found, granted 5, remaining 5", info, err)
	}
	clk.advance(2 * time.Second) // 1006: lease 1 due 1009, lease 2 due 1010
	if got := l.expired(); len(got) != 0 {
		t.Fatalf("at +6s: got %v expired, want none", got)
	}
	info, _ = l.leaderLease(2, false)
	if info.remaining != 4 {
		t.Fatalf("time to live of lease 2 at +6s: got %d, want 4", info.remaining)
	}
	clk.advance(3 * time.Second) // 1009
	if got := l.expired(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("at +9s: got %v expired, want [1]", got)
	}
	// Already being revoked: not returned twice.
	if got := l.expired(); len(got) != 0 {
		t.Fatalf("second scan at +9s: got %v, want none (revocation in flight)", got)
	}
	// A failed revocation is retried.
	l.revokeFailed(1)
	if got := l.expired(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("after failed revoke: got %v, want [1] again", got)
	}
	// The revocation applies: lease 1 leaves the table and the lessor.
	delete(f.leases, 1)
	l.expired()
	if info, _ := l.leaderLease(1, true); info.found {
		t.Fatal("keep-alive of a revoked lease: found, want not found")
	}

	// A new leader restarts every deadline: lease 2, due at 1010, now
	// lives until 1009+10 after a demote/promote at 1009.
	l.demote()
	l.promote()
	l.expired()
	clk.advance(5 * time.Second) // 1014: past the old deadline
	if got := l.expired(); len(got) != 0 {
		t.Fatalf("after re-promotion at +14s: got %v expired, want none (deadlines restart at now+TTL)", got)
	}
	clk.advance(5 * time.Second) // 1019
	if got := l.expired(); !slices.Equal(got, []int64{2}) {
		t.Fatalf("at +19s: got %v expired, want [2]", got)
	}
}
