package mvcc

import (
	"bytes"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Txn runs a transaction as etcd's apply layer does:
//
//  1. every compare on the taken path, nested txns included, is evaluated
//     against the state before the txn (a nested txn's compares do not see
//     the outer txn's writes);
//  2. the ops on that path are checked against the same state, puts first
//     then ranges (etcd 3.5's order): a put with ignore_value/ignore_lease
//     needs the key (ErrKeyNotFound), a put's lease must exist
//     (ErrLeaseNotFound), a range's revision must be neither compacted nor
//     in the future;
//  3. the ops run in order; ranges see the txn's earlier writes.
//
// All changes share one main revision. Any error leaves the store unchanged.
func (s *Store) Txn(r *pb.TxnRequest) (*pb.TxnResponse, Result, error) {
	if err := validateTxn(r); err != nil {
		return nil, Result{Rev: s.Rev()}, err
	}
	if isReadOnly(r) {
		// Only ranges: the read lock is enough, so such txns run in
		// parallel with other reads (etcd uses a read view for them too).
		s.mu.RLock()
		defer s.mu.RUnlock()
	} else {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	path := s.compareToPath(r, nil)
	if _, err := s.checkTxnOps(r, path); err != nil {
		return nil, Result{Rev: s.rev}, err
	}
	w := s.beginWrite()
	w.undoable = true
	resp, _, err := w.applyTxn(r, path)
	if len(w.events) == 0 {
		// Nothing changed (always so for a read-only txn): there is
		// nothing to undo or commit, and the store may not be written.
		if err != nil {
			return nil, Result{Rev: s.rev}, err
		}
		resp.Header = nil
		return resp, Result{Rev: s.rev}, nil
	}
	if err != nil {
		w.rollback()
		return nil, Result{Rev: s.rev}, err
	}
	resp.Header = nil
	return resp, w.commit(), nil
}

// isReadOnly reports whether both branches hold only ranges (a nested txn
// counts as a write, as in etcd's IsTxnReadonly).
func isReadOnly(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if op.GetRequestRange() == nil {
				return false
			}
		}
	}
	return true
}

