package etcddiff

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/skiffhq/skiff/raftstore/mvcc"
)

// etcdMaxTxnOps is etcd's default --max-txn-ops.
const etcdMaxTxnOps = 128

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startEtcd runs a single-member etcd for the test and stops it (by its
// PID) at cleanup.
func startEtcd(t *testing.T) *grpc.ClientConn {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd not on PATH (Debian package etcd-server): skipping the differential test")
	}
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm" // no fsync cost on tmpfs
	}
	dir, err := os.MkdirTemp(base, "skiff-etcddiff-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--name", "diff", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "diff="+peer)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("etcd log tail:\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
			}
		}
	})
	conn, err := grpc.NewClient(strings.TrimPrefix(client, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// Ready when a read through the connection the test uses succeeds.
	kv := pb.NewKVClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("ready")}, grpc.WaitForReady(true))
		cancel()
		if err == nil {
			return conn
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd did not become ready: %v", err)
		}
		if cmd.ProcessState != nil {
			t.Fatalf("etcd exited: %v", cmd.ProcessState)
		}
	}
}

// ourError renders a Store error as the etcd error message a client sees.
func ourError(err error) string {
	for _, m := range []struct {
		sentinel error
		grpc     error
	}{
		{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
		{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
		{mvcc.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
		{mvcc.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
		{mvcc.ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
		{mvcc.ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},
		{mvcc.ErrValueProvided, rpctypes.ErrGRPCValueProvided},
		{mvcc.ErrLeaseProvided, rpctypes.ErrGRPCLeaseProvided},
		{mvcc.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
		{mvcc.ErrInvalidSortOption, rpctypes.ErrGRPCInvalidSortOption},
	} {
		if errors.Is(err, m.sentinel) {
			return status.Convert(m.grpc).Message()
		}
	}
	return "unmapped: " + err.Error()
}

func theirError(err error) string { return status.Convert(err).Message() }

func fmtKV(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s=%q c%d m%d v%d l%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
}

func fmtKVs(kvs []*mvccpb.KeyValue) string {
	var parts []string
	for _, kv := range kvs {
		parts = append(parts, fmtKV(kv))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func hdrRev(h *pb.ResponseHeader) int64 {
	if h == nil {
		return 0
	}
	return h.Revision
}

// norm renders what a client can observe of a response; top-level header
// revisions are compared separately.
func norm(v any, top bool) string {
	sub := func(h *pb.ResponseHeader) string {
		if top {
			return ""
		}
		return fmt.Sprintf(" rev=%d", hdrRev(h))
	}
	switch r := v.(type) {
	case *pb.RangeResponse:
		return fmt.Sprintf("range%s count=%d more=%v kvs=%s", sub(r.Header), r.Count, r.More, fmtKVs(r.Kvs))
	case *pb.PutResponse:
		return fmt.Sprintf("put%s prev=%s", sub(r.Header), fmtKV(r.PrevKv))
	case *pb.DeleteRangeResponse:
		return fmt.Sprintf("delete%s deleted=%d prev=%s", sub(r.Header), r.Deleted, fmtKVs(r.PrevKvs))
	case *pb.TxnResponse:
		var parts []string
		for _, op := range r.Responses {
			switch x := op.Response.(type) {
			case *pb.ResponseOp_ResponseRange:
				parts = append(parts, norm(x.ResponseRange, false))
			case *pb.ResponseOp_ResponsePut:
				parts = append(parts, norm(x.ResponsePut, false))
			case *pb.ResponseOp_ResponseDeleteRange:
				parts = append(parts, norm(x.ResponseDeleteRange, false))
			case *pb.ResponseOp_ResponseTxn:
				parts = append(parts, norm(x.ResponseTxn, false))
			default:
				parts = append(parts, fmt.Sprintf("?%T", x))
			}
		}
		return fmt.Sprintf("txn%s succeeded=%v {%s}", sub(r.Header), r.Succeeded, strings.Join(parts, "; "))
	case *pb.CompactionResponse:
		return "compact"
	}
	return fmt.Sprintf("?%T", v)
}

// gen produces random requests over a few keys (at most 12, so etcd's
// unstable sort cannot reorder ties differently from ours).
type gen struct {
	rnd *rand.Rand
	rev func() int64
}

var keys = []string{"a", "a\x00", "a/1", "a/2", "b", "c", "d", "\xff", "\xff\xff"}

func (g *gen) key() string { return keys[g.rnd.Intn(len(keys))] }

func (g *gen) rangeOf() ([]byte, []byte) {
	switch g.rnd.Intn(6) {
	case 0, 1:
		return []byte(g.key()), nil
	case 2:
		return []byte(g.key()), []byte{0}
	case 3:
		return []byte{0}, []byte{0}
	case 4:
		return []byte("a/"), []byte("a0") // prefix
	default:
		a, b := g.key(), g.key()
		return []byte(a), []byte(b) // may be empty or inverted
	}
}

func (g *gen) value() string {
	if g.rnd.Intn(6) == 0 {
		return ""
	}
	return fmt.Sprintf("v%d", g.rnd.Intn(20))
}

func (g *gen) lease() int64 {
	switch g.rnd.Intn(8) {
	case 0:
		return 1000
	case 1:
		return 1001
	case 2:
		return 9999 // never granted
	}
	return 0
}

func (g *gen) rangeReq() *pb.RangeRequest {
	k, end := g.rangeOf()
	r := &pb.RangeRequest{Key: k, RangeEnd: end}
	if g.rnd.Intn(3) == 0 {
		r.Revision = g.rnd.Int63n(g.rev() + 2)
	}
	if g.rnd.Intn(3) == 0 {
		r.Limit = g.rnd.Int63n(4)
	}
	if g.rnd.Intn(3) == 0 {
		r.SortOrder = pb.RangeRequest_SortOrder(g.rnd.Intn(3))
		r.SortTarget = pb.RangeRequest_SortTarget(g.rnd.Intn(5))
	}
	if g.rnd.Intn(5) == 0 {
		r.MinModRevision = g.rnd.Int63n(g.rev() + 1)
	}
	if g.rnd.Intn(5) == 0 {
		r.MaxModRevision = g.rnd.Int63n(g.rev() + 1)
	}
	if g.rnd.Intn(5) == 0 {
		r.MinCreateRevision = g.rnd.Int63n(g.rev() + 1)
	}
	if g.rnd.Intn(5) == 0 {
		r.MaxCreateRevision = g.rnd.Int63n(g.rev() + 1)
	}
	r.KeysOnly = g.rnd.Intn(6) == 0
	r.CountOnly = g.rnd.Intn(8) == 0
	return r
}

func (g *gen) putReq() *pb.PutRequest {
	r := &pb.PutRequest{Key: []byte(g.key()), Value: []byte(g.value()), Lease: g.lease(), PrevKv: g.rnd.Intn(2) == 0}
	switch g.rnd.Intn(8) {
	case 0:
		r.IgnoreValue, r.Value = true, nil
	case 1:
		r.IgnoreLease, r.Lease = true, 0
	}
	return r
}

func (g *gen) deleteReq() *pb.DeleteRangeRequest {
	k, end := g.rangeOf()
	return &pb.DeleteRangeRequest{Key: k, RangeEnd: end, PrevKv: g.rnd.Intn(2) == 0}
}

func (g *gen) compare() *pb.Compare {
	k, end := g.rangeOf()
	if g.rnd.Intn(3) != 0 {
		end = nil
	}
	c := &pb.Compare{Key: k, RangeEnd: end, Result: pb.Compare_CompareResult(g.rnd.Intn(4)), Target: pb.Compare_CompareTarget(g.rnd.Intn(5))}
	switch c.Target {
	case pb.Compare_VERSION:
		c.TargetUnion = &pb.Compare_Version{Version: g.rnd.Int63n(3)}
	case pb.Compare_CREATE:
		c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: g.rnd.Int63n(g.rev() + 1)}
	case pb.Compare_MOD:
		c.TargetUnion = &pb.Compare_ModRevision{ModRevision: g.rnd.Int63n(g.rev() + 1)}
	case pb.Compare_VALUE:
		c.TargetUnion = &pb.Compare_Value{Value: []byte(g.value())}
	case pb.Compare_LEASE:
		c.TargetUnion = &pb.Compare_Lease{Lease: g.lease()}
	}
	return c
}

func (g *gen) ops(depth int) []*pb.RequestOp {
	var ops []*pb.RequestOp
	for n := g.rnd.Intn(4); n > 0; n-- {
		switch k := g.rnd.Intn(7); {
		case k < 2:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: g.rangeReq()}})
		case k < 4:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: g.putReq()}})
		case k < 6 || depth >= 2:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: g.deleteReq()}})
		default:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: g.txnReq(depth + 1)}})
		}
	}
	return ops
}

