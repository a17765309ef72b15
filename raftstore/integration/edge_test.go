package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestEdgeCases collects less common behaviours clients rely on, on one
// 3-member cluster.
func TestEdgeCases(t *testing.T) {
	c := newCluster(t, 3, opts{})
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, c *Cluster)
	}{
		{"PutWithoutLeaseDetaches", testLeaseDetach},
		{"LeaseOpsInTxn", testLeaseInTxn},
		{"HugeRevisionInOneWatchResponse", testWatchHugeRevision},
		{"RangeLimitAtOldRevision", testRangeLimitOldRev},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, c) })
	}
}

// A put without a lease takes the key off its lease: revoking the lease
// later leaves the key alone.
func testLeaseDetach(t *testing.T, c *Cluster) {
	cli := c.Client()
	g, err := cli.Grant(tctx(t, opTimeout), 60)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, cli, "ed/a", "leased", clientv3.WithLease(g.ID))
	mustPut(t, cli, "ed/b", "leased", clientv3.WithLease(g.ID))
	mustPut(t, cli, "ed/a", "free")
	ttl, err := cli.TimeToLive(tctx(t, opTimeout), g.ID, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	if len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "ed/b" {
		t.Errorf("lease keys after re-putting ed/a without lease: %q, want [ed/b]", ttl.Keys)
	}
	if _, err := cli.Revoke(tctx(t, opTimeout), g.ID); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, "after revoke", mustGet(t, cli, "ed/", clientv3.WithPrefix()).Kvs, "ed/a")
}

// Leases work inside txns: a put with a lease in a txn attaches; a key
// deleted in a txn is not deleted again (no second event) on revoke.
func testLeaseInTxn(t *testing.T, c *Cluster) {
	cli := c.Client()
	g, err := cli.Grant(tctx(t, opTimeout), 60)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cli.Txn(tctx(t, opTimeout)).Then(
		clientv3.OpPut("et/a", "1", clientv3.WithLease(g.ID)),
		clientv3.OpPut("et/b", "1", clientv3.WithLease(g.ID)),
	).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Txn(tctx(t, opTimeout)).Then(clientv3.OpDelete("et/a")).Commit(); err != nil {
		t.Fatal(err)
	}
	wch := cli.Watch(tctx(t, 30*time.Second), "et/", clientv3.WithPrefix(), clientv3.WithRev(r.Header.Revision+1))
	rv, err := cli.Revoke(tctx(t, opTimeout), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, wch, 2, 10*time.Second)
	wantEvents(t, "events: txn delete of et/a, then the revoke deleting et/b only", got,
		ev{mvccpb.DELETE, "et/a", "", r.Header.Revision + 1}, ev{mvccpb.DELETE, "et/b", "", rv.Header.Revision})
	// A txn put naming an unknown lease fails the whole txn.
	_, err = cli.Txn(tctx(t, opTimeout)).Then(
		clientv3.OpPut("et/c", "1"),
		clientv3.OpPut("et/d", "1", clientv3.WithLease(g.ID)),
	).Commit()
	if err == nil {
		t.Errorf("txn with a put on a revoked lease succeeded")
	}
	if g := mustGet(t, cli, "et/c"); len(g.Kvs) != 0 {
		t.Errorf("failed txn left et/c behind: %v", g.Kvs)
	}
	// Only the branch taken is checked: a revoked lease in the other branch
	// does not fail the txn (etcd checks leases on the path it executes).
	// Asked of the leader and of a follower, since either may check early.
	for _, m := range []node{c.Leader(), c.Followers()[0]} {
		r, err = c.memberClient(m).Txn(tctx(t, opTimeout)).
			If(clientv3.Compare(clientv3.Version("et/none"), ">", 0)).
			Then(clientv3.OpPut("et/e", "1", clientv3.WithLease(g.ID))).
			Else(clientv3.OpPut("et/f", "1")).
			Commit()
		if err != nil || r.Succeeded {
			t.Errorf("txn via %s with a revoked lease only in the branch not taken: succeeded=%v err %v, want the else branch to run", m.ClientAddr(), r != nil && r.Succeeded, err)
		}
	}
}

