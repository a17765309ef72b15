package raftstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
	"github.com/skiffhq/skiff/raftstore/mvcc"
)

// Log entries carry a one-byte tag and a protobuf body.
const (
	// entryRequest: an etcd InternalRaftRequest (KV writes, compaction,
	// leases, member attributes).
	entryRequest byte = 'E'
	// entryClusterInit: a skiffv1.ClusterInit, proposed by every new leader
	// before it serves reads (see readindex.go).
	entryClusterInit byte = 'I'
)

// applyResult is what the state machine returns for one entry to the member
// that proposed it (raft hands it back through ApplyFuture.Response).
type applyResult struct {
	resp marshaler // *pb.PutResponse, *pb.TxnResponse, ...; nil for internal entries
	err  error     // an rpctypes error (gRPC status)
}

// marshaler is the gogo-generated encoding method of every etcd message.
type marshaler interface {
	Marshal() ([]byte, error)
}

// memberAttrs are what a member publishes about itself through the log.
type memberAttrs struct {
	Name       string
	ClientURLs []string
}

// fsm is the replicated state machine: the MVCC store, the lease table
// (id → TTL; deadlines are leader-only state, see lessor.go), member
// attributes and the cluster id.
//
// Raft calls ApplyBatch, Snapshot and Restore from its single FSM goroutine;
// everything else (the gRPC handlers, the lessor, watchers) only reads, under
// mu or through the atomics, so a slow reader never blocks apply.
type fsm struct {
	store atomic.Pointer[mvcc.Store]

	mu      sync.RWMutex
	leases  map[int64]int64 // lease id → granted TTL in seconds
	members map[uint64]memberAttrs

	clusterID   atomic.Uint64
	applied     atomic.Uint64 // index of the last entry applied
	appliedTerm atomic.Uint64 // its term

	// changed is broadcast after every applied batch: read-index waiters
	// and watchers pull what they need from the store when woken.
	changed notifier

	// applyMu is held by ApplyBatch for a whole batch, so that
	// captureLive sees the state between two batches (uncontended
	// otherwise: raft applies from one goroutine).
	applyMu sync.Mutex

	// observe, when set, records apply batch latency (metrics).
	observe func(d time.Duration, entries int)
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM() *fsm {
	f := &fsm{
		leases:  make(map[int64]int64),
		members: make(map[uint64]memberAttrs),
	}
	f.store.Store(mvcc.New(f.storeOptions()))
	return f
}

func (f *fsm) storeOptions() mvcc.Options {
	return mvcc.Options{LeaseExists: f.leaseExists}
}

func (f *fsm) kv() *mvcc.Store { return f.store.Load() }

func (f *fsm) leaseExists(id int64) bool {
	f.mu.RLock()
	_, ok := f.leases[id]
	f.mu.RUnlock()
	return ok
}

func (f *fsm) leaseTTL(id int64) (int64, bool) {
	f.mu.RLock()
	ttl, ok := f.leases[id]
	f.mu.RUnlock()
	return ttl, ok
}

// leaseTable returns a copy of the lease table.
func (f *fsm) leaseTable() map[int64]int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m := make(map[int64]int64, len(f.leases))
	for id, ttl := range f.leases {
		m[id] = ttl
	}
	return m
}

func (f *fsm) memberAttrs(id uint64) (memberAttrs, bool) {
	f.mu.RLock()
	a, ok := f.members[id]
	f.mu.RUnlock()
	return a, ok
}

// Apply implements raft.FSM for callers that do not batch.
func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in order and returns one result per
// entry. It must be deterministic: every member applies the same entries to
// the same state and must end in the same state.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	start := time.Now()
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	out := make([]interface{}, len(logs))
	for i, l := range logs {
		switch l.Type {
		case raft.LogCommand:
			out[i] = f.applyCommand(l.Data)
		case raft.LogConfiguration:
			f.applyConfiguration(raft.DecodeConfiguration(l.Data))
		}
	}
	if n := len(logs); n > 0 {
		f.appliedTerm.Store(logs[n-1].Term)
		f.applied.Store(logs[n-1].Index)
	}
	if f.observe != nil {
		f.observe(time.Since(start), len(logs))
	}
	f.changed.broadcast()
	return out
}

