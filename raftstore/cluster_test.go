package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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
	// PLANT_STALE=1 plants the stale-read bug, to see the read tests fail.
	cfg.UnsafeFollowerReads = os.Getenv("PLANT_STALE") != ""
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

func TestLeaseExpiryDeletesKeysWithWatchEvent(t *testing.T) {
	ms := startCluster(t, 3)
	_, followers := leaderAndFollowers(t, ms)
	ctx := testCtx(t)
	c := newClient(t, followers[0])

	lg, err := c.Grant(ctx, 1)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	if lg.TTL < 1 {
		t.Fatalf("grant TTL: got %d, want >= 1", lg.TTL)
	}
	wch := c.Watch(ctx, "leased", clientv3.WithFilterPut())
	if _, err := c.Put(ctx, "leased", "x", clientv3.WithLease(lg.ID)); err != nil {
		t.Fatalf("put with lease: %v", err)
	}
	ttl, err := c.TimeToLive(ctx, lg.ID, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatalf("time to live: %v", err)
	}
	if len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "leased" || ttl.GrantedTTL != lg.TTL {
		t.Fatalf("time to live: got keys %q granted %d, want [leased] and %d", ttl.Keys, ttl.GrantedTTL, lg.TTL)
	}
	leases, err := c.Leases(ctx)
	if err != nil || len(leases.Leases) != 1 || leases.Leases[0].ID != lg.ID {
		t.Fatalf("leases: got %v, %v; want exactly %x", leases, err, lg.ID)
	}
	select {
	case wr := <-wch:
		if len(wr.Events) != 1 || wr.Events[0].Type != clientv3.EventTypeDelete {
			t.Fatalf("watch: got %v, want one DELETE of leased", wr.Events)
		}
	case <-ctx.Done():
		t.Fatal("lease never expired: no DELETE event for its key")
	}
	gr, err := c.Get(ctx, "leased")
	if err != nil || len(gr.Kvs) != 0 {
		t.Fatalf("get after expiry: got %v, %v; want no key", gr, err)
	}
	ttl, err = c.TimeToLive(ctx, lg.ID)
	if err != nil || ttl.TTL != -1 {
		t.Fatalf("time to live after expiry: got %v, %v; want TTL -1", ttl, err)
	}
}

func TestKeepAliveViaFollowerKeepsLease(t *testing.T) {
	ms := startCluster(t, 3)
	_, followers := leaderAndFollowers(t, ms)
	ctx := testCtx(t)
	c := newClient(t, followers[0])
	lg, err := c.Grant(ctx, 2) // room for scheduling stalls under -race
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	if _, err := c.Put(ctx, "kept", "x", clientv3.WithLease(lg.ID)); err != nil {
		t.Fatalf("put: %v", err)
	}
	// Keep it alive for well over its TTL, then check the key survived.
	end := time.Now().Add(time.Duration(lg.TTL)*time.Second + 1500*time.Millisecond)
	for time.Now().Before(end) {
		if _, err := c.KeepAliveOnce(ctx, lg.ID); err != nil {
			t.Fatalf("keep alive: %v", err)
		}
		time.Sleep(300 * time.Millisecond) // the keep-alive period under test
	}
	gr, err := c.Get(ctx, "kept")
	if err != nil || len(gr.Kvs) != 1 {
		t.Fatalf("get kept: got %v, %v; want the key alive", gr, err)
	}
	if _, err := c.Revoke(ctx, lg.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	gr, err = c.Get(ctx, "kept")
	if err != nil || len(gr.Kvs) != 0 {
		t.Fatalf("get after revoke: got %v, %v; want no key", gr, err)
	}
}

func TestMemberListAndStatus(t *testing.T) {
	ms := startCluster(t, 3)
	leader, _ := leaderAndFollowers(t, ms)
	ctx := testCtx(t)
	c := newClient(t, ms[1])
	// Attributes are published through the log: poll until all are there.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ml, err := c.MemberList(ctx)
		if err != nil {
			t.Fatalf("member list: %v", err)
		}
		named := 0
		for _, m := range ml.Members {
			if m.Name != "" && len(m.ClientURLs) == 1 && len(m.PeerURLs) == 1 {
				named++
			}
		}
		if len(ml.Members) == 3 && named == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member list: got %v, want 3 members with names and URLs", ml.Members)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := c.Status(ctx, ms[1].ClientAddr())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.Leader != leader.ID() || st.Version == "" || st.RaftTerm == 0 || st.RaftIndex == 0 {
		t.Fatalf("status: got leader %x version %q term %d index %d, want leader %x and nonzero fields", st.Leader, st.Version, st.RaftTerm, st.RaftIndex, leader.ID())
	}
}

