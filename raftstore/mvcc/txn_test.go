package mvcc

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// txnFixture: a (version 2, create 2, mod 3, value "v2", lease 1),
// b (version 1, create 4, mod 4, value "b", no lease), rev 4.
func txnFixture(t *testing.T) *Store {
	t.Helper()
	s := New(Options{LeaseExists: func(id int64) bool { return id == 1 || id == 2 }})
	if _, _, err := s.Put(&pb.PutRequest{Key: []byte("a"), Value: []byte("v1"), Lease: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(&pb.PutRequest{Key: []byte("a"), Value: []byte("v2"), Lease: 1}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "b", "b")
	return s
}

func TestTxnCompare(t *testing.T) {
	const (
		EQ  = pb.Compare_EQUAL
		NE  = pb.Compare_NOT_EQUAL
		GT  = pb.Compare_GREATER
		LT  = pb.Compare_LESS
		VER = pb.Compare_VERSION
		CRE = pb.Compare_CREATE
		MOD = pb.Compare_MOD
		VAL = pb.Compare_VALUE
		LEA = pb.Compare_LEASE
	)
	withEnd := func(c *pb.Compare, end string) *pb.Compare { c.RangeEnd = []byte(end); return c }
	for _, tc := range []struct {
		name string
		c    []*pb.Compare
		want bool
	}{
		{"no compares", nil, true},
		{"version equal", []*pb.Compare{cmp("a", VER, EQ, 2)}, true},
		{"version not equal", []*pb.Compare{cmp("a", VER, NE, 2)}, false},
		{"version greater", []*pb.Compare{cmp("a", VER, GT, 1)}, true},
		{"version less", []*pb.Compare{cmp("a", VER, LT, 2)}, false},
		{"create equal", []*pb.Compare{cmp("a", CRE, EQ, 2)}, true},
		{"create greater", []*pb.Compare{cmp("b", CRE, GT, 3)}, true},
		{"mod equal", []*pb.Compare{cmp("a", MOD, EQ, 3)}, true},
		{"mod less", []*pb.Compare{cmp("a", MOD, LT, 3)}, false},
		{"value equal", []*pb.Compare{cmp("a", VAL, EQ, "v2")}, true},
		{"value greater", []*pb.Compare{cmp("a", VAL, GT, "v1")}, true},
		{"value less", []*pb.Compare{cmp("a", VAL, LT, "v1")}, false},
		{"value not equal", []*pb.Compare{cmp("a", VAL, NE, "v1")}, true},
		{"lease equal", []*pb.Compare{cmp("a", LEA, EQ, 1)}, true},
		{"lease of key without lease", []*pb.Compare{cmp("b", LEA, EQ, 0)}, true},
		{"all compares must hold", []*pb.Compare{cmp("a", VER, EQ, 2), cmp("b", VER, EQ, 2)}, false},
		{"missing key version 0", []*pb.Compare{cmp("nope", VER, EQ, 0)}, true},
		{"missing key create 0", []*pb.Compare{cmp("nope", CRE, EQ, 0)}, true},
		{"missing key mod 0", []*pb.Compare{cmp("nope", MOD, LT, 1)}, true},
		{"missing key lease 0", []*pb.Compare{cmp("nope", LEA, EQ, 0)}, true},
		{"missing key value equal empty fails", []*pb.Compare{cmp("nope", VAL, EQ, "")}, false},
		{"missing key value not equal fails", []*pb.Compare{cmp("nope", VAL, NE, "x")}, false},
		{"range all keys satisfy", []*pb.Compare{withEnd(cmp("a", VER, GT, 0), "c")}, true},
		{"range one key fails", []*pb.Compare{withEnd(cmp("a", VER, EQ, 2), "c")}, false},
		{"range from key", []*pb.Compare{withEnd(cmp("b", VER, EQ, 1), "\x00")}, true},
		{"range mod less", []*pb.Compare{withEnd(cmp("a", MOD, LT, 5), "\x00")}, true},
		{"empty range sees a missing key", []*pb.Compare{withEnd(cmp("x", VER, EQ, 0), "y")}, true},
		{"empty range create less", []*pb.Compare{withEnd(cmp("x", CRE, LT, 1), "y")}, true},
		{"empty range value fails", []*pb.Compare{withEnd(cmp("x", VAL, EQ, ""), "y")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := txnFixture(t)
			resp, res, err := s.Txn(&pb.TxnRequest{
				Compare: tc.c,
				Success: []*pb.RequestOp{opGet("a", "")},
				Failure: []*pb.RequestOp{opGet("b", ""), opGet("a", "")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Succeeded != tc.want {
				t.Fatalf("succeeded %v, want %v", resp.Succeeded, tc.want)
			}
			wantOps := 1
			if !tc.want {
				wantOps = 2
			}
			if len(resp.Responses) != wantOps || res.Rev != 4 || len(res.Events) != 0 {
				t.Fatalf("responses %d result %+v", len(resp.Responses), res)
			}
		})
	}
}

func TestTxnReadsOwnWrites(t *testing.T) {
	s := txnFixture(t)
	resp, res, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
		opGet("a", ""),
		opPut("a", "new"),
		opGet("a", ""),
		opPut("c", "c"),
		opGet("\x00", "\x00"),
		opDel("a", ""),
		opGet("a", ""),
		opGetReq(&pb.RangeRequest{Key: []byte("a"), Revision: 4}),
		opPutReq(&pb.PutRequest{Key: []byte("b"), Value: []byte("b2"), PrevKv: true}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Responses
	rangeOf := func(i int) []string { return keysOf(r[i].GetResponseRange().Kvs) }
	if got := rangeOf(0); !eqStrings(got, []string{"a=v2"}) {
		t.Errorf("read before write: %v", got)
	}
	if got := rangeOf(2); !eqStrings(got, []string{"a=new"}) {
		t.Errorf("read after put: %v", got)
	}
	if kv := r[2].GetResponseRange().Kvs[0]; kv.ModRevision != 5 || kv.Version != 3 || kv.Lease != 0 {
		t.Errorf("own write metadata: %s", fmtKV(kv))
	}
	if got := rangeOf(4); !eqStrings(got, []string{"a=new", "b=b", "c=c"}) {
		t.Errorf("range after puts: %v", got)
	}
	if got := rangeOf(6); len(got) != 0 {
		t.Errorf("read after delete: %v", got)
	}
	if got := rangeOf(7); !eqStrings(got, []string{"a=v2"}) {
		t.Errorf("read at the revision before the txn: %v", got)
	}
	dr := r[5].GetResponseDeleteRange()
	if dr.Deleted != 1 || len(dr.PrevKvs) != 1 || string(dr.PrevKvs[0].Value) != "new" {
		t.Errorf("delete prev_kvs should see the txn's put: %v", keysOf(dr.PrevKvs))
	}
	if pr := r[8].GetResponsePut(); pr == nil || fmtKV(pr.PrevKv) != `b="b" c4 m4 v1 l0` {
		t.Errorf("put prev_kv: %v", pr)
	}
	if r[0].GetResponseRange().Header.Revision != 4 || r[2].GetResponseRange().Header.Revision != 5 || r[1].GetResponsePut().Header.Revision != 5 {
		t.Errorf("sub-response header revisions %d %d %d, want 4 5 5", r[0].GetResponseRange().Header.Revision,
			r[2].GetResponseRange().Header.Revision, r[1].GetResponsePut().Header.Revision)
	}
	if resp.Header != nil {
		t.Errorf("top-level header should be left to the caller: %v", resp.Header)
	}
	want := []string{
		`PUT a="new" c2 m5 v3 l0 prev(a="v2" c2 m3 v2 l1)`,
		`PUT c="c" c5 m5 v1 l0`,
		`DELETE a="" c0 m5 v0 l0 prev(a="v2" c2 m3 v2 l1)`,
		`PUT b="b2" c4 m5 v2 l0 prev(b="b" c4 m4 v1 l0)`,
	}
	if res.Rev != 5 || !eqStrings(fmtEvents(res.Events), want) {
		t.Fatalf("result rev %d events\n%q\nwant\n%q", res.Rev, fmtEvents(res.Events), want)
	}
	if got := leaseKeys(s, 1); len(got) != 0 {
		t.Fatalf("lease 1 still has %v after the txn overwrote and deleted a", got)
	}
	// Events from the history agree with the Result and have sub-revision order.
	evs, _, err := s.Events(5, []byte("\x00"), []byte("\x00"), true, 0)
	if err != nil || !eqStrings(fmtEvents(evs), want) {
		t.Fatalf("history events %q err %v", fmtEvents(evs), err)
	}
}

func TestTxnNested(t *testing.T) {
	s := txnFixture(t)
	inner := &pb.TxnRequest{
		// Compares of nested txns see the state before the outer txn,
		// as in etcd: x does not exist yet there.
		Compare: []*pb.Compare{cmp("x", pb.Compare_VERSION, pb.Compare_EQUAL, 0)},
		Success: []*pb.RequestOp{opGet("x", ""), opPut("y", "inner")},
		Failure: []*pb.RequestOp{opPut("z", "wrong branch")},
	}
	innerFail := &pb.TxnRequest{
		Compare: []*pb.Compare{cmp("a", pb.Compare_VALUE, pb.Compare_EQUAL, "nope")},
		Success: []*pb.RequestOp{opPut("z", "wrong branch")},
		Failure: []*pb.RequestOp{opDel("b", ""), opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opGet("b", "")}})},
	}
	resp, res, err := s.Txn(&pb.TxnRequest{
		Compare: []*pb.Compare{cmp("a", pb.Compare_VERSION, pb.Compare_EQUAL, 2)},
		Success: []*pb.RequestOp{opPut("x", "outer"), opTxn(inner), opTxn(innerFail), opGet("\x00", "\x00")},
		Failure: []*pb.RequestOp{opPut("z", "wrong branch")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Succeeded || len(resp.Responses) != 4 {
		t.Fatalf("outer: %v", resp)
	}
	in := resp.Responses[1].GetResponseTxn()
	if in == nil || !in.Succeeded || len(in.Responses) != 2 {
		t.Fatalf("inner: %v", resp.Responses[1])
	}
	if got := keysOf(in.Responses[0].GetResponseRange().Kvs); !eqStrings(got, []string{"x=outer"}) {
		t.Fatalf("inner read should see the outer put: %v", got)
	}
	if in.Responses[1].GetResponsePut() == nil {
		t.Fatalf("inner put response: %v", in.Responses[1])
	}
	inF := resp.Responses[2].GetResponseTxn()
	if inF == nil || inF.Succeeded || len(inF.Responses) != 2 || inF.Responses[0].GetResponseDeleteRange().GetDeleted() != 1 {
		t.Fatalf("inner failure branch: %v", resp.Responses[2])
	}
	deepest := inF.Responses[1].GetResponseTxn()
	if deepest == nil || !deepest.Succeeded || len(deepest.Responses[0].GetResponseRange().Kvs) != 0 {
		t.Fatalf("deepest txn should succeed and see b deleted: %v", inF.Responses[1])
	}
	if got := keysOf(resp.Responses[3].GetResponseRange().Kvs); !eqStrings(got, []string{"a=v2", "x=outer", "y=inner"}) {
		t.Fatalf("final read: %v", got)
	}
	want := []string{`PUT x="outer" c5 m5 v1 l0`, `PUT y="inner" c5 m5 v1 l0`, `DELETE b="" c0 m5 v0 l0 prev(b="b" c4 m4 v1 l0)`}
	if res.Rev != 5 || !eqStrings(fmtEvents(res.Events), want) {
		t.Fatalf("result %d %q, want 5 %q", res.Rev, fmtEvents(res.Events), want)
	}
}

func TestTxnErrorsChangeNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		prep func(s *Store)
		req  *pb.TxnRequest
		err  error
	}{
		{"missing lease in later put", nil, &pb.TxnRequest{Success: []*pb.RequestOp{
			opPut("c", "1"), opDel("b", ""), opPutReq(&pb.PutRequest{Key: []byte("d"), Lease: 9}),
		}}, ErrLeaseNotFound},
		{"missing lease in nested put", nil, &pb.TxnRequest{Success: []*pb.RequestOp{
			opPut("c", "1"), opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPutReq(&pb.PutRequest{Key: []byte("d"), Lease: 9})}}),
		}}, ErrLeaseNotFound},
		{"ignore_value on missing key", nil, &pb.TxnRequest{Success: []*pb.RequestOp{
			opPut("c", "1"), opPutReq(&pb.PutRequest{Key: []byte("nope"), IgnoreValue: true}),
		}}, ErrKeyNotFound},
		// Passes the checks against the state before the txn (a exists)
		// but fails when run, after the txn deleted a: everything done
		// so far, lease detachment included, is undone. etcd's CheckTxn
		// rejects this shape as a duplicate key before it is proposed.
		{"ignore_lease after own delete", nil, &pb.TxnRequest{Success: []*pb.RequestOp{
			opPut("c", "1"), opDel("a", ""), opPutReq(&pb.PutRequest{Key: []byte("a"), IgnoreLease: true}),
		}}, ErrKeyNotFound},
		{"future revision read", nil, &pb.TxnRequest{Success: []*pb.RequestOp{
			opPut("c", "1"), opGetReq(&pb.RangeRequest{Key: []byte("a"), Revision: 5}),
		}}, ErrFutureRev},
		{"compacted read", func(s *Store) {
			if err := s.Compact(3); err != nil {
				panic(err)
			}
		}, &pb.TxnRequest{Success: []*pb.RequestOp{
			opPut("c", "1"), opGetReq(&pb.RangeRequest{Key: []byte("a"), Revision: 2}),
		}}, ErrCompacted},
		// etcd 3.5 checks every put on the path before any range, so the
		// later put's error wins over the earlier range's.
		{"put error reported before range error", nil, &pb.TxnRequest{Success: []*pb.RequestOp{
			opGetReq(&pb.RangeRequest{Key: []byte("a"), Revision: 99}), opPutReq(&pb.PutRequest{Key: []byte("d"), Lease: 9}),
		}}, ErrLeaseNotFound},
		{"empty compare key", nil, &pb.TxnRequest{Compare: []*pb.Compare{{}}, Success: []*pb.RequestOp{opPut("c", "1")}}, ErrEmptyKey},
		{"empty op", nil, &pb.TxnRequest{Success: []*pb.RequestOp{opPut("c", "1"), {}}}, ErrKeyNotFound},
		{"empty key in the branch not taken", nil, &pb.TxnRequest{
			Success: []*pb.RequestOp{opPut("c", "1")},
			Failure: []*pb.RequestOp{opPut("", "1")},
		}, ErrEmptyKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := txnFixture(t)
			if tc.prep != nil {
				tc.prep(s)
			}
			before := stateOf(t, s)
			_, res, err := s.Txn(tc.req)
			wantErr(t, "txn", err, tc.err)
			sameState(t, "failed txn", before, stateOf(t, s))
			if res.Rev != before.rev || len(res.Events) != 0 {
				t.Fatalf("failed txn result %+v", res)
			}
			if got := keysOf(get(t, s, rangeReq("\x00", "\x00")).Kvs); !eqStrings(got, []string{"a=v2", "b=b"}) {
				t.Fatalf("keys after failed txn: %v", got)
			}
			if got := leaseKeys(s, 1); !eqStrings(got, []string{"a"}) {
				t.Fatalf("lease 1 keys after failed txn: %v", got)
			}
			evs, _, err := s.Events(s.CompactRev()+1, []byte("\x00"), []byte("\x00"), false, 0)
			if err != nil || len(evs) == 0 || evs[len(evs)-1].Kv.ModRevision != before.rev {
				t.Fatalf("history after failed txn: %v %v", fmtEvents(evs), err)
			}
			// The store still works normally afterwards.
			if res := mustPut(t, s, "c", "ok"); res.Rev != before.rev+1 {
				t.Fatalf("next put at %d, want %d", res.Rev, before.rev+1)
			}
		})
	}
	t.Run("error in the branch not taken is ignored", func(t *testing.T) {
		s := txnFixture(t)
		resp, res, err := s.Txn(&pb.TxnRequest{
			Compare: []*pb.Compare{cmp("a", pb.Compare_VERSION, pb.Compare_EQUAL, 2)},
			Success: []*pb.RequestOp{opPut("c", "1")},
			Failure: []*pb.RequestOp{opPutReq(&pb.PutRequest{Key: []byte("d"), Lease: 9})},
		})
		if err != nil || !resp.Succeeded || res.Rev != 5 {
			t.Fatalf("resp %v res %+v err %v", resp, res, err)
		}
	})
}