func (f *fsm) applyCommand(data []byte) applyResult {
	if len(data) == 0 {
		return applyResult{err: errors.New("empty log entry")}
	}
	switch data[0] {
	case entryClusterInit:
		var ci skiffv1.ClusterInit
		if err := proto.Unmarshal(data[1:], &ci); err != nil {
			return applyResult{err: fmt.Errorf("decode cluster init: %w", err)}
		}
		f.clusterID.CompareAndSwap(0, ci.ClusterId)
		return applyResult{}
	case entryRequest:
		var r pb.InternalRaftRequest
		if err := r.Unmarshal(data[1:]); err != nil {
			return applyResult{err: fmt.Errorf("decode request: %w", err)}
		}
		return f.applyRequest(&r)
	default:
		return applyResult{err: fmt.Errorf("unknown log entry tag %q", data[0])}
	}
}

func (f *fsm) applyRequest(r *pb.InternalRaftRequest) applyResult {
	st := f.kv()
	switch {
	case r.Put != nil:
		resp, _, err := st.Put(r.Put)
		if err != nil {
			return applyResult{err: toGRPCError(err)}
		}
		resp.Header = &pb.ResponseHeader{Revision: st.Rev()}
		return applyResult{resp: resp}
	case r.DeleteRange != nil:
		resp, _, err := st.DeleteRange(r.DeleteRange)
		if err != nil {
			return applyResult{err: toGRPCError(err)}
		}
		resp.Header = &pb.ResponseHeader{Revision: st.Rev()}
		return applyResult{resp: resp}
	case r.Txn != nil:
		resp, _, err := st.Txn(r.Txn)
		if err != nil {
			return applyResult{err: toGRPCError(err)}
		}
		resp.Header = &pb.ResponseHeader{Revision: st.Rev()}
		return applyResult{resp: resp}
	case r.Compaction != nil:
		if err := st.Compact(r.Compaction.Revision); err != nil {
			return applyResult{err: toGRPCError(err)}
		}
		return applyResult{resp: &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: st.Rev()}}}
	case r.LeaseGrant != nil:
		g := r.LeaseGrant
		f.mu.Lock()
		_, exists := f.leases[g.ID]
		if !exists {
			f.leases[g.ID] = g.TTL
		}
		f.mu.Unlock()
		if exists {
			return applyResult{err: rpctypes.ErrGRPCLeaseExist}
		}
		return applyResult{resp: &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: st.Rev()}, ID: g.ID, TTL: g.TTL}}
	case r.LeaseRevoke != nil:
		id := r.LeaseRevoke.ID
		if !f.leaseExists(id) {
			return applyResult{err: rpctypes.ErrGRPCLeaseNotFound}
		}
		// Keys go first, in one revision, so watchers see the deletes at
		// the same revision the lease disappears.
		if keys := st.LeaseKeys(id); len(keys) > 0 {
			st.DeleteKeys(keys)
		}
		f.mu.Lock()
		delete(f.leases, id)
		f.mu.Unlock()
		return applyResult{resp: &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: st.Rev()}}}
	case r.ClusterMemberAttrSet != nil:
		a := r.ClusterMemberAttrSet
		var attrs memberAttrs
		if a.MemberAttributes != nil {
			attrs = memberAttrs{Name: a.MemberAttributes.Name, ClientURLs: slices.Clone(a.MemberAttributes.ClientUrls)}
		}
		f.mu.Lock()
		f.members[a.Member_ID] = attrs
		f.mu.Unlock()
		return applyResult{}
	default:
		return applyResult{err: errors.New("unsupported request in log entry")}
	}
}

// applyConfiguration forgets the attributes of members no longer in the
// Raft configuration.
func (f *fsm) applyConfiguration(c raft.Configuration) {
	keep := make(map[uint64]bool, len(c.Servers))
	for _, s := range c.Servers {
		if id, err := parseMemberID(s.ID); err == nil {
			keep[id] = true
		}
	}
	f.mu.Lock()
	for id := range f.members {
		if !keep[id] {
			delete(f.members, id)
		}
	}
	f.mu.Unlock()
}

// Snapshot format: the magic, a uvarint length and a skiffv1.SnapshotMeta,
// then the mvcc store's own encoding.
var snapshotMagic = []byte("SKIFFSN1")

// Snapshot captures the state. Raft calls it from the FSM goroutine, so no
// apply runs meanwhile; it only takes the small metadata (cluster id,
// applied index, lease table, member attributes) and the mvcc store's O(1)
// immutable image. Persist encodes that image on raft's snapshot goroutine
// while applies go on, so a large store does not pause the state machine.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return f.capture()
}