// Deleting thousands of keys is one revision; a watcher gets all its events
// in one response (no fragmenting unless asked for).
func testWatchHugeRevision(t *testing.T, c *Cluster) {
	cli := c.Client()
	const n = 2000
	val := strings.Repeat("v", 1024)
	var last int64
	for i := 0; i < n; i += 100 {
		var ops []clientv3.Op
		for j := i; j < i+100; j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("eh/%05d", j), val))
		}
		r, err := cli.Txn(tctx(t, opTimeout)).Then(ops...).Commit()
		if err != nil {
			t.Fatal(err)
		}
		last = r.Header.Revision
	}
	// From the revision after the puts: a watch "from now" on a member that
	// has not applied the last put yet would see it first.
	wch := cli.Watch(tctx(t, 60*time.Second), "eh/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify(), clientv3.WithRev(last+1))
	if r := <-wch; !r.Created {
		t.Fatalf("first response %+v, want created", r)
	}
	d, err := cli.Delete(tctx(t, opTimeout), "eh/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if d.Deleted != n {
		t.Fatalf("deleted %d, want %d", d.Deleted, n)
	}
	select {
	case r := <-wch:
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if len(r.Events) != n {
			t.Fatalf("first response after deleting %d keys in one revision has %d events, want all %d", n, len(r.Events), n)
		}
		for _, e := range r.Events {
			if e.Type != mvccpb.DELETE || e.Kv.ModRevision != d.Header.Revision || e.PrevKv == nil || len(e.PrevKv.Value) != 1024 {
				t.Fatalf("event %v at %d prev %v", e.Type, e.Kv.ModRevision, e.PrevKv != nil)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no events")
	}
}

// Limit, count and more apply at an old revision too.
func testRangeLimitOldRev(t *testing.T, c *Cluster) {
	cli := c.Client()
	for i := 0; i < 5; i++ {
		mustPut(t, cli, fmt.Sprintf("eo/%d", i), "v")
	}
	rev := mustGet(t, cli, "eo/0").Header.Revision
	if _, err := cli.Delete(tctx(t, opTimeout), "eo/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	g := mustGet(t, cli, "eo/", clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithLimit(2))
	wantKeys(t, "limit 2 at old revision", g.Kvs, "eo/0,eo/1")
	if g.Count != 5 || !g.More || g.Header.Revision <= rev {
		t.Errorf("count %d more %v header revision %d, want 5, true and the current revision (> %d)", g.Count, g.More, g.Header.Revision, rev)
	}
}

// TestRemoveLeaderAndRestartRemoved: the leader removed from the cluster
// steps down and a new leader takes over while a client writes; the removed
// member restarted on its data dir does not disrupt the cluster.
func TestRemoveLeaderAndRestartRemoved(t *testing.T) {
	c := newCluster(t, 3, opts{})
	f := c.Followers()[0]
	load := startWrites(t, c.memberClient(f), "rl/", 4)
	load.waitMore(t, 30, 30*time.Second)
	leader := c.Leader()
	lid := memberID(t, c, leader)
	memberRemove(t, c.memberClient(f), lid)
	c.eventually(30*time.Second, "a new leader among the remaining members", func() error {
		st, err := c.status(f)
		if err != nil {
			return err
		}
		if st.Leader == 0 || st.Leader == lid {
			return fmt.Errorf("leader %x", st.Leader)
		}
		return nil
	})
	c.Kill(leader)
	load.waitMore(t, 30, 30*time.Second)
	// The removed member comes back with its old data: the others ignore it.
	c.Restart(leader)
	load.waitMore(t, 50, 30*time.Second)
	ml, err := c.memberClient(f).MemberList(tctx(t, opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 2 {
		t.Errorf("member list after restarting the removed member: %d members %v", len(ml.Members), ml.Members)
	}
	for _, m := range ml.Members {
		if m.ID == lid {
			t.Errorf("removed member %x is back in the list", lid)
		}
	}
	load.stop()
	for _, m := range c.Members() {
		if m != leader {
			load.checkAll(t, c, m, 30*time.Second)
		}
	}
	// The removed member must not accept writes as if it were in the cluster.
	if leader.Running() {
		_, err := c.memberClient(leader).Put(tctx(t, 5*time.Second), "rl/removed", "x")
		if err == nil {
			g := mustGet(t, c.memberClient(f), "rl/removed")
			if len(g.Kvs) == 0 {
				t.Errorf("removed member acknowledged a write the cluster does not have")
			}
		}
	}
}
