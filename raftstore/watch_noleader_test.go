package raftstore

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Regression test for the bug the jepsen watch checker found (fixed in
// 860c34c): a watch created with a start revision on a member without a
// leader failed its read-index barrier and ended the whole gRPC watch
// stream with "etcdserver: no leader", which the etcd client takes as
// final, so the other watches sharing the stream stopped too. etcd keeps
// such watches open; so must Skiff: once a leader is back, a write reaches
// both watches.
func TestWatchOnLeaderlessMemberKeepsStream(t *testing.T) {
	ms := startCluster(t, 3)
	leader, followers := leaderAndFollowers(t, ms)
	survivor, other := followers[0], followers[1]
	c := newClient(t, survivor)
	ctx := testCtx(t)
	if _, err := c.Put(ctx, "w/before", "1"); err != nil {
		t.Fatalf("put: %v", err)
	}
	// Wait until the survivor has applied it, so the history watch sees it.
	if _, err := c.Get(ctx, "w/before"); err != nil {
		t.Fatalf("get: %v", err)
	}

	// Quorum lost: only the survivor runs.
	down := []*Server{leader, other}
	cfgs := make([]Config, len(down))
	for i, s := range down {
		cfgs[i] = s.cfg
		cfgs[i].ListenClient, cfgs[i].ListenPeer = s.ClientAddr(), s.PeerAddr()
		if err := s.Close(); err != nil {
			t.Fatalf("close %s: %v", s.cfg.Name, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for survivor.IsLeader() || survivor.raft.Leader() != "" {
		if time.Now().After(deadline) {
			t.Fatal("the survivor still sees a leader 10s after quorum was lost")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Two watches on one stream (one context): the first from now, the
	// second from revision 1 (the barrier case).
	live := c.Watch(ctx, "w/", clientv3.WithPrefix())
	history := c.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(1))

	// Quorum back, then a write.
	for _, cfg := range cfgs {
		startMember(t, cfg)
	}
	waitLeader(t, survivor)
	if _, err := c.Put(ctx, "w/after", "2"); err != nil {
		t.Fatalf("put after the leader is back: %v", err)
	}

	expect := func(name string, ch clientv3.WatchChan, keys ...string) {
		t.Helper()
		var got []string
		timeout := time.After(15 * time.Second)
		for len(got) < len(keys) {
			select {
			case resp, ok := <-ch:
				if !ok {
					t.Fatalf("%s watch closed after %v; want events %v", name, got, keys)
				}
				if err := resp.Err(); err != nil {
					t.Fatalf("%s watch ended with %v after %v; want events %v", name, err, got, keys)
				}
				for _, ev := range resp.Events {
					got = append(got, string(ev.Kv.Key))
				}
			case <-timeout:
				t.Fatalf("%s watch: got %v within 15s, want %v", name, got, keys)
			}
		}
		for i, k := range keys {
			if got[i] != k {
				t.Fatalf("%s watch: got %v, want %v", name, got, keys)
			}
		}
	}
	expect("live", live, "w/after")
	expect("history", history, "w/before", "w/after")
}
