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
//	rev, compactRev (-1 if never compacted), uvarint number of keys
//	per key, in key order: uvarint len, key bytes, uvarint number of versions
//	  per version, oldest first: mod, sub, create, ver, lease,
//	  uvarint len, value bytes
//	crc32 Castagnoli of everything above, 4 bytes big endian
//
// The change log and the lease attachments are not stored: they are derived
// from the versions (the log is every version at compactRev or above, in
// revision order; a lease is attached to each key whose latest version is live and
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

// snapReader decodes a snapshot as it streams in, keeping the checksum of
// what it consumed; the first error sticks.
type snapReader struct {
	br  *bufio.Reader
	crc uint32
	one [1]byte
	err error
}

func (r *snapReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, args...)...)
	}
}

// failRead records a read error: the end of the input is a truncated
// snapshot, anything else an I/O error.
func (r *snapReader) failRead(what string, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		r.fail("truncated at %s", what)
	} else if r.err == nil {
		r.err = fmt.Errorf("mvcc: reading snapshot: %w", err)
	}
}

// ReadByte makes the reader an io.ByteReader for the varint decoders.
func (r *snapReader) ReadByte() (byte, error) {
	b, err := r.br.ReadByte()
	if err == nil {
		r.one[0] = b
		r.crc = crc32.Update(r.crc, castagnoli, r.one[:])
	}
	return b, err
}

func (r *snapReader) full(p []byte, what string) {
	if r.err != nil {
		return
	}
	if _, err := io.ReadFull(r.br, p); err != nil {
		r.failRead(what, err)
		return
	}
	r.crc = crc32.Update(r.crc, castagnoli, p)
}

func (r *snapReader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(r)
	if err != nil {
		r.failRead(what, err)
		if r.err == nil {
			r.fail("invalid %s", what)
		}
	}
	return v
}

func (r *snapReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(r)
	if err != nil {
		r.failRead(what, err)
		if r.err == nil {
			r.fail("invalid %s", what)
		}
	}
	return v
}

// maxSnapBytes bounds one key or value; far above any request size limit.
const maxSnapBytes = 1 << 32

// bytes returns the next length-prefixed byte string, in its own
// allocation. Large lengths are read in chunks, so a corrupt length costs
// memory only for data that is really there.
func (r *snapReader) bytes(what string) []byte {
	n := r.uvarint(what + " length")
	if r.err != nil {
		return nil
	}
	if n > maxSnapBytes {
		r.fail("%s length %d", what, n)
		return nil
	}
	const chunk = 1 << 20
	if n <= chunk {
		out := make([]byte, n)
		r.full(out, what)
		return out
	}
	var out []byte
	for rest := int(n); rest > 0 && r.err == nil; {
		c := min(rest, chunk)
		out = slices.Grow(out, c)[:len(out)+c]
		r.full(out[len(out)-c:], what)
		rest -= c
	}
	return out
}

// Restore builds a Store from a snapshot written by WriteTo, reading r to
// its end. Any malformed input returns an error wrapping ErrBadSnapshot.
func Restore(rd io.Reader, opts Options) (*Store, error) {
	r := &snapReader{br: bufio.NewReaderSize(rd, 64<<10)}
	magic := make([]byte, len(snapMagic))
	r.full(magic, "header")
	if r.err == nil && string(magic) != snapMagic {
		r.fail("missing header")
	}
	if v := r.uvarint("format version"); r.err == nil && v != snapVersion {
		r.fail("unsupported format version %d", v)
	}
	s := New(opts)
	s.rev = r.varint("revision")
	s.compactRev = r.varint("compaction revision")
	nkeys := r.uvarint("key count")
	if r.err == nil && (s.rev < 1 || s.compactRev < -1 || s.compactRev > s.rev) {
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
		if r.err == nil && nv == 0 {
			r.fail("key %q has no versions", ke.key)
		}
		if r.err != nil {
			break
		}
		ke.versions = make([]version, 0, min(nv, 64))
		for j := uint64(0); j < nv && r.err == nil; j++ {
			v := version{
				mod:    r.varint("mod revision"),
				sub:    r.varint("sub revision"),
				create: r.varint("create revision"),
				ver:    r.varint("version"),
				lease:  r.varint("lease"),
			}
			v.value = r.bytes("value")
			if len(v.value) == 0 {
				v.value = nil
			}
			if r.err != nil {
				break
			}
			if err := checkVersion(ke, &v, s.rev); err != nil {
				r.fail("%v", err)
				break
			}
			ke.versions = append(ke.versions, v)
			s.size += int64(len(ke.key) + len(v.value))
			if v.mod >= s.compactRev {
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
	if r.err != nil {
		return nil, r.err
	}
	sum := r.crc
	var trailer [4]byte
	if _, err := io.ReadFull(r.br, trailer[:]); err != nil {
		r.failRead("checksum", err)
		return nil, r.err
	}
	if binary.BigEndian.Uint32(trailer[:]) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	if _, err := r.br.ReadByte(); err != io.EOF {
		if err != nil {
			return nil, fmt.Errorf("mvcc: reading snapshot: %w", err)
		}
		return nil, fmt.Errorf("%w: trailing bytes after the checksum", ErrBadSnapshot)
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
