// Package mvcc is Skiff's multi-version key-value index: the state machine
// that every raftstore member applies committed entries to.
//
// It is pure: no disk, no network, no clocks, no randomness. Given the same
// sequence of calls, every member ends in the same state and computes the same
// HashKV, which is what lets members be compared after faults.
//
// Vocabulary (the same as etcd's, so etcd clients see what they expect):
//   - revision: a global counter. An empty store is at revision 1. Every write
//     transaction that changes something (Put, DeleteRange that deletes at
//     least one key, a Txn with at least one such op, DeleteKeys) takes the
//     next main revision; the ops inside it take sub revisions 0,1,2...
//     A write that changes nothing (e.g. deleting an absent key) does not
//     advance the revision.
//   - per key: create_revision (main revision of the put that created this
//     generation of the key), mod_revision (main revision of the last put),
//     version (1 on creation, +1 per put, reset by delete), lease.
//   - history: every version of every key is kept until compaction. Range at
//     an older revision sees the store as it was then.
//   - compaction at revision C drops history that no read at revision >= C
//     needs. Reads below C, and event queries from C or below, fail with
//     ErrCompacted.
//
// Concurrency: a Store is safe for concurrent use. Writes are expected from one
// goroutine (the raft FSM); reads (Range, Events, HashKV, LeaseKeys, txns
// holding only ranges, Snapshot.WriteTo) come from many and run in parallel.
package mvcc

