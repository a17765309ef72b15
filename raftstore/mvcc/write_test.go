package mvcc

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// stateOf captures everything observable, to assert that failed writes
// change nothing.
type state struct {
	rev, compactRev, size int64
	hash                  uint32
	leases                map[int64][]string
}

func stateOf(t *testing.T, s *Store) state {
	t.Helper()
	h, _, _, err := s.HashKV(0)
	if err != nil {
		t.Fatal(err)
	}
	st := state{rev: s.Rev(), compactRev: s.CompactRev(), size: s.Size(), hash: h, leases: map[int64][]string{}}
	for id := int64(1); id <= 3; id++ {
		for _, k := range s.LeaseKeys(id) {
			st.leases[id] = append(st.leases[id], string(k))
		}
	}
	return st
}

func sameState(t *testing.T, what string, a, b state) {
	t.Helper()
	if a.rev != b.rev || a.compactRev != b.compactRev || a.size != b.size || a.hash != b.hash || len(a.leases) != len(b.leases) {
		t.Fatalf("%s changed the store: before %+v after %+v", what, a, b)
	}
	for id, ks := range a.leases {
		if !eqStrings(ks, b.leases[id]) {
			t.Fatalf("%s changed lease %d keys: %v -> %v", what, id, ks, b.leases[id])
		}
	}
}

func leaseKeys(s *Store, id int64) []string {
	var out []string
	for _, k := range s.LeaseKeys(id) {
		out = append(out, string(k))
	}
	return out
}

