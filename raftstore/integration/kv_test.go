package integration

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestKV runs the KV API suite on clusters of 1, 3 and 5 members, with the
// client balancing over every member so that followers serve too.
func TestKV(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("members=%d", n), func(t *testing.T) {
			c := newCluster(t, n, opts{})
			cli := c.Client()
			for _, tc := range []struct {
				name string
				f    func(t *testing.T, c *Cluster, cli *clientv3.Client)
			}{
				{"PutGet", testPutGet},
				{"RangeForms", testRangeForms},
				{"RangeLimitCountMore", testRangeLimit},
				{"RangeRevision", testRangeRevision},
				{"RangeSort", testRangeSort},
				{"RangeKeysAndCountOnly", testRangeKeysCountOnly},
				{"RangeRevisionFilters", testRangeRevFilters},
				{"RangeSerializable", testRangeSerializable},
				{"PutOptions", testPutOptions},
				{"Delete", testDelete},
				{"TxnCompareTargets", testTxnCompares},
				{"TxnResultsAndNesting", testTxnResults},
				{"TxnErrors", testTxnErrors},
				{"RequestTooLarge", testRequestTooLarge},
				{"Headers", testHeaders},
				{"Compact", testCompact},
			} {
				t.Run(tc.name, func(t *testing.T) { tc.f(t, c, cli) })
			}
		})
	}
}

const opTimeout = 10 * time.Second

// mustPut puts k=v, retrying (with a logged note) errors that leave the
// outcome unknown or mean "no leader right now" (a leader change under load),
// for up to a minute; any other error fails the test.
func mustPut(t *testing.T, cli *clientv3.Client, k, v string, o ...clientv3.OpOption) *clientv3.PutResponse {
	t.Helper()
	var r *clientv3.PutResponse
	eventually(t, time.Minute, fmt.Sprintf("put %q", k), func() error {
		var err error
		r, err = cli.Put(tctx(t, opTimeout), k, v, o...)
		if err != nil && !isUnavailable(err) {
			t.Fatalf("put %q: %v", k, err)
		}
		if err != nil {
			t.Logf("note: put %q: %v; retrying", k, err)
		}
		return err
	})
	return r
}

// mustGet gets k, retrying like mustPut.
func mustGet(t *testing.T, cli *clientv3.Client, k string, o ...clientv3.OpOption) *clientv3.GetResponse {
	t.Helper()
	var r *clientv3.GetResponse
	eventually(t, time.Minute, fmt.Sprintf("get %q", k), func() error {
		var err error
		r, err = cli.Get(tctx(t, opTimeout), k, o...)
		if err != nil && !isUnavailable(err) {
			t.Fatalf("get %q: %v", k, err)
		}
		if err != nil {
			t.Logf("note: get %q: %v; retrying", k, err)
		}
		return err
	})
	return r
}

func keysOf(kvs []*mvccpb.KeyValue) string {
	var ks []string
	for _, kv := range kvs {
		ks = append(ks, string(kv.Key))
	}
	return strings.Join(ks, ",")
}

func wantKeys(t *testing.T, what string, kvs []*mvccpb.KeyValue, want string) {
	t.Helper()
	if got := keysOf(kvs); got != want {
		t.Errorf("%s: keys %q, want %q", what, got, want)
	}
}

// wantErr checks err is etcd's error want, as the client library decodes it
// (errors.Is on the rpctypes value), and that the gRPC code matches.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %q (%T), want %q", what, err, err, want)
	}
	if ee, ok := want.(rpctypes.EtcdError); ok {
		var got rpctypes.EtcdError
		if errors.As(err, &got) && got.Code() != ee.Code() {
			t.Errorf("%s: gRPC code %v, want %v", what, got.Code(), ee.Code())
		}
	}
}

