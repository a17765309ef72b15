package raftstore

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/skiffhq/skiff/raftstore/mvcc"
)

// kvServer is etcd's KV service.
type kvServer struct {
	pb.UnimplementedKVServer
	s *Server
}

var _ pb.KVServer = (*kvServer)(nil)

// Range serves reads locally: after a read-index barrier by default
// (linearizable), immediately when serializable is set.
func (k *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	if !r.Serializable {
		if err := k.s.linearizableBarrier(ctx); err != nil {
			return nil, err
		}
	}
	return k.s.localRange(r)
}

// localRange reads at one revision: the header revision and the data agree
// even while entries are being applied.
func (s *Server) localRange(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	st := s.fsm.kv()
	rev := st.Rev()
	req := *r
	if req.Revision == 0 {
		req.Revision = rev
	}
	resp, err := st.Range(&req)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Header = s.header(rev)
	return resp, nil
}

func checkRange(r *pb.RangeRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

func (k *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPut(r); err != nil {
		return nil, err
	}
	// Checked again when applied (mvcc asks the lease table); this early
	// check saves a round through the log for the common mistake. Only the
	// leader may check: it has applied every grant it acknowledged, while
	// a follower may not have applied a grant made through another member.
	if r.Lease != 0 && k.s.IsLeader() && !k.s.fsm.leaseExists(r.Lease) {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	resp, err := proposeAs[pb.PutResponse](ctx, k.s, &pb.InternalRaftRequest{Put: r})
	if err != nil {
		return nil, err
	}
	k.s.fillHeader(&resp.Header)
	return resp, nil
}

// checkPut checks the shape of a put, as etcd does for every put of both
// txn branches before proposing. Lease existence is not a shape: in a txn
// only the branch taken is checked, when applied.
func checkPut(r *pb.PutRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

func (k *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if len(r.Key) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	resp, err := proposeAs[pb.DeleteRangeResponse](ctx, k.s, &pb.InternalRaftRequest{DeleteRange: r})
	if err != nil {
		return nil, err
	}
	k.s.fillHeader(&resp.Header)
	return resp, nil
}

func (k *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := k.s.checkTxn(r); err != nil {
		return nil, err
	}
	if ro, serializable := readOnlyTxn(r); ro {
		// Only compares and ranges: nothing to commit. As etcd, serve it
		// locally, after a read-index barrier unless every range asked
		// for serializable (a txn of compares alone is linearizable
		// here, stricter than etcd). mvcc evaluates it under one read
		// lock, so it is atomic.
		if !serializable {
			if err := k.s.linearizableBarrier(ctx); err != nil {
				return nil, err
			}
		}
		resp, res, err := k.s.fsm.kv().Txn(r)
		if err != nil {
			return nil, toGRPCError(err)
		}
		resp.Header = k.s.header(res.Rev)
		return resp, nil
	}
	resp, err := proposeAs[pb.TxnResponse](ctx, k.s, &pb.InternalRaftRequest{Txn: r})
	if err != nil {
		return nil, err
	}
	k.s.fillHeader(&resp.Header)
	return resp, nil
}

// checkTxn validates a txn before it is proposed, as etcd does.
func (s *Server) checkTxn(r *pb.TxnRequest) error {
	if err := mvcc.CheckTxn(r, s.cfg.MaxTxnOps); err != nil {
		return toGRPCError(err)
	}
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	var err error
	walkTxn(r, func(op *pb.RequestOp) {
		if err != nil {
			return
		}
		switch {
		case op.GetRequestRange() != nil:
			err = checkRange(op.GetRequestRange())
		case op.GetRequestPut() != nil:
			err = checkPut(op.GetRequestPut())
		case op.GetRequestDeleteRange() != nil:
			if len(op.GetRequestDeleteRange().Key) == 0 {
				err = rpctypes.ErrGRPCEmptyKey
			}
		}
	})
	return err
}

// walkTxn calls f for every op of both branches, nested txns included
// (their compares are not ops).
func walkTxn(r *pb.TxnRequest, f func(*pb.RequestOp)) {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if t := op.GetRequestTxn(); t != nil {
				walkTxn(t, f)
				continue
			}
			f(op)
		}
	}
}

// readOnlyTxn reports whether both branches hold only ranges (a nested txn
// counts as a write, as in etcd), and whether there is at least one range
// and all of them are serializable.
func readOnlyTxn(r *pb.TxnRequest) (readOnly, serializable bool) {
	ranges, serial := 0, 0
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			rr := op.GetRequestRange()
			if rr == nil {
				return false, false
			}
			ranges++
			if rr.Serializable {
				serial++
			}
		}
	}
	return true, ranges > 0 && serial == ranges
}

// Compact proposes a compaction. It returns once the compaction is applied
// on the member that answers, so physical=true is always honoured.
func (k *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := proposeAs[pb.CompactionResponse](ctx, k.s, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, err
	}
	k.s.fillHeader(&resp.Header)
	return resp, nil
}