// badTxn returns a txn etcd's API layer rejects (or, for a range with an
// unknown sort option, that it may reject).
func (g *gen) badTxn() *pb.TxnRequest {
	r := g.txnReq(0)
	var bad *pb.RequestOp
	switch g.rnd.Intn(8) {
	case 0:
		bad = &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Value: []byte("v")}}}
	case 1:
		bad = &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{}}}
	case 2:
		bad = &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{}}}
	case 3:
		bad = &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true}}}
	case 4:
		bad = &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), Lease: 1000, IgnoreLease: true}}}
	case 5:
		bad = &pb.RequestOp{} // empty op
	case 6:
		r.Compare = append(r.Compare, &pb.Compare{Target: pb.Compare_VERSION})
		return r
	default:
		for len(r.Success) <= etcdMaxTxnOps {
			r.Success = append(r.Success, &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a")}}})
		}
		return r
	}
	if g.rnd.Intn(2) == 0 {
		r.Success = append(r.Success, bad)
	} else {
		r.Failure = append(r.Failure, bad)
	}
	return r
}

func (g *gen) txnReq(depth int) *pb.TxnRequest {
	r := &pb.TxnRequest{}
	for n := g.rnd.Intn(3); n > 0; n-- {
		r.Compare = append(r.Compare, g.compare())
	}
	r.Success = g.ops(depth)
	r.Failure = g.ops(depth)
	return r
}

