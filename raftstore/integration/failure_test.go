package integration

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestFollowerForwarding: a client that can reach only a follower can do
// everything; writes it makes are visible on the leader at once.
func TestFollowerForwarding(t *testing.T) {
	c := newCluster(t, 3, opts{})
	f := c.Followers()[0]
	fcli := c.memberClient(f)
	lcli := c.memberClient(c.Leader())

	p := mustPut(t, fcli, "fw/a", "1")
	if g := mustGet(t, lcli, "fw/a"); len(g.Kvs) != 1 || g.Kvs[0].ModRevision != p.Header.Revision {
		t.Errorf("leader after a put through a follower: %v, want mod revision %d", g.Kvs, p.Header.Revision)
	}
	// Read-your-writes through the leader, then through the follower
	// (linearizable read on a follower after a write on the leader).
	p2 := mustPut(t, lcli, "fw/a", "2")
	if g := mustGet(t, fcli, "fw/a"); len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "2" {
		t.Errorf("linearizable read on follower after a put on the leader at %d: %v", p2.Header.Revision, g.Kvs)
	}
	tx, err := fcli.Txn(tctx(t, opTimeout)).
		If(clientv3.Compare(clientv3.Value("fw/a"), "=", "2")).
		Then(clientv3.OpPut("fw/b", "txn")).Commit()
	if err != nil || !tx.Succeeded {
		t.Fatalf("txn through follower: %v err %v", tx, err)
	}
	if _, err := fcli.Delete(tctx(t, opTimeout), "fw/b"); err != nil {
		t.Fatalf("delete through follower: %v", err)
	}
	if _, err := fcli.Compact(tctx(t, opTimeout), p.Header.Revision); err != nil {
		t.Fatalf("compact through follower: %v", err)
	}
	if _, err := fcli.MemberList(tctx(t, opTimeout)); err != nil {
		t.Fatalf("member list through follower: %v", err)
	}
	// Many concurrent writes through the follower, each visible after its ack.
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() {
			k := fmt.Sprintf("fw/c/%d", i)
			r, err := fcli.Put(tctx(t, opTimeout), k, "x")
			if err != nil {
				errs <- err
				return
			}
			g, err := lcli.Get(tctx(t, opTimeout), k)
			if err != nil {
				errs <- err
				return
			}
			if len(g.Kvs) != 1 || g.Kvs[0].ModRevision != r.Header.Revision {
				errs <- fmt.Errorf("%s acknowledged at %d, leader has %v", k, r.Header.Revision, g.Kvs)
				return
			}
			errs <- nil
		}()
	}
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestLeaderKilledUnderWriteLoad: kill the leader while clients write (in a
// 5-member cluster, a follower too); a new leader is elected, writes resume,
// and no acknowledged write is lost, on the survivors or on the killed
// members once they are back.
func TestLeaderKilledUnderWriteLoad(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("members=%d", n), func(t *testing.T) {
			c := newCluster(t, n, opts{})
			load := startWrites(t, c.Client(), "lk/", 8)
			load.waitMore(t, 50, 30*time.Second)
			old := c.Leader()
			oldID := memberID(t, c, old)
			killed := []node{old}
			if n == 5 {
				killed = append(killed, c.Followers()[0])
			}
			for _, m := range killed {
				c.Kill(m)
			}
			start := time.Now()
			nl := c.WaitLeader(30 * time.Second)
			if nl == old {
				t.Fatal("the killed member is still the leader")
			}
			t.Logf("new leader after %v", time.Since(start))
			load.waitMore(t, 50, 30*time.Second)
			load.stop()
			for _, m := range c.Members() {
				if m.Running() {
					load.checkAll(t, c, m, 30*time.Second)
				}
			}
			for _, m := range killed {
				c.Restart(m)
			}
			for _, m := range killed {
				load.checkAll(t, c, m, 60*time.Second)
			}
			if id := memberID(t, c, old); id != oldID {
				t.Errorf("restarted member has id %x, was %x", id, oldID)
			}
			t.Logf("%d acknowledged writes, %d with unknown outcome", load.count(), load.errs)
		})
	}
}

// TestMemberRestart: a follower killed and restarted on its data dir comes
// back with every acknowledged write, including those made while it was down.
func TestMemberRestart(t *testing.T) {
	c := newCluster(t, 3, opts{})
	cli := c.memberClient(c.Leader())
	load := startWrites(t, cli, "mr/", 4)
	load.waitMore(t, 50, 30*time.Second)
	f := c.Followers()[0]
	c.Kill(f)
	load.waitMore(t, 100, 30*time.Second)
	c.Restart(f)
	load.waitMore(t, 50, 30*time.Second)
	load.stop()
	for _, m := range c.Members() {
		load.checkAll(t, c, m, 60*time.Second)
	}
}