func TestPut(t *testing.T) {
	exists := func(id int64) bool { return id >= 1 && id <= 3 }
	for _, tc := range []struct {
		name  string
		setup []*pb.PutRequest
		req   *pb.PutRequest
		err   error
		want  string // the key's KeyValue afterwards
		prev  string // PrevKv in the response
	}{
		{"create", nil, putReq("k", "v"), nil, `k="v" c2 m2 v1 l0`, "<nil>"},
		{"update without prev_kv", []*pb.PutRequest{putReq("k", "v")}, putReq("k", "w"), nil, `k="w" c2 m3 v2 l0`, "<nil>"},
		{"prev_kv", []*pb.PutRequest{putReq("k", "v")}, &pb.PutRequest{Key: []byte("k"), Value: []byte("w"), PrevKv: true},
			nil, `k="w" c2 m3 v2 l0`, `k="v" c2 m2 v1 l0`},
		{"prev_kv of absent key", nil, &pb.PutRequest{Key: []byte("k"), Value: []byte("w"), PrevKv: true}, nil, `k="w" c2 m2 v1 l0`, "<nil>"},
		{"empty value", nil, putReq("k", ""), nil, `k="" c2 m2 v1 l0`, "<nil>"},
		{"with lease", nil, &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 2}, nil, `k="v" c2 m2 v1 l2`, "<nil>"},
		{"missing lease", []*pb.PutRequest{putReq("k", "v")}, &pb.PutRequest{Key: []byte("k"), Value: []byte("w"), Lease: 9},
			ErrLeaseNotFound, `k="v" c2 m2 v1 l0`, ""},
		{"ignore_value keeps value, takes new lease", []*pb.PutRequest{putReq("k", "v")},
			&pb.PutRequest{Key: []byte("k"), IgnoreValue: true, Lease: 1}, nil, `k="v" c2 m3 v2 l1`, "<nil>"},
		{"ignore_value on absent key", nil, &pb.PutRequest{Key: []byte("k"), IgnoreValue: true}, ErrKeyNotFound, "", ""},
		{"ignore_value on deleted key", []*pb.PutRequest{putReq("k", "v"), nil}, &pb.PutRequest{Key: []byte("k"), IgnoreValue: true}, ErrKeyNotFound, "", ""},
		{"ignore_value with value", []*pb.PutRequest{putReq("k", "v")}, &pb.PutRequest{Key: []byte("k"), Value: []byte("x"), IgnoreValue: true},
			ErrValueProvided, `k="v" c2 m2 v1 l0`, ""},
		{"ignore_lease keeps lease", []*pb.PutRequest{{Key: []byte("k"), Value: []byte("v"), Lease: 3}},
			&pb.PutRequest{Key: []byte("k"), Value: []byte("w"), IgnoreLease: true, PrevKv: true}, nil, `k="w" c2 m3 v2 l3`, `k="v" c2 m2 v1 l3`},
		{"ignore_lease on absent key", nil, &pb.PutRequest{Key: []byte("k"), Value: []byte("w"), IgnoreLease: true}, ErrKeyNotFound, "", ""},
		{"ignore_lease with lease", []*pb.PutRequest{putReq("k", "v")}, &pb.PutRequest{Key: []byte("k"), IgnoreLease: true, Lease: 1},
			ErrLeaseProvided, `k="v" c2 m2 v1 l0`, ""},
		{"missing lease before missing key", nil, &pb.PutRequest{Key: []byte("k"), IgnoreValue: true, Lease: 9}, ErrLeaseNotFound, "", ""},
		{"empty key", nil, &pb.PutRequest{Value: []byte("v")}, ErrEmptyKey, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{LeaseExists: exists})
			for _, r := range tc.setup {
				if r == nil {
					mustDel(t, s, "k", "")
					continue
				}
				if _, _, err := s.Put(r); err != nil {
					t.Fatal(err)
				}
			}
			before := stateOf(t, s)
			resp, res, err := s.Put(tc.req)
			if tc.err != nil {
				wantErr(t, "put", err, tc.err)
				sameState(t, "failed put", before, stateOf(t, s))
				if res.Rev != before.rev || len(res.Events) != 0 {
					t.Fatalf("failed put result %+v", res)
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				if got := fmtKV(resp.PrevKv); got != tc.prev {
					t.Fatalf("prev_kv %s, want %s", got, tc.prev)
				}
				if res.Rev != before.rev+1 || len(res.Events) != 1 || res.Events[0].Type != mvccpb.PUT {
					t.Fatalf("result %+v, want one PUT at %d", res, before.rev+1)
				}
				if got := fmtKV(res.Events[0].Kv); got != tc.want {
					t.Fatalf("event kv %s, want %s", got, tc.want)
				}
			}
			got := "<nil>"
			if kvs := get(t, s, rangeReq("k", "")).Kvs; len(kvs) == 1 {
				got = fmtKV(kvs[0])
			}
			if tc.want == "" {
				tc.want = "<nil>"
			}
			if got != tc.want {
				t.Fatalf("key afterwards %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPutCopiesRequestBytes(t *testing.T) {
	s := New(Options{})
	k, v := []byte("key"), []byte("value")
	if _, _, err := s.Put(&pb.PutRequest{Key: k, Value: v}); err != nil {
		t.Fatal(err)
	}
	k[0], v[0] = 'X', 'X'
	kvs := get(t, s, rangeReq("key", "")).Kvs
	if len(kvs) != 1 || string(kvs[0].Value) != "value" {
		t.Fatalf("store aliased request bytes: %v", keysOf(kvs))
	}
}

func TestDeleteRange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		key, end string
		deleted  []string
	}{
		{"single", "b", "", []string{"b"}},
		{"absent", "zz", "", nil},
		{"range", "a", "c", []string{"a", "b"}},
		{"from key", "b", "\x00", []string{"b", "c", "foo", "foo/bar"}},
		{"all", "\x00", "\x00", []string{"a", "b", "c", "foo", "foo/bar"}},
		{"prefix", "foo", "fop", []string{"foo", "foo/bar"}},
		{"already deleted key", "d", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := rangeFixture(t)
			before := s.Rev()
			r := &pb.DeleteRangeRequest{Key: []byte(tc.key), PrevKv: true}
			if tc.end != "" {
				r.RangeEnd = []byte(tc.end)
			}
			want := get(t, s, rangeReq(tc.key, tc.end)).Kvs
			resp, res, err := s.DeleteRange(r)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Deleted != int64(len(tc.deleted)) || len(resp.PrevKvs) != len(want) {
				t.Fatalf("deleted %d prev %v, want %v", resp.Deleted, keysOf(resp.PrevKvs), tc.deleted)
			}
			for i := range want {
				if !kvEqual(resp.PrevKvs[i], want[i]) {
					t.Fatalf("prev kv %d: %s want %s", i, fmtKV(resp.PrevKvs[i]), fmtKV(want[i]))
				}
			}
			if len(tc.deleted) == 0 {
				if res.Rev != before || len(res.Events) != 0 || s.Rev() != before {
					t.Fatalf("deleting nothing took a revision: %+v", res)
				}
				return
			}
			if res.Rev != before+1 || len(res.Events) != len(tc.deleted) {
				t.Fatalf("result rev %d with %d events, want %d and %d", res.Rev, len(res.Events), before+1, len(tc.deleted))
			}
			for i, ev := range res.Events {
				if ev.Type != mvccpb.DELETE || string(ev.Kv.Key) != tc.deleted[i] || ev.Kv.ModRevision != before+1 ||
					ev.Kv.Version != 0 || ev.Kv.CreateRevision != 0 || ev.Kv.Value != nil || !kvEqual(ev.PrevKv, want[i]) {
					t.Fatalf("event %d: %s", i, fmtEvent(ev))
				}
			}
			if left := get(t, s, rangeReq(tc.key, tc.end)); left.Count != 0 {
				t.Fatalf("keys left: %v", keysOf(left.Kvs))
			}
		})
	}
	t.Run("without prev_kv", func(t *testing.T) {
		s := rangeFixture(t)
		resp, _, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a")})
		if err != nil || resp.Deleted != 1 || resp.PrevKvs != nil {
			t.Fatalf("resp %v err %v", resp, err)
		}
	})
	t.Run("empty key", func(t *testing.T) {
		s := rangeFixture(t)
		_, _, err := s.DeleteRange(&pb.DeleteRangeRequest{})
		wantErr(t, "delete", err, ErrEmptyKey)
	})
}

