package mvcc

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// historyFixture builds:
//
//	2 a=1   3 a=2   4 del a   5 b=1   6 txn{c=1, d=1, b=2}   7 a=3   8 del c
func historyFixture(t *testing.T) *Store {
	t.Helper()
	s := New(Options{})
	mustPut(t, s, "a", "1")
	mustPut(t, s, "a", "2")
	mustDel(t, s, "a", "")
	mustPut(t, s, "b", "1")
	if _, _, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("c", "1"), opPut("d", "1"), opPut("b", "2")}}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "a", "3")
	mustDel(t, s, "c", "")
	return s
}

func TestEvents(t *testing.T) {
	s := historyFixture(t)
	all := []string{
		`PUT a="1" c2 m2 v1 l0`,
		`PUT a="2" c2 m3 v2 l0 prev(a="1" c2 m2 v1 l0)`,
		`DELETE a="" c0 m4 v0 l0 prev(a="2" c2 m3 v2 l0)`,
		`PUT b="1" c5 m5 v1 l0`,
		`PUT c="1" c6 m6 v1 l0`,
		`PUT d="1" c6 m6 v1 l0`,
		`PUT b="2" c5 m6 v2 l0 prev(b="1" c5 m5 v1 l0)`,
		`PUT a="3" c7 m7 v1 l0`,
		`DELETE c="" c0 m8 v0 l0 prev(c="1" c6 m6 v1 l0)`,
	}
	for _, tc := range []struct {
		name     string
		from     int64
		key, end string
		max      int
		want     []string
		next     int64
	}{
		{"everything", 1, "\x00", "\x00", 0, all, 9},
		{"from a revision", 6, "\x00", "\x00", 0, all[4:], 9},
		{"single key", 1, "a", "", 0, []string{all[0], all[1], all[2], all[7]}, 9},
		{"range", 1, "b", "d", 0, []string{all[3], all[4], all[6], all[8]}, 9},
		{"prefix-like range", 1, "c", "d", 0, []string{all[4], all[8]}, 9},
		{"limit", 1, "\x00", "\x00", 2, all[:2], 4},
		{"limit never splits a revision", 5, "\x00", "\x00", 2, all[3:7], 7},
		{"limit inside a revision", 6, "\x00", "\x00", 1, all[4:7], 7},
		{"limit counts matching events only", 1, "b", "", 1, []string{all[3]}, 6},
		{"from the next revision", 9, "\x00", "\x00", 0, nil, 9},
		{"from the future", 12, "\x00", "\x00", 0, nil, 12},
		{"from now", 0, "\x00", "\x00", 0, nil, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var end []byte
			if tc.end != "" {
				end = []byte(tc.end)
			}
			evs, next, err := s.Events(tc.from, []byte(tc.key), end, true, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmtEvents(evs); !eqStrings(got, tc.want) || next != tc.next {
				t.Fatalf("got %q next %d\nwant %q next %d", got, next, tc.want, tc.next)
			}
		})
	}
	t.Run("without prev_kv", func(t *testing.T) {
		evs, _, _ := s.Events(3, []byte("a"), nil, false, 0)
		for _, ev := range evs {
			if ev.PrevKv != nil {
				t.Fatalf("prev_kv set: %s", fmtEvent(ev))
			}
		}
	})
	t.Run("events are copies", func(t *testing.T) {
		evs, _, _ := s.Events(7, []byte("a"), nil, false, 0)
		evs[0].Kv.Version = 42
		again, _, _ := s.Events(7, []byte("a"), nil, false, 0)
		if again[0].Kv.Version != 1 {
			t.Fatalf("event mutation leaked into the store")
		}
	})
}

