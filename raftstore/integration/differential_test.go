package integration

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/status"
)

// TestDifferentialWithEtcd sends the same random requests, through the real
// client, to a one-member Skiff and a one-member etcd started side by side,
// and fails on the first answer that differs in anything a client can see:
// data, revisions, counts, flags, errors (code and message), lease keys, and
// the watch event stream. The mvcc package has its own differential test;
// this one covers the server around it (request checks, error mapping,
// headers, leases, watch).
func TestDifferentialWithEtcd(t *testing.T) {
	// One Skiff member; then three, talked to through a follower, so that
	// forwarding and the errors coming back through it are compared too
	// (serializable reads are left out there: a follower may lag).
	for _, members := range []int{1, 3} {
		t.Run(fmt.Sprintf("skiff-members=%d", members), func(t *testing.T) { testDifferential(t, members) })
	}
}

func testDifferential(t *testing.T, members int) {
	sk, ok := backends["skiff"]
	if !ok {
		t.Skip("Skiff backend not compiled in")
	}
	etcdBinary(t)
	skiff := sk.Bootstrap(t, members, opts{})
	etcd := backends["etcd"].Bootstrap(t, 1, opts{})
	t.Cleanup(func() {
		for _, n := range append(skiff, etcd...) {
			_ = n.Stop()
		}
	})
	newClient := func(n node) *clientv3.Client {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{n.ClientAddr()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		eventually(t, 30*time.Second, "leader on "+n.ClientAddr(), func() error {
			_, err := cli.Get(tctx(t, 2*time.Second), "probe")
			return err
		})
		return cli
	}
	target := skiff[0]
	if members > 1 {
		// A follower: any member whose status names another leader.
		eventually(t, 30*time.Second, "a follower to talk to", func() error {
			for _, n := range skiff {
				cli := newClient(n)
				st, err := cli.Status(tctx(t, 2*time.Second), n.ClientAddr())
				if err != nil {
					return err
				}
				if st.Leader != 0 && st.Leader != st.Header.MemberId {
					target = n
					return nil
				}
			}
			return fmt.Errorf("no follower yet")
		})
	}
	a, b := newClient(target), newClient(etcd[0])
	// The probes above are reads; both stores are at revision 1.
	wa := a.Watch(tctx(t, 120*time.Second), "d/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(1))
	wb := b.Watch(tctx(t, 120*time.Second), "d/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(1))

	d := &differ{t: t, a: a, b: b, noSerializable: members > 1, leaseA: map[clientv3.LeaseID]int{}, leaseB: map[clientv3.LeaseID]int{}}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	steps := 600
	if n, err := strconv.Atoi(os.Getenv("SKIFF_DIFF_STEPS")); err == nil && n > 0 {
		steps = n
	}
	for i := 0; i < steps && !t.Failed(); i++ {
		d.step(rng, i)
	}
	if t.Failed() {
		return
	}
	// Same event streams (compaction may cut history: compare what both
	// deliver from the start of the live stream).
	rev := d.rev
	ea, eb := drainEvents(t, wa, rev), drainEvents(t, wb, rev)
	// A watcher behind a compaction may be cancelled (etcd does so to a
	// watcher not yet synced); then what it delivered must be a prefix of
	// the other stream.
	cut := func(s string) (string, bool) {
		if i := strings.Index(s, " [cancelled"); i >= 0 {
			return s[:i], true
		}
		return s, false
	}
	pa, ca := cut(ea)
	pb, cb := cut(eb)
	switch {
	case ca && !cb && strings.HasPrefix(eb, pa), cb && !ca && strings.HasPrefix(ea, pb):
		t.Logf("one watch was cancelled by a compaction; the delivered events agree")
	case ca && cb && (strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa)):
	case ea != eb:
		t.Errorf("watch streams differ:\nskiff: %s\n etcd: %s", firstDiff(ea, eb), firstDiff(eb, ea))
	}
}

type differ struct {
	t              *testing.T
	a, b           *clientv3.Client // skiff, etcd
	leases         [][2]clientv3.LeaseID
	leaseA, leaseB map[clientv3.LeaseID]int
	rev            int64
	noSerializable bool
}

var diffKeys = []string{"d/a", "d/b", "d/b/1", "d/c", "d/d", "d/e"}

func (d *differ) key(rng *rand.Rand) string { return diffKeys[rng.Intn(len(diffKeys))] }

// lease picks a lease index (or none) and returns the ids on both sides.
func (d *differ) lease(rng *rand.Rand) (clientv3.LeaseID, clientv3.LeaseID) {
	if len(d.leases) == 0 || rng.Intn(3) == 0 {
		return 0, 0
	}
	l := d.leases[rng.Intn(len(d.leases))]
	return l[0], l[1]
}

func (d *differ) step(rng *rand.Rand, i int) {
	t := d.t
	ctx := tctx(t, opTimeout)
	switch p := rng.Intn(100); {
	case p < 30: // put
		k, v := d.key(rng), fmt.Sprintf("v%d", i)
		var oa, ob []clientv3.OpOption
		if rng.Intn(2) == 0 {
			oa, ob = append(oa, clientv3.WithPrevKV()), append(ob, clientv3.WithPrevKV())
		}
		la, lb := d.lease(rng)
		if la != 0 {
			oa, ob = append(oa, clientv3.WithLease(la)), append(ob, clientv3.WithLease(lb))
		}
		switch rng.Intn(8) {
		case 0:
			v = ""
			oa, ob = append(oa, clientv3.WithIgnoreValue()), append(ob, clientv3.WithIgnoreValue())
		case 1:
			oa, ob = append(oa, clientv3.WithIgnoreLease()), append(ob, clientv3.WithIgnoreLease())
		}
		ra, ea := d.a.Put(ctx, k, v, oa...)
		rb, eb := d.b.Put(ctx, k, v, ob...)
		d.compare(fmt.Sprintf("step %d put %s=%q %v", i, k, v, len(oa)), (*pb.PutResponse)(ra), (*pb.PutResponse)(rb), ea, eb)
	case p < 55: // range
		k := d.key(rng)
		var o []clientv3.OpOption
		switch rng.Intn(4) {
		case 0:
			o = append(o, clientv3.WithPrefix())
		case 1:
			o = append(o, clientv3.WithRange(d.key(rng)))
		case 2:
			o = append(o, clientv3.WithFromKey())
		}
		if rng.Intn(3) == 0 {
			o = append(o, clientv3.WithLimit(int64(rng.Intn(4))))
		}
		if rng.Intn(3) == 0 {
			o = append(o, clientv3.WithRev(rng.Int63n(d.rev+3)))
		}
		if rng.Intn(3) == 0 {
			o = append(o, clientv3.WithSort(clientv3.SortTarget(rng.Intn(5)), clientv3.SortOrder(rng.Intn(3))))
		}
		switch rng.Intn(6) {
		case 0:
			o = append(o, clientv3.WithKeysOnly())
		case 1:
			o = append(o, clientv3.WithCountOnly())
		case 2:
			o = append(o, clientv3.WithMinModRev(rng.Int63n(d.rev+1)))
		case 3:
			o = append(o, clientv3.WithMaxCreateRev(rng.Int63n(d.rev+1)))
		}
		if rng.Intn(2) == 0 && !d.noSerializable {
			o = append(o, clientv3.WithSerializable())
		}
		ra, ea := d.a.Get(ctx, k, o...)
		rb, eb := d.b.Get(ctx, k, o...)
		d.compare(fmt.Sprintf("step %d range %s (%d options)", i, k, len(o)), (*pb.RangeResponse)(ra), (*pb.RangeResponse)(rb), ea, eb)
	case p < 65: // delete
		k := d.key(rng)
		var o []clientv3.OpOption
		if rng.Intn(2) == 0 {
			o = append(o, clientv3.WithPrefix())
		}
		if rng.Intn(2) == 0 {
			o = append(o, clientv3.WithPrevKV())
		}
		ra, ea := d.a.Delete(ctx, k, o...)
		rb, eb := d.b.Delete(ctx, k, o...)
		d.compare(fmt.Sprintf("step %d delete %s", i, k), (*pb.DeleteRangeResponse)(ra), (*pb.DeleteRangeResponse)(rb), ea, eb)
	case p < 85: // txn
		cmps, thenOps, elseOps := d.txn(rng, i)
		ra, ea := d.a.Txn(ctx).If(cmps...).Then(thenOps[0]...).Else(elseOps[0]...).Commit()
		rb, eb := d.b.Txn(ctx).If(cmps...).Then(thenOps[1]...).Else(elseOps[1]...).Commit()
		d.compare(fmt.Sprintf("step %d txn", i), (*pb.TxnResponse)(ra), (*pb.TxnResponse)(rb), ea, eb)
	case p < 88: // compact
		r := rng.Int63n(d.rev + 3)
		ra, ea := d.a.Compact(ctx, r)
		rb, eb := d.b.Compact(ctx, r)
		d.compare(fmt.Sprintf("step %d compact %d", i, r), (*pb.CompactionResponse)(ra), (*pb.CompactionResponse)(rb), ea, eb)
	case p < 93: // grant
		ra, ea := d.a.Grant(ctx, 600)
		rb, eb := d.b.Grant(ctx, 600)
		if (ea == nil) != (eb == nil) {
			t.Fatalf("step %d grant: skiff err %v, etcd err %v", i, ea, eb)
		}
		if ea == nil {
			d.leaseA[ra.ID], d.leaseB[rb.ID] = len(d.leases), len(d.leases)
			d.leases = append(d.leases, [2]clientv3.LeaseID{ra.ID, rb.ID})
		}
	case p < 96: // revoke
		la, lb := d.lease(rng)
		if la == 0 {
			return
		}
		ra, ea := d.a.Revoke(ctx, la)
		rb, eb := d.b.Revoke(ctx, lb)
		d.compare(fmt.Sprintf("step %d revoke", i), (*pb.LeaseRevokeResponse)(ra), (*pb.LeaseRevokeResponse)(rb), ea, eb)
	default: // time to live with keys
		la, lb := d.lease(rng)
		if la == 0 {
			return
		}
		ra, ea := d.a.TimeToLive(ctx, la, clientv3.WithAttachedKeys())
		rb, eb := d.b.TimeToLive(ctx, lb, clientv3.WithAttachedKeys())
		if (ea == nil) != (eb == nil) || (ea != nil && errText(ea) != errText(eb)) {
			t.Fatalf("step %d timetolive: skiff err %v, etcd err %v", i, ea, eb)
		}
		if ea == nil {
			// etcd lists attached keys in no particular order.
			sortKeys := func(ks [][]byte) []string {
				var out []string
				for _, k := range ks {
					out = append(out, string(k))
				}
				sort.Strings(out)
				return out
			}
			ka, kb := fmt.Sprintf("%q granted=%d", sortKeys(ra.Keys), ra.GrantedTTL), fmt.Sprintf("%q granted=%d", sortKeys(rb.Keys), rb.GrantedTTL)
			if (ra.TTL == -1) != (rb.TTL == -1) || ka != kb {
				t.Fatalf("step %d timetolive: skiff ttl %d %s, etcd ttl %d %s", i, ra.TTL, ka, rb.TTL, kb)
			}
		}
	}
}

func (d *differ) txn(rng *rand.Rand, i int) ([]clientv3.Cmp, [2][]clientv3.Op, [2][]clientv3.Op) {
	var cmps []clientv3.Cmp
	for n := rng.Intn(3); n > 0; n-- {
		k := d.key(rng)
		ops := []string{"=", "!=", "<", ">"}
		op := ops[rng.Intn(len(ops))]
		var c clientv3.Cmp
		switch rng.Intn(5) {
		case 0:
			c = clientv3.Compare(clientv3.Value(k), op, fmt.Sprintf("v%d", rng.Intn(i+1)))
		case 1:
			c = clientv3.Compare(clientv3.Version(k), op, rng.Int63n(4))
		case 2:
			c = clientv3.Compare(clientv3.CreateRevision(k), op, rng.Int63n(d.rev+1))
		case 3:
			c = clientv3.Compare(clientv3.ModRevision(k), op, rng.Int63n(d.rev+1))
		default:
			c = clientv3.Compare(clientv3.LeaseValue(k), op, 0)
		}
		if rng.Intn(4) == 0 {
			c = c.WithPrefix()
		}
		cmps = append(cmps, c)
	}
	branch := func() [2][]clientv3.Op {
		var out [2][]clientv3.Op
		for n := rng.Intn(4); n > 0; n-- {
			k := d.key(rng)
			switch rng.Intn(4) {
			case 0, 1:
				la, lb := d.lease(rng)
				v := fmt.Sprintf("t%d", i)
				out[0] = append(out[0], clientv3.OpPut(k, v, clientv3.WithLease(la), clientv3.WithPrevKV()))
				out[1] = append(out[1], clientv3.OpPut(k, v, clientv3.WithLease(lb), clientv3.WithPrevKV()))
			case 2:
				op := clientv3.OpGet(k, clientv3.WithPrefix())
				out[0], out[1] = append(out[0], op), append(out[1], op)
			default:
				op := clientv3.OpDelete(k, clientv3.WithPrevKV())
				out[0], out[1] = append(out[0], op), append(out[1], op)
			}
		}
		return out
	}
	return cmps, branch(), branch()
}

type headered interface{ GetHeader() *pb.ResponseHeader }

// compare fails the test unless both answers are the same to a client.
func (d *differ) compare(what string, ra, rb interface{ String() string }, ea, eb error) {
	d.t.Helper()
	if (ea == nil) != (eb == nil) {
		d.t.Fatalf("%s: skiff err %v, etcd err %v", what, ea, eb)
	}
	if ea != nil {
		if errText(ea) != errText(eb) {
			d.t.Fatalf("%s: skiff error %q, etcd error %q", what, errText(ea), errText(eb))
		}
		return
	}
	sa, sb := d.normalize(ra, d.leaseA), d.normalize(rb, d.leaseB)
	if sa != sb {
		d.t.Fatalf("%s: answers differ\nskiff: %s\n etcd: %s", what, sa, sb)
	}
	if h, ok := rb.(headered); ok && h.GetHeader() != nil && h.GetHeader().Revision > d.rev {
		d.rev = h.GetHeader().Revision
	}
}

// errText is what clients match on: gRPC code and etcd's message.
func errText(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Code().String() + ": " + rpctypes.ErrorDesc(err)
	}
	return rpctypes.ErrorDesc(err)
}

// leaseField replaces lease ids (random on both sides) by their grant order.
func leaseField(s string, ids map[clientv3.LeaseID]int) string {
	for id, idx := range ids {
		s = strings.ReplaceAll(s, fmt.Sprintf("lease:%d ", id), fmt.Sprintf("lease:L%d ", idx))
		s = strings.ReplaceAll(s, fmt.Sprintf("lease:%d>", id), fmt.Sprintf("lease:L%d>", idx))
	}
	return s
}

// normalize renders a response without the fields that legitimately differ
// (cluster and member ids, raft term) and with lease ids by grant order.
func (d *differ) normalize(r interface{ String() string }, ids map[clientv3.LeaseID]int) string {
	if h, ok := r.(headered); ok && h.GetHeader() != nil {
		hd := h.GetHeader()
		saved := *hd
		hd.ClusterId, hd.MemberId, hd.RaftTerm = 0, 0, 0
		defer func() { *hd = saved }()
	}
	return leaseField(r.String(), ids)
}

// drainEvents reads a watch until it has reached rev (or is cancelled) and
// renders the events.
func drainEvents(t *testing.T, wch clientv3.WatchChan, rev int64) string {
	var b strings.Builder
	var last int64
	deadline := time.After(20 * time.Second)
	for last < rev {
		select {
		case r, ok := <-wch:
			if !ok {
				return b.String() + " [closed]"
			}
			if r.Canceled {
				return b.String() + fmt.Sprintf(" [cancelled compact=%d]", r.CompactRevision)
			}
			for _, e := range r.Events {
				fmt.Fprintf(&b, "%v %s=%q@%d/%d/%d prev=%v; ", e.Type, e.Kv.Key, e.Kv.Value, e.Kv.ModRevision, e.Kv.CreateRevision, e.Kv.Version, e.PrevKv != nil && e.PrevKv.ModRevision > 0)
				last = e.Kv.ModRevision
			}
			if r.Header.Revision >= rev && len(r.Events) == 0 {
				return b.String()
			}
		case <-deadline:
			return b.String() + " [timeout]"
		}
	}
	return b.String()
}

func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	start := max(0, i-200)
	return "…" + a[start:min(len(a), i+200)]
}