func TestLeaderCloseKeepsWriting(t *testing.T) {
	ms := startCluster(t, 3)
	leader, followers := leaderAndFollowers(t, ms)
	ctx := testCtx(t)
	c := newClient(t, followers...)
	for i := 0; i < 10; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("before/%d", i), "v"); err != nil {
			t.Fatalf("put before: %v", err)
		}
	}
	if err := leader.Close(); err != nil {
		t.Fatalf("close leader: %v", err)
	}
	// Writes may fail while the survivors elect a leader; they must
	// succeed again within a deadline.
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for i := 0; ; i++ {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, lastErr = c.Put(pctx, fmt.Sprintf("after/%d", i), "v")
		cancel()
		if lastErr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write succeeded after leader close: %v", lastErr)
		}
	}
	gr, err := c.Get(ctx, "before/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || gr.Count != 10 {
		t.Fatalf("acknowledged writes before failover: got %v, %v; want 10", gr, err)
	}
}

func TestRestartKeepsData(t *testing.T) {
	cfg := testConfig(t, "solo")
	s := startMember(t, cfg)
	waitLeader(t, s)
	c := newClient(t, s)
	ctx := testCtx(t)
	for i := 0; i < 20; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("r/%d", i), "v"); err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	cfg.ListenClient, cfg.ListenPeer = s.ClientAddr(), s.PeerAddr()
	s2 := startMember(t, cfg)
	waitLeader(t, s2)
	c2 := newClient(t, s2)
	gr, err := c2.Get(ctx, "r/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || gr.Count != 20 {
		t.Fatalf("after restart: got %v, %v; want 20 keys", gr, err)
	}
	if s2.ID() != s.ID() {
		t.Fatalf("member id changed across restart: %x then %x", s.ID(), s2.ID())
	}
}