func TestCompaction(t *testing.T) {
	t.Run("errors", func(t *testing.T) {
		s := historyFixture(t)
		wantErr(t, "compact future", s.Compact(9), ErrFutureRev)
		if err := s.Compact(5); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "compact again", s.Compact(5), ErrCompacted)
		wantErr(t, "compact below", s.Compact(3), ErrCompacted)
		if err := s.Compact(8); err != nil {
			t.Fatalf("compact at current revision: %v", err)
		}
		if s.CompactRev() != 8 {
			t.Fatalf("compact rev %d", s.CompactRev())
		}
	})
	t.Run("reads at and after the compaction revision are unchanged", func(t *testing.T) {
		s := historyFixture(t)
		before := map[int64][]string{}
		for rev := int64(1); rev <= 8; rev++ {
			r := rangeReq("\x00", "\x00")
			r.Revision = rev
			for _, kv := range get(t, s, r).Kvs {
				before[rev] = append(before[rev], fmtKV(kv))
			}
		}
		evsBefore, _, _ := s.Events(7, []byte("\x00"), []byte("\x00"), true, 0)
		if err := s.Compact(6); err != nil {
			t.Fatal(err)
		}
		for rev := int64(1); rev <= 8; rev++ {
			r := rangeReq("\x00", "\x00")
			r.Revision = rev
			resp, err := s.Range(r)
			if rev < 6 {
				wantErr(t, "range below compaction", err, ErrCompacted)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, kv := range resp.Kvs {
				got = append(got, fmtKV(kv))
			}
			if !eqStrings(got, before[rev]) {
				t.Fatalf("range at %d after compaction: %q, was %q", rev, got, before[rev])
			}
		}
		_, _, err := s.Events(5, []byte("\x00"), []byte("\x00"), true, 0)
		wantErr(t, "events below the compaction revision", err, ErrCompacted)
		evs6, _, err := s.Events(6, []byte("\x00"), []byte("\x00"), true, 0)
		evs6Before := []string{`PUT c="1" c6 m6 v1 l0`, `PUT d="1" c6 m6 v1 l0`, `PUT b="2" c5 m6 v2 l0 prev(b="1" c5 m5 v1 l0)`}
		if err != nil || !eqStrings(fmtEvents(evs6)[:3], evs6Before) {
			t.Fatalf("events from the compaction revision %q (%v), want %q first", fmtEvents(evs6), err, evs6Before)
		}
		evs, _, err := s.Events(7, []byte("\x00"), []byte("\x00"), true, 0)
		if err != nil || !eqStrings(fmtEvents(evs), fmtEvents(evsBefore)) {
			t.Fatalf("events after compaction %q (%v), were %q", fmtEvents(evs), err, fmtEvents(evsBefore))
		}
	})
	t.Run("history and tombstones are dropped", func(t *testing.T) {
		s := historyFixture(t)
		sizeBefore := s.Size()
		if err := s.Compact(8); err != nil {
			t.Fatal(err)
		}
		// Kept: a=3 (one version), b=2, d=1; a's and b's older versions
		// are gone. c, deleted at 8 (the compaction revision), keeps its
		// tombstone and the version before it, so a watch from 8 still
		// sees the DELETE with its prev_kv.
		if got, want := s.Size(), int64(9); got != want {
			t.Fatalf("size after compaction %d (was %d), want %d", got, sizeBefore, want)
		}
		if s.tree.Len() != 4 {
			t.Fatalf("%d keys kept, want 4", s.tree.Len())
		}
		for ke, want := range map[string]int{"a": 1, "b": 1, "c": 2, "d": 1} {
			if n := len(s.lookup([]byte(ke)).versions); n != want {
				t.Fatalf("key %s keeps %d versions, want %d", ke, n, want)
			}
		}
		if len(s.log) != 1 {
			t.Fatalf("log keeps %d entries, want the delete at 8", len(s.log))
		}
		evs, _, err := s.Events(8, []byte("\x00"), []byte("\x00"), true, 0)
		if want := []string{`DELETE c="" c0 m8 v0 l0 prev(c="1" c6 m6 v1 l0)`}; err != nil || !eqStrings(fmtEvents(evs), want) {
			t.Fatalf("events from the compaction revision %q (%v), want %q", fmtEvents(evs), err, want)
		}
		// Writing after compaction continues the history normally.
		mustPut(t, s, "a", "4")
		mustPut(t, s, "c", "again")
		evs, next, err := s.Events(9, []byte("\x00"), []byte("\x00"), true, 0)
		want := []string{`PUT a="4" c7 m9 v2 l0 prev(a="3" c7 m7 v1 l0)`, `PUT c="again" c10 m10 v1 l0`}
		if err != nil || !eqStrings(fmtEvents(evs), want) || next != 11 {
			t.Fatalf("events %q next %d err %v", fmtEvents(evs), next, err)
		}
		// The next compaction drops the tombstone at 8.
		if err := s.Compact(9); err != nil {
			t.Fatal(err)
		}
		if ke := s.lookup([]byte("c")); len(ke.versions) != 1 || ke.versions[0].mod != 10 {
			t.Fatalf("c after compaction at 9: %+v", ke.versions)
		}
		if len(s.log) != 2 {
			t.Fatalf("log keeps %d entries, want 2 (revisions 9 and 10)", len(s.log))
		}
	})
	t.Run("compaction keeps the version live at the compaction revision", func(t *testing.T) {
		s := New(Options{})
		mustPut(t, s, "k", "1") // 2
		mustPut(t, s, "x", "1") // 3
		mustPut(t, s, "k", "2") // 4
		if err := s.Compact(3); err != nil {
			t.Fatal(err)
		}
		r := rangeReq("k", "")
		r.Revision = 3
		if got := keysOf(get(t, s, r).Kvs); !eqStrings(got, []string{"k=1"}) {
			t.Fatalf("k at 3 after compaction at 3: %v", got)
		}
		evs, _, _ := s.Events(4, []byte("k"), nil, true, 0)
		if got := fmtEvents(evs); len(got) != 1 || got[0] != `PUT k="2" c2 m4 v2 l0 prev(k="1" c2 m2 v1 l0)` {
			t.Fatalf("events after compaction: %q", got)
		}
	})
	t.Run("repeated compactions", func(t *testing.T) {
		s := New(Options{})
		for i := 0; i < 50; i++ {
			mustPut(t, s, "k", string(rune('a'+i%26)))
			if i%7 == 6 {
				if err := s.Compact(s.Rev() - 1); err != nil {
					t.Fatal(err)
				}
			}
		}
		if n := len(s.lookup([]byte("k")).versions); n > 8 {
			t.Fatalf("hot key keeps %d versions", n)
		}
		for i := 0; i < 1000; i++ {
			mustPut(t, s, "k", "x")
		}
		if err := s.Compact(s.Rev()); err != nil {
			t.Fatal(err)
		}
		// The version at the compaction revision and the one before it
		// (prev_kv of the event at that revision).
		if ke := s.lookup([]byte("k")); len(ke.versions) != 2 || cap(ke.versions) > 16 {
			t.Fatalf("after compacting 1000 versions: len %d cap %d", len(ke.versions), cap(ke.versions))
		}
	})
}