func TestLeaseAttachments(t *testing.T) {
	s := New(Options{})
	put := func(k string, lease int64, ignoreLease bool) {
		t.Helper()
		if _, _, err := s.Put(&pb.PutRequest{Key: []byte(k), Value: []byte("v"), Lease: lease, IgnoreLease: ignoreLease}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, id int64, want ...string) {
		t.Helper()
		if got := leaseKeys(s, id); !eqStrings(got, want) {
			t.Fatalf("%s: lease %d keys %v, want %v", step, id, got, want)
		}
	}
	put("b", 1, false)
	put("a", 1, false)
	put("c", 2, false)
	check("attach", 1, "a", "b")
	check("attach", 2, "c")
	put("a", 2, false)
	check("move", 1, "b")
	check("move", 2, "a", "c")
	put("b", 0, true)
	check("ignore_lease keeps", 1, "b")
	put("b", 0, false)
	check("put without lease detaches", 1)
	mustDel(t, s, "c", "")
	check("delete detaches", 2, "a")
	check("unknown lease", 7)

	res := s.DeleteKeys([][]byte{[]byte("zz"), []byte("a"), []byte("b"), []byte("a"), []byte("c")})
	if res.Rev != s.Rev() || len(res.Events) != 2 || string(res.Events[0].Kv.Key) != "a" || string(res.Events[1].Kv.Key) != "b" {
		t.Fatalf("DeleteKeys: %+v %v", res, fmtEvents(res.Events))
	}
	if res.Events[0].Kv.ModRevision != res.Events[1].Kv.ModRevision {
		t.Fatalf("DeleteKeys used two revisions: %v", fmtEvents(res.Events))
	}
	check("DeleteKeys detaches", 2)
	before := s.Rev()
	if res := s.DeleteKeys([][]byte{[]byte("a"), []byte("nope")}); res.Rev != before || len(res.Events) != 0 {
		t.Fatalf("DeleteKeys of absent keys took a revision: %+v", res)
	}
}

func TestWriteRevisions(t *testing.T) {
	s := New(Options{})
	if s.Rev() != 1 || s.CompactRev() != 0 {
		t.Fatalf("new store at %d/%d", s.Rev(), s.CompactRev())
	}
	steps := []struct {
		name string
		do   func() Result
		rev  int64
	}{
		{"put", func() Result { return mustPut(t, s, "a", "1") }, 2},
		{"put again", func() Result { return mustPut(t, s, "a", "2") }, 3},
		{"delete absent", func() Result {
			_, r, _ := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("zz")})
			return r
		}, 3},
		{"read-only txn", func() Result {
			_, r, _ := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opGet("a", "")}})
			return r
		}, 3},
		{"txn deleting nothing", func() Result {
			_, r, _ := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opDel("zz", "")}})
			return r
		}, 3},
		{"txn whose taken branch only reads", func() Result {
			_, r, _ := s.Txn(&pb.TxnRequest{
				Compare: []*pb.Compare{cmp("a", pb.Compare_VERSION, pb.Compare_EQUAL, 9)},
				Success: []*pb.RequestOp{opPut("a", "x")},
				Failure: []*pb.RequestOp{opGet("a", "")},
			})
			return r
		}, 3},
		{"delete", func() Result {
			_, r, _ := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a")})
			return r
		}, 4},
		{"txn with three writes", func() Result {
			_, r, _ := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "1"), opPut("b", "1"), opDel("a", "")}})
			return r
		}, 5},
	}
	for _, st := range steps {
		res := st.do()
		if res.Rev != st.rev || s.Rev() != st.rev {
			t.Fatalf("%s: result rev %d store rev %d, want %d", st.name, res.Rev, s.Rev(), st.rev)
		}
	}
}
