package raftstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// Writes from any member. The leader appends the entry with raft.Apply
// (concurrent Applies share one append and one fsync) and gets the state
// machine's result back through the future; a follower forwards the encoded
// entry to the leader's PeerService.Propose over a cached connection and gets
// the encoded response back.

// defaultProposeTimeout bounds a proposal whose context has no deadline.
const defaultProposeTimeout = 30 * time.Second

// encodeRequest encodes an entry and enforces MaxRequestBytes, as etcd does
// on the encoded InternalRaftRequest.
func (s *Server) encodeRequest(r *pb.InternalRaftRequest) ([]byte, error) {
	n := r.Size()
	if n > s.cfg.MaxRequestBytes {
		return nil, rpctypes.ErrGRPCRequestTooLarge
	}
	data := make([]byte, 1+n)
	data[0] = entryRequest
	if _, err := r.MarshalToSizedBuffer(data[1:]); err != nil {
		return nil, status.Errorf(codes.Internal, "encode request: %v", err)
	}
	return data, nil
}

// propose commits r and returns either the local result (on the leader) or
// the encoded response from the leader (on a follower).
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (marshaler, []byte, error) {
	data, err := s.encodeRequest(r)
	if err != nil {
		return nil, nil, err
	}
	return s.proposeData(ctx, data)
}

// proposeAs commits r and decodes the response as *T.
func proposeAs[T any, PT interface {
	*T
	marshaler
	Unmarshal([]byte) error
}](ctx context.Context, s *Server, r *pb.InternalRaftRequest) (PT, error) {
	local, remote, err := s.propose(ctx, r)
	if err != nil {
		return nil, err
	}
	if local != nil {
		resp, ok := local.(PT)
		if !ok {
			return nil, status.Errorf(codes.Internal, "unexpected apply result %T", local)
		}
		return resp, nil
	}
	resp := PT(new(T))
	if err := resp.Unmarshal(remote); err != nil {
		return nil, status.Errorf(codes.Internal, "decode forwarded response: %v", err)
	}
	return resp, nil
}

func (s *Server) proposeData(ctx context.Context, data []byte) (marshaler, []byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultProposeTimeout)
		defer cancel()
	}
	// A member that cannot find a leader for this long answers
	// ErrGRPCNoLeader (nothing was proposed) rather than holding the
	// client until its deadline.
	giveUp := time.Now().Add(s.noLeaderWindow())
	for {
		if s.raft.State() == raft.Leader {
			res, _, err := s.applyLocal(ctx, data)
			if !errors.Is(err, rpctypes.ErrGRPCNotLeader) {
				return res, nil, err
			}
		} else if addr, _ := s.raft.LeaderWithID(); addr != "" {
			out, err := s.forwardPropose(ctx, string(addr), data)
			if !errors.Is(err, rpctypes.ErrGRPCNotLeader) && !isUnreachable(err) {
				return nil, out, err
			}
		}
		// No leader known, or it moved before the entry was appended:
		// nothing was proposed, so waiting and retrying is safe.
		if time.Now().After(giveUp) {
			return nil, nil, rpctypes.ErrGRPCNoLeader
		}
		if err := s.waitLeaderChange(ctx); err != nil {
			return nil, nil, err
		}
	}
}

// applyLocal appends on the leader and waits for the state machine. It
// returns the entry's index.
func (s *Server) applyLocal(ctx context.Context, data []byte) (marshaler, uint64, error) {
	timeout := defaultProposeTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := s.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return nil, 0, toGRPCError(err)
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		return nil, 0, status.Errorf(codes.Internal, "unexpected apply result %T", f.Response())
	}
	return res.resp, f.Index(), res.err
}

func (s *Server) forwardPropose(ctx context.Context, addr string, data []byte) ([]byte, error) {
	c, err := s.peers.get(addr)
	if err != nil {
		return nil, err
	}
	resp, err := skiffv1.NewPeerServiceClient(c).Propose(ctx, &skiffv1.ProposeRequest{Request: data})
	if err != nil {
		return nil, err
	}
	// The answer does not wait for this member to apply the entry too:
	// followers learn commits only with the leader's next append (up to
	// CommitTimeout later), which would add that much to every forwarded
	// write. Whatever must see the write here (linearizable reads, replay
	// watches, progress requests, lease listings) goes through a read
	// index, which waits for this member's apply; serializable reads, as
	// documented, may lag.
	if resp.Code != 0 {
		return nil, status.Error(codes.Code(resp.Code), resp.Error)
	}
	return resp.Response, nil
}

// isUnreachable reports a transport failure that happened before the
// request left this member (the connection to the leader could not be
// dialled), so the entry was certainly not proposed and a retry is safe.
// Any other failure leaves the outcome unknown and is returned as is.
func isUnreachable(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable && strings.Contains(st.Message(), "while dialing")
}

// noLeaderWindow is how long a request waits for a leader to appear: long
// enough for an election or two.
func (s *Server) noLeaderWindow() time.Duration {
	return 3*s.cfg.ElectionTimeout + s.cfg.HeartbeatTimeout
}