func TestHashKV(t *testing.T) {
	build := func(f func(s *Store)) *Store {
		s := historyFixture(t)
		if f != nil {
			f(s)
		}
		return s
	}
	hash := func(s *Store, rev int64) uint32 {
		t.Helper()
		h, _, _, err := s.HashKV(rev)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	base := hash(build(nil), 0)
	if hash(build(nil), 0) != base {
		t.Fatal("identical stores hash differently")
	}
	for _, tc := range []struct {
		name string
		f    func(s *Store)
	}{
		{"one more write", func(s *Store) { mustPut(t, s, "e", "1") }},
		{"a different value", func(s *Store) { mustPut(t, s, "e", "2") }},
		{"a lease", func(s *Store) { _, _, _ = s.Put(&pb.PutRequest{Key: []byte("e"), Value: []byte("1"), Lease: 5}) }},
		{"a delete", func(s *Store) { mustDel(t, s, "d", "") }},
		{"compaction", func(s *Store) { _ = s.Compact(5) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if hash(build(tc.f), 0) == base {
				t.Fatalf("hash did not change")
			}
		})
	}
	t.Run("same data, different history", func(t *testing.T) {
		a, b := New(Options{}), New(Options{})
		mustPut(t, a, "k", "v")
		mustPut(t, b, "k", "x")
		mustDel(t, b, "k", "")
		mustPut(t, b, "k", "v")
		if hash(a, 0) == hash(b, 0) {
			t.Fatal("different histories hash the same")
		}
	})
	t.Run("hash at an older revision", func(t *testing.T) {
		s := build(nil)
		short := New(Options{})
		mustPut(t, short, "a", "1")
		mustPut(t, short, "a", "2")
		if hash(s, 3) != hash(short, 0) {
			t.Fatal("hash at revision 3 differs from a store stopped at revision 3")
		}
		if _, rev, _, _ := s.HashKV(3); rev != 3 {
			t.Fatalf("hash revision %d", rev)
		}
	})
	t.Run("errors", func(t *testing.T) {
		s := build(func(s *Store) { _ = s.Compact(5) })
		_, _, c, err := s.HashKV(4)
		wantErr(t, "hash below compaction", err, ErrCompacted)
		if c != 5 {
			t.Fatalf("compact rev %d", c)
		}
		_, _, _, err = s.HashKV(9)
		wantErr(t, "hash of the future", err, ErrFutureRev)
		if _, rev, c, err := s.HashKV(5); err != nil || rev != 5 || c != 5 {
			t.Fatalf("hash at compaction revision: %d %d %v", rev, c, err)
		}
	})
}

// TestEventPrevKvRule pins etcd's watch rule for PrevKv: the key as it was
// at the revision before the event's, so a delete following a put of the
// same key in one txn reports the value from before the txn.
func TestEventPrevKvRule(t *testing.T) {
	s := New(Options{})
	mustPut(t, s, "k", "old") // 2
	_, res, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("k", "new"), opDel("k", ""), opPut("n", "1"), opDel("n", "")}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`PUT k="new" c2 m3 v2 l0 prev(k="old" c2 m2 v1 l0)`,
		`DELETE k="" c0 m3 v0 l0 prev(k="old" c2 m2 v1 l0)`,
		`PUT n="1" c3 m3 v1 l0`,
		`DELETE n="" c0 m3 v0 l0`,
	}
	if got := fmtEvents(res.Events); !eqStrings(got, want) {
		t.Fatalf("result events\n%q\nwant\n%q", got, want)
	}
	evs, _, err := s.Events(3, []byte("\x00"), []byte("\x00"), true, 0)
	if err != nil || !eqStrings(fmtEvents(evs), want) {
		t.Fatalf("history events %q (%v)", fmtEvents(evs), err)
	}
	// A key deleted and re-created is a creation: no PrevKv.
	mustDel(t, s, "zz", "")
	mustPut(t, s, "k", "again")
	evs, _, _ = s.Events(4, []byte("k"), nil, true, 0)
	if got := fmtEvents(evs); len(got) != 1 || got[0] != `PUT k="again" c4 m4 v1 l0` {
		t.Fatalf("re-creation event %q", got)
	}
}