// crashesEtcd reports txns that may pass etcd's checks and then fail while
// being applied, which makes etcd panic ("unexpected error during txn with
// writes"): a put with ignore_value/ignore_lease after a from-key delete
// (range_end "\x00", which etcd's duplicate-key check does not see) that
// removes its key. The Store answers ErrKeyNotFound and changes nothing
// (TestTxnErrorsChangeNothing); etcd cannot be compared there.
func crashesEtcd(r *pb.TxnRequest) bool {
	var fromKeyDel, ignorePut bool
	var walk func(r *pb.TxnRequest)
	walk = func(r *pb.TxnRequest) {
		for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
			for _, op := range ops {
				switch x := op.Request.(type) {
				case *pb.RequestOp_RequestDeleteRange:
					if e := x.RequestDeleteRange.RangeEnd; len(e) == 1 && e[0] == 0 {
						fromKeyDel = true
					}
				case *pb.RequestOp_RequestPut:
					if x.RequestPut.IgnoreValue || x.RequestPut.IgnoreLease {
						ignorePut = true
					}
				case *pb.RequestOp_RequestTxn:
					walk(x.RequestTxn)
				}
			}
		}
	}
	walk(r)
	return fromKeyDel && ignorePut
}

// TestDifferentialAgainstEtcd sends the same random requests to etcd and
// to a Store and compares responses, errors and revisions.
func TestDifferentialAgainstEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd servers")
	}
	seeds, ops := 3, 600
	if v := os.Getenv("SKIFF_ETCDDIFF_OPS"); v != "" {
		// "SEEDS OPS", for longer runs by hand.
		fmt.Sscan(v, &seeds, &ops)
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			// A fresh etcd per seed: both sides start at revision 1.
			conn := startEtcd(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			for _, id := range []int64{1000, 1001} {
				if _, err := pb.NewLeaseClient(conn).LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: id, TTL: 3600}); err != nil {
					t.Fatal(err)
				}
			}
			runDiff(ctx, t, clients{
				kv: pb.NewKVClient(conn), maint: pb.NewMaintenanceClient(conn),
				lease: pb.NewLeaseClient(conn), watch: pb.NewWatchClient(conn),
			}, int64(seed), ops)
		})
	}
}

type clients struct {
	kv    pb.KVClient
	maint pb.MaintenanceClient
	lease pb.LeaseClient
	watch pb.WatchClient
}

func fmtEvents(evs []*mvccpb.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%s %s prev=%s", ev.Type, fmtKV(ev.Kv), fmtKV(ev.PrevKv)))
	}
	return out
}