func TestMetricsEndpoint(t *testing.T) {
	cfg := testConfig(t, "metrics")
	cfg.ListenMetrics = "127.0.0.1:0"
	s := startMember(t, cfg)
	waitLeader(t, s)
	c := newClient(t, s)
	ctx := testCtx(t)
	if _, err := c.Put(ctx, "m", "1"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.metricsAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		"skiff_raft_term ", "skiff_raft_commit_index", "skiff_raft_applied_index", "skiff_raft_leader_changes_total",
		"skiff_fsm_apply_batch_seconds_bucket", "skiff_disk_log_store_seconds_bucket",
		`skiff_grpc_requests_total{code="OK",method="/etcdserverpb.KV/Put"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestNoGoroutineLeak: a cluster that served writes, reads, watches and
// leases leaves no goroutines behind once closed.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		var ms []*Server
		first, err := New(testConfig(t, "g0"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := first.Start(ctx); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, first)
		defer func() {
			for _, m := range ms {
				m.Close()
			}
		}()
		if _, err := first.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 3; i++ {
			s, err := New(testConfig(t, fmt.Sprintf("g%d", i), first.PeerAddr()))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			ms = append(ms, s)
		}
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{ms[1].ClientAddr(), ms[2].ClientAddr()}, Logger: nopLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		wch := c.Watch(wctx, "g", clientv3.WithPrefix())
		lg, err := c.Grant(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(ctx, "g1", "v", clientv3.WithLease(lg.ID)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "g1"); err != nil {
			t.Fatal(err)
		}
		<-wch
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+2 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d before, %d after close; stacks:\n%s", before, n, buf)
		}
		time.Sleep(50 * time.Millisecond) // polling a counter
	}
}

func TestReadOnlyTxnViaFollowerIsLinearizable(t *testing.T) {
	ms := startCluster(t, 3)
	leader, followers := leaderAndFollowers(t, ms)
	ctx := testCtx(t)
	lc := newClient(t, leader)
	fc := newClient(t, followers[0])
	for i := 0; i < 20; i++ {
		v := fmt.Sprint(i)
		// A leader change (the machine is loaded; election timeouts
		// here are 200ms) leaves a put's outcome unknown: put again,
		// the value is the same.
		for {
			_, err := lc.Put(ctx, "ro", v)
			if err == nil {
				break
			}
			if (!errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) && !errors.Is(err, rpctypes.ErrNoLeader)) || ctx.Err() != nil {
				t.Fatal(err)
			}
		}
		// Right after the write is acknowledged by the leader, a
		// read-only txn on a follower must see it.
		tr, err := fc.Txn(ctx).If(clientv3.Compare(clientv3.Value("ro"), "=", v)).
			Then(clientv3.OpGet("ro")).Else(clientv3.OpGet("ro")).Commit()
		if err != nil {
			t.Fatalf("read-only txn: %v", err)
		}
		got := tr.Responses[0].GetResponseRange().Kvs
		if !tr.Succeeded || len(got) != 1 || string(got[0].Value) != v {
			t.Fatalf("read-only txn after put %s: succeeded=%v kvs=%v; want the new value", v, tr.Succeeded, got)
		}
		if tr.Header.Revision < got[0].ModRevision {
			t.Fatalf("header revision %d below the value's mod revision %d", tr.Header.Revision, got[0].ModRevision)
		}
	}
}

func TestShutdownHandsOverLeadership(t *testing.T) {
	ms := startCluster(t, 3)
	leader, followers := leaderAndFollowers(t, ms)
	ctx := testCtx(t)
	if err := leader.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// The transfer completed before Close: a follower already leads (or
	// leads within a short time, without waiting for an election timeout
	// to notice the old leader is gone).
	deadline := time.Now().Add(5 * time.Second)
	for !followers[0].IsLeader() && !followers[1].IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no follower became leader after the leader's graceful shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := newClient(t, followers...)
	if _, err := c.Put(ctx, "after-shutdown", "v"); err != nil {
		t.Fatalf("put after graceful shutdown: %v", err)
	}
}

// TestSnapshotCatchUpAfterLogTruncation: a member down while the others
// snapshot and truncate their logs comes back by snapshot install on top of
// its own old log, and ends with every write and the same HashKV.
func TestSnapshotCatchUpAfterLogTruncation(t *testing.T) {
	for _, store := range []string{LogStoreBolt, LogStoreWAL} {
		t.Run(store, func(t *testing.T) { testSnapshotCatchUpAfterLogTruncation(t, store) })
	}
}

func testSnapshotCatchUpAfterLogTruncation(t *testing.T, store string) {
	old := walSegmentSize
	walSegmentSize = 64 << 10
	t.Cleanup(func() { walSegmentSize = old })

	mk := func(name string, join ...string) Config {
		cfg := testConfig(t, name, join...)
		cfg.LogStore = store
		cfg.SnapshotThreshold = 32
		cfg.TrailingLogs = 8
		cfg.SnapshotInterval = 50 * time.Millisecond
		return cfg
	}
	first := startMember(t, mk("s0"))
	waitLeader(t, first)
	ms := []*Server{first}
	cfgs := []Config{first.cfg}
	for i := 1; i < 3; i++ {
		m := startMember(t, mk(fmt.Sprintf("s%d", i), first.PeerAddr()))
		waitLeader(t, m)
		ms = append(ms, m)
		cfgs = append(cfgs, m.cfg)
	}
	leader, _ := leaderAndFollowers(t, ms)
	c := newClient(t, ms...)
	var down int
	for i, m := range ms {
		if m != leader {
			down = i
			break
		}
	}
	ctx := testCtx(t)
	val := strings.Repeat("x", 1024)
	// Puts are retried: under -race on a busy machine the test's short
	// timeouts can cost a leader its lease; each put is idempotent.
	put := func(k string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := c.Put(pctx, k, val)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("put %s: %v", k, err)
			}
		}
	}
	for i := 0; i < 20; i++ {
		put(fmt.Sprintf("sc/a%03d", i))
	}
	if err := ms[down].Close(); err != nil {
		t.Fatal(err)
	}
	const n = 400
	for i := 0; i < n; i++ {
		put(fmt.Sprintf("sc/b%03d", i))
	}
	cfg := cfgs[down]
	cfg.ListenClient, cfg.ListenPeer = ms[down].ClientAddr(), ms[down].PeerAddr()
	back := startMember(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	var ref *Server
	for _, m := range ms {
		if m != ms[down] {
			ref = m
		}
	}
	for back.AppliedIndex() < ref.AppliedIndex() {
		if time.Now().After(deadline) {
			t.Fatalf("restarted member applied %d, a live member %d", back.AppliedIndex(), ref.AppliedIndex())
		}
		time.Sleep(20 * time.Millisecond) // polling the applied index
	}
	bc := newClient(t, back)
	g, err := bc.Get(ctx, "sc/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
	if err != nil || g.Count != 20+n {
		t.Fatalf("restarted member: got %v, %v; want %d keys", g, err, 20+n)
	}
	h1, _, _, _ := ref.fsm.kv().HashKV(0)
	h2, _, _, _ := back.fsm.kv().HashKV(0)
	if h1 != h2 {
		t.Fatalf("HashKV after catch-up: live member %x, restarted %x", h1, h2)
	}
}