func testPutGet(t *testing.T, c *Cluster, cli *clientv3.Client) {
	p := mustPut(t, cli, "pg/a", "1")
	g := mustGet(t, cli, "pg/a")
	if len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "1" {
		t.Fatalf("get after put: %v", g.Kvs)
	}
	kv := g.Kvs[0]
	if kv.CreateRevision != p.Header.Revision || kv.ModRevision != p.Header.Revision || kv.Version != 1 {
		t.Errorf("new key: create=%d mod=%d version=%d, want create=mod=%d version=1",
			kv.CreateRevision, kv.ModRevision, kv.Version, p.Header.Revision)
	}
	p2 := mustPut(t, cli, "pg/a", "2")
	if p2.Header.Revision != p.Header.Revision+1 {
		t.Errorf("second put revision %d, want %d (one revision per write)", p2.Header.Revision, p.Header.Revision+1)
	}
	kv = mustGet(t, cli, "pg/a").Kvs[0]
	if kv.CreateRevision != p.Header.Revision || kv.ModRevision != p2.Header.Revision || kv.Version != 2 {
		t.Errorf("updated key: create=%d mod=%d version=%d, want %d %d 2", kv.CreateRevision, kv.ModRevision, kv.Version, p.Header.Revision, p2.Header.Revision)
	}
	if g := mustGet(t, cli, "pg/absent"); len(g.Kvs) != 0 || g.Count != 0 {
		t.Errorf("absent key: %v count %d", g.Kvs, g.Count)
	}
	// Empty value and binary key.
	mustPut(t, cli, "pg/\x00bin\xff", "")
	if g := mustGet(t, cli, "pg/\x00bin\xff"); len(g.Kvs) != 1 || len(g.Kvs[0].Value) != 0 {
		t.Errorf("binary key with empty value: %v", g.Kvs)
	}
	// An empty key is an error (etcd: key not provided).
	_, err := cli.Put(tctx(t, opTimeout), "", "x")
	wantErr(t, "put empty key", err, rpctypes.ErrEmptyKey)
}

