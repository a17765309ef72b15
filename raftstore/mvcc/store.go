package mvcc

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/google/btree"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Errors added beside those of api.go: etcd rejects these request shapes at
// its API layer (rpctypes.ErrGRPCEmptyKey, ErrGRPCValueProvided,
// ErrGRPCLeaseProvided, ErrGRPCInvalidSortOption, all InvalidArgument); the
// Store rejects them too, before changing anything, so that a request that
// slipped past the server's checks is still deterministic on every member.
// Each wraps ErrUnsupported, so a caller that maps only ErrUnsupported still
// answers InvalidArgument; map them first to get etcd's exact messages.
var (
	// ErrEmptyKey: a request or compare names the empty key.
	ErrEmptyKey = fmt.Errorf("%w: key is not provided", ErrUnsupported)
	// ErrValueProvided: a put sets ignore_value and also carries a value.
	ErrValueProvided = fmt.Errorf("%w: value is provided", ErrUnsupported)
	// ErrLeaseProvided: a put sets ignore_lease and also carries a lease.
	ErrLeaseProvided = fmt.Errorf("%w: lease is provided", ErrUnsupported)
	// ErrInvalidSortOption: a range names an unknown sort target (an
	// unknown sort order means no sort, as in etcd).
	ErrInvalidSortOption = fmt.Errorf("%w: invalid sort option", ErrUnsupported)
)

// version is one revision of one key. A tombstone (the key deleted at
// mod/sub) has ver == 0 and nothing else but the revision.
type version struct {
	value  []byte
	create int64
	mod    int64 // main revision of this change
	sub    int64 // sub revision inside the main revision
	ver    int64 // 0 for a tombstone
	lease  int64
}

func (v *version) tombstone() bool { return v.ver == 0 }

// keyEntry is a key and every kept version of it, oldest first (ordered by
// (mod, sub)).
type keyEntry struct {
	key      []byte
	versions []version
	// compactMark is the compaction revision that last looked at this entry,
	// so that Compact visits each key once.
	compactMark int64
	// gen is the Store generation this entry belongs to. An entry of an
	// older generation may be shared with a Snapshot and is never changed:
	// writers copy it first (Store.mutable).
	gen uint64
}

// at returns the version visible at revision rev (the last one with
// mod <= rev), or nil if there is none or it is a tombstone.
func (ke *keyEntry) at(rev int64) *version {
	vs := ke.versions
	n := len(vs)
	if n == 0 {
		return nil
	}
	var v *version
	if vs[n-1].mod <= rev {
		v = &vs[n-1]
	} else {
		i := sort.Search(n, func(i int) bool { return vs[i].mod > rev })
		if i == 0 {
			return nil
		}
		v = &vs[i-1]
	}
	if v.tombstone() {
		return nil
	}
	return v
}

// live returns the latest version if the key currently exists.
func (ke *keyEntry) live() *version {
	n := len(ke.versions)
	if n == 0 || ke.versions[n-1].tombstone() {
		return nil
	}
	return &ke.versions[n-1]
}

// find returns the index of the version at (main, sub), or -1.
func (ke *keyEntry) find(main, sub int64) int {
	vs := ke.versions
	i := sort.Search(len(vs), func(i int) bool {
		return vs[i].mod > main || (vs[i].mod == main && vs[i].sub >= sub)
	})
	if i < len(vs) && vs[i].mod == main && vs[i].sub == sub {
		return i
	}
	return -1
}

// kv renders a version as the KeyValue etcd clients see.
func (ke *keyEntry) kv(v *version) mvccpb.KeyValue {
	return mvccpb.KeyValue{
		Key:            ke.key,
		Value:          v.value,
		CreateRevision: v.create,
		ModRevision:    v.mod,
		Version:        v.ver,
		Lease:          v.lease,
	}
}

// logEntry locates one change in revision order; the version itself lives
// in the key's entry.
type logEntry struct {
	main, sub int64
	ke        *keyEntry
}

func lessKey(a, b *keyEntry) bool { return bytes.Compare(a.key, b.key) < 0 }

// Store is the MVCC index. See the package documentation.
//
// Byte slices handed out in responses and events (keys and values) are
// shared with the Store and must not be modified; the KeyValue and Event
// structs themselves are fresh and may be modified. Byte slices in requests
// are copied, so the caller may reuse them.
type Store struct {
	opts Options

	mu   sync.RWMutex
	tree *btree.BTreeG[*keyEntry]
	rev  int64
	// compactRev is the last compaction revision, -1 before the first
	// compaction (etcd's compactMainRev: a first Compact(0) succeeds).
	compactRev int64
	// log holds every change with main revision > compactRev, in (main,
	// sub) order; Events and Compact walk it.
	log []logEntry
	// leases maps a lease to the keys whose current version carries it.
	leases map[int64]map[*keyEntry]struct{}
	// size is the bytes of keys and values of all kept versions.
	size int64
	// probe is a reusable search key for writers (under the write lock).
	probe keyEntry
	// gen counts Snapshots taken; see keyEntry.gen.
	gen uint64
}

