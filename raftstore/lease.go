package raftstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"slices"

	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// maxLeaseTTL is etcd's limit on a granted TTL, in seconds.
const maxLeaseTTL = 9000000000

type leaseServer struct {
	pb.UnimplementedLeaseServer
	s *Server
}

var _ pb.LeaseServer = (*leaseServer)(nil)

// minLeaseTTL is the shortest TTL granted: a lease must survive a leader
// election (etcd uses 1.5 election timeouts, rounded up to a second).
func (s *Server) minLeaseTTL() int64 {
	return max(1, int64(math.Ceil((s.cfg.ElectionTimeout * 3 / 2).Seconds())))
}

func (l *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if r.TTL > maxLeaseTTL {
		return nil, rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	g := &pb.LeaseGrantRequest{ID: r.ID, TTL: max(r.TTL, l.s.minLeaseTTL())}
	if g.ID == 0 {
		// The id is chosen here, not when applied, so apply stays
		// deterministic. 63 random bits: collisions are negligible and
		// still caught (ErrGRPCLeaseExist).
		g.ID = randomLeaseID()
	}
	if g.ID < 0 {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	if l.s.IsLeader() && l.s.fsm.leaseExists(g.ID) { // see kvServer.Put
		return nil, rpctypes.ErrGRPCLeaseExist
	}
	resp, err := proposeAs[pb.LeaseGrantResponse](ctx, l.s, &pb.InternalRaftRequest{LeaseGrant: g})
	if err != nil {
		return nil, err
	}
	l.s.fillHeader(&resp.Header)
	return resp, nil
}

func randomLeaseID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := int64(binary.LittleEndian.Uint64(b[:]) >> 1)
	if id == 0 {
		id = 1
	}
	return id
}

func (l *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if l.s.IsLeader() && !l.s.fsm.leaseExists(r.ID) { // see kvServer.Put
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	resp, err := proposeAs[pb.LeaseRevokeResponse](ctx, l.s, &pb.InternalRaftRequest{LeaseRevoke: r})
	if err != nil {
		return nil, err
	}
	l.s.fillHeader(&resp.Header)
	return resp, nil
}

// leaderLease asks the lessor of the leader (this member's, or the
// leader's through PeerService.Lease).
func (s *Server) leaderLease(ctx context.Context, id int64, keepAlive bool) (leaseInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*s.cfg.ElectionTimeout)
	defer cancel()
	for {
		if s.raft.State() == raft.Leader {
			info, err := s.leaderLeaseLocal(ctx, id, keepAlive)
			if !errors.Is(err, rpctypes.ErrGRPCNotLeader) {
				return info, err
			}
		} else if addr, _ := s.raft.LeaderWithID(); addr != "" {
			c, err := s.peers.get(string(addr))
			if err != nil {
				return leaseInfo{}, err
			}
			resp, err := skiffv1.NewPeerServiceClient(c).Lease(ctx, &skiffv1.LeaseRequest{Id: id, KeepAlive: keepAlive})
			if err == nil {
				return leaseInfo{found: resp.Found, granted: resp.GrantedTtl, remaining: resp.RemainingTtl}, nil
			}
			if !errors.Is(err, rpctypes.ErrGRPCNotLeader) && !isUnreachable(err) {
				return leaseInfo{}, err
			}
		}
		if err := s.waitLeaderChange(ctx); err != nil {
			return leaseInfo{}, err
		}
	}
}

// leaderLeaseLocal consults this leader's lessor once the leader is ready:
// a new leader that has not yet applied every committed grant would answer
// "not found" for a live lease, and the client would drop it.
func (s *Server) leaderLeaseLocal(ctx context.Context, id int64, keepAlive bool) (leaseInfo, error) {
	for {
		ch := s.fsm.changed.wait()
		if s.fsm.appliedTerm.Load() == s.raft.CurrentTerm() {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return leaseInfo{}, rpctypes.ErrGRPCNoLeader
		}
	}
	return s.lessor.leaderLease(id, keepAlive)
}

// LeaseKeepAlive answers each keep-alive with the lease's TTL, or TTL 0 when
// the lease does not exist (as etcd, which keeps the stream open).
func (l *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		info, err := l.s.leaderLease(ctx, req.ID, true)
		if err != nil {
			return err
		}
		resp := &pb.LeaseKeepAliveResponse{Header: l.s.header(l.s.fsm.kv().Rev()), ID: req.ID}
		if info.found {
			resp.TTL = info.granted
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (l *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	info, err := l.s.leaderLease(ctx, r.ID, false)
	if err != nil {
		return nil, err
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: l.s.header(l.s.fsm.kv().Rev()), ID: r.ID, TTL: -1}
	if !info.found {
		return resp, nil
	}
	resp.TTL = info.remaining
	resp.GrantedTTL = info.granted
	if r.Keys {
		// The keys come from this member's store: make it current first.
		if err := l.s.linearizableBarrier(ctx); err != nil {
			return nil, err
		}
		resp.Keys = l.s.fsm.kv().LeaseKeys(r.ID)
	}
	return resp, nil
}

func (l *leaseServer) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	// Linearizable, as etcd's: a lease granted through any member is listed.
	if err := l.s.linearizableBarrier(ctx); err != nil {
		return nil, err
	}
	table := l.s.fsm.leaseTable()
	ids := make([]int64, 0, len(table))
	for id := range table {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	resp := &pb.LeaseLeasesResponse{Header: l.s.header(l.s.fsm.kv().Rev())}
	for _, id := range ids {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: id})
	}
	return resp, nil
}
