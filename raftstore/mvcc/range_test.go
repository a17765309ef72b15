package mvcc

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// rangeFixture builds, revision by revision:
//
//	2 a=3   3 b=1   4 c=4   5 a=5   6 foo=2   7 foo/bar=0   8 d=9   9 del d
//
// so that keys, values, versions, create and mod revisions all order
// differently.
func rangeFixture(t *testing.T) *Store {
	t.Helper()
	s := New(Options{})
	for _, kv := range [][2]string{{"a", "3"}, {"b", "1"}, {"c", "4"}, {"a", "5"}, {"foo", "2"}, {"foo/bar", "0"}, {"d", "9"}} {
		mustPut(t, s, kv[0], kv[1])
	}
	mustDel(t, s, "d", "")
	if s.Rev() != 9 {
		t.Fatalf("fixture at rev %d, want 9", s.Rev())
	}
	return s
}

func TestRangeForms(t *testing.T) {
	s := rangeFixture(t)
	for _, tc := range []struct {
		name     string
		key, end string
		rev      int64
		want     []string
	}{
		{"single key", "a", "", 0, []string{"a=5"}},
		{"single missing key", "zz", "", 0, nil},
		{"single deleted key", "d", "", 0, nil},
		{"half open range", "a", "c", 0, []string{"a=5", "b=1"}},
		{"range end excluded", "b", "foo", 0, []string{"b=1", "c=4"}},
		{"from key", "b", "\x00", 0, []string{"b=1", "c=4", "foo=2", "foo/bar=0"}},
		{"all keys", "\x00", "\x00", 0, []string{"a=5", "b=1", "c=4", "foo=2", "foo/bar=0"}},
		{"prefix", "foo", "fop", 0, []string{"foo=2", "foo/bar=0"}},
		{"prefix of subtree", "foo/", "foo0", 0, []string{"foo/bar=0"}},
		{"end before key", "c", "a", 0, nil},
		{"end equal key", "c", "c", 0, nil},
		{"old revision", "\x00", "\x00", 4, []string{"a=3", "b=1", "c=4"}},
		{"old revision sees later deleted key", "d", "", 8, []string{"d=9"}},
		{"revision 1 is empty", "\x00", "\x00", 1, nil},
		{"current revision explicitly", "a", "", 9, []string{"a=5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rangeReq(tc.key, tc.end)
			r.Revision = tc.rev
			resp := get(t, s, r)
			if got := keysOf(resp.Kvs); !eqStrings(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if resp.Count != int64(len(tc.want)) || resp.More {
				t.Fatalf("count %d more %v, want %d false", resp.Count, resp.More, len(tc.want))
			}
		})
	}
}

func TestRangeMetadata(t *testing.T) {
	s := rangeFixture(t)
	for _, tc := range []struct {
		key              string
		rev              int64
		create, mod, ver int64
	}{
		{"a", 0, 2, 5, 2},
		{"a", 4, 2, 2, 1},
		{"foo/bar", 0, 7, 7, 1},
		{"d", 8, 8, 8, 1},
	} {
		r := rangeReq(tc.key, "")
		r.Revision = tc.rev
		kvs := get(t, s, r).Kvs
		if len(kvs) != 1 {
			t.Fatalf("%s@%d: %d kvs", tc.key, tc.rev, len(kvs))
		}
		if kv := kvs[0]; kv.CreateRevision != tc.create || kv.ModRevision != tc.mod || kv.Version != tc.ver {
			t.Errorf("%s@%d: got %s, want create %d mod %d version %d", tc.key, tc.rev, fmtKV(kv), tc.create, tc.mod, tc.ver)
		}
	}
	// A key re-created after a delete starts a new generation.
	mustPut(t, s, "d", "again")
	kv := get(t, s, rangeReq("d", "")).Kvs[0]
	if kv.CreateRevision != 10 || kv.ModRevision != 10 || kv.Version != 1 {
		t.Fatalf("re-created key: %s, want create 10 mod 10 version 1", fmtKV(kv))
	}
}

func TestRangeLimitSortFilter(t *testing.T) {
	s := rangeFixture(t)
	all := func() *pb.RangeRequest { return rangeReq("\x00", "\x00") }
	for _, tc := range []struct {
		name  string
		mod   func(r *pb.RangeRequest)
		want  []string
		count int64
		more  bool
	}{
		{"limit below total", func(r *pb.RangeRequest) { r.Limit = 2 }, []string{"a=5", "b=1"}, 5, true},
		{"limit equal total", func(r *pb.RangeRequest) { r.Limit = 5 }, []string{"a=5", "b=1", "c=4", "foo=2", "foo/bar=0"}, 5, false},
		{"limit above total", func(r *pb.RangeRequest) { r.Limit = 6 }, []string{"a=5", "b=1", "c=4", "foo=2", "foo/bar=0"}, 5, false},
		{"negative limit is no limit", func(r *pb.RangeRequest) { r.Limit = -1 }, []string{"a=5", "b=1", "c=4", "foo=2", "foo/bar=0"}, 5, false},
		{"sort key none", func(r *pb.RangeRequest) { r.SortTarget = pb.RangeRequest_KEY }, []string{"a=5", "b=1", "c=4", "foo=2", "foo/bar=0"}, 5, false},
		{"sort key descend", func(r *pb.RangeRequest) { r.SortOrder = pb.RangeRequest_DESCEND }, []string{"foo/bar=0", "foo=2", "c=4", "b=1", "a=5"}, 5, false},
		{"sort key descend limit", func(r *pb.RangeRequest) { r.SortOrder = pb.RangeRequest_DESCEND; r.Limit = 2 }, []string{"foo/bar=0", "foo=2"}, 5, true},
		{"sort value none means ascend", func(r *pb.RangeRequest) { r.SortTarget = pb.RangeRequest_VALUE }, []string{"foo/bar=0", "b=1", "foo=2", "c=4", "a=5"}, 5, false},
		{"sort value descend", func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder = pb.RangeRequest_VALUE, pb.RangeRequest_DESCEND
		}, []string{"a=5", "c=4", "foo=2", "b=1", "foo/bar=0"}, 5, false},
		{"sort mod ascend", func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder = pb.RangeRequest_MOD, pb.RangeRequest_ASCEND
		}, []string{"b=1", "c=4", "a=5", "foo=2", "foo/bar=0"}, 5, false},
		{"sort mod descend limit", func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder, r.Limit = pb.RangeRequest_MOD, pb.RangeRequest_DESCEND, 3
		}, []string{"foo/bar=0", "foo=2", "a=5"}, 5, true},
		{"sort create descend", func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder = pb.RangeRequest_CREATE, pb.RangeRequest_DESCEND
		}, []string{"foo/bar=0", "foo=2", "c=4", "b=1", "a=5"}, 5, false},
		{"sort version descend keeps key order on ties", func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder = pb.RangeRequest_VERSION, pb.RangeRequest_DESCEND
		}, []string{"a=5", "b=1", "c=4", "foo=2", "foo/bar=0"}, 5, false},
		{"min mod", func(r *pb.RangeRequest) { r.MinModRevision = 5 }, []string{"a=5", "foo=2", "foo/bar=0"}, 5, false},
		{"max mod", func(r *pb.RangeRequest) { r.MaxModRevision = 4 }, []string{"b=1", "c=4"}, 5, false},
		{"min create", func(r *pb.RangeRequest) { r.MinCreateRevision = 4 }, []string{"c=4", "foo=2", "foo/bar=0"}, 5, false},
		{"max create", func(r *pb.RangeRequest) { r.MaxCreateRevision = 3 }, []string{"a=5", "b=1"}, 5, false},
		{"mod window", func(r *pb.RangeRequest) { r.MinModRevision, r.MaxModRevision = 4, 6 }, []string{"a=5", "c=4", "foo=2"}, 5, false},
		// etcd filters after fetching everything: More says whether the
		// filtered list was cut, Count stays the total in range.
		{"filter then limit cuts", func(r *pb.RangeRequest) { r.MinModRevision, r.Limit = 5, 1 }, []string{"a=5"}, 5, true},
		{"filter then limit fits", func(r *pb.RangeRequest) { r.MinModRevision, r.Limit = 5, 3 }, []string{"a=5", "foo=2", "foo/bar=0"}, 5, false},
		{"filter and sort", func(r *pb.RangeRequest) {
			r.MaxCreateRevision, r.SortTarget, r.SortOrder = 4, pb.RangeRequest_VALUE, pb.RangeRequest_ASCEND
		}, []string{"b=1", "c=4", "a=5"}, 5, false},
		// etcd quirk: with sort order NONE nothing forces a full fetch,
		// so only the first limit+1 keys (by key) are sorted by the target.
		{"sort target without order sorts the limit+1 prefix", func(r *pb.RangeRequest) {
			r.SortTarget, r.Limit = pb.RangeRequest_VALUE, 2
		}, []string{"b=1", "c=4"}, 5, true},
		{"count only", func(r *pb.RangeRequest) { r.CountOnly = true }, nil, 5, false},
		{"count only with limit", func(r *pb.RangeRequest) { r.CountOnly, r.Limit = true, 1 }, nil, 5, false},
		{"count only at old revision", func(r *pb.RangeRequest) { r.CountOnly, r.Revision = true, 3 }, nil, 2, false},
		{"limit at old revision", func(r *pb.RangeRequest) { r.Limit, r.Revision = 1, 4 }, []string{"a=3"}, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := all()
			tc.mod(r)
			resp := get(t, s, r)
			if got := keysOf(resp.Kvs); !eqStrings(got, tc.want) || resp.Count != tc.count || resp.More != tc.more {
				t.Fatalf("got %v count %d more %v, want %v count %d more %v", got, resp.Count, resp.More, tc.want, tc.count, tc.more)
			}
		})
	}
}