// mutable returns ke if it belongs to the current generation, else a copy
// that replaces it in the tree (and in its lease's key set), leaving ke
// untouched for the Snapshots that share it. Callers hold the write lock.
func (s *Store) mutable(ke *keyEntry) *keyEntry {
	if ke.gen == s.gen {
		return ke
	}
	c := &keyEntry{
		key:         ke.key,
		versions:    append(make([]version, 0, len(ke.versions)+2), ke.versions...),
		compactMark: ke.compactMark,
		gen:         s.gen,
	}
	s.tree.ReplaceOrInsert(c)
	if cur := c.live(); cur != nil && cur.lease != 0 {
		s.detach(cur.lease, ke)
		s.attach(cur.lease, c)
	}
	return c
}

const btreeDegree = 32

// New returns an empty store at revision 1.
func New(opts Options) *Store {
	return &Store{
		opts:       opts,
		tree:       btree.NewG(btreeDegree, lessKey),
		rev:        1,
		compactRev: -1,
		leases:     make(map[int64]map[*keyEntry]struct{}),
	}
}

// Rev returns the current revision (1 for an empty store).
func (s *Store) Rev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// CompactRev returns the revision of the last compaction (0 if none).
func (s *Store) CompactRev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return max(s.compactRev, 0)
}

// Size returns the approximate bytes of keys and values of every kept
// version, for Status.db_size.
func (s *Store) Size() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.size
}

func (s *Store) lookup(key []byte) *keyEntry {
	ke, _ := s.tree.Get(&keyEntry{key: key})
	return ke
}

// lookupW is lookup for holders of the write lock, without an allocation.
func (s *Store) lookupW(key []byte) *keyEntry {
	s.probe.key = key
	ke, _ := s.tree.Get(&s.probe)
	s.probe.key = nil
	return ke
}

// isFromKey reports etcd's "\x00" range end, meaning every key >= key.
func isFromKey(end []byte) bool { return len(end) == 1 && end[0] == 0 }

// visit calls f for every key entry in the etcd range [key, end): end empty
// is the single key, end "\x00" is every key >= key. f returns false to stop.
func (s *Store) visit(key, end []byte, f func(ke *keyEntry) bool) {
	switch {
	case len(end) == 0:
		if ke := s.lookup(key); ke != nil {
			f(ke)
		}
	case isFromKey(end):
		s.tree.AscendGreaterOrEqual(&keyEntry{key: key}, f)
	default:
		if bytes.Compare(key, end) >= 0 {
			return
		}
		s.tree.AscendRange(&keyEntry{key: key}, &keyEntry{key: end}, f)
	}
}

// LeaseKeys returns the keys currently attached to lease id, sorted.
func (s *Store) LeaseKeys(id int64) [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := s.leases[id]
	keys := make([][]byte, 0, len(set))
	for ke := range set {
		keys = append(keys, ke.key)
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys
}

func (s *Store) attach(id int64, ke *keyEntry) {
	if id == 0 {
		return
	}
	set := s.leases[id]
	if set == nil {
		set = make(map[*keyEntry]struct{})
		s.leases[id] = set
	}
	set[ke] = struct{}{}
}

func (s *Store) detach(id int64, ke *keyEntry) {
	if id == 0 {
		return
	}
	if set := s.leases[id]; set != nil {
		delete(set, ke)
		if len(set) == 0 {
			delete(s.leases, id)
		}
	}
}

func (s *Store) leaseExists(id int64) bool {
	return id == 0 || s.opts.LeaseExists == nil || s.opts.LeaseExists(id)
}

// Range answers a RangeRequest at the current state. See api.go.
func (s *Store) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRangeRequest(r); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rangeAt(r, s.rev)
}

