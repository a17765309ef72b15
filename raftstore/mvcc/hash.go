package mvcc

import (
	"encoding/binary"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// HashKV returns a crc32 (Castagnoli) over every kept version with mod
// revision <= rev (0 = current): key, revisions, version, lease and value of
// each, keys in order and versions oldest first. Members that applied the
// same writes and compactions get the same hash; any difference in kept
// data changes it. hashRev is the revision hashed. ErrCompacted if
// 0 < rev < CompactRev(), ErrFutureRev if rev > Rev().
func (s *Store) HashKV(rev int64) (hash uint32, hashRev int64, compactRev int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if rev > 0 && rev < s.compactRev {
		return 0, 0, s.compactRev, ErrCompacted
	}
	if rev > s.rev {
		return 0, 0, s.compactRev, ErrFutureRev
	}
	if rev <= 0 {
		rev = s.rev
	}
	h := crc32.New(castagnoli)
	buf := make([]byte, 0, 256)
	s.tree.Ascend(func(ke *keyEntry) bool {
		for i := range ke.versions {
			v := &ke.versions[i]
			if v.mod > rev {
				break
			}
			buf = buf[:0]
			buf = binary.AppendUvarint(buf, uint64(len(ke.key)))
			buf = append(buf, ke.key...)
			buf = binary.AppendVarint(buf, v.mod)
			buf = binary.AppendVarint(buf, v.sub)
			buf = binary.AppendVarint(buf, v.create)
			buf = binary.AppendVarint(buf, v.ver)
			buf = binary.AppendVarint(buf, v.lease)
			buf = binary.AppendUvarint(buf, uint64(len(v.value)))
			h.Write(buf)
			h.Write(v.value)
		}
		return true
	})
	return h.Sum32(), rev, s.compactRev, nil
}