func testRangeForms(t *testing.T, c *Cluster, cli *clientv3.Client) {
	for _, k := range []string{"rf/a", "rf/b", "rf/b/1", "rf/c", "rg/z"} {
		mustPut(t, cli, k, "v")
	}
	wantKeys(t, "prefix rf/", mustGet(t, cli, "rf/", clientv3.WithPrefix()).Kvs, "rf/a,rf/b,rf/b/1,rf/c")
	wantKeys(t, "range [rf/b, rf/c)", mustGet(t, cli, "rf/b", clientv3.WithRange("rf/c")).Kvs, "rf/b,rf/b/1")
	wantKeys(t, "from key rf/c", mustGet(t, cli, "rf/c", clientv3.WithFromKey(), clientv3.WithLimit(2)).Kvs, "rf/c,rg/z")
	wantKeys(t, "empty range", mustGet(t, cli, "rf/c", clientv3.WithRange("rf/a")).Kvs, "")
	// "\x00" from key "\x00" = every key.
	all := mustGet(t, cli, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if all.Count < 5 {
		t.Errorf("all keys count %d, want >= 5", all.Count)
	}
}

func testRangeLimit(t *testing.T, c *Cluster, cli *clientv3.Client) {
	for i := 0; i < 5; i++ {
		mustPut(t, cli, fmt.Sprintf("rl/%d", i), "v")
	}
	g := mustGet(t, cli, "rl/", clientv3.WithPrefix(), clientv3.WithLimit(2))
	wantKeys(t, "limit 2", g.Kvs, "rl/0,rl/1")
	if g.Count != 5 || !g.More {
		t.Errorf("limit 2: count %d more %v, want count 5 (total in range) more true", g.Count, g.More)
	}
	g = mustGet(t, cli, "rl/", clientv3.WithPrefix(), clientv3.WithLimit(5))
	if g.Count != 5 || g.More || len(g.Kvs) != 5 {
		t.Errorf("limit 5 of 5: %d kvs count %d more %v", len(g.Kvs), g.Count, g.More)
	}
	g = mustGet(t, cli, "rl/", clientv3.WithPrefix(), clientv3.WithLimit(0))
	if len(g.Kvs) != 5 || g.More {
		t.Errorf("limit 0 (none): %d kvs more %v", len(g.Kvs), g.More)
	}
}

func testRangeRevision(t *testing.T, c *Cluster, cli *clientv3.Client) {
	r1 := mustPut(t, cli, "rr/a", "1").Header.Revision
	r2 := mustPut(t, cli, "rr/a", "2").Header.Revision
	mustPut(t, cli, "rr/b", "x")
	if _, err := cli.Delete(tctx(t, opTimeout), "rr/a"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rev  int64
		want string
	}{{r1, "1"}, {r2, "2"}} {
		g := mustGet(t, cli, "rr/a", clientv3.WithRev(tc.rev))
		if len(g.Kvs) != 1 || string(g.Kvs[0].Value) != tc.want {
			t.Errorf("rr/a at rev %d: %v, want %q", tc.rev, g.Kvs, tc.want)
		}
	}
	wantKeys(t, "prefix at r1", mustGet(t, cli, "rr/", clientv3.WithPrefix(), clientv3.WithRev(r1)).Kvs, "rr/a")
	wantKeys(t, "deleted now", mustGet(t, cli, "rr/", clientv3.WithPrefix()).Kvs, "rr/b")
	cur := mustGet(t, cli, "rr/a").Header.Revision
	_, err := cli.Get(tctx(t, opTimeout), "rr/a", clientv3.WithRev(cur+100))
	wantErr(t, "range at a future revision", err, rpctypes.ErrFutureRev)
}

func testRangeSort(t *testing.T, c *Cluster, cli *clientv3.Client) {
	mustPut(t, cli, "rs/b", "1")
	mustPut(t, cli, "rs/a", "3")
	mustPut(t, cli, "rs/c", "2")
	mustPut(t, cli, "rs/b", "4") // b: highest mod, version 2
	for _, tc := range []struct {
		target clientv3.SortTarget
		order  clientv3.SortOrder
		want   string
	}{
		{clientv3.SortByKey, clientv3.SortAscend, "rs/a,rs/b,rs/c"},
		{clientv3.SortByKey, clientv3.SortDescend, "rs/c,rs/b,rs/a"},
		{clientv3.SortByCreateRevision, clientv3.SortAscend, "rs/b,rs/a,rs/c"},
		{clientv3.SortByModRevision, clientv3.SortDescend, "rs/b,rs/c,rs/a"},
		{clientv3.SortByValue, clientv3.SortAscend, "rs/c,rs/a,rs/b"},
		{clientv3.SortByVersion, clientv3.SortDescend, "rs/b,rs/a,rs/c"},
	} {
		g := mustGet(t, cli, "rs/", clientv3.WithPrefix(), clientv3.WithSort(tc.target, tc.order))
		got := keysOf(g.Kvs)
		// Version ties between a and c may come in any order after b.
		if tc.target == clientv3.SortByVersion {
			if !strings.HasPrefix(got, "rs/b,") {
				t.Errorf("sort by version desc: %q, want rs/b first", got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("sort %v %v: %q, want %q", tc.target, tc.order, got, tc.want)
		}
	}
	// Sort applies before limit: the two largest keys.
	g := mustGet(t, cli, "rs/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(2))
	wantKeys(t, "sort desc + limit 2", g.Kvs, "rs/c,rs/b")
}

func testRangeKeysCountOnly(t *testing.T, c *Cluster, cli *clientv3.Client) {
	mustPut(t, cli, "rk/a", "value-a")
	mustPut(t, cli, "rk/b", "value-b")
	g := mustGet(t, cli, "rk/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	wantKeys(t, "keys only", g.Kvs, "rk/a,rk/b")
	for _, kv := range g.Kvs {
		if len(kv.Value) != 0 {
			t.Errorf("keys only returned value %q", kv.Value)
		}
		if kv.ModRevision == 0 {
			t.Errorf("keys only dropped mod revision of %s", kv.Key)
		}
	}
	g = mustGet(t, cli, "rk/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if len(g.Kvs) != 0 || g.Count != 2 {
		t.Errorf("count only: %d kvs count %d, want 0 kvs count 2", len(g.Kvs), g.Count)
	}
}

func testRangeRevFilters(t *testing.T, c *Cluster, cli *clientv3.Client) {
	ra := mustPut(t, cli, "rv/a", "1").Header.Revision
	rb := mustPut(t, cli, "rv/b", "1").Header.Revision
	rc := mustPut(t, cli, "rv/c", "1").Header.Revision
	ra2 := mustPut(t, cli, "rv/a", "2").Header.Revision // a: create ra, mod ra2
	_ = rc
	wantKeys(t, "min mod rev rb", mustGet(t, cli, "rv/", clientv3.WithPrefix(), clientv3.WithMinModRev(rb)).Kvs, "rv/a,rv/b,rv/c")
	wantKeys(t, "min mod rev ra2", mustGet(t, cli, "rv/", clientv3.WithPrefix(), clientv3.WithMinModRev(ra2)).Kvs, "rv/a")
	wantKeys(t, "max mod rev rb", mustGet(t, cli, "rv/", clientv3.WithPrefix(), clientv3.WithMaxModRev(rb)).Kvs, "rv/b")
	wantKeys(t, "min create rev rb", mustGet(t, cli, "rv/", clientv3.WithPrefix(), clientv3.WithMinCreateRev(rb)).Kvs, "rv/b,rv/c")
	wantKeys(t, "max create rev ra", mustGet(t, cli, "rv/", clientv3.WithPrefix(), clientv3.WithMaxCreateRev(ra)).Kvs, "rv/a")
}

func testRangeSerializable(t *testing.T, c *Cluster, cli *clientv3.Client) {
	rev := mustPut(t, cli, "sr/a", "1").Header.Revision
	// Every member eventually serves the write locally.
	for _, m := range c.Members() {
		mc := c.memberClient(m)
		c.eventually(10*time.Second, "serializable read of sr/a on "+m.ClientAddr(), func() error {
			g, err := mc.Get(tctx(t, opTimeout), "sr/a", clientv3.WithSerializable())
			if err != nil {
				return err
			}
			if len(g.Kvs) != 1 || g.Kvs[0].ModRevision != rev {
				return fmt.Errorf("got %v", g.Kvs)
			}
			return nil
		})
	}
}

func testPutOptions(t *testing.T, c *Cluster, cli *clientv3.Client) {
	mustPut(t, cli, "po/a", "1")
	p := mustPut(t, cli, "po/a", "2", clientv3.WithPrevKV())
	if p.PrevKv == nil || string(p.PrevKv.Value) != "1" {
		t.Errorf("put prev_kv: %v, want value 1", p.PrevKv)
	}
	if p := mustPut(t, cli, "po/new", "x", clientv3.WithPrevKV()); p.PrevKv != nil {
		t.Errorf("prev_kv of a new key: %v, want none", p.PrevKv)
	}
	lease, err := cli.Grant(tctx(t, opTimeout), 60)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, cli, "po/l", "with-lease", clientv3.WithLease(lease.ID))
	if g := mustGet(t, cli, "po/l"); g.Kvs[0].Lease != int64(lease.ID) {
		t.Errorf("lease on key: %d, want %d", g.Kvs[0].Lease, lease.ID)
	}
	// ignore_value keeps the value, ignore_lease keeps the lease.
	mustPut(t, cli, "po/l", "", clientv3.WithIgnoreValue())
	g := mustGet(t, cli, "po/l")
	if string(g.Kvs[0].Value) != "with-lease" || g.Kvs[0].Lease != 0 {
		t.Errorf("ignore_value put: value %q lease %d, want old value and lease cleared (put without lease)", g.Kvs[0].Value, g.Kvs[0].Lease)
	}
	mustPut(t, cli, "po/l", "v2", clientv3.WithLease(lease.ID))
	mustPut(t, cli, "po/l", "v3", clientv3.WithIgnoreLease())
	g = mustGet(t, cli, "po/l")
	if string(g.Kvs[0].Value) != "v3" || g.Kvs[0].Lease != int64(lease.ID) {
		t.Errorf("ignore_lease put: value %q lease %d, want v3 and lease %d kept", g.Kvs[0].Value, g.Kvs[0].Lease, lease.ID)
	}
	_, err = cli.Put(tctx(t, opTimeout), "po/absent", "", clientv3.WithIgnoreValue())
	wantErr(t, "ignore_value on absent key", err, rpctypes.ErrKeyNotFound)
	_, err = cli.Put(tctx(t, opTimeout), "po/x", "v", clientv3.WithLease(clientv3.LeaseID(0x7fff0000)))
	wantErr(t, "put with unknown lease", err, rpctypes.ErrLeaseNotFound)
	_, err = cli.Put(tctx(t, opTimeout), "po/x", "v", clientv3.WithIgnoreValue(), clientv3.WithLease(lease.ID))
	if err == nil {
		// etcd accepts ignore_value with a lease on an existing key only;
		// po/x does not exist.
		t.Errorf("ignore_value on absent key with lease: no error")
	}
}

func testDelete(t *testing.T, c *Cluster, cli *clientv3.Client) {
	for _, k := range []string{"dl/a", "dl/b", "dl/c"} {
		mustPut(t, cli, k, "v-"+k)
	}
	d, err := cli.Delete(tctx(t, opTimeout), "dl/a", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if d.Deleted != 1 || len(d.PrevKvs) != 1 || string(d.PrevKvs[0].Value) != "v-dl/a" {
		t.Errorf("delete prev_kv: deleted %d prev %v", d.Deleted, d.PrevKvs)
	}
	d, err = cli.Delete(tctx(t, opTimeout), "dl/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if d.Deleted != 2 || len(d.PrevKvs) != 0 {
		t.Errorf("delete prefix: deleted %d prevkvs %d, want 2 and none without prev_kv", d.Deleted, len(d.PrevKvs))
	}
	rev := d.Header.Revision
	d, err = cli.Delete(tctx(t, opTimeout), "dl/absent")
	if err != nil {
		t.Fatal(err)
	}
	if d.Deleted != 0 || d.Header.Revision != rev {
		t.Errorf("deleting nothing: deleted %d revision %d, want 0 and revision unchanged at %d", d.Deleted, d.Header.Revision, rev)
	}
	// A recreated key starts a new generation.
	p := mustPut(t, cli, "dl/a", "again")
	kv := mustGet(t, cli, "dl/a").Kvs[0]
	if kv.Version != 1 || kv.CreateRevision != p.Header.Revision {
		t.Errorf("recreated key: version %d create %d, want 1 and %d", kv.Version, kv.CreateRevision, p.Header.Revision)
	}
}

func testTxnCompares(t *testing.T, c *Cluster, cli *clientv3.Client) {
	lease, err := cli.Grant(tctx(t, opTimeout), 60)
	if err != nil {
		t.Fatal(err)
	}
	p := mustPut(t, cli, "tc/a", "abc", clientv3.WithLease(lease.ID))
	rev := p.Header.Revision
	mustPut(t, cli, "tc/b", "x")
	mustPut(t, cli, "tc/c", "y")
	for _, tc := range []struct {
		name string
		cmp  clientv3.Cmp
		want bool
	}{
		{"value =", clientv3.Compare(clientv3.Value("tc/a"), "=", "abc"), true},
		{"value !=", clientv3.Compare(clientv3.Value("tc/a"), "!=", "abc"), false},
		{"value >", clientv3.Compare(clientv3.Value("tc/a"), ">", "abb"), true},
		{"value <", clientv3.Compare(clientv3.Value("tc/a"), "<", "abb"), false},
		{"version =", clientv3.Compare(clientv3.Version("tc/a"), "=", 1), true},
		{"create =", clientv3.Compare(clientv3.CreateRevision("tc/a"), "=", rev), true},
		{"mod <", clientv3.Compare(clientv3.ModRevision("tc/a"), "<", rev+1), true},
		{"mod >", clientv3.Compare(clientv3.ModRevision("tc/a"), ">", rev), false},
		{"lease =", clientv3.Compare(clientv3.LeaseValue("tc/a"), "=", lease.ID), true},
		{"lease = 0 on a key without lease", clientv3.Compare(clientv3.LeaseValue("tc/b"), "=", 0), true},
		// A missing key compares as revision/version 0 (the create-if-absent idiom).
		{"missing create = 0", clientv3.Compare(clientv3.CreateRevision("tc/missing"), "=", 0), true},
		{"missing mod = 0", clientv3.Compare(clientv3.ModRevision("tc/missing"), "=", 0), true},
		{"missing version = 0", clientv3.Compare(clientv3.Version("tc/missing"), "=", 0), true},
		{"missing version > 0", clientv3.Compare(clientv3.Version("tc/missing"), ">", 0), false},
		// A value compare on a missing key fails.
		{"missing value =", clientv3.Compare(clientv3.Value("tc/missing"), "=", ""), false},
		// Range compares: every key in the range must match.
		{"range version = 1", clientv3.Compare(clientv3.Version("tc/"), "=", 1).WithPrefix(), true},
		{"range value = x", clientv3.Compare(clientv3.Value("tc/b"), "=", "x").WithRange("tc/d"), false},
	} {
		r, err := cli.Txn(tctx(t, opTimeout)).If(tc.cmp).Commit()
		if err != nil {
			t.Errorf("txn %s: %v", tc.name, err)
			continue
		}
		if r.Succeeded != tc.want {
			t.Errorf("txn compare %s: succeeded=%v, want %v", tc.name, r.Succeeded, tc.want)
		}
	}
	// Several compares are ANDed.
	r, err := cli.Txn(tctx(t, opTimeout)).If(
		clientv3.Compare(clientv3.Value("tc/a"), "=", "abc"),
		clientv3.Compare(clientv3.Value("tc/b"), "=", "nope"),
	).Commit()
	if err != nil || r.Succeeded {
		t.Errorf("txn with one false compare of two: succeeded=%v err=%v, want false", r != nil && r.Succeeded, err)
	}
}

func testTxnResults(t *testing.T, c *Cluster, cli *clientv3.Client) {
	mustPut(t, cli, "tr/a", "1")
	mustPut(t, cli, "tr/b", "2")
	r, err := cli.Txn(tctx(t, opTimeout)).
		If(clientv3.Compare(clientv3.Value("tr/a"), "=", "1")).
		Then(
			clientv3.OpPut("tr/c", "3", clientv3.WithPrevKV()),
			clientv3.OpGet("tr/", clientv3.WithPrefix()),
			clientv3.OpDelete("tr/b", clientv3.WithPrevKV()),
			// etcd evaluates every compare of the tree against the
			// state before the txn: tr/c does not exist yet here.
			clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.Version("tr/c"), "=", 0)},
				[]clientv3.Op{clientv3.OpPut("tr/nested", "yes")},
				[]clientv3.Op{clientv3.OpPut("tr/nested", "no")},
			),
		).
		Else(clientv3.OpPut("tr/else", "x")).
		Commit()
	if err != nil {
		t.Fatalf("txn: %v", err)
	}
	if !r.Succeeded || len(r.Responses) != 4 {
		t.Fatalf("txn: succeeded %v with %d responses, want true and 4", r.Succeeded, len(r.Responses))
	}
	if pr := r.Responses[0].GetResponsePut(); pr == nil || pr.PrevKv != nil {
		t.Errorf("response 0: want a put of a new key without prev_kv, got %v", r.Responses[0])
	}
	// The get inside the txn sees the put before it (ops apply in order).
	if rr := r.Responses[1].GetResponseRange(); rr == nil || keysOf(rr.Kvs) != "tr/a,tr/b,tr/c" {
		t.Errorf("response 1: want range tr/a,tr/b,tr/c, got %v", r.Responses[1])
	}
	if dr := r.Responses[2].GetResponseDeleteRange(); dr == nil || dr.Deleted != 1 || len(dr.PrevKvs) != 1 {
		t.Errorf("response 2: want one delete with prev_kv, got %v", r.Responses[2])
	}
	if tr := r.Responses[3].GetResponseTxn(); tr == nil || !tr.Succeeded || len(tr.Responses) != 1 {
		t.Errorf("response 3: want nested txn succeeded, got %v", r.Responses[3])
	}
	if g := mustGet(t, cli, "tr/nested"); len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "yes" {
		t.Errorf("nested txn result: %v", g.Kvs)
	}
	// One revision for the whole txn: every key written has the same mod revision.
	g := mustGet(t, cli, "tr/", clientv3.WithPrefix())
	for _, kv := range g.Kvs {
		if (string(kv.Key) == "tr/c" || string(kv.Key) == "tr/nested") && kv.ModRevision != r.Header.Revision {
			t.Errorf("%s mod revision %d, want the txn's revision %d", kv.Key, kv.ModRevision, r.Header.Revision)
		}
	}
	if g := mustGet(t, cli, "tr/nested"); g.Kvs[0].ModRevision != mustGet(t, cli, "tr/c").Kvs[0].ModRevision {
		t.Errorf("nested put and outer put have different revisions")
	}
	// The else branch.
	r, err = cli.Txn(tctx(t, opTimeout)).
		If(clientv3.Compare(clientv3.Value("tr/a"), "=", "other")).
		Then(clientv3.OpPut("tr/then", "x")).
		Else(clientv3.OpPut("tr/else", "x"), clientv3.OpGet("tr/else")).
		Commit()
	if err != nil || r.Succeeded || len(r.Responses) != 2 {
		t.Fatalf("else txn: %v err %v", r, err)
	}
	if g := mustGet(t, cli, "tr/then"); len(g.Kvs) != 0 {
		t.Errorf("then branch ran although compare failed")
	}
	// A read-only txn does not advance the revision.
	before := mustGet(t, cli, "tr/a").Header.Revision
	r, err = cli.Txn(tctx(t, opTimeout)).Then(clientv3.OpGet("tr/a")).Commit()
	if err != nil || r.Header.Revision != before {
		t.Errorf("read-only txn: revision %d err %v, want %d", r.Header.Revision, err, before)
	}
}

func testTxnErrors(t *testing.T, c *Cluster, cli *clientv3.Client) {
	var ops []clientv3.Op
	for i := 0; i < 129; i++ {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("te/%d", i), "v"))
	}
	_, err := cli.Txn(tctx(t, opTimeout)).Then(ops...).Commit()
	wantErr(t, "txn with 129 ops", err, rpctypes.ErrTooManyOps)
	_, err = cli.Txn(tctx(t, opTimeout)).Then(ops[:128]...).Commit()
	if err != nil {
		t.Errorf("txn with 128 ops (the limit): %v", err)
	}
	_, err = cli.Txn(tctx(t, opTimeout)).Then(clientv3.OpPut("te/dup", "1"), clientv3.OpPut("te/dup", "2")).Commit()
	wantErr(t, "txn putting one key twice", err, rpctypes.ErrDuplicateKey)
	_, err = cli.Txn(tctx(t, opTimeout)).Then(clientv3.OpPut("te/0", "1"), clientv3.OpDelete("te/", clientv3.WithPrefix())).Commit()
	wantErr(t, "txn put and delete overlapping", err, rpctypes.ErrDuplicateKey)
}