// TestWholeClusterRestart: every member killed at once and restarted keeps
// every acknowledged write and the revision does not go backwards.
func TestWholeClusterRestart(t *testing.T) {
	c := newCluster(t, 3, opts{})
	load := startWrites(t, c.Client(), "wc/", 4)
	load.waitMore(t, 200, 60*time.Second)
	load.stop()
	for _, m := range c.Members() {
		c.Kill(m)
	}
	for _, m := range c.Members() {
		c.Restart(m)
	}
	c.WaitLeader(60 * time.Second)
	for _, m := range c.Members() {
		load.checkAll(t, c, m, 60*time.Second)
	}
	g := mustGet(t, c.Client(), "wc/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if g.Header.Revision < load.maxRev {
		t.Errorf("revision after restart %d, below the last acknowledged %d", g.Header.Revision, load.maxRev)
	}
	// And the cluster still takes writes.
	mustPut(t, c.Client(), "wc/after", "x")
}

// TestSnapshotCatchUp: a member kept down while many writes and snapshots
// happen catches up (by snapshot, since the log it needs was truncated) and
// ends with the same data as the others.
func TestSnapshotCatchUp(t *testing.T) {
	const trailing = 16
	c := newCluster(t, 3, opts{SnapshotThreshold: 64, TrailingLogs: trailing, SnapshotInterval: 100 * time.Millisecond})
	leader := c.Leader()
	cli := c.memberClient(leader)
	rev0 := mustPut(t, cli, "sc/before", "x").Header.Revision
	f := c.Followers()[0]
	var downAt uint64
	if ri, ok := f.(raftInspector); ok {
		downAt = ri.AppliedIndex()
	}
	c.Kill(f)
	// Skiff's raft log (raft-wal) drops only whole 16 MiB segments, so the
	// writes must outgrow one segment before the log the down member needs
	// can be gone: 2000 writes of 12 KiB. (etcd keeps 5000 entries for
	// catch-up whatever the settings; there this is a log catch-up.)
	load := startWritesSized(t, cli, "sc/", 8, 12<<10)
	load.waitMore(t, 2000, 180*time.Second)
	eventually(t, time.Minute, "delete sc/before", func() error {
		_, err := cli.Delete(tctx(t, opTimeout), "sc/before")
		if err != nil && !isUnavailable(err) {
			t.Fatal(err)
		}
		return err
	})
	load.stop()
	ri, inspect := leader.(raftInspector)
	if inspect {
		// The leader's log no longer holds what the follower needs.
		c.eventually(30*time.Second, "a leader snapshot beyond the down member's log", func() error {
			if si := ri.SnapshotIndex(); si <= downAt+trailing {
				return fmt.Errorf("leader snapshot index %d, down member at %d, trailing logs %d", si, downAt, trailing)
			}
			return nil
		})
	}
	c.Restart(f)
	load.checkAll(t, c, f, 60*time.Second)
	fc := c.memberClient(f)
	c.eventually(30*time.Second, "delete made while down seen after catch-up", func() error {
		g, err := fc.Get(tctx(t, opTimeout), "sc/before", clientv3.WithSerializable())
		if err != nil {
			return err
		}
		if len(g.Kvs) != 0 {
			return errors.New("sc/before still there")
		}
		return nil
	})
	rev := mustGet(t, cli, "sc/before").Header.Revision
	c.eventually(30*time.Second, "equal HashKV after catch-up", func() error {
		var hs []uint32
		for _, m := range c.Members() {
			h, err := c.memberClient(m).HashKV(tctx(t, opTimeout), m.ClientAddr(), rev)
			if err != nil {
				return err
			}
			hs = append(hs, h.Hash)
		}
		for _, h := range hs[1:] {
			if h != hs[0] {
				return fmt.Errorf("hashes %x", hs)
			}
		}
		return nil
	})
	if fi, ok := f.(raftInspector); ok && inspect {
		if si := fi.SnapshotIndex(); si <= downAt {
			t.Errorf("caught-up member's newest snapshot is at %d, not past %d where it went down: no snapshot was installed", si, downAt)
		}
	}
	// The snapshot carried history, not just the latest state: reads at old
	// revisions and watch replays on the caught-up member match the leader.
	mid := rev0 + (rev-rev0)/2
	for _, at := range []int64{rev0, mid} {
		want := mustGet(t, cli, "sc/", clientv3.WithPrefix(), clientv3.WithRev(at), clientv3.WithSerializable())
		got, err := fc.Get(tctx(t, opTimeout), "sc/", clientv3.WithPrefix(), clientv3.WithRev(at), clientv3.WithSerializable())
		if err != nil {
			t.Errorf("range at revision %d on the caught-up member: %v (the leader answers %d keys)", at, err, len(want.Kvs))
			continue
		}
		if len(got.Kvs) != len(want.Kvs) || got.Count != want.Count {
			t.Errorf("range at revision %d: caught-up member has %d keys, leader %d", at, len(got.Kvs), len(want.Kvs))
		}
	}
	wl := c.memberClient(c.Leader()).Watch(tctx(t, 30*time.Second), "sc/", clientv3.WithPrefix(), clientv3.WithRev(mid))
	wf := fc.Watch(tctx(t, 30*time.Second), "sc/", clientv3.WithPrefix(), clientv3.WithRev(mid))
	el, ef := firstEvents(t, wl, 50, 10*time.Second), firstEvents(t, wf, 50, 10*time.Second)
	wantEvents(t, fmt.Sprintf("replay from %d on the caught-up member vs the leader", mid), ef, el...)
	// The caught-up member serves new writes too.
	p := mustPut(t, cli, "sc/after", "y")
	c.eventually(30*time.Second, "new write on the caught-up member", func() error {
		g, err := fc.Get(tctx(t, opTimeout), "sc/after", clientv3.WithSerializable())
		if err != nil {
			return err
		}
		if len(g.Kvs) != 1 || g.Kvs[0].ModRevision != p.Header.Revision {
			return fmt.Errorf("got %v", g.Kvs)
		}
		return nil
	})
}