// waitLeaderChange waits a little for a (new) leader, or fails with
// ErrGRPCNoLeader when ctx ends first.
func (s *Server) waitLeaderChange(ctx context.Context) error {
	t := time.NewTimer(20 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return rpctypes.ErrGRPCNoLeader
		}
		return ctxError(ctx)
	case <-s.ctx.Done():
		return rpctypes.ErrGRPCStopped
	}
}

// peerServer is the PeerService on the peer port.
type peerServer struct {
	skiffv1.UnimplementedPeerServiceServer
	s *Server
}

var _ skiffv1.PeerServiceServer = (*peerServer)(nil)

// Propose applies a forwarded entry. Only the leader serves it: a member that
// is no longer leader answers ErrGRPCNotLeader so that the sender retries
// with the new leader instead of forwarding again.
func (p *peerServer) Propose(ctx context.Context, req *skiffv1.ProposeRequest) (*skiffv1.ProposeResponse, error) {
	s := p.s
	if len(req.Request) == 0 || req.Request[0] != entryRequest {
		return nil, status.Error(codes.InvalidArgument, "skiff: forwarded entry has no request tag")
	}
	if len(req.Request) > s.cfg.MaxRequestBytes+1 {
		return errorResponse(rpctypes.ErrGRPCRequestTooLarge), nil
	}
	if s.raft.State() != raft.Leader {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	res, index, err := s.applyLocal(ctx, req.Request)
	if errors.Is(err, rpctypes.ErrGRPCNotLeader) {
		return nil, err
	}
	if err != nil {
		out := errorResponse(err)
		out.Index = index
		return out, nil
	}
	out := &skiffv1.ProposeResponse{Index: index}
	if res != nil {
		b, err := res.Marshal()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "encode response: %v", err)
		}
		out.Response = b
	}
	return out, nil
}

func errorResponse(err error) *skiffv1.ProposeResponse {
	st := status.Convert(toGRPCError(err))
	return &skiffv1.ProposeResponse{Code: uint32(st.Code()), Error: st.Message()}
}

// ReadIndex gives a follower the index its linearizable read must wait for.
func (p *peerServer) ReadIndex(ctx context.Context, _ *skiffv1.ReadIndexRequest) (*skiffv1.ReadIndexResponse, error) {
	idx, err := p.s.reads.request(ctx, true)
	if err != nil {
		return nil, err
	}
	return &skiffv1.ReadIndexResponse{Index: idx, Term: p.s.raft.CurrentTerm()}, nil
}

// Join adds the caller as a voter; a follower forwards to the leader.
func (p *peerServer) Join(ctx context.Context, req *skiffv1.JoinRequest) (*skiffv1.JoinResponse, error) {
	s := p.s
	if req.PeerAddr == "" || req.MemberId == 0 {
		return nil, status.Error(codes.InvalidArgument, "skiff: join needs member_id and peer_addr")
	}
	if s.raft.State() != raft.Leader {
		addr, _ := s.raft.LeaderWithID()
		if addr == "" {
			return nil, rpctypes.ErrGRPCNoLeader
		}
		c, err := s.peers.get(string(addr))
		if err != nil {
			return nil, err
		}
		return skiffv1.NewPeerServiceClient(c).Join(ctx, req)
	}
	if err := s.addVoter(ctx, req.MemberId, req.PeerAddr); err != nil {
		return nil, err
	}
	s.log.Info("member joined", "name", req.Name, "joiner", fmt.Sprintf("%x", req.MemberId), "peer", req.PeerAddr)
	return &skiffv1.JoinResponse{ClusterId: s.fsm.clusterID.Load(), LeaderId: s.id}, nil
}

// addVoter makes id@addr a voter (promoting it if it was added as a
// non-voter by MemberAdd). A different member at the same address is
// replaced: the address can only belong to one member.
func (s *Server) addVoter(ctx context.Context, id uint64, addr string) error {
	cf := s.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return toGRPCError(err)
	}
	sid := formatMemberID(id)
	for _, srv := range cf.Configuration().Servers {
		if srv.ID == sid && string(srv.Address) == addr && srv.Suffrage == raft.Voter {
			return nil // already a member: a retried join
		}
		if srv.ID != sid && string(srv.Address) == addr {
			if err := s.raft.RemoveServer(srv.ID, 0, timeoutOf(ctx)).Error(); err != nil {
				return toGRPCError(err)
			}
		}
	}
	if err := s.raft.AddVoter(sid, raft.ServerAddress(addr), 0, timeoutOf(ctx)).Error(); err != nil {
		return toGRPCError(err)
	}
	return nil
}

func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return defaultProposeTimeout
}

// Lease answers keep-alives and time-to-live questions for followers: only
// the leader keeps deadlines.
func (p *peerServer) Lease(ctx context.Context, req *skiffv1.LeaseRequest) (*skiffv1.LeaseResponse, error) {
	if p.s.raft.State() != raft.Leader {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	ctx, cancel := context.WithTimeout(ctx, p.s.noLeaderWindow())
	defer cancel()
	info, err := p.s.leaderLeaseLocal(ctx, req.Id, req.KeepAlive)
	if err != nil {
		return nil, err
	}
	return &skiffv1.LeaseResponse{Found: info.found, GrantedTtl: info.granted, RemainingTtl: info.remaining}, nil
}