func testRequestTooLarge(t *testing.T, c *Cluster, cli *clientv3.Client) {
	big := strings.Repeat("x", 1536*1024+1024)
	_, err := cli.Put(tctx(t, opTimeout), "big", big)
	if err == nil {
		t.Fatal("put of 1.5 MiB + 1 KiB accepted, want request too large")
	}
	if !errors.Is(err, rpctypes.ErrRequestTooLarge) && status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("put too large: %v, want %v (or ResourceExhausted from gRPC)", err, rpctypes.ErrRequestTooLarge)
	}
	// Just under the limit passes.
	// A leader change while a 1 MiB entry replicates makes the outcome
	// unknown; retry those (and note them), fail on anything else. Under
	// -race on a loaded 2-core machine five in-process members can take
	// several elections to get a 1 MiB entry to a quorum within their 1 s
	// election timeout (seen: 30 s of churn at load 13), hence the budget.
	eventually(t, 90*time.Second, "put of 1 MiB", func() error {
		_, err := cli.Put(tctx(t, opTimeout), "big", strings.Repeat("x", 1024*1024))
		if err != nil && !isUnavailable(err) {
			t.Fatalf("put of 1 MiB: %v", err)
		}
		if err != nil {
			t.Logf("note: put of 1 MiB failed with %v; retrying", err)
		}
		return err
	})
}