// compareWatch replays history from a revision through an etcd watch with
// prev_kv and compares it with Store.Events.
func compareWatch(ctx context.Context, t *testing.T, c clients, s *mvcc.Store, from int64) {
	t.Helper()
	ours, _, err := s.Events(from, []byte{0}, []byte{0}, true, 0)
	if err != nil {
		t.Fatalf("Events(%d): %v", from, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := c.watch.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte{0}, RangeEnd: []byte{0}, StartRevision: from, PrevKv: true,
	}}}); err != nil {
		t.Fatal(err)
	}
	var theirs []*mvccpb.Event
	for len(theirs) < len(ours) {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("watch from %d: got %d of %d events: %v", from, len(theirs), len(ours), err)
		}
		if resp.Canceled {
			t.Fatalf("watch from %d canceled: %s (compact revision %d)", from, resp.CancelReason, resp.CompactRevision)
		}
		theirs = append(theirs, resp.Events...)
	}
	t.Logf("watch from revision %d: %d events", from, len(ours))
	got, want := fmtEvents(ours), fmtEvents(theirs)
	if len(got) != len(want) {
		t.Fatalf("watch from %d: %d events from etcd, %d from the Store", from, len(want), len(got))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("watch from %d, event %d:\netcd: %s\nours: %s", from, i, want[i], got[i])
		}
	}
}

