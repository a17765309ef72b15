package raftstore

import (
	"context"
	"fmt"
	"net/url"
	"slices"

	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// clusterServer maps etcd membership onto Raft voters. It is served on the
// client port and, for forwarding from followers, on the peer port.
type clusterServer struct {
	pb.UnimplementedClusterServer
	s *Server
}

var _ pb.ClusterServer = (*clusterServer)(nil)

func (c *clusterServer) members() ([]*pb.Member, error) {
	cf := c.s.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, toGRPCError(err)
	}
	var out []*pb.Member
	for _, srv := range cf.Configuration().Servers {
		id, err := parseMemberID(srv.ID)
		if err != nil {
			continue
		}
		m := &pb.Member{ID: id, PeerURLs: []string{"http://" + string(srv.Address)}, IsLearner: srv.Suffrage != raft.Voter}
		if a, ok := c.s.fsm.memberAttrs(id); ok {
			m.Name = a.Name
			m.ClientURLs = slices.Clone(a.ClientURLs)
		}
		out = append(out, m)
	}
	return out, nil
}

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.Linearizable {
		if err := c.s.linearizableBarrier(ctx); err != nil {
			return nil, err
		}
	}
	ms, err := c.members()
	if err != nil {
		return nil, err
	}
	return &pb.MemberListResponse{Header: c.s.header(c.s.fsm.kv().Rev()), Members: ms}, nil
}

// leaderCluster returns the leader's Cluster service over the peer port, or
// nil when this member leads.
func (c *clusterServer) leaderCluster() (pb.ClusterClient, error) {
	if c.s.raft.State() == raft.Leader {
		return nil, nil
	}
	addr, _ := c.s.raft.LeaderWithID()
	if addr == "" {
		return nil, rpctypes.ErrGRPCNoLeader
	}
	conn, err := c.s.peers.get(string(addr))
	if err != nil {
		return nil, err
	}
	return pb.NewClusterClient(conn), nil
}

// MemberAdd adds a non-voter: it does not count towards the quorum until the
// new member starts (with --join) and its Join promotes it to voter, so a
// member added but not yet started cannot stall the cluster.
func (c *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	if r.IsLearner {
		return nil, unsupported("MemberAdd is_learner (learners)")
	}
	if len(r.PeerURLs) != 1 {
		return nil, status.Error(codes.InvalidArgument, "skiff: MemberAdd needs exactly one peer URL")
	}
	u, err := url.Parse(r.PeerURLs[0])
	if err != nil || u.Host == "" {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	if lc, err := c.leaderCluster(); err != nil {
		return nil, err
	} else if lc != nil {
		return lc.MemberAdd(ctx, r)
	}
	addr := u.Host
	id := memberIDFor(addr)
	ms, err := c.members()
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.ID == id {
			return nil, rpctypes.ErrGRPCMemberExist
		}
		if slices.Contains(m.PeerURLs, "http://"+addr) {
			return nil, rpctypes.ErrGRPCPeerURLExist
		}
	}
	if err := c.s.raft.AddNonvoter(formatMemberID(id), raft.ServerAddress(addr), 0, timeoutOf(ctx)).Error(); err != nil {
		return nil, toGRPCError(err)
	}
	c.s.log.Info("member added (non-voter until it joins)", "added", fmt.Sprintf("%x", id), "peer", addr)
	ms, err = c.members()
	if err != nil {
		return nil, err
	}
	var added *pb.Member
	for _, m := range ms {
		if m.ID == id {
			added = m
		}
	}
	return &pb.MemberAddResponse{Header: c.s.header(c.s.fsm.kv().Rev()), Member: added, Members: ms}, nil
}

func (c *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	if lc, err := c.leaderCluster(); err != nil {
		return nil, err
	} else if lc != nil {
		return lc.MemberRemove(ctx, r)
	}
	ms, err := c.members()
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(ms, func(m *pb.Member) bool { return m.ID == r.ID }) {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	if err := c.s.raft.RemoveServer(formatMemberID(r.ID), 0, timeoutOf(ctx)).Error(); err != nil {
		return nil, toGRPCError(err)
	}
	c.s.log.Info("member removed", "removed", fmt.Sprintf("%x", r.ID))
	ms, err = c.members()
	if err != nil {
		return nil, err
	}
	return &pb.MemberRemoveResponse{Header: c.s.header(c.s.fsm.kv().Rev()), Members: ms}, nil
}

// MemberUpdate changes a member's peer URL: the Raft server is re-added at
// the new address.
func (c *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	return nil, unsupported("MemberUpdate (remove the member and add it at its new peer URL)")
}

func (c *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return nil, status.Error(codes.InvalidArgument, "skiff: MemberPromote is not supported: a member added with MemberAdd becomes a voter when it starts with --join")
}