// TestStateSurvivesWholeClusterRestart: besides keys, a full restart keeps
// leases (with their keys, still expiring), the compaction revision, member
// and cluster ids, and a snapshot-restored member agrees with the others.
func TestStateSurvivesWholeClusterRestart(t *testing.T) {
	c := newCluster(t, 3, opts{SnapshotThreshold: 32, TrailingLogs: 8, SnapshotInterval: 100 * time.Millisecond})
	cli := c.Client()
	long, err := cli.Grant(tctx(t, opTimeout), 300)
	if err != nil {
		t.Fatal(err)
	}
	short, err := cli.Grant(tctx(t, opTimeout), 3)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, cli, "ss/long", "x", clientv3.WithLease(long.ID))
	mustPut(t, cli, "ss/short", "x", clientv3.WithLease(short.ID))
	r1 := mustPut(t, cli, "ss/k", "1").Header.Revision
	for i := 0; i < 100; i++ {
		mustPut(t, cli, fmt.Sprintf("ss/fill/%d", i%10), fmt.Sprint(i))
	}
	r2 := mustPut(t, cli, "ss/k", "2").Header.Revision
	if _, err := cli.Compact(tctx(t, opTimeout), r2); err != nil {
		t.Fatal(err)
	}
	waitCompacted(t, c, "ss/k", r1)
	ids := map[string]uint64{}
	var clusterID uint64
	for _, m := range c.Members() {
		st, err := c.status(m)
		if err != nil {
			t.Fatal(err)
		}
		ids[m.ClientAddr()] = st.Header.MemberId
		clusterID = st.Header.ClusterId
	}
	revBefore := mustGet(t, cli, "ss/k").Header.Revision
	for _, m := range c.Members() {
		c.Kill(m)
	}
	for _, m := range c.Members() {
		c.Restart(m)
	}
	c.WaitLeader(60 * time.Second)
	cli = c.Client()
	for _, m := range c.Members() {
		st, err := c.status(m)
		if err != nil {
			t.Fatal(err)
		}
		if st.Header.MemberId != ids[m.ClientAddr()] || st.Header.ClusterId != clusterID {
			t.Errorf("%s after restart: member %x cluster %x, was %x %x", m.ClientAddr(), st.Header.MemberId, st.Header.ClusterId, ids[m.ClientAddr()], clusterID)
		}
	}
	if g := mustGet(t, cli, "ss/k"); g.Header.Revision < revBefore || string(g.Kvs[0].Value) != "2" {
		t.Errorf("after restart: revision %d (was %d), value %v", g.Header.Revision, revBefore, g.Kvs)
	}
	_, err = cli.Get(tctx(t, opTimeout), "ss/k", clientv3.WithRev(r1))
	wantErr(t, "range below the compaction after restart", err, rpctypes.ErrCompacted)
	ttl, err := cli.TimeToLive(tctx(t, opTimeout), long.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.TTL <= 0 || len(ttl.Keys) != 1 {
		t.Errorf("long lease after restart: %v err %v, want alive with its key", ttl, err)
	}
	c.eventually(30*time.Second, "short lease expiring after restart", func() error {
		g, err := cli.Get(tctx(t, opTimeout), "ss/short")
		if err != nil {
			return err
		}
		if len(g.Kvs) != 0 {
			return errors.New("ss/short still there")
		}
		return nil
	})
	if g := mustGet(t, cli, "ss/long"); len(g.Kvs) != 1 {
		t.Errorf("key of the long lease gone after restart")
	}
	rev := mustPut(t, cli, "ss/after", "x").Header.Revision
	c.eventually(30*time.Second, "equal HashKV after restart", func() error {
		var hs []uint32
		for _, m := range c.Members() {
			h, err := c.memberClient(m).HashKV(tctx(t, opTimeout), m.ClientAddr(), rev)
			if err != nil {
				return err
			}
			hs = append(hs, h.Hash)
		}
		for _, h := range hs[1:] {
			if h != hs[0] {
				return fmt.Errorf("hashes %x", hs)
			}
		}
		return nil
	})
}
