package mvcc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/google/btree"
)

// Snapshot format, version 1 (integers are varints unless said otherwise):
//
//	magic "skiff-mvcc\n", uvarint format version
//	rev, compactRev, uvarint number of keys
//	per key, in key order: uvarint len, key bytes, uvarint number of versions
//	  per version, oldest first: mod, sub, create, ver, lease,
//	  uvarint len, value bytes
//	crc32 Castagnoli of everything above, 4 bytes big endian
//
// The change log and the lease attachments are not stored: they are derived
// from the versions (the log is every version above compactRev in revision
// order; a lease is attached to each key whose latest version is live and
// carries it).
const (
	snapMagic   = "skiff-mvcc\n"
	snapVersion = 1
)

// ErrBadSnapshot is wrapped by Restore for input that is not a valid
// snapshot.
var ErrBadSnapshot = errors.New("mvcc: bad snapshot")

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Snapshot is a point-in-time, read-only image of a Store. Taking one is
// O(1) and writing it does not block the Store: it fits raft's split
// between FSM.Snapshot (on the apply goroutine: take the image) and
// FSMSnapshot.Persist (on another goroutine, while the store keeps applying:
// write it). After a Snapshot, the first write to each key copies that
// key's versions (copy on write); the image holds memory until it is
// dropped.
type Snapshot struct {
	tree            *btree.BTreeG[*keyEntry]
	rev, compactRev int64
}

// Snapshot takes a point-in-time image of the store.
func (s *Store) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	return &Snapshot{tree: s.tree.Clone(), rev: s.rev, compactRev: s.compactRev}
}

// Rev is the store revision the image was taken at.
func (sn *Snapshot) Rev() int64 { return sn.rev }

// WriteTo writes the whole state (history, revision, compaction revision)
// to w, as of now. It is Snapshot().WriteTo(w): writes are not blocked.
func (s *Store) WriteTo(w io.Writer) (int64, error) {
	return s.Snapshot().WriteTo(w)
}

// WriteTo writes the image in the snapshot format Restore reads. It may be
// called from any goroutine, more than once.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	crc := crc32.New(castagnoli)
	out := io.MultiWriter(bw, crc)
	buf := make([]byte, 0, 256)
	buf = append(buf, snapMagic...)
	buf = binary.AppendUvarint(buf, snapVersion)
	buf = binary.AppendVarint(buf, sn.rev)
	buf = binary.AppendVarint(buf, sn.compactRev)
	buf = binary.AppendUvarint(buf, uint64(sn.tree.Len()))
	var err error
	_, err = out.Write(buf)
	sn.tree.Ascend(func(ke *keyEntry) bool {
		buf = buf[:0]
		buf = binary.AppendUvarint(buf, uint64(len(ke.key)))
		buf = append(buf, ke.key...)
		buf = binary.AppendUvarint(buf, uint64(len(ke.versions)))
		for i := range ke.versions {
			v := &ke.versions[i]
			buf = binary.AppendVarint(buf, v.mod)
			buf = binary.AppendVarint(buf, v.sub)
			buf = binary.AppendVarint(buf, v.create)
			buf = binary.AppendVarint(buf, v.ver)
			buf = binary.AppendVarint(buf, v.lease)
			buf = binary.AppendUvarint(buf, uint64(len(v.value)))
			if len(buf) > 32<<10 {
				if _, err = out.Write(buf); err != nil {
					return false
				}
				buf = buf[:0]
			}
			if len(v.value) > 0 {
				if _, err = out.Write(buf); err != nil {
					return false
				}
				buf = buf[:0]
				if _, err = out.Write(v.value); err != nil {
					return false
				}
			}
		}
		_, err = out.Write(buf)
		return err == nil
	})
	if err == nil {
		_, err = bw.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
	}
	if err == nil {
		err = bw.Flush()
	}
	return cw.n, err
}

// snapReader decodes from an in-memory snapshot; the first error sticks.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, args...)...)
	}
}

