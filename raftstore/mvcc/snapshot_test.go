package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func snapshotOf(t testing.TB, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// richStore has history, tombstones, a compaction and lease attachments.
func richStore(t testing.TB) *Store {
	s := New(Options{})
	put := func(k, v string, lease int64) {
		if _, _, err := s.Put(&pb.PutRequest{Key: []byte(k), Value: []byte(v), Lease: lease}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "1", 0)
	put("b", "1", 7)
	put("a", "2", 7)
	put("c", "", 8)
	if _, _, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	put("gone", "x", 0)
	if _, _, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("gone")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(4); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("d", "1"), opDel("c", ""), opPutReq(&pb.PutRequest{Key: []byte("b"), Value: []byte("2"), IgnoreLease: true})}}); err != nil {
		t.Fatal(err)
	}
	put("e", string(bytes.Repeat([]byte("big"), 20000)), 8)
	return s
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := richStore(t)
	r, err := Restore(bytes.NewReader(snapshotOf(t, s)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Rev() != s.Rev() || r.CompactRev() != s.CompactRev() || r.Size() != s.Size() {
		t.Fatalf("restored rev %d/%d size %d, want %d/%d size %d", r.Rev(), r.CompactRev(), r.Size(), s.Rev(), s.CompactRev(), s.Size())
	}
	for _, id := range []int64{7, 8} {
		if got, want := leaseKeys(r, id), leaseKeys(s, id); !eqStrings(got, want) {
			t.Fatalf("lease %d keys %v, want %v", id, got, want)
		}
	}
	if got := leaseKeys(r, 7); !eqStrings(got, []string{"b"}) {
		t.Fatalf("lease 7 keys %v, want [b] (a was deleted, b kept its lease)", got)
	}
	if got := leaseKeys(r, 8); !eqStrings(got, []string{"e"}) {
		t.Fatalf("lease 8 keys %v, want [e] (c was deleted)", got)
	}
	for rev := s.CompactRev(); rev <= s.Rev(); rev++ {
		req := rangeReq("\x00", "\x00")
		req.Revision = rev
		a, b := get(t, s, req), get(t, r, req)
		if len(a.Kvs) != len(b.Kvs) {
			t.Fatalf("range at %d: %v vs %v", rev, keysOf(a.Kvs), keysOf(b.Kvs))
		}
		for i := range a.Kvs {
			if !kvEqual(a.Kvs[i], b.Kvs[i]) {
				t.Fatalf("range at %d: %s vs %s", rev, fmtKV(a.Kvs[i]), fmtKV(b.Kvs[i]))
			}
		}
	}
	ea, _, _ := s.Events(s.CompactRev()+1, []byte("\x00"), []byte("\x00"), true, 0)
	eb, _, err := r.Events(r.CompactRev()+1, []byte("\x00"), []byte("\x00"), true, 0)
	if err != nil || !eqStrings(fmtEvents(ea), fmtEvents(eb)) || len(ea) == 0 {
		t.Fatalf("events differ:\n%q\n%q (%v)", fmtEvents(ea), fmtEvents(eb), err)
	}
	_, err = r.Range(&pb.RangeRequest{Key: []byte("a"), Revision: s.CompactRev() - 1})
	wantErr(t, "restored compaction", err, ErrCompacted)
	ha, _, _, _ := s.HashKV(0)
	hb, _, _, _ := r.HashKV(0)
	if ha != hb {
		t.Fatalf("hash %x vs %x", ha, hb)
	}
	// Both continue identically.
	for _, st := range []*Store{s, r} {
		mustPut(t, st, "a", "again")
		st.DeleteKeys(st.LeaseKeys(8))
	}
	ha, _, _, _ = s.HashKV(0)
	hb, _, _, _ = r.HashKV(0)
	if ha != hb || s.Rev() != r.Rev() {
		t.Fatalf("after more writes: hash %x vs %x, rev %d vs %d", ha, hb, s.Rev(), r.Rev())
	}
	// A snapshot of the restored store is byte-identical.
	if !bytes.Equal(snapshotOf(t, s), snapshotOf(t, r)) {
		t.Fatal("snapshots of equal stores differ")
	}
}

func TestSnapshotEmptyStore(t *testing.T) {
	r, err := Restore(bytes.NewReader(snapshotOf(t, New(Options{}))), Options{})
	if err != nil || r.Rev() != 1 || r.CompactRev() != 0 || r.Size() != 0 {
		t.Fatalf("restore of empty store: %v", err)
	}
}

// craft builds a snapshot with a valid checksum from raw fields, to reach
// the semantic checks behind it.
type craft struct{ b []byte }

func newCraft(rev, compactRev int64, keys uint64) *craft {
	c := &craft{b: []byte(snapMagic)}
	c.b = binary.AppendUvarint(c.b, snapVersion)
	c.b = binary.AppendVarint(c.b, rev)
	c.b = binary.AppendVarint(c.b, compactRev)
	c.b = binary.AppendUvarint(c.b, keys)
	return c
}

func (c *craft) key(k string, versions uint64) *craft {
	c.b = binary.AppendUvarint(c.b, uint64(len(k)))
	c.b = append(c.b, k...)
	c.b = binary.AppendUvarint(c.b, versions)
	return c
}

func (c *craft) version(mod, sub, create, ver, lease int64, value string) *craft {
	for _, v := range []int64{mod, sub, create, ver, lease} {
		c.b = binary.AppendVarint(c.b, v)
	}
	c.b = binary.AppendUvarint(c.b, uint64(len(value)))
	c.b = append(c.b, value...)
	return c
}

func (c *craft) bytes() []byte {
	return binary.BigEndian.AppendUint32(bytes.Clone(c.b), crc32.Checksum(c.b, castagnoli))
}

func TestRestoreRejectsGarbage(t *testing.T) {
	valid := snapshotOf(t, richStore(t))
	if _, err := Restore(bytes.NewReader(newCraft(3, 0, 1).key("a", 1).version(2, 0, 2, 1, 0, "v").bytes()), Options{}); err != nil {
		t.Fatalf("crafted valid snapshot rejected: %v", err)
	}
	cases := map[string][]byte{
		"empty":                {},
		"magic only":           []byte(snapMagic),
		"wrong magic":          append([]byte("etcd-mvcc\n\x01"), valid[11:]...),
		"future format":        func() []byte { c := &craft{b: append([]byte(snapMagic), 9)}; return c.bytes() }(),
		"revision 0":           newCraft(0, 0, 0).bytes(),
		"compaction past rev":  newCraft(3, 4, 0).bytes(),
		"more keys than data":  newCraft(3, 0, 2).key("a", 1).version(2, 0, 2, 1, 0, "v").bytes(),
		"huge key count":       newCraft(3, 0, 1<<62).bytes(),
		"huge version count":   newCraft(3, 0, 1).key("a", 1<<62).bytes(),
		"empty key":            newCraft(3, 0, 1).key("", 1).version(2, 0, 2, 1, 0, "v").bytes(),
		"keys out of order":    newCraft(3, 0, 2).key("b", 1).version(2, 0, 2, 1, 0, "").key("a", 1).version(3, 0, 3, 1, 0, "").bytes(),
		"duplicate key":        newCraft(3, 0, 2).key("a", 1).version(2, 0, 2, 1, 0, "").key("a", 1).version(3, 0, 3, 1, 0, "").bytes(),
		"key without versions": newCraft(3, 0, 1).key("a", 0).bytes(),
		"version in future":    newCraft(3, 0, 1).key("a", 1).version(4, 0, 4, 1, 0, "").bytes(),
		"versions out of order": newCraft(4, 0, 1).key("a", 2).version(3, 0, 3, 1, 0, "").
			version(2, 0, 2, 1, 0, "").bytes(),
		"tombstone with value":  newCraft(3, 0, 1).key("a", 1).version(2, 0, 0, 0, 0, "x").bytes(),
		"create after mod":      newCraft(3, 0, 1).key("a", 1).version(2, 0, 3, 1, 0, "").bytes(),
		"negative version":      newCraft(3, 0, 1).key("a", 1).version(2, 0, 2, -1, 0, "").bytes(),
		"one revision two keys": newCraft(3, 0, 2).key("a", 1).version(2, 0, 2, 1, 0, "").key("b", 1).version(2, 0, 2, 1, 0, "").bytes(),
		"value beyond end": func() []byte {
			c := newCraft(3, 0, 1).key("a", 1)
			c.b = append(binary.AppendVarint(binary.AppendVarint(binary.AppendVarint(binary.AppendVarint(binary.AppendVarint(c.b, 2), 0), 2), 1), 0), 50, 1, 2)
			return c.bytes()
		}(),
		"trailing bytes": append(newCraft(3, 0, 0).b, 0, 0, 0, 0, 0),
		"bad checksum":   append(bytes.Clone(valid[:len(valid)-1]), valid[len(valid)-1]^1),
		"truncated":      valid[:len(valid)/2],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Restore(bytes.NewReader(data), Options{}); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("got %v, want ErrBadSnapshot", err)
			}
		})
	}
	t.Run("valid snapshot with trailing bytes", func(t *testing.T) {
		if _, err := Restore(bytes.NewReader(append(bytes.Clone(valid), 'x')), Options{}); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("read error is not a bad snapshot", func(t *testing.T) {
		boom := errors.New("disk on fire")
		_, err := Restore(io.MultiReader(bytes.NewReader(valid[:100]), iotest.ErrReader(boom)), Options{})
		if !errors.Is(err, boom) || errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("got %v, want the read error", err)
		}
	})
	t.Run("one byte at a time", func(t *testing.T) {
		r, err := Restore(iotest.OneByteReader(bytes.NewReader(valid)), Options{})
		if err != nil || !bytes.Equal(snapshotOf(t, r), valid) {
			t.Fatalf("restore from a slow reader: %v", err)
		}
	})
	t.Run("every truncation", func(t *testing.T) {
		for n := 0; n < len(valid); n += 1 + n/50 {
			if _, err := Restore(bytes.NewReader(valid[:n]), Options{}); err == nil {
				t.Fatalf("truncation to %d bytes accepted", n)
			}
		}
	})
	t.Run("bit flips", func(t *testing.T) {
		rnd := rand.New(rand.NewSource(1))
		for i := 0; i < 300; i++ {
			b := bytes.Clone(valid)
			b[rnd.Intn(len(b))] ^= byte(1 << rnd.Intn(8))
			if _, err := Restore(bytes.NewReader(b), Options{}); err == nil {
				t.Fatalf("flip %d accepted", i)
			}
		}
	})
	t.Run("random bytes", func(t *testing.T) {
		rnd := rand.New(rand.NewSource(2))
		for i := 0; i < 300; i++ {
			b := make([]byte, rnd.Intn(200))
			rnd.Read(b)
			if i%2 == 0 {
				b = append([]byte(snapMagic), b...)
			}
			if _, err := Restore(bytes.NewReader(b), Options{}); err == nil {
				t.Fatalf("random input %d accepted", i)
			}
		}
	})
}