// validateTxn rejects the shapes etcd's API layer rejects (empty keys,
// ignore_* with a value or lease, unknown sort options, and empty request
// ops, which etcd answers with ErrKeyNotFound), anywhere in the tree, before
// anything is evaluated.
func validateTxn(r *pb.TxnRequest) error {
	for _, c := range r.Compare {
		if c == nil || len(c.Key) == 0 {
			return ErrEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if err := validateOp(op); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateOp(op *pb.RequestOp) error {
	if op == nil {
		// etcd answers ErrGRPCKeyNotFound for an empty op.
		return errorf(ErrKeyNotFound, "empty request op in txn")
	}
	switch tv := op.Request.(type) {
	case *pb.RequestOp_RequestRange:
		if tv.RequestRange == nil {
			return ErrEmptyKey
		}
		return checkRangeRequest(tv.RequestRange)
	case *pb.RequestOp_RequestPut:
		if tv.RequestPut == nil {
			return ErrEmptyKey
		}
		return checkPutRequest(tv.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		if tv.RequestDeleteRange == nil || len(tv.RequestDeleteRange.Key) == 0 {
			return ErrEmptyKey
		}
	case *pb.RequestOp_RequestTxn:
		if tv.RequestTxn == nil {
			return errorf(ErrKeyNotFound, "empty nested txn in txn")
		}
		return validateTxn(tv.RequestTxn)
	default:
		return errorf(ErrKeyNotFound, "empty request op in txn")
	}
	return nil
}

func branch(r *pb.TxnRequest, ok bool) []*pb.RequestOp {
	if ok {
		return r.Success
	}
	return r.Failure
}

// compareToPath evaluates the compares of r and of the nested txns on the
// taken branches, depth first, appending one bool per txn to path.
func (s *Store) compareToPath(r *pb.TxnRequest, path []bool) []bool {
	ok := true
	for _, c := range r.Compare {
		if !s.compare(c, s.rev) {
			ok = false
			break
		}
	}
	path = append(path, ok)
	for _, op := range branch(r, ok) {
		if tv, isTxn := op.Request.(*pb.RequestOp_RequestTxn); isTxn {
			path = s.compareToPath(tv.RequestTxn, path)
		}
	}
	return path
}

// compare applies one compare at revision rev. Over a range, every key must
// satisfy it; an empty range compares as one missing key, whose version,
// revisions and lease are 0 and whose value compare always fails.
func (s *Store) compare(c *pb.Compare, rev int64) bool {
	found := false
	ok := true
	s.visit(c.Key, c.RangeEnd, func(ke *keyEntry) bool {
		v := ke.at(rev)
		if v == nil {
			return true
		}
		found = true
		if !compareVersion(c, v) {
			ok = false
			return false
		}
		return true
	})
	if !found {
		if c.Target == pb.Compare_VALUE {
			return false
		}
		return compareVersion(c, &version{})
	}
	return ok
}

func compareVersion(c *pb.Compare, v *version) bool {
	var res int
	switch c.Target {
	case pb.Compare_VALUE:
		var want []byte
		if tv, _ := c.TargetUnion.(*pb.Compare_Value); tv != nil {
			want = tv.Value
		}
		res = bytes.Compare(v.value, want)
	case pb.Compare_CREATE:
		var want int64
		if tv, _ := c.TargetUnion.(*pb.Compare_CreateRevision); tv != nil {
			want = tv.CreateRevision
		}
		res = cmpInt64(v.create, want)
	case pb.Compare_MOD:
		var want int64
		if tv, _ := c.TargetUnion.(*pb.Compare_ModRevision); tv != nil {
			want = tv.ModRevision
		}
		res = cmpInt64(v.mod, want)
	case pb.Compare_VERSION:
		var want int64
		if tv, _ := c.TargetUnion.(*pb.Compare_Version); tv != nil {
			want = tv.Version
		}
		res = cmpInt64(v.ver, want)
	case pb.Compare_LEASE:
		var want int64
		if tv, _ := c.TargetUnion.(*pb.Compare_Lease); tv != nil {
			want = tv.Lease
		}
		res = cmpInt64(v.lease, want)
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return res == 0
	case pb.Compare_NOT_EQUAL:
		return res != 0
	case pb.Compare_GREATER:
		return res > 0
	case pb.Compare_LESS:
		return res < 0
	}
	return true
}

// checkTxnOps checks the ops on the taken path against the current state
// (no write has happened yet) as etcd 3.5 does: first every put on the
// path, then every range, so a put error wins over a range error. It
// returns how many path entries the nested txns consumed.
func (s *Store) checkTxnOps(r *pb.TxnRequest, path []bool) (int, error) {
	if _, err := s.walkPath(r, path, s.checkPut); err != nil {
		return 0, err
	}
	return s.walkPath(r, path, s.checkRange)
}

// walkPath calls check for every non-txn op on the taken path, in order.
func (s *Store) walkPath(r *pb.TxnRequest, path []bool, check func(op *pb.RequestOp) error) (int, error) {
	used := 0
	for _, op := range branch(r, path[0]) {
		if tv, ok := op.Request.(*pb.RequestOp_RequestTxn); ok {
			n, err := s.walkPath(tv.RequestTxn, path[1:], check)
			if err != nil {
				return 0, err
			}
			used += n + 1
			path = path[n+1:]
			continue
		}
		if err := check(op); err != nil {
			return 0, err
		}
	}
	return used, nil
}

// checkPut: ignore_value/ignore_lease need the key, and the lease must exist
// (in that order, as etcd's checkPut).
func (s *Store) checkPut(op *pb.RequestOp) error {
	p := op.GetRequestPut()
	if p == nil {
		return nil
	}
	if p.IgnoreValue || p.IgnoreLease {
		if ke := s.lookup(p.Key); ke == nil || ke.live() == nil {
			return ErrKeyNotFound
		}
	}
	if !s.leaseExists(p.Lease) {
		return ErrLeaseNotFound
	}
	return nil
}

// checkRange: an explicit revision must be neither in the future nor
// compacted (a read at the compaction revision itself is allowed).
func (s *Store) checkRange(op *pb.RequestOp) error {
	r := op.GetRequestRange()
	if r == nil {
		return nil
	}
	switch {
	case r.Revision == 0:
	case r.Revision > s.rev:
		return ErrFutureRev
	case r.Revision < s.compactRev:
		return ErrCompacted
	}
	return nil
}

// applyTxn runs the ops of the branch path[0] chose and returns the
// response and how many path entries nested txns consumed.
func (w *writeTxn) applyTxn(r *pb.TxnRequest, path []bool) (*pb.TxnResponse, int, error) {
	ops := branch(r, path[0])
	resp := &pb.TxnResponse{
		Header:    &pb.ResponseHeader{},
		Succeeded: path[0],
		Responses: make([]*pb.ResponseOp, len(ops)),
	}
	used := 0
	for i, op := range ops {
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			rev := w.readRev()
			rr, err := w.s.rangeAt(tv.RequestRange, rev)
			if err != nil {
				return nil, 0, err
			}
			rr.Header = &pb.ResponseHeader{Revision: rev}
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: rr}}
		case *pb.RequestOp_RequestPut:
			pr, err := w.put(tv.RequestPut)
			if err != nil {
				return nil, 0, err
			}
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: pr}}
		case *pb.RequestOp_RequestDeleteRange:
			dr := w.deleteRange(tv.RequestDeleteRange)
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}}
		case *pb.RequestOp_RequestTxn:
			tr, n, err := w.applyTxn(tv.RequestTxn, path[1:])
			if err != nil {
				return nil, 0, err
			}
			used += n + 1
			path = path[n+1:]
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}}
		}
	}
	return resp, used, nil
}
