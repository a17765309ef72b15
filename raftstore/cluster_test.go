package raftstore

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// testMember starts a member on loopback with a temp data dir and fast
// timeouts. join lists peer addresses (empty = bootstrap).
func testConfig(t *testing.T, name string, join ...string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.DataDir = t.TempDir()
	cfg.ListenClient = "127.0.0.1:0"
	cfg.ListenPeer = "127.0.0.1:0"
	cfg.Join = join
	cfg.HeartbeatTimeout = 100 * time.Millisecond
	cfg.ElectionTimeout = 200 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	if os.Getenv("RAFTSTORE_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return cfg
}

func startMember(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startCluster starts n members (the first bootstraps, the rest join it)
// and waits until all of them know a ready leader.
func startCluster(t *testing.T, n int) []*Server {
	t.Helper()
	first := startMember(t, testConfig(t, "m0"))
	waitLeader(t, first)
	members := []*Server{first}
	for i := 1; i < n; i++ {
		members = append(members, startMember(t, testConfig(t, fmt.Sprintf("m%d", i), first.PeerAddr())))
	}
	for _, m := range members {
		waitLeader(t, m)
	}
	return members
}

func waitLeader(t *testing.T, s *Server) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := s.WaitLeader(ctx)
	if err != nil {
		t.Fatalf("WaitLeader(%s): %v", s.cfg.Name, err)
	}
	return id
}

func newClient(t *testing.T, members ...*Server) *clientv3.Client {
	t.Helper()
	var eps []string
	for _, m := range members {
		eps = append(eps, m.ClientAddr())
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: nopLogger()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func leaderAndFollowers(t *testing.T, ms []*Server) (*Server, []*Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var leader *Server
		var followers []*Server
		for _, m := range ms {
			if m.IsLeader() {
				leader = m
			} else {
				followers = append(followers, m)
			}
		}
		if leader != nil {
			return leader, followers
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader among members")
	return nil, nil
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSingleMemberPutGet(t *testing.T) {
	ms := startCluster(t, 1)
	c := newClient(t, ms[0])
	ctx := testCtx(t)
	pr, err := c.Put(ctx, "a", "1")
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if pr.Header.Revision != 2 {
		t.Errorf("put revision: got %d, want 2", pr.Header.Revision)
	}
	if pr.Header.ClusterId == 0 || pr.Header.MemberId != ms[0].ID() {
		t.Errorf("header: got cluster %x member %x, want nonzero cluster and member %x", pr.Header.ClusterId, pr.Header.MemberId, ms[0].ID())
	}
	gr, err := c.Get(ctx, "a")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != "1" {
		t.Fatalf("get a: got %v, want value 1", gr.Kvs)
	}
}

func TestThreeMembersPutGetWatch(t *testing.T) {
	ms := startCluster(t, 3)
	leader, followers := leaderAndFollowers(t, ms)
	ctx := testCtx(t)

	fc := newClient(t, followers[0])
	lc := newClient(t, leader)

	wch := lc.Watch(ctx, "k", clientv3.WithPrefix())
	if _, err := fc.Put(ctx, "k1", "v1"); err != nil {
		t.Fatalf("put via follower: %v", err)
	}
	// Linearizable read on the other follower sees the write at once.
	oc := newClient(t, followers[1])
	gr, err := oc.Get(ctx, "k1")
	if err != nil {
		t.Fatalf("get via follower: %v", err)
	}
	if len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != "v1" {
		t.Fatalf("get k1 via other follower: got %v, want v1", gr.Kvs)
	}
	select {
	case wr := <-wch:
		if err := wr.Err(); err != nil {
			t.Fatalf("watch: %v", err)
		}
		if len(wr.Events) != 1 || string(wr.Events[0].Kv.Key) != "k1" {
			t.Fatalf("watch events: got %v, want one put of k1", wr.Events)
		}
	case <-ctx.Done():
		t.Fatal("no watch event for k1")
	}

	// Txn via follower.
	tr, err := fc.Txn(ctx).If(clientv3.Compare(clientv3.Value("k1"), "=", "v1")).
		Then(clientv3.OpPut("k2", "v2")).Else(clientv3.OpPut("k2", "bad")).Commit()
	if err != nil {
		t.Fatalf("txn: %v", err)
	}
	if !tr.Succeeded {
		t.Fatal("txn: compare on k1=v1 failed, want success")
	}
	gr, err = fc.Get(ctx, "k2")
	if err != nil || len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != "v2" {
		t.Fatalf("get k2: got %v, %v; want v2", gr, err)
	}
}