// FuzzRestore checks that no input makes Restore panic, and that whatever
// it accepts is a usable store that snapshots to the same bytes.
func FuzzRestore(f *testing.F) {
	small := New(Options{})
	for _, k := range []string{"a", "b", "a", "c"} {
		mustPut(f, small, k, "v")
	}
	mustDel(f, small, "b", "")
	if err := small.Compact(3); err != nil {
		f.Fatal(err)
	}
	f.Add(snapshotOf(f, small))
	// richStore(f) is too large a seed for the fuzzer to mutate quickly.
	f.Add(newCraft(3, 0, 1).key("a", 1).version(2, 0, 2, 1, 0, "v").bytes())
	f.Add([]byte(snapMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Restore(bytes.NewReader(data), Options{})
		if err != nil {
			return
		}
		if _, err := s.Range(rangeReq("\x00", "\x00")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Events(s.CompactRev()+1, []byte("\x00"), []byte("\x00"), true, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(snapshotOf(t, s), data) {
			t.Fatal("accepted snapshot does not round-trip")
		}
	})
}

func TestSnapshotLargeValues(t *testing.T) {
	s := New(Options{})
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	if _, _, err := s.Put(&pb.PutRequest{Key: []byte("big"), Value: big}); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(bytes.NewReader(snapshotOf(t, s)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if kvs := get(t, r, rangeReq("big", "")).Kvs; len(kvs) != 1 || !bytes.Equal(kvs[0].Value, big) {
		t.Fatal("large value did not round-trip")
	}
	// A length far beyond the data is a truncation, not a 1 GiB allocation.
	c := newCraft(3, 0, 1).key("a", 1)
	for _, v := range []int64{2, 0, 2, 1, 0} {
		c.b = binary.AppendVarint(c.b, v)
	}
	c.b = binary.AppendUvarint(c.b, 1<<30)
	c.b = append(c.b, "short"...)
	if _, err := Restore(bytes.NewReader(c.bytes()), Options{}); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("got %v, want ErrBadSnapshot", err)
	}
}