func TestRangeKeysOnlyDoesNotTouchStore(t *testing.T) {
	s := rangeFixture(t)
	r := rangeReq("a", "c")
	r.KeysOnly = true
	resp := get(t, s, r)
	if len(resp.Kvs) != 2 || resp.Kvs[0].Value != nil || resp.Kvs[1].Value != nil || resp.Kvs[0].Version != 2 {
		t.Fatalf("keys only: %v", keysOf(resp.Kvs))
	}
	// Mutating a response must not leak into the store.
	resp.Kvs[0].Version = 99
	if kv := get(t, s, rangeReq("a", "")).Kvs[0]; string(kv.Value) != "5" || kv.Version != 2 {
		t.Fatalf("store changed by response mutation: %s", fmtKV(kv))
	}
}

func TestRangeRevisionErrors(t *testing.T) {
	s := rangeFixture(t)
	if err := s.Compact(4); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rev  int64
		err  error
		want []string
	}{
		{"below compaction", 3, ErrCompacted, nil},
		{"at compaction", 4, nil, []string{"a=3", "b=1", "c=4"}},
		{"after compaction", 5, nil, []string{"a=5", "b=1", "c=4"}},
		{"current", 9, nil, []string{"a=5", "b=1", "c=4", "foo=2", "foo/bar=0"}},
		{"future", 10, ErrFutureRev, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rangeReq("\x00", "\x00")
			r.Revision = tc.rev
			resp, err := s.Range(r)
			if tc.err != nil {
				wantErr(t, "range", err, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := keysOf(resp.Kvs); !eqStrings(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("count only below compaction", func(t *testing.T) {
		_, err := s.Range(&pb.RangeRequest{Key: []byte("a"), CountOnly: true, Revision: 2})
		wantErr(t, "count only", err, ErrCompacted)
	})
}

func TestRangeRejectsMalformed(t *testing.T) {
	s := rangeFixture(t)
	_, err := s.Range(&pb.RangeRequest{})
	wantErr(t, "empty key", err, ErrEmptyKey)
	// An unknown sort order is no sort, as in etcd; an unknown target is
	// rejected (etcd 3.4 panics on it).
	if resp := get(t, s, &pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), SortOrder: 7, SortTarget: pb.RangeRequest_VALUE, Limit: 2}); !eqStrings(keysOf(resp.Kvs), []string{"a=5", "b=1"}) || !resp.More {
		t.Fatalf("unknown sort order: %v more %v", keysOf(resp.Kvs), resp.More)
	}
	_, err = s.Range(&pb.RangeRequest{Key: []byte("a"), SortTarget: 9})
	wantErr(t, "bad sort target", err, ErrInvalidSortOption)
}
