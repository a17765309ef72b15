package mvcc

import (
	"bytes"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// writeTxn applies changes for one main revision directly to the store
// (under the write lock, so readers never see a half-done write) and keeps
// an undo record per change, so that a failing txn leaves no trace.
type writeTxn struct {
	s      *Store
	main   int64 // the revision this write takes if it changes anything
	logLen int   // len(s.log) at the start, for rollback
	events []*mvccpb.Event
	// undoable is set for txns, the only writes that can fail after
	// changing something; the others skip the undo records.
	undoable bool
	undo     []undoRec
}

// eventAlloc lets an event, its KeyValue and its PrevKv share one
// allocation.
type eventAlloc struct {
	ev       mvccpb.Event
	kv, prev mvccpb.KeyValue
}

// newEvent returns an event whose Kv points at kv and whose PrevKv is the
// key as it was at revision main-1 (etcd's watch looks the previous
// value up the same way), none for a creation.
func newEvent(typ mvccpb.Event_EventType, kv mvccpb.KeyValue, ke *keyEntry, main int64, create bool) *mvccpb.Event {
	a := &eventAlloc{kv: kv}
	a.ev.Type = typ
	a.ev.Kv = &a.kv
	if !create {
		if p := ke.at(main - 1); p != nil {
			a.prev = ke.kv(p)
			a.ev.PrevKv = &a.prev
		}
	}
	return &a.ev
}

type undoRec struct {
	ke       *keyEntry
	created  bool  // ke was inserted into the tree by this change
	oldLease int64 // lease attachment before the change
	newLease int64 // lease attachment after the change
	size     int64 // bytes added to s.size
}

func (s *Store) beginWrite() writeTxn {
	return writeTxn{s: s, main: s.rev + 1, logLen: len(s.log)}
}

// readRev is the revision reads inside the write see: the write's own
// revision once it has changed something, as in etcd's storeTxnWrite.
func (w *writeTxn) readRev() int64 {
	if len(w.events) > 0 {
		return w.main
	}
	return w.s.rev
}

func (w *writeTxn) commit() Result {
	if len(w.events) > 0 {
		w.s.rev = w.main
	}
	return Result{Rev: w.s.rev, Events: w.events}
}

func (w *writeTxn) rollback() {
	if !w.undoable {
		panic("mvcc: rollback of a write without undo records")
	}
	s := w.s
	for i := len(w.undo) - 1; i >= 0; i-- {
		u := w.undo[i]
		ke := u.ke
		n := len(ke.versions) - 1
		ke.versions[n] = version{}
		ke.versions = ke.versions[:n]
		if u.created {
			s.tree.Delete(ke)
		}
		if u.oldLease != u.newLease {
			s.detach(u.newLease, ke)
			s.attach(u.oldLease, ke)
		}
		s.size -= u.size
	}
	clear(s.log[w.logLen:])
	s.log = s.log[:w.logLen]
	w.undo = nil
	w.events = nil
}

// put applies a PutRequest whose lease was already checked.
func (w *writeTxn) put(r *pb.PutRequest) (*pb.PutResponse, error) {
	s := w.s
	ke := s.lookupW(r.Key)
	var cur *version
	if ke != nil {
		cur = ke.live()
	}
	if (r.IgnoreValue || r.IgnoreLease) && cur == nil {
		return nil, ErrKeyNotFound
	}
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{Revision: w.main}}
	if r.PrevKv && cur != nil {
		kv := ke.kv(cur)
		resp.PrevKv = &kv
	}
	created := false
	var value []byte
	if ke != nil {
		ke = s.mutable(ke)
		cur = ke.live()
	}
	if ke == nil {
		// One allocation for the key and the value.
		buf := make([]byte, len(r.Key)+len(r.Value))
		copy(buf, r.Key)
		copy(buf[len(r.Key):], r.Value)
		ke = &keyEntry{key: buf[:len(r.Key):len(r.Key)], gen: s.gen}
		if r.Value != nil {
			value = buf[len(r.Key):]
		}
		s.tree.ReplaceOrInsert(ke)
		created = true
	} else {
		value = bytes.Clone(r.Value)
	}
	v := version{value: value, create: w.main, mod: w.main, sub: int64(len(w.events)), ver: 1, lease: r.Lease}
	var oldLease int64
	if cur != nil {
		v.create = cur.create
		v.ver = cur.ver + 1
		oldLease = cur.lease
		if r.IgnoreValue {
			v.value = cur.value
		}
		if r.IgnoreLease {
			v.lease = cur.lease
		}
	}
	ev := newEvent(mvccpb.PUT, ke.kv(&v), ke, w.main, v.ver == 1)
	ke.versions = append(ke.versions, v)
	if oldLease != v.lease {
		s.detach(oldLease, ke)
		s.attach(v.lease, ke)
	}
	sz := int64(len(ke.key) + len(v.value))
	s.size += sz
	s.log = append(s.log, logEntry{main: w.main, sub: v.sub, ke: ke})
	if w.undoable {
		w.undo = append(w.undo, undoRec{ke: ke, created: created, oldLease: oldLease, newLease: v.lease, size: sz})
	}
	w.events = append(w.events, ev)
	return resp, nil
}

// delete adds a tombstone to a key that currently exists.
func (w *writeTxn) delete(ke *keyEntry) {
	s := w.s
	ke = s.mutable(ke)
	cur := ke.live()
	oldLease := cur.lease
	ev := newEvent(mvccpb.DELETE, mvccpb.KeyValue{Key: ke.key, ModRevision: w.main}, ke, w.main, false)
	sub := int64(len(w.events))
	ke.versions = append(ke.versions, version{mod: w.main, sub: sub})
	s.detach(oldLease, ke)
	sz := int64(len(ke.key))
	s.size += sz
	s.log = append(s.log, logEntry{main: w.main, sub: sub, ke: ke})
	if w.undoable {
		w.undo = append(w.undo, undoRec{ke: ke, oldLease: oldLease, size: sz})
	}
	w.events = append(w.events, ev)
}

// deleteRange applies a DeleteRangeRequest; prev_kv sees the txn's earlier
// writes, as in etcd.
func (w *writeTxn) deleteRange(r *pb.DeleteRangeRequest) *pb.DeleteRangeResponse {
	var kes []*keyEntry
	w.s.visit(r.Key, r.RangeEnd, func(ke *keyEntry) bool {
		if ke.live() != nil {
			kes = append(kes, ke)
		}
		return true
	})
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}, Deleted: int64(len(kes))}
	if r.PrevKv {
		kvs := make([]mvccpb.KeyValue, len(kes))
		resp.PrevKvs = make([]*mvccpb.KeyValue, len(kes))
		for i, ke := range kes {
			kvs[i] = ke.kv(ke.live())
			resp.PrevKvs[i] = &kvs[i]
		}
	}
	for _, ke := range kes {
		w.delete(ke)
	}
	resp.Header.Revision = w.readRev()
	return resp
}