import (
	"errors"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Errors returned by the Store. The server maps them to etcd's rpctypes
// errors (same gRPC codes and messages), so keep them distinguishable with
// errors.Is.
var (
	// ErrCompacted: the requested revision has been compacted away.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev: the requested revision is newer than the current one.
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
	// ErrLeaseNotFound: a put names a lease that LeaseExists says is absent.
	ErrLeaseNotFound = errors.New("mvcc: lease not found")
	// ErrKeyNotFound: ignore_value or ignore_lease on a key that does not
	// exist; also (wrapped) an empty request op in a txn, which etcd answers
	// with the same error.
	ErrKeyNotFound = errors.New("mvcc: key not found")
	// ErrDuplicateKey: a txn branch writes the same key twice (CheckTxn).
	ErrDuplicateKey = errors.New("mvcc: duplicate key given in txn request")
	// ErrTooManyOps: a txn has more ops in one branch than allowed (CheckTxn).
	ErrTooManyOps = errors.New("mvcc: too many operations in txn request")
	// ErrUnsupported is wrapped when a request uses a form the Store does
	// not implement; the message names the field. ErrEmptyKey,
	// ErrValueProvided, ErrLeaseProvided and ErrInvalidSortOption (store.go)
	// wrap it too: all are InvalidArgument in etcd.
	ErrUnsupported = errors.New("mvcc: unsupported request")
)

// Options configure a Store.
type Options struct {
	// LeaseExists reports whether a lease is granted. Puts with a non-zero
	// lease that LeaseExists rejects fail with ErrLeaseNotFound and change
	// nothing. Nil means every lease exists.
	LeaseExists func(id int64) bool
}

// Result describes what one write did, for watchers and the lessor.
type Result struct {
	// Rev is the store revision after the write (unchanged when the write
	// changed nothing, i.e. Events is empty).
	Rev int64
	// Events are the changes made, in sub-revision order. PrevKv is set as
	// etcd's watch sets it: the key as it was at revision Rev-1, when it
	// existed then, and never for a creation (a PUT with version 1). A
	// DELETE's Kv holds only Key and ModRevision, like etcd's.
	Events []*mvccpb.Event
}

// Store API (implemented in store.go, write.go, txn.go, check.go,
// events.go, hash.go, snapshot.go; DESIGN.md explains the layout):
//
//	func New(opts Options) *Store
//	func (s *Store) Rev() int64          // current revision (1 when empty)
//	func (s *Store) CompactRev() int64   // last compaction revision (0 if none)
//
//	// Reads. Header is left nil for the caller to fill. Range honours every
//	// RangeRequest field: key/range_end (range_end "\x00" = from key; prefix
//	// form is just range_end), limit (Count is still the total in range, More
//	// set when limited), revision (0 = current; ErrCompacted below
//	// CompactRev, a read at CompactRev itself works; ErrFutureRev),
//	// sort_order/sort_target, keys_only, count_only, min/max mod/create
//	// revision filters (applied after fetching, before the limit, as etcd
//	// does; Count ignores them). serializable is the caller's business.
//	// An empty key is ErrEmptyKey, an unknown sort target
//	// ErrInvalidSortOption (an unknown sort order means no sort, as etcd).
//	func (s *Store) Range(r *pb.RangeRequest) (*pb.RangeResponse, error)
//
//	// Writes: each is atomic and takes at most one new revision. The
//	// top-level response Header is nil; sub-responses inside a Txn carry
//	// a Header with only Revision set (as etcd computes it).
//	func (s *Store) Put(r *pb.PutRequest) (*pb.PutResponse, Result, error)
//	func (s *Store) DeleteRange(r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, Result, error)
//	// Txn evaluates every compare on the taken path, nested txns' too,
//	// against the state before the txn (a compare on a missing key sees
//	// version/create/mod revision 0 and lease 0, and a value compare on it
//	// fails, exactly as etcd), checks the taken ops against that state
//	// (ErrKeyNotFound, ErrLeaseNotFound, ErrCompacted, ErrFutureRev), then
//	// runs them in order; reads inside see the txn's earlier writes. Any
//	// error leaves the store unchanged.
//	func (s *Store) Txn(r *pb.TxnRequest) (*pb.TxnResponse, Result, error)
//	// DeleteKeys deletes the given keys (those that exist) in one revision,
//	// in key order: used by lease revocation.
//	func (s *Store) DeleteKeys(keys [][]byte) Result
//	// Compact drops history below rev. ErrCompacted if rev <= CompactRev(),
//	// ErrFutureRev if rev > Rev().
//	func (s *Store) Compact(rev int64) error
//
//	// CheckTxn validates a txn before it is proposed: ErrTooManyOps if any
//	// branch (counted per level as etcd does) exceeds maxOps, ErrDuplicateKey
//	// if one branch puts/deletes overlapping keys as etcd defines it, and
//	// ErrEmptyKey/ErrValueProvided/ErrLeaseProvided for malformed ops.
//	func CheckTxn(r *pb.TxnRequest, maxOps int) error
//
//	// Leases: the keys currently attached to a lease (sorted).
//	func (s *Store) LeaseKeys(id int64) [][]byte
//
//	// Watch support: the events with mod revision in [fromRev, Rev()] whose
//	// key is in [key, end) (end nil = just key, "\x00" = from key), in
//	// revision order, with PrevKv filled when prevKV (same rule as Result).
//	// At most maxEvents events (<= 0: no limit), but never splitting one
//	// revision (a revision with more events than maxEvents is returned
//	// whole). next is the revision to ask from next time. fromRev <= 0
//	// means from now: no events, next = Rev()+1. ErrCompacted if
//	// 0 < fromRev < CompactRev() (the events at CompactRev itself, DELETEs
//	// included, are kept).
//	func (s *Store) Events(fromRev int64, key, end []byte, prevKV bool, maxEvents int) (evs []*mvccpb.Event, next int64, err error)
//
//	// HashKV: crc32 (Castagnoli) over every kept key-value version with mod
//	// revision <= rev (0 = current), identical on members in the same state.
//	// ErrCompacted if 0 < rev < CompactRev(), ErrFutureRev if rev > Rev().
//	func (s *Store) HashKV(rev int64) (hash uint32, hashRev int64, compactRev int64, err error)
//
//	// Snapshots: a self-describing binary encoding of the whole state
//	// (history, revision, compaction revision; lease attachments are
//	// derived from the data). Snapshot() is an O(1) point-in-time image
//	// whose WriteTo may run on another goroutine while writes go on (use it
//	// for raft's FSM.Snapshot/Persist split). Restore wraps ErrBadSnapshot
//	// for any malformed input.
//	func (s *Store) WriteTo(w io.Writer) (int64, error)
//	func (s *Store) Snapshot() *Snapshot
//	func (sn *Snapshot) WriteTo(w io.Writer) (int64, error)
//	func Restore(r io.Reader, opts Options) (*Store, error)
//
//	// Size in bytes of keys and values of every kept version, for
//	// Status.db_size.
//	func (s *Store) Size() int64
//
// Byte slices in responses and events are shared with the Store and must
// not be modified; request byte slices are copied.