func TestTxnSameKeyTwice(t *testing.T) {
	// CheckTxn rejects this before proposal, but the store itself must
	// still apply it deterministically: two versions in one revision.
	s := txnFixture(t)
	_, res, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("k", "1"), opPut("k", "2")}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`PUT k="1" c5 m5 v1 l0`, `PUT k="2" c5 m5 v2 l0`}
	if !eqStrings(fmtEvents(res.Events), want) {
		t.Fatalf("events %q want %q", fmtEvents(res.Events), want)
	}
	if kv := get(t, s, rangeReq("k", "")).Kvs[0]; string(kv.Value) != "2" || kv.Version != 2 {
		t.Fatalf("k = %s", fmtKV(kv))
	}
	evs, _, _ := s.Events(5, []byte("k"), nil, true, 1)
	if len(evs) != 2 || evs[0].Type != mvccpb.PUT {
		t.Fatalf("events of one revision split: %q", fmtEvents(evs))
	}
}

func TestCheckTxn(t *testing.T) {
	put := opPut
	del := func(k, end string) *pb.RequestOp {
		r := &pb.DeleteRangeRequest{Key: []byte(k)}
		if end != "" {
			r.RangeEnd = []byte(end)
		}
		return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: r}}
	}
	txn := func(succ, fail []*pb.RequestOp) *pb.RequestOp {
		return opTxn(&pb.TxnRequest{Success: succ, Failure: fail})
	}
	ops := func(o ...*pb.RequestOp) []*pb.RequestOp { return o }
	c := cmp("a", pb.Compare_VERSION, pb.Compare_EQUAL, 0)
	for _, tc := range []struct {
		name   string
		req    *pb.TxnRequest
		maxOps int
		err    error
	}{
		{"empty", &pb.TxnRequest{}, 2, nil},
		{"at limit", &pb.TxnRequest{Success: ops(put("a", ""), put("b", ""))}, 2, nil},
		{"too many success ops", &pb.TxnRequest{Success: ops(put("a", ""), put("b", ""), put("c", ""))}, 2, ErrTooManyOps},
		{"too many failure ops", &pb.TxnRequest{Failure: ops(put("a", ""), put("b", ""), put("c", ""))}, 2, ErrTooManyOps},
		{"too many compares", &pb.TxnRequest{Compare: []*pb.Compare{c, c, c}}, 2, ErrTooManyOps},
		{"nested gets what is left", &pb.TxnRequest{Success: ops(put("a", ""), txn(ops(put("b", ""), put("c", "")), nil))}, 4, nil},
		{"nested over what is left", &pb.TxnRequest{Success: ops(put("a", ""), txn(ops(put("b", ""), put("c", "")), nil))}, 3, ErrTooManyOps},
		{"distinct puts", &pb.TxnRequest{Success: ops(put("a", ""), put("b", ""))}, 8, nil},
		{"same put twice", &pb.TxnRequest{Success: ops(put("a", ""), put("a", ""))}, 8, ErrDuplicateKey},
		{"same key in both branches", &pb.TxnRequest{Success: ops(put("a", "")), Failure: ops(put("a", ""))}, 8, nil},
		{"put and delete of it", &pb.TxnRequest{Success: ops(del("a", ""), put("a", ""))}, 8, ErrDuplicateKey},
		{"put then delete of it", &pb.TxnRequest{Success: ops(put("a", ""), del("a", ""))}, 8, ErrDuplicateKey},
		{"put inside deleted range", &pb.TxnRequest{Success: ops(del("a", "c"), put("b", ""))}, 8, ErrDuplicateKey},
		{"put at range end", &pb.TxnRequest{Success: ops(del("a", "c"), put("c", ""))}, 8, nil},
		// etcd's interval check does not see from-key deletes.
		{"put after from-key delete", &pb.TxnRequest{Success: ops(del("a", "\x00"), put("b", ""))}, 8, nil},
		{"deletes may overlap", &pb.TxnRequest{Success: ops(del("a", "c"), del("b", ""))}, 8, nil},
		{"nested put of outer put", &pb.TxnRequest{Success: ops(put("a", ""), txn(ops(put("a", "")), nil))}, 8, ErrDuplicateKey},
		{"nested put in outer delete", &pb.TxnRequest{Success: ops(del("a", "z"), txn(nil, ops(put("b", ""))))}, 8, ErrDuplicateKey},
		{"outer put in nested delete", &pb.TxnRequest{Success: ops(txn(ops(del("a", "")), nil), put("a", ""))}, 8, ErrDuplicateKey},
		{"nested then and else may share", &pb.TxnRequest{Success: ops(txn(ops(put("a", "")), ops(put("a", ""))))}, 8, nil},
		{"two nested txns put one key", &pb.TxnRequest{Success: ops(txn(ops(put("a", "")), nil), txn(ops(put("a", "")), nil))}, 8, ErrDuplicateKey},
		{"nested else duplicates an earlier sibling", &pb.TxnRequest{Success: ops(txn(ops(put("a", "")), nil), txn(nil, ops(put("a", ""))))}, 8, ErrDuplicateKey},
		{"deep duplicate", &pb.TxnRequest{Success: ops(put("k", ""), txn(ops(txn(ops(put("k", "")), nil)), nil))}, 8, ErrDuplicateKey},
		{"empty key", &pb.TxnRequest{Success: ops(put("", ""))}, 8, ErrEmptyKey},
		{"empty op", &pb.TxnRequest{Success: ops(&pb.RequestOp{})}, 8, ErrKeyNotFound},
		{"nested empty op", &pb.TxnRequest{Failure: ops(txn(ops(&pb.RequestOp{}), nil))}, 8, ErrKeyNotFound},
		{"bad sort option", &pb.TxnRequest{Success: ops(opGetReq(&pb.RangeRequest{Key: []byte("a"), SortTarget: 5}))}, 8, ErrInvalidSortOption},
		{"empty compare key", &pb.TxnRequest{Compare: []*pb.Compare{{}}}, 8, ErrEmptyKey},
		{"ignore_value with value", &pb.TxnRequest{Success: ops(opPutReq(&pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true}))}, 8, ErrValueProvided},
		{"ignore_lease with lease", &pb.TxnRequest{Failure: ops(opPutReq(&pb.PutRequest{Key: []byte("a"), Lease: 1, IgnoreLease: true}))}, 8, ErrLeaseProvided},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTxn(tc.req, tc.maxOps)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			wantErr(t, "CheckTxn", err, tc.err)
		})
	}
}

func TestTxnNilInnerRequests(t *testing.T) {
	for name, op := range map[string]*pb.RequestOp{
		"nil range":  {Request: &pb.RequestOp_RequestRange{}},
		"nil put":    {Request: &pb.RequestOp_RequestPut{}},
		"nil delete": {Request: &pb.RequestOp_RequestDeleteRange{}},
		"nil txn":    {Request: &pb.RequestOp_RequestTxn{}},
		"empty key":  opDel("", ""),
	} {
		t.Run(name, func(t *testing.T) {
			s := txnFixture(t)
			before := stateOf(t, s)
			if _, _, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("c", "1"), op}}); err == nil {
				t.Fatal("accepted")
			}
			if err := CheckTxn(&pb.TxnRequest{Success: []*pb.RequestOp{op}}, 8); err == nil {
				t.Fatal("CheckTxn accepted")
			}
			sameState(t, "rejected txn", before, stateOf(t, s))
		})
	}
}