func testHeaders(t *testing.T, c *Cluster, cli *clientv3.Client) {
	var clusterID uint64
	ids := map[uint64]string{}
	ml, err := cli.MemberList(tctx(t, opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	memberIDs := map[uint64]bool{}
	for _, m := range ml.Members {
		memberIDs[m.ID] = true
	}
	p := mustPut(t, cli, "hd/a", "1")
	for _, m := range c.Members() {
		mc := c.memberClient(m)
		g, err := mc.Get(tctx(t, opTimeout), "hd/a")
		if err != nil {
			t.Fatal(err)
		}
		h := g.Header
		checkHeader(t, "range on "+m.ClientAddr(), h)
		if clusterID == 0 {
			clusterID = h.ClusterId
		} else if h.ClusterId != clusterID {
			t.Errorf("cluster_id %x on %s, %x elsewhere", h.ClusterId, m.ClientAddr(), clusterID)
		}
		if prev, dup := ids[h.MemberId]; dup {
			t.Errorf("member_id %x on both %s and %s", h.MemberId, prev, m.ClientAddr())
		}
		ids[h.MemberId] = m.ClientAddr()
		if !memberIDs[h.MemberId] {
			t.Errorf("member_id %x of %s is not in member list", h.MemberId, m.ClientAddr())
		}
		if h.Revision < p.Header.Revision {
			t.Errorf("linearizable range on %s at revision %d, before the acknowledged put at %d", m.ClientAddr(), h.Revision, p.Header.Revision)
		}
		st, err := mc.Status(tctx(t, opTimeout), m.ClientAddr())
		if err != nil {
			t.Fatal(err)
		}
		if st.Header.MemberId != h.MemberId || st.Header.ClusterId != clusterID {
			t.Errorf("status header of %s: member %x cluster %x, range said %x %x", m.ClientAddr(), st.Header.MemberId, st.Header.ClusterId, h.MemberId, clusterID)
		}
	}
	checkHeader(t, "put", p.Header)
	d, err := cli.Delete(tctx(t, opTimeout), "hd/a")
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "delete", d.Header)
	tx, err := cli.Txn(tctx(t, opTimeout)).Commit()
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "txn", tx.Header)
	checkHeader(t, "member list", ml.Header)
}