// capture takes a consistent image of the state: the caller must keep
// applies out (the FSM goroutine itself, or a holder of applyMu).
func (f *fsm) capture() (*fsmSnapshot, error) {
	meta := &skiffv1.SnapshotMeta{
		ClusterId:    f.clusterID.Load(),
		AppliedIndex: f.applied.Load(),
		AppliedTerm:  f.appliedTerm.Load(),
	}
	f.mu.RLock()
	for id, ttl := range f.leases {
		meta.Leases = append(meta.Leases, &skiffv1.SnapshotLease{Id: id, Ttl: ttl})
	}
	for id, a := range f.members {
		meta.Members = append(meta.Members, &skiffv1.SnapshotMember{Id: id, Name: a.Name, ClientUrls: a.ClientURLs})
	}
	f.mu.RUnlock()
	slices.SortFunc(meta.Leases, func(a, b *skiffv1.SnapshotLease) int { return cmpInt(a.Id, b.Id) })
	slices.SortFunc(meta.Members, func(a, b *skiffv1.SnapshotMember) int { return cmpInt(a.Id, b.Id) })
	mb, err := proto.Marshal(meta)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 0, len(snapshotMagic)+binary.MaxVarintLen64+len(mb))
	head = append(head, snapshotMagic...)
	head = binary.AppendUvarint(head, uint64(len(mb)))
	head = append(head, mb...)
	return &fsmSnapshot{head: head, image: f.kv().Snapshot(), rev: f.kv().Rev()}, nil
}

// captureLive takes a consistent image from outside the FSM goroutine
// (Maintenance.Snapshot): applyMu keeps a batch from running meanwhile.
func (f *fsm) captureLive() (*fsmSnapshot, error) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	return f.capture()
}

func cmpInt[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Restore replaces the whole state with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<16)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || !bytes.Equal(magic, snapshotMagic) {
		return fmt.Errorf("restore snapshot: not a skiff snapshot (bad magic)")
	}
	n, err := binary.ReadUvarint(br)
	if err != nil || n > 1<<30 {
		return fmt.Errorf("restore snapshot: bad metadata length")
	}
	mb := make([]byte, n)
	if _, err := io.ReadFull(br, mb); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	var meta skiffv1.SnapshotMeta
	if err := proto.Unmarshal(mb, &meta); err != nil {
		return fmt.Errorf("restore snapshot metadata: %w", err)
	}
	st, err := mvcc.Restore(br, f.storeOptions())
	if err != nil {
		return fmt.Errorf("restore mvcc snapshot: %w", err)
	}
	leases := make(map[int64]int64, len(meta.Leases))
	for _, l := range meta.Leases {
		leases[l.Id] = l.Ttl
	}
	members := make(map[uint64]memberAttrs, len(meta.Members))
	for _, m := range meta.Members {
		members[m.Id] = memberAttrs{Name: m.Name, ClientURLs: m.ClientUrls}
	}
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	f.mu.Lock()
	f.leases = leases
	f.members = members
	f.mu.Unlock()
	f.store.Store(st)
	f.clusterID.Store(meta.ClusterId)
	f.appliedTerm.Store(meta.AppliedTerm)
	f.applied.Store(meta.AppliedIndex)
	f.changed.broadcast()
	return nil
}

// fsmSnapshot is a captured state: the encoded metadata and the mvcc
// image, encoded only when written.
type fsmSnapshot struct {
	head  []byte
	image *mvcc.Snapshot
	rev   int64 // store revision of the image
}

// WriteTo writes the snapshot format Restore reads. It may run on any
// goroutine, while applies go on.
func (s *fsmSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(s.head)
	if err != nil {
		return int64(n), err
	}
	m, err := s.image.WriteTo(w)
	return int64(n) + m, err
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("encode snapshot: %w", err)
	}
	return sink.Close()
}

// Release drops the image, so the store's copy-on-write versions it kept
// alive can be collected.
func (s *fsmSnapshot) Release() { s.image = nil }

// notifier is a broadcast: wait returns a channel closed by the next
// broadcast. Waking is one close per applied batch, whatever the number of
// waiters, and a waiter that is slow to look loses nothing because it reads
// the state itself.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}