// rangeAt implements Range as etcd's apply layer does, for a view whose
// current revision is curRev (inside a write txn, the revision being
// written). The order of steps follows etcd: fetch (everything when a sort
// or a revision filter is asked, else limit+1), filter, sort, truncate; Count
// is the number of keys in range before filters and limit.
func (s *Store) rangeAt(r *pb.RangeRequest, curRev int64) (*pb.RangeResponse, error) {
	rev := r.Revision
	if rev > curRev {
		return nil, ErrFutureRev
	}
	if rev <= 0 {
		rev = curRev
	}
	if rev < s.compactRev {
		return nil, ErrCompacted
	}
	if len(r.RangeEnd) == 0 {
		return s.rangeOne(r, rev), nil
	}
	resp := &pb.RangeResponse{}
	if r.CountOnly {
		var n int64
		s.visit(r.Key, r.RangeEnd, func(ke *keyEntry) bool {
			if ke.at(rev) != nil {
				n++
			}
			return true
		})
		resp.Count = n
		return resp, nil
	}

	fetch := r.Limit
	filtered := r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
	if r.SortOrder != pb.RangeRequest_NONE || filtered {
		fetch = 0
	}
	if fetch > 0 {
		fetch++
	}
	var total int64
	var kvs []mvccpb.KeyValue
	s.visit(r.Key, r.RangeEnd, func(ke *keyEntry) bool {
		v := ke.at(rev)
		if v == nil {
			return true
		}
		total++
		if fetch <= 0 || int64(len(kvs)) < fetch {
			kvs = append(kvs, ke.kv(v))
		}
		return true
	})
	resp.Count = total

	if filtered {
		kvs = slices.DeleteFunc(kvs, func(kv mvccpb.KeyValue) bool {
			return (r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision) ||
				(r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision) ||
				(r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision) ||
				(r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision)
		})
	}
	sortKVs(kvs, r.SortOrder, r.SortTarget)
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		resp.More = true
	}
	if len(kvs) > 0 {
		resp.Kvs = make([]*mvccpb.KeyValue, len(kvs))
		for i := range kvs {
			if r.KeysOnly {
				kvs[i].Value = nil
			}
			resp.Kvs[i] = &kvs[i]
		}
	}
	return resp, nil
}

// rangeOne is rangeAt for a single key: the same rules (filters drop the
// key but leave Count at 1; limit and sort cannot change one result) with
// no tree walk and the response, its KeyValue and its slice in one
// allocation.
func (s *Store) rangeOne(r *pb.RangeRequest, rev int64) *pb.RangeResponse {
	var v *version
	ke := s.lookup(r.Key)
	if ke != nil {
		v = ke.at(rev)
	}
	if v == nil {
		return &pb.RangeResponse{}
	}
	type one struct {
		resp pb.RangeResponse
		kv   mvccpb.KeyValue
		kvs  [1]*mvccpb.KeyValue
	}
	o := &one{}
	o.resp.Count = 1
	if r.CountOnly ||
		(r.MaxModRevision != 0 && v.mod > r.MaxModRevision) ||
		(r.MinModRevision != 0 && v.mod < r.MinModRevision) ||
		(r.MaxCreateRevision != 0 && v.create > r.MaxCreateRevision) ||
		(r.MinCreateRevision != 0 && v.create < r.MinCreateRevision) {
		return &o.resp
	}
	o.kv = ke.kv(v)
	if r.KeysOnly {
		o.kv.Value = nil
	}
	o.kvs[0] = &o.kv
	o.resp.Kvs = o.kvs[:]
	return &o.resp
}

