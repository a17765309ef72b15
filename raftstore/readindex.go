package raftstore

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// Linearizable reads use the read-index protocol of the Raft thesis (Ongaro,
// "Consensus: Bridging Theory and Practice", §6.4), without writing to the
// log:
//
//  1. The leader must have committed an entry of its current term; until it
//     has, its commit index may lag entries a previous leader committed
//     (§6.4 step 1, and §3.6.2 for why). Every new leader here proposes a
//     ClusterInit entry at once; a member knows the condition holds when its
//     state machine has applied an entry whose term is the current term.
//  2. The leader records its commit index as the read index.
//  3. The leader confirms it is still the leader by exchanging a heartbeat
//     round with a quorum (raft's VerifyLeader). A leader deposed before the
//     read began would fail here, so no newer write can be missed: any write
//     acknowledged before the read started is at or below the read index.
//  4. The read waits until the local state machine has applied the read
//     index, then reads locally.
//
// Step 3 is the expensive one (a network round to a quorum), so it is
// batched: one loop per member collects every read waiting at the time,
// takes one index for all of them and confirms leadership once (§6.4.1
// notes batching is safe: each read only needs an index taken after it
// arrived). Reads arriving while a batch is in flight form the next batch.
//
// A follower (§6.4, last paragraph) asks the leader for a read index with
// PeerService.ReadIndex — its own loop batches those requests too — and then
// waits for its own state machine to reach that index (step 4) and reads
// locally. The index is valid on the follower because a follower applies the
// same log: once it has applied up to the index it has every write the
// leader had committed when the read arrived.
//
// Raft no-op and barrier entries never reach the state machine, so applied
// index could stay below a commit index that ends in one of them. Skiff
// never issues barriers, and the only no-op is the one raft appends when a
// leader takes office, just before our ClusterInit entry: step 1 makes the
// read index at least that entry's index, so it is always an index the
// state machine sees.

// readReq is one waiting read. fromPeer marks a request forwarded by a
// follower: it must only be answered by the leader, never forwarded on.
type readReq struct {
	fromPeer bool
	done     chan readResult
}

type readResult struct {
	index uint64
	err   error
}

// readIndexer batches read-index requests. Its view of the member is three
// functions, so the batching can be tested without a cluster.
type readIndexer struct {
	reqs    chan readReq
	stopped <-chan struct{}

	isLeader    func() bool
	leaderIndex func(ctx context.Context) (uint64, error) // steps 1–3 here
	remoteIndex func(ctx context.Context) (uint64, error) // ask the leader
}

// readBatchMax bounds one batch so a flood of reads still gets answered in
// rounds.
const readBatchMax = 4096

func newReadIndexer(s *Server) *readIndexer {
	return &readIndexer{
		reqs:        make(chan readReq, readBatchMax),
		stopped:     s.ctx.Done(),
		isLeader:    func() bool { return s.raft.State() == raft.Leader },
		leaderIndex: s.leaderReadIndex,
		remoteIndex: s.remoteReadIndex,
	}
}

// request returns a read index for a read that arrived now.
func (ri *readIndexer) request(ctx context.Context, fromPeer bool) (uint64, error) {
	req := readReq{fromPeer: fromPeer, done: make(chan readResult, 1)}
	select {
	case ri.reqs <- req:
	case <-ctx.Done():
		return 0, ctxError(ctx)
	case <-ri.stopped:
		return 0, rpctypes.ErrGRPCStopped
	}
	select {
	case r := <-req.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctxError(ctx)
	}
}

func (ri *readIndexer) run(ctx context.Context) {
	batch := make([]readReq, 0, 64)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case r := <-ri.reqs:
			batch = append(batch, r)
		}
	drain:
		for len(batch) < readBatchMax {
			select {
			case r := <-ri.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		ri.serve(ctx, batch)
	}
}