func runDiff(ctx context.Context, t *testing.T, c clients, seed int64, ops int) {
	kv, maint := c.kv, c.maint
	s := mvcc.New(mvcc.Options{LeaseExists: func(id int64) bool { return id == 1000 || id == 1001 }})
	g := &gen{rnd: rand.New(rand.NewSource(seed)), rev: s.Rev}
	defer func() {
		if !t.Failed() {
			compareWatch(ctx, t, c, s, s.CompactRev()+1)
		}
	}()
	for i := 0; i < ops; i++ {
		var what string
		var theirs, ours any
		var theirErr, ourErr error
		var theirRev int64
		switch k := g.rnd.Intn(22); {
		case k == 21 && g.rnd.Intn(2) == 0:
			// A malformed plain request.
			switch g.rnd.Intn(4) {
			case 0:
				// An unknown sort order means no sort (but a full fetch)
				// in etcd. An unknown sort target is not sent: etcd 3.4
				// panics on it, the Store answers ErrInvalidSortOption
				// (TestRangeRejectsMalformed).
				r := &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, Limit: g.rnd.Int63n(3),
					SortOrder: pb.RangeRequest_SortOrder(3 + g.rnd.Intn(3)), SortTarget: pb.RangeRequest_SortTarget(g.rnd.Intn(5))}
				what = r.String()
				theirs, theirErr = kv.Range(ctx, r)
				ours, ourErr = s.Range(r)
			case 1:
				r := &pb.RangeRequest{RangeEnd: []byte("z")}
				what = r.String()
				theirs, theirErr = kv.Range(ctx, r)
				ours, ourErr = s.Range(r)
			case 2:
				r := &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: g.rnd.Intn(2) == 0}
				if !r.IgnoreValue {
					r.Key = nil
				}
				what = r.String()
				theirs, theirErr = kv.Put(ctx, r)
				ours, _, ourErr = s.Put(r)
			default:
				r := &pb.DeleteRangeRequest{RangeEnd: []byte("z")}
				what = r.String()
				theirs, theirErr = kv.DeleteRange(ctx, r)
				ours, _, ourErr = s.DeleteRange(r)
			}
			theirRev = s.Rev()
		case k == 21:
			// Malformed txns, rejected before anything happens.
			r := g.badTxn()
			what = r.String()
			resp, err := kv.Txn(ctx, r)
			theirs, theirErr = resp, err
			if resp != nil {
				theirRev = hdrRev(resp.Header)
			}
			if ourErr = mvcc.CheckTxn(r, etcdMaxTxnOps); ourErr == nil {
				ours, _, ourErr = s.Txn(r)
			}
		case k == 20:
			// Lease revocation deletes the lease's keys in one
			// revision; the lease is granted again right after.
			id := int64(1000 + g.rnd.Intn(2))
			what = fmt.Sprintf("revoke lease %d", id)
			resp, err := c.lease.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: id})
			if err != nil {
				t.Fatal(err)
			}
			theirRev = hdrRev(resp.Header)
			s.DeleteKeys(s.LeaseKeys(id))
			if _, err := c.lease.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: id, TTL: 3600}); err != nil {
				t.Fatal(err)
			}
			theirs, ours = &pb.CompactionResponse{}, &pb.CompactionResponse{}
		case k < 5:
			r := g.rangeReq()
			what = r.String()
			resp, err := kv.Range(ctx, r)
			theirs, theirErr = resp, err
			if resp != nil {
				theirRev = hdrRev(resp.Header)
			}
			ours, ourErr = s.Range(r)
		case k < 10:
			r := g.putReq()
			what = r.String()
			resp, err := kv.Put(ctx, r)
			theirs, theirErr = resp, err
			if resp != nil {
				theirRev = hdrRev(resp.Header)
			}
			ours, _, ourErr = s.Put(r)
		case k < 12:
			r := g.deleteReq()
			what = r.String()
			resp, err := kv.DeleteRange(ctx, r)
			theirs, theirErr = resp, err
			if resp != nil {
				theirRev = hdrRev(resp.Header)
			}
			ours, _, ourErr = s.DeleteRange(r)
		case k < 19:
			r := g.txnReq(0)
			for crashesEtcd(r) {
				r = g.txnReq(0)
			}
			what = r.String()
			resp, err := kv.Txn(ctx, r)
			theirs, theirErr = resp, err
			if resp != nil {
				theirRev = hdrRev(resp.Header)
			}
			if ourErr = mvcc.CheckTxn(r, etcdMaxTxnOps); ourErr == nil {
				ours, _, ourErr = s.Txn(r)
			}
		case k == 19:
			rev := s.CompactRev() + g.rnd.Int63n(s.Rev()-s.CompactRev()+2)
			r := &pb.CompactionRequest{Revision: rev}
			what = r.String()
			resp, err := kv.Compact(ctx, r)
			theirs, theirErr = resp, err
			if resp != nil {
				theirRev = hdrRev(resp.Header)
			}
			ourErr = s.Compact(rev)
			if ourErr == nil {
				ours = &pb.CompactionResponse{}
			}
		}
		if theirErr != nil || ourErr != nil {
			if theirErr == nil || ourErr == nil || theirError(theirErr) != ourError(ourErr) {
				t.Fatalf("op %d %s:\netcd error: %v\nours: %v", i, what, theirErr, ourErr)
			}
			continue
		}
		if got, want := norm(ours, true), norm(theirs, true); got != want {
			t.Fatalf("op %d %s:\netcd: %s\nours: %s", i, what, want, got)
		}
		if theirRev != s.Rev() {
			t.Fatalf("op %d %s: etcd at revision %d, ours %d", i, what, theirRev, s.Rev())
		}
		if g.rnd.Intn(300) == 0 {
			compareWatch(ctx, t, c, s, s.CompactRev()+1+g.rnd.Int63n(s.Rev()-s.CompactRev()))
		}
		if g.rnd.Intn(10) == 0 {
			// Hash values differ by design; revisions and errors must not.
			rev := g.rnd.Int63n(s.Rev() + 2)
			if rev == s.CompactRev() {
				// etcd 3.4 refuses a hash at the compaction revision,
				// 3.5 and later (whose semantics the Store follows)
				// allow it.
				rev = 0
			}
			resp, err := maint.HashKV(ctx, &pb.HashKVRequest{Revision: rev})
			_, hashRev, compactRev, ourErr := s.HashKV(rev)
			if err != nil || ourErr != nil {
				if err == nil || ourErr == nil || theirError(err) != ourError(ourErr) {
					t.Fatalf("op %d HashKV(%d): etcd error %v, ours %v", i, rev, err, ourErr)
				}
				continue
			}
			// etcd 3.4 has no hash_revision field (0 on the wire).
			if (resp.HashRevision != 0 && resp.HashRevision != hashRev) || resp.CompactRevision != compactRev {
				t.Fatalf("op %d HashKV(%d): etcd hash rev %d compact rev %d, ours %d %d",
					i, rev, resp.HashRevision, resp.CompactRevision, hashRev, compactRev)
			}
		}
	}
}