// sortKVs applies etcd's sort rules: results come in ascending key order, so
// (KEY, ASCEND) and (KEY, NONE) need nothing, and NONE with another target
// means ascending. Ties keep key order (etcd's sort is not stable, so
// clients cannot rely on any tie order).
func sortKVs(kvs []mvccpb.KeyValue, order pb.RangeRequest_SortOrder, target pb.RangeRequest_SortTarget) {
	if target != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	if order == pb.RangeRequest_NONE || (target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND) {
		return
	}
	var cmp func(a, b *mvccpb.KeyValue) int
	switch target {
	case pb.RangeRequest_KEY:
		cmp = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) }
	case pb.RangeRequest_VERSION:
		cmp = func(a, b *mvccpb.KeyValue) int { return cmpInt64(a.Version, b.Version) }
	case pb.RangeRequest_CREATE:
		cmp = func(a, b *mvccpb.KeyValue) int { return cmpInt64(a.CreateRevision, b.CreateRevision) }
	case pb.RangeRequest_MOD:
		cmp = func(a, b *mvccpb.KeyValue) int { return cmpInt64(a.ModRevision, b.ModRevision) }
	case pb.RangeRequest_VALUE:
		cmp = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	default:
		return
	}
	switch order {
	case pb.RangeRequest_ASCEND:
		slices.SortStableFunc(kvs, func(a, b mvccpb.KeyValue) int { return cmp(&a, &b) })
	case pb.RangeRequest_DESCEND:
		slices.SortStableFunc(kvs, func(a, b mvccpb.KeyValue) int { return cmp(&b, &a) })
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkRangeRequest rejects the range shapes etcd's API layer rejects.
func checkRangeRequest(r *pb.RangeRequest) error {
	if len(r.Key) == 0 {
		return ErrEmptyKey
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return ErrInvalidSortOption
	}
	return nil
}

// checkPutRequest rejects the put shapes etcd's API layer rejects.
func checkPutRequest(r *pb.PutRequest) error {
	if len(r.Key) == 0 {
		return ErrEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return ErrValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return ErrLeaseProvided
	}
	return nil
}

// Put writes one key. Like etcd, a missing lease is reported before a
// missing key for ignore_value/ignore_lease. On error nothing changes.
func (s *Store) Put(r *pb.PutRequest) (*pb.PutResponse, Result, error) {
	if err := checkPutRequest(r); err != nil {
		return nil, Result{Rev: s.Rev()}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leaseExists(r.Lease) {
		return nil, Result{Rev: s.rev}, ErrLeaseNotFound
	}
	w := s.beginWrite()
	resp, err := w.put(r)
	if err != nil {
		// put fails only before changing anything.
		return nil, Result{Rev: s.rev}, err
	}
	resp.Header = nil
	return resp, w.commit(), nil
}

// DeleteRange deletes the keys in range. Deleting nothing does not take a
// revision.
func (s *Store) DeleteRange(r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, Result, error) {
	if len(r.Key) == 0 {
		return nil, Result{Rev: s.Rev()}, ErrEmptyKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.beginWrite()
	resp := w.deleteRange(r)
	resp.Header = nil
	return resp, w.commit(), nil
}

// DeleteKeys deletes those of keys that exist, in key order, in one
// revision (etcd's lease revocation does the same).
func (s *Store) DeleteKeys(keys [][]byte) Result {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, bytes.Compare)
	sorted = slices.CompactFunc(sorted, bytes.Equal)
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.beginWrite()
	for _, k := range sorted {
		if ke := s.lookupW(k); ke != nil && ke.live() != nil {
			w.delete(ke)
		}
	}
	return w.commit()
}

// Compact drops the history no read at revision >= rev and no watch from
// revision >= rev needs: per key, the latest version with mod revision < rev
// is kept unless it is a tombstone, and every version at rev or newer. The
// changes made at rev itself stay in the log (a watch may start at the
// compaction revision, and must see its DELETEs too); a key changed at rev
// also keeps the version before, so those events still carry prev_kv.
func (s *Store) Compact(rev int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev <= s.compactRev {
		return ErrCompacted
	}
	if rev > s.rev {
		return ErrFutureRev
	}
	// Only keys changed since the last compaction (at its revision or
	// later) can hold droppable versions: older keys were already reduced
	// to one live version then.
	n := sort.Search(len(s.log), func(i int) bool { return s.log[i].main > rev })
	for _, le := range s.log[:n] {
		ke := le.ke
		if ke.gen != s.gen {
			// The entry may have been copied since (see mutable); work
			// on the one in the tree.
			if ke = s.lookupW(ke.key); ke == nil {
				continue
			}
		}
		if ke.compactMark == rev {
			continue
		}
		ke = s.mutable(ke)
		ke.compactMark = rev
		s.compactKey(ke, rev)
	}
	// The log keeps the changes at rev.
	n = sort.Search(n, func(i int) bool { return s.log[i].main >= rev })
	rest := len(s.log) - n
	if rest < n {
		// Reallocate so that the dropped prefix is freed.
		s.log = append(make([]logEntry, 0, rest+rest/2+16), s.log[n:]...)
	} else {
		copy(s.log, s.log[n:])
		clear(s.log[rest:])
		s.log = s.log[:rest]
	}
	s.compactRev = rev
	return nil
}

// compactKey drops the versions of ke that Compact(rev) does not keep.
func (s *Store) compactKey(ke *keyEntry, rev int64) {
	vs := ke.versions
	// j: the first version at rev or newer; i: the first one kept.
	j := sort.Search(len(vs), func(i int) bool { return vs[i].mod >= rev })
	i := j - 1
	if i < 0 {
		return
	}
	if vs[i].tombstone() {
		i++
	}
	for k := 0; k < i; k++ {
		s.size -= int64(len(ke.key) + len(vs[k].value))
	}
	n := len(vs) - i
	if cap(vs) > 4*n+8 {
		// A hot key's slice grew long since the last compaction: give
		// the memory back instead of keeping the capacity.
		ke.versions = append(make([]version, 0, n+2), vs[i:]...)
	} else {
		copy(vs, vs[i:])
		clear(vs[n:])
		ke.versions = vs[:n]
	}
	if n == 0 {
		s.tree.Delete(ke)
	}
}

// errorf wraps a sentinel with detail.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