func (r *snapReader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("truncated or invalid %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated or invalid %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns a copy of the next length-prefixed byte string.
func (r *snapReader) bytes(what string) []byte {
	n := r.uvarint(what + " length")
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("%s length %d beyond end of data", what, n)
		return nil
	}
	out := bytes.Clone(r.b[:n])
	r.b = r.b[n:]
	return out
}

// Restore builds a Store from a snapshot written by WriteTo. Any malformed
// input returns an error wrapping ErrBadSnapshot.
func Restore(rd io.Reader, opts Options) (*Store, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("mvcc: reading snapshot: %w", err)
	}
	if len(data) < len(snapMagic)+4 || string(data[:len(snapMagic)]) != snapMagic {
		return nil, fmt.Errorf("%w: missing header", ErrBadSnapshot)
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	r := &snapReader{b: body[len(snapMagic):]}
	if v := r.uvarint("format version"); r.err == nil && v != snapVersion {
		return nil, fmt.Errorf("%w: unsupported format version %d", ErrBadSnapshot, v)
	}
	s := New(opts)
	s.rev = r.varint("revision")
	s.compactRev = r.varint("compaction revision")
	nkeys := r.uvarint("key count")
	if r.err == nil && (s.rev < 1 || s.compactRev < 0 || s.compactRev > s.rev) {
		r.fail("revision %d, compaction revision %d", s.rev, s.compactRev)
	}
	var prev []byte
	for i := uint64(0); i < nkeys && r.err == nil; i++ {
		ke := &keyEntry{key: r.bytes("key")}
		if r.err != nil {
			break
		}
		if len(ke.key) == 0 || (prev != nil && bytes.Compare(prev, ke.key) >= 0) {
			r.fail("key %q empty or out of order", ke.key)
			break
		}
		prev = ke.key
		nv := r.uvarint("version count")
		if r.err == nil && (nv == 0 || nv > uint64(len(r.b))) {
			r.fail("key %q has %d versions", ke.key, nv)
		}
		if r.err != nil {
			break
		}
		ke.versions = make([]version, 0, nv)
		for j := uint64(0); j < nv && r.err == nil; j++ {
			v := version{
				mod:    r.varint("mod revision"),
				sub:    r.varint("sub revision"),
				create: r.varint("create revision"),
				ver:    r.varint("version"),
				lease:  r.varint("lease"),
			}
			v.value = r.bytes("value")
			if r.err != nil {
				break
			}
			if err := checkVersion(ke, &v, s.rev); err != nil {
				r.fail("%v", err)
				break
			}
			ke.versions = append(ke.versions, v)
			s.size += int64(len(ke.key) + len(v.value))
			if v.mod > s.compactRev {
				s.log = append(s.log, logEntry{main: v.mod, sub: v.sub, ke: ke})
			}
		}
		if r.err != nil {
			break
		}
		s.tree.ReplaceOrInsert(ke)
		if cur := ke.live(); cur != nil {
			s.attach(cur.lease, ke)
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	slices.SortFunc(s.log, func(a, b logEntry) int {
		if c := cmpInt64(a.main, b.main); c != 0 {
			return c
		}
		return cmpInt64(a.sub, b.sub)
	})
	for i := 1; i < len(s.log); i++ {
		if s.log[i].main == s.log[i-1].main && s.log[i].sub == s.log[i-1].sub {
			return nil, fmt.Errorf("%w: revision %d.%d used twice", ErrBadSnapshot, s.log[i].main, s.log[i].sub)
		}
	}
	return s, nil
}

// checkVersion validates a decoded version against the previous ones of
// its key.
func checkVersion(ke *keyEntry, v *version, rev int64) error {
	if v.mod < 1 || v.mod > rev || v.sub < 0 {
		return fmt.Errorf("key %q: revision %d.%d out of range", ke.key, v.mod, v.sub)
	}
	if n := len(ke.versions); n > 0 {
		p := &ke.versions[n-1]
		if p.mod > v.mod || (p.mod == v.mod && p.sub >= v.sub) {
			return fmt.Errorf("key %q: revisions out of order", ke.key)
		}
	}
	if v.ver < 0 {
		return fmt.Errorf("key %q: negative version", ke.key)
	}
	if v.tombstone() {
		if v.create != 0 || v.lease != 0 || len(v.value) != 0 {
			return fmt.Errorf("key %q: tombstone with data", ke.key)
		}
	} else if v.create < 1 || v.create > v.mod {
		return fmt.Errorf("key %q: create revision %d", ke.key, v.create)
	}
	return nil
}
