package integration

import (
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestLease(t *testing.T) {
	c := newCluster(t, 3, opts{})
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, c *Cluster)
	}{
		{"GrantTTLLeases", testLeaseGrant},
		{"KeepAlive", testLeaseKeepAlive},
		{"RevokeDeletesKeys", testLeaseRevoke},
		{"ExpiryDeletesKeys", testLeaseExpiry},
		{"ViaFollower", testLeaseViaFollower},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, c) })
	}
}

func testLeaseGrant(t *testing.T, c *Cluster) {
	cli := c.Client()
	g, err := cli.Grant(tctx(t, opTimeout), 60)
	if err != nil {
		t.Fatal(err)
	}
	if g.ID == 0 || g.TTL != 60 {
		t.Errorf("grant: id %x ttl %d, want an id and ttl 60", g.ID, g.TTL)
	}
	checkHeader(t, "grant", g.ResponseHeader)
	mustPut(t, cli, "lg/a", "1", clientv3.WithLease(g.ID))
	mustPut(t, cli, "lg/b", "1", clientv3.WithLease(g.ID))
	ttl, err := cli.TimeToLive(tctx(t, opTimeout), g.ID, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range ttl.Keys {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	if ttl.GrantedTTL != 60 || ttl.TTL <= 0 || ttl.TTL > 60 || fmt.Sprint(keys) != "[lg/a lg/b]" {
		t.Errorf("time to live: granted %d remaining %d keys %v, want 60, (0,60], [lg/a lg/b]", ttl.GrantedTTL, ttl.TTL, keys)
	}
	g2, err := cli.Grant(tctx(t, opTimeout), 30)
	if err != nil {
		t.Fatal(err)
	}
	if g2.ID == g.ID {
		t.Errorf("two grants got the same id %x", g.ID)
	}
	ls, err := cli.Leases(tctx(t, opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	found := map[clientv3.LeaseID]bool{}
	for _, l := range ls.Leases {
		found[l.ID] = true
	}
	if !found[g.ID] || !found[g2.ID] {
		t.Errorf("leases list %v lacks %x or %x", ls.Leases, g.ID, g2.ID)
	}
	// Unknown leases.
	ttl, err = cli.TimeToLive(tctx(t, opTimeout), 0x7eadbeef)
	if err != nil {
		t.Fatalf("time to live of unknown lease: %v (etcd answers TTL -1)", err)
	}
	if ttl.TTL != -1 {
		t.Errorf("time to live of unknown lease: ttl %d, want -1", ttl.TTL)
	}
	_, err = cli.Revoke(tctx(t, opTimeout), 0x7eadbeef)
	wantErr(t, "revoke unknown lease", err, rpctypes.ErrLeaseNotFound)
	_, err = cli.KeepAliveOnce(tctx(t, opTimeout), 0x7eadbeef)
	wantErr(t, "keepalive of unknown lease", err, rpctypes.ErrLeaseNotFound)
}

func testLeaseKeepAlive(t *testing.T, c *Cluster) {
	cli := c.Client()
	g, err := cli.Grant(tctx(t, opTimeout), 5)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := cli.KeepAliveOnce(tctx(t, opTimeout), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ka.ID != g.ID || ka.TTL != 5 {
		t.Errorf("keepalive once: id %x ttl %d, want %x 5", ka.ID, ka.TTL, g.ID)
	}
	mustPut(t, cli, "lk/a", "kept", clientv3.WithLease(g.ID))
	ctx := tctx(t, 30*time.Second)
	ch, err := cli.KeepAlive(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Keep it alive for more than two TTLs; the key must survive.
	end := time.Now().Add(11 * time.Second)
	n := 0
	for time.Now().Before(end) {
		select {
		case r, ok := <-ch:
			if !ok {
				t.Fatalf("keepalive channel closed after %d responses", n)
			}
			if r.ID != g.ID || r.TTL <= 0 {
				t.Fatalf("keepalive response %+v", r)
			}
			n++
		case <-time.After(6 * time.Second):
			t.Fatalf("no keepalive response for 6s (after %d)", n)
		}
	}
	if g := mustGet(t, cli, "lk/a"); len(g.Kvs) != 1 {
		t.Errorf("key of a kept-alive lease is gone after 11s")
	}
	if n < 2 {
		t.Errorf("%d keepalive responses in 11s for a 5s lease", n)
	}
}

func testLeaseRevoke(t *testing.T, c *Cluster) {
	cli := c.Client()
	g, err := cli.Grant(tctx(t, opTimeout), 60)
	if err != nil {
		t.Fatal(err)
	}
	ra := mustPut(t, cli, "lr/a", "1", clientv3.WithLease(g.ID)).Header.Revision
	mustPut(t, cli, "lr/b", "1", clientv3.WithLease(g.ID))
	mustPut(t, cli, "lr/c", "no lease")
	wch := cli.Watch(tctx(t, 30*time.Second), "lr/", clientv3.WithPrefix(), clientv3.WithRev(ra+2))
	rv, err := cli.Revoke(tctx(t, opTimeout), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, wch, 3, 10*time.Second)
	// The first event is the put of lr/c; then both deletes, at one revision.
	if got[0].key != "lr/c" || got[1].typ != mvccpb.DELETE || got[2].typ != mvccpb.DELETE ||
		got[1].rev != got[2].rev || got[1].rev != rv.Header.Revision {
		t.Errorf("events around revoke: %v, want put lr/c then two DELETEs at the revoke's revision %d", got, rv.Header.Revision)
	}
	wantKeys(t, "after revoke", mustGet(t, cli, "lr/", clientv3.WithPrefix()).Kvs, "lr/c")
	ttl, err := cli.TimeToLive(tctx(t, opTimeout), g.ID)
	if err != nil || ttl.TTL != -1 {
		t.Errorf("revoked lease time to live: %v err %v, want ttl -1", ttl, err)
	}
}

func testLeaseExpiry(t *testing.T, c *Cluster) {
	cli := c.Client()
	g, err := cli.Grant(tctx(t, opTimeout), 2)
	if err != nil {
		t.Fatal(err)
	}
	r := mustPut(t, cli, "le/a", "1", clientv3.WithLease(g.ID)).Header.Revision
	wch := cli.Watch(tctx(t, 60*time.Second), "le/a", clientv3.WithRev(r+1))
	granted := time.Now()
	// Expiry is the leader's decision; allow for an election on a busy box.
	got := collect(t, wch, 1, 30*time.Second)
	if got[0].typ != mvccpb.DELETE || got[0].key != "le/a" {
		t.Errorf("event on expiry: %v, want DELETE le/a", got)
	}
	if el := time.Since(granted); el < time.Second {
		t.Errorf("lease of 2s expired after %v", el)
	}
	for _, m := range c.Members() {
		mc := c.memberClient(m)
		c.eventually(10*time.Second, "expired key gone on "+m.ClientAddr(), func() error {
			g, err := mc.Get(tctx(t, opTimeout), "le/a", clientv3.WithSerializable())
			if err != nil {
				return err
			}
			if len(g.Kvs) != 0 {
				return errors.New("still there")
			}
			return nil
		})
	}
	_, err = cli.KeepAliveOnce(tctx(t, opTimeout), g.ID)
	wantErr(t, "keepalive of an expired lease", err, rpctypes.ErrLeaseNotFound)
}

func testLeaseViaFollower(t *testing.T, c *Cluster) {
	f := c.Followers()[0]
	fcli := c.memberClient(f)
	g, err := fcli.Grant(tctx(t, opTimeout), 30)
	if err != nil {
		t.Fatalf("grant via follower: %v", err)
	}
	if _, err := fcli.KeepAliveOnce(tctx(t, opTimeout), g.ID); err != nil {
		t.Fatalf("keepalive via follower: %v", err)
	}
	mustPut(t, fcli, "lf/a", "1", clientv3.WithLease(g.ID))
	ttl, err := fcli.TimeToLive(tctx(t, opTimeout), g.ID, clientv3.WithAttachedKeys())
	if err != nil || len(ttl.Keys) != 1 {
		t.Fatalf("time to live via follower: %v err %v", ttl, err)
	}
	if _, err := fcli.Revoke(tctx(t, opTimeout), g.ID); err != nil {
		t.Fatalf("revoke via follower: %v", err)
	}
	if g := mustGet(t, fcli, "lf/a"); len(g.Kvs) != 0 {
		t.Errorf("key of revoked lease still there (linearizable read on follower)")
	}
}