func checkHeader(t *testing.T, what string, h *etcdserverpb.ResponseHeader) {
	t.Helper()
	if h == nil {
		t.Errorf("%s: no header", what)
		return
	}
	if h.ClusterId == 0 || h.MemberId == 0 || h.RaftTerm == 0 {
		t.Errorf("%s: header %v, want non-zero cluster_id, member_id, raft_term", what, h)
	}
}

func testCompact(t *testing.T, c *Cluster, cli *clientv3.Client) {
	r1 := mustPut(t, cli, "cp/a", "1").Header.Revision
	r2 := mustPut(t, cli, "cp/a", "2").Header.Revision
	r3 := mustPut(t, cli, "cp/a", "3").Header.Revision
	if _, err := cli.Compact(tctx(t, opTimeout), r2, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact at %d: %v", r2, err)
	}
	_, err := cli.Get(tctx(t, opTimeout), "cp/a", clientv3.WithRev(r1))
	wantErr(t, "range below the compacted revision", err, rpctypes.ErrCompacted)
	if g := mustGet(t, cli, "cp/a", clientv3.WithRev(r2)); len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "2" {
		t.Errorf("range at the compacted revision itself: %v, want value 2", g.Kvs)
	}
	if g := mustGet(t, cli, "cp/a"); string(g.Kvs[0].Value) != "3" || g.Kvs[0].ModRevision != r3 {
		t.Errorf("latest after compaction: %v", g.Kvs)
	}
	_, err = cli.Compact(tctx(t, opTimeout), r1)
	wantErr(t, "compacting again below the compacted revision", err, rpctypes.ErrCompacted)
	_, err = cli.Compact(tctx(t, opTimeout), r3+1000)
	wantErr(t, "compacting a future revision", err, rpctypes.ErrFutureRev)
	waitCompacted(t, c, "cp/a", r1)
	// A watch from the compaction revision itself replays from there (etcd
	// keeps the revision compacted at); one below it is cancelled.
	for _, m := range c.Members() {
		wch := c.memberClient(m).Watch(tctx(t, 30*time.Second), "cp/a", clientv3.WithRev(r2))
		wantEvents(t, "watch from the compaction revision on "+m.ClientAddr(), collect(t, wch, 2, 10*time.Second),
			ev{mvccpb.PUT, "cp/a", "2", r2}, ev{mvccpb.PUT, "cp/a", "3", r3})
	}
}

// waitCompacted waits until every member answers a serializable range of key
// at rev with ErrCompacted, i.e. has applied a compaction above rev.
func waitCompacted(t *testing.T, c *Cluster, key string, rev int64) {
	t.Helper()
	for _, m := range c.Members() {
		mc := c.memberClient(m)
		c.eventually(10*time.Second, "compaction on "+m.ClientAddr(), func() error {
			_, err := mc.Get(tctx(t, opTimeout), key, clientv3.WithRev(rev), clientv3.WithSerializable())
			if !errors.Is(err, rpctypes.ErrCompacted) {
				return fmt.Errorf("serializable range at %d: err %v", rev, err)
			}
			return nil
		})
	}
}
