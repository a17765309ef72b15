package mvcc

import (
	"bytes"
	"sort"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Events returns the changes with main revision in [fromRev, Rev()] whose
// key is in the etcd range [key, end) (end empty = just key, "\x00" = every
// key >= key), in revision order, for watch replay.
//
// DELETE events carry a KeyValue with only Key and ModRevision (the delete's
// revision), as etcd's do. With prevKV, each event that is not a creation
// gets the key as it was at the revision before the event's, when it
// existed then (etcd's watch does the same lookup).
//
// At most maxEvents events are returned (maxEvents <= 0: no limit), except
// that a revision is never split: once the limit is reached the remaining
// events of the same revision are still returned. next is the revision to
// ask from next time. fromRev <= 0 means "from now": no events and next =
// Rev()+1. ErrCompacted if 0 < fromRev < CompactRev(): compaction keeps the
// events at its own revision (see Compact), so a watch may start there, as
// etcd allows (etcd 3.4 loses the DELETEs at that revision; the Store
// does not).
func (s *Store) Events(fromRev int64, key, end []byte, prevKV bool, maxEvents int) (evs []*mvccpb.Event, next int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if fromRev <= 0 {
		return nil, s.rev + 1, nil
	}
	if fromRev < s.compactRev {
		return nil, 0, ErrCompacted
	}
	match := keyMatcher(key, end)
	log := s.log
	i := sort.Search(len(log), func(i int) bool { return log[i].main >= fromRev })
	for ; i < len(log); i++ {
		le := log[i]
		if !match(le.ke.key) {
			continue
		}
		if maxEvents > 0 && len(evs) >= maxEvents && le.main != evs[len(evs)-1].Kv.ModRevision {
			return evs, le.main, nil
		}
		evs = append(evs, s.event(le, prevKV))
	}
	return evs, max(s.rev+1, fromRev), nil
}

// keyMatcher returns a predicate for the etcd range [key, end).
func keyMatcher(key, end []byte) func(k []byte) bool {
	switch {
	case len(end) == 0:
		return func(k []byte) bool { return bytes.Equal(k, key) }
	case isFromKey(end):
		return func(k []byte) bool { return bytes.Compare(k, key) >= 0 }
	default:
		return func(k []byte) bool { return bytes.Compare(k, key) >= 0 && bytes.Compare(k, end) < 0 }
	}
}

// event renders one log entry.
func (s *Store) event(le logEntry, prevKV bool) *mvccpb.Event {
	ke := le.ke
	i := ke.find(le.main, le.sub)
	if i < 0 {
		// The log and the versions are kept in step; this cannot happen
		// unless the store is corrupt.
		panic("mvcc: log entry without version")
	}
	v := &ke.versions[i]
	a := &eventAlloc{}
	if v.tombstone() {
		a.ev.Type = mvccpb.DELETE
		a.kv = mvccpb.KeyValue{Key: ke.key, ModRevision: v.mod}
	} else {
		a.ev.Type = mvccpb.PUT
		a.kv = ke.kv(v)
	}
	a.ev.Kv = &a.kv
	if prevKV && !(a.ev.Type == mvccpb.PUT && v.ver == 1) {
		if p := ke.at(v.mod - 1); p != nil {
			a.prev = ke.kv(p)
			a.ev.PrevKv = &a.prev
		}
	}
	ev := &a.ev
	return ev
}