func (ri *readIndexer) serve(ctx context.Context, batch []readReq) {
	var res readResult
	if ri.isLeader() {
		res.index, res.err = ri.leaderIndex(ctx)
		for _, r := range batch {
			r.done <- res
		}
		return
	}
	// Not the leader: forwarded requests are refused (the follower retries
	// with whoever leads now), local ones ask the leader.
	var local int
	for _, r := range batch {
		if r.fromPeer {
			r.done <- readResult{err: rpctypes.ErrGRPCNotLeader}
			continue
		}
		batch[local] = r
		local++
	}
	if local == 0 {
		return
	}
	res.index, res.err = ri.remoteIndex(ctx)
	for _, r := range batch[:local] {
		r.done <- res
	}
}

// leaderReadIndex runs steps 1–3 on the leader.
func (s *Server) leaderReadIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*s.cfg.ElectionTimeout+s.cfg.HeartbeatTimeout)
	defer cancel()
	// Step 1: an entry of this term must be applied (hence committed).
	for {
		ch := s.fsm.changed.wait()
		if s.fsm.appliedTerm.Load() == s.raft.CurrentTerm() {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, rpctypes.ErrGRPCLeaderChanged
		}
		if s.raft.State() != raft.Leader {
			return 0, rpctypes.ErrGRPCNotLeader
		}
	}
	// Step 2, then step 3: the order matters; the index must be taken
	// before the quorum round that proves it current.
	idx := s.raft.CommitIndex()
	if err := s.verifyLeader(ctx); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, rpctypes.ErrGRPCLeaderChanged
		}
		return 0, toGRPCError(err)
	}
	return idx, nil
}

// verifyLeader is raft's VerifyLeader bounded by ctx. hashicorp/raft has
// been seen never to answer a verification pending when the leader loses
// its quorum and is shut down; waiting for it unbounded would hang reads and
// Close. In that case the waiting goroutine stays until raft answers.
func (s *Server) verifyLeader(ctx context.Context) error {
	f := s.raft.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return raft.ErrLeadershipLost
	}
}

// remoteReadIndex asks the leader for a read index.
func (s *Server) remoteReadIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*s.cfg.ElectionTimeout)
	defer cancel()
	for {
		addr, _ := s.raft.LeaderWithID()
		if addr != "" {
			c, err := s.peers.get(string(addr))
			if err != nil {
				return 0, err
			}
			resp, err := skiffv1.NewPeerServiceClient(c).ReadIndex(ctx, &skiffv1.ReadIndexRequest{})
			if err == nil {
				return resp.Index, nil
			}
			// Reads are idempotent: any failure may be retried while
			// the deadline allows (the leader may be changing).
			if st, ok := status.FromError(err); ok && st.Code() == codes.Canceled {
				return 0, err
			}
		}
		if err := s.waitLeaderChange(ctx); err != nil {
			return 0, err
		}
		if s.raft.State() == raft.Leader {
			return s.leaderReadIndex(ctx)
		}
	}
}

// waitApplied is step 4: wait until the state machine has applied index.
func (s *Server) waitApplied(ctx context.Context, index uint64) error {
	for {
		ch := s.fsm.changed.wait()
		if s.fsm.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctxError(ctx)
		case <-s.ctx.Done():
			return rpctypes.ErrGRPCStopped
		}
	}
}

// linearizableBarrier makes a following local read linearizable: it returns
// once this member's state reflects every write acknowledged before the
// call. UnsafeFollowerReads skips it (a planted bug for the checkers).
func (s *Server) linearizableBarrier(ctx context.Context) error {
	if s.cfg.UnsafeFollowerReads {
		return nil
	}
	// Reads change nothing, so a read index refused because leadership
	// moved is simply asked again, for a while; after that the answer is
	// ErrGRPCNoLeader, which etcd clients retry on their own for reads.
	giveUp := time.Now().Add(s.noLeaderWindow())
	for {
		idx, err := s.reads.request(ctx, false)
		if err == nil {
			return s.waitApplied(ctx, idx)
		}
		if !errors.Is(err, rpctypes.ErrGRPCNotLeader) && !errors.Is(err, rpctypes.ErrGRPCLeaderChanged) &&
			!errors.Is(err, rpctypes.ErrGRPCNoLeader) && !isUnreachable(err) {
			return err
		}
		if time.Now().After(giveUp) {
			return rpctypes.ErrGRPCNoLeader
		}
		if err := s.waitLeaderChange(ctx); err != nil {
			return err
		}
	}
}
