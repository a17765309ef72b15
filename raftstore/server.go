package raftstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	walmeta "github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// walSegmentSize is the size of one raft-wal segment file; the log is
// truncated after snapshots a whole segment at a time. Tests shrink it.
var walSegmentSize = 16 << 20

// Server is one store member.
type Server struct {
	cfg Config
	log *slog.Logger
	fsm *fsm

	// Set by Start.
	id          uint64
	clientAddr  string // resolved listen address
	peerAddr    string
	advClient   string
	advPeer     string
	raft        *raft.Raft
	logStore    raft.LogStore // a LogCache over the timed store
	wal         *raftwal.WAL
	walMeta     *walmeta.BoltMetaDB
	bolt        *raftboltdb.BoltStore
	trans       *raft.NetworkTransport
	hbGuard     *heartbeatGuard
	mux         *peerMux
	clientLn    net.Listener
	clientSrv   *grpc.Server
	peerSrv     *grpc.Server
	metricsSrv  *http.Server
	metricsAddr string
	metrics     *metrics

	peers  peerClients
	reads  *readIndexer
	lessor *lessor

	// ctx ends when Close starts; every background loop watches it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	startOnce sync.Once
	closeOnce sync.Once
	closeErr  error
}

// New checks the configuration and prepares a member; Start brings it up.
// Zero tunables take DefaultConfig's values.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("raftstore: invalid config: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("member", cfg.Name), fsm: newFSM()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.reads = newReadIndexer(s)
	s.lessor = newLessor(s.fsm)
	return s, nil
}

// Start opens the data dir, binds both ports, starts Raft and the gRPC
// servers, bootstraps or joins, and returns once the client port serves.
// It does not wait for a leader (it does wait for a join to be accepted).
func (s *Server) Start(ctx context.Context) (err error) {
	started := false
	s.startOnce.Do(func() {
		started = true
		err = s.start(ctx)
	})
	if !started {
		return errors.New("raftstore: Start called twice")
	}
	if err != nil {
		s.Close()
	}
	return err
}

func (s *Server) start(ctx context.Context) error {
	cfg := &s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w (choose a writable --data-dir)", err)
	}

	peerLn, err := listen(cfg.ListenPeer, "--listen-peer")
	if err != nil {
		return err
	}
	s.mux = newPeerMux(peerLn)
	clientLn, err := listen(cfg.ListenClient, "--listen-client")
	if err != nil {
		return err
	}
	s.clientLn = clientLn
	s.peerAddr = peerLn.Addr().String()
	s.clientAddr = clientLn.Addr().String()
	s.advPeer = advertised(cfg.AdvertisePeer, s.peerAddr)
	s.advClient = advertised(cfg.AdvertiseClient, s.clientAddr)
	s.id = memberIDFor(s.advPeer)
	s.log = s.log.With("id", fmt.Sprintf("%x", s.id))

	s.metrics = newMetrics(s)
	s.fsm.observe = s.metrics.observeApply

	hlog := newHCLogger(s.log)
	stable, err := s.openLogStore(hlog)
	if err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hlog)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	stream := &raftStream{m: s.mux, advertise: advertiseAddr(s.advPeer), closed: make(chan struct{})}
	s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 4,
		Timeout: 10 * time.Second,
		Logger:  hlog,
	})

	hasState, err := raft.HasExistingState(s.logStore, stable, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = formatMemberID(s.id)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	// Followers learn the commit index only from the next append, which an
	// idle leader sends every CommitTimeout (hashicorp/raft sends no
	// commit-only messages): this bounds how stale a follower's applied
	// state is, which linearizable reads on followers wait out.
	rc.CommitTimeout = 3 * time.Millisecond
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	// Concurrent proposals are grouped into one append (one bolt fsync) by
	// the leader loop; a buffered apply channel lets it take up to
	// MaxAppendEntries at once.
	rc.MaxAppendEntries = 512
	rc.BatchApplyCh = true
	rc.Logger = hlog
	rc.NoLegacyTelemetry = true
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("raft config: %w", err)
	}

	s.hbGuard = &heartbeatGuard{NetworkTransport: s.trans}
	r, err := raft.NewRaft(rc, s.fsm, s.logStore, stable, snaps, s.hbGuard)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	s.raft = r

	switch {
	case hasState:
		if len(cfg.Join) > 0 {
			s.log.Info("data dir holds raft state: restarting as the same member, ignoring --join", "data_dir", cfg.DataDir)
		}
	case len(cfg.Join) == 0:
		boot := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(s.advPeer),
		}}}
		if err := r.BootstrapCluster(boot).Error(); err != nil {
			return fmt.Errorf("bootstrap cluster: %w", err)
		}
		s.log.Info("bootstrapped a new cluster")
	}

	s.startGRPC()
	if cfg.ListenMetrics != "" {
		if err := s.startMetrics(); err != nil {
			return err
		}
	}

	s.goLoop(s.leadershipLoop)
	s.goLoop(s.reads.run)
	s.goLoop(s.publishAttributes)

	if !hasState && len(cfg.Join) > 0 {
		if err := s.join(ctx); err != nil {
			return err
		}
	}
	s.log.Info("member serving", "client", "http://"+s.advClient, "peer", "http://"+s.advPeer)
	return nil
}

func (s *Server) goLoop(f func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
}

func listen(addr, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen on %s: address already in use (another member or etcd running?): choose another with %s", addr, flag)
		}
		return nil, fmt.Errorf("listen on %s: %w (check %s)", addr, err, flag)
	}
	return ln, nil
}

// advertised picks the advertised address: the configured one, or the
// resolved listen address.
func advertised(configured, resolved string) string {
	if configured != "" {
		return configured
	}
	return resolved
}

func (s *Server) startGRPC() {
	maxRecv := s.cfg.MaxRequestBytes + 512*1024 // room for framing; size checked per request
	s.clientSrv = grpc.NewServer(
		grpc.MaxRecvMsgSize(maxRecv),
		grpc.MaxSendMsgSize(1<<31-1),
		grpc.MaxConcurrentStreams(1<<20),
		// etcdctl pings every 2s by default: allow it.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(s.metrics.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.metrics.streamInterceptor),
	)
	pb.RegisterKVServer(s.clientSrv, &kvServer{s: s})
	pb.RegisterWatchServer(s.clientSrv, &watchServer{s: s})
	pb.RegisterLeaseServer(s.clientSrv, &leaseServer{s: s})
	pb.RegisterClusterServer(s.clientSrv, &clusterServer{s: s})
	pb.RegisterMaintenanceServer(s.clientSrv, &maintenanceServer{s: s})
	pb.RegisterAuthServer(s.clientSrv, &authServer{s: s})

	s.peerSrv = grpc.NewServer(
		grpc.MaxRecvMsgSize(maxRecv),
		grpc.MaxSendMsgSize(1<<31-1),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	skiffv1.RegisterPeerServiceServer(s.peerSrv, &peerServer{s: s})
	// Cluster changes asked of a follower are forwarded to the leader's
	// Cluster service over the peer connection.
	pb.RegisterClusterServer(s.peerSrv, &clusterServer{s: s})

	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = s.clientSrv.Serve(s.clientLn)
	}()
	go func() {
		defer s.wg.Done()
		_ = s.peerSrv.Serve(&grpcListener{m: s.mux, closed: make(chan struct{})})
	}()
}

// Close stops serving and shuts Raft down without handing leadership over
// (in tests, the in-process equivalent of a crash after fsync).
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		var errs []error
		if s.clientSrv != nil {
			s.clientSrv.Stop()
		}
		if s.peerSrv != nil {
			s.peerSrv.Stop()
		}
		if s.metricsSrv != nil {
			_ = s.metricsSrv.Close()
		}
		if s.raft != nil {
			if err := s.raft.Shutdown().Error(); err != nil {
				errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
			}
		}
		if s.hbGuard != nil {
			// Shutdown does not wait for heartbeats being handled on
			// the transport's goroutines; wait here, before the stores
			// they write to are closed.
			s.hbGuard.fence()
		}
		if s.trans != nil {
			// Close alone leaves the pooled outgoing connections open,
			// and with them the peers' handler goroutines reading them;
			// CloseStreams closes them.
			s.trans.CloseStreams()
			_ = s.trans.Close()
		}
		if s.mux != nil {
			_ = s.mux.Close()
		} else if s.clientLn != nil {
			_ = s.clientLn.Close()
		}
		if s.clientLn != nil {
			_ = s.clientLn.Close()
		}
		s.wg.Wait()
		s.peers.closeAll()
		if s.wal != nil {
			if err := s.wal.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close raft log: %w", err))
			}
		}
		if s.walMeta != nil {
			if err := s.walMeta.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close raft log metadata: %w", err))
			}
		}
		if s.bolt != nil {
			if err := s.bolt.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close raft log: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Shutdown is the graceful Close: a leader first hands leadership to
// another voter (bounded by ctx), so the cluster does not wait an election
// timeout to notice it is gone. Then it closes.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.IsLeader() {
		f := s.raft.LeadershipTransfer()
		done := make(chan error, 1)
		go func() { done <- f.Error() }()
		select {
		case err := <-done:
			if err != nil {
				s.log.Info("leadership transfer before shutdown failed", "err", err)
			}
		case <-ctx.Done():
		}
	}
	return s.Close()
}

// ClientAddr is the resolved host:port of the etcd v3 gRPC listener.
func (s *Server) ClientAddr() string { return s.clientAddr }

// PeerAddr is the resolved host:port of the peer listener.
func (s *Server) PeerAddr() string { return s.peerAddr }

// ID is the etcd member id.
func (s *Server) ID() uint64 { return s.id }

// IsLeader reports whether this member is the Raft leader now.
func (s *Server) IsLeader() bool { return s.raft != nil && s.raft.State() == raft.Leader }

// AppliedIndex is the raft index applied to the state machine.
func (s *Server) AppliedIndex() uint64 { return s.fsm.applied.Load() }

// WaitLeader blocks until this member knows a leader that has committed an
// entry of its term, and returns the leader's member id.
func (s *Server) WaitLeader(ctx context.Context) (uint64, error) {
	for {
		ch := s.fsm.changed.wait()
		if id, ok := s.readyLeader(); ok {
			return id, nil
		}
		t := time.NewTimer(50 * time.Millisecond) // leader changes without an apply are polled
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-s.ctx.Done():
			t.Stop()
			return 0, errServerClosed
		}
		t.Stop()
	}
}

// readyLeader returns the leader's id when this member has applied an entry
// of the current term: that entry was committed by the current leader, so
// the leader has committed an entry of its term (Raft thesis §6.4).
func (s *Server) readyLeader() (uint64, bool) {
	if s.raft == nil {
		return 0, false
	}
	_, lid := s.raft.LeaderWithID()
	if lid == "" {
		return 0, false
	}
	if s.fsm.appliedTerm.Load() != s.raft.CurrentTerm() {
		return 0, false
	}
	id, err := parseMemberID(lid)
	if err != nil {
		return 0, false
	}
	return id, true
}

// leaderID is the member id of the leader this member knows, or 0.
func (s *Server) leaderID() uint64 {
	_, lid := s.raft.LeaderWithID()
	if lid == "" {
		return 0
	}
	id, _ := parseMemberID(lid)
	return id
}

// leadershipLoop starts the leader's duties when this member gains
// leadership and stops them when it loses it.
func (s *Server) leadershipLoop(ctx context.Context) {
	var (
		stop func()
		done chan struct{}
	)
	end := func() {
		if stop != nil {
			stop()
			<-done
			stop = nil
		}
	}
	defer end()
	// Every leader change this member sees, for the metric.
	obs := make(chan raft.Observation, 16)
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(observer)
	defer s.raft.DeregisterObserver(observer)
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-obs:
			if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != "" {
				s.metrics.leaderChanges.Inc()
			}
		case isLeader := <-s.raft.LeaderCh():
			end()
			if !isLeader {
				s.lessor.demote()
				s.log.Info("lost leadership")
				continue
			}
			s.log.Info("became leader", "term", s.raft.CurrentTerm())
			lctx, cancel := context.WithCancel(ctx)
			stop, done = cancel, make(chan struct{})
			go func() {
				defer close(done)
				s.leaderSession(lctx)
			}()
		}
	}
}

// leaderSession runs while this member leads: it commits an entry of the
// new term first (reads wait for it), then runs lease expiry and
// auto-compaction.
func (s *Server) leaderSession(ctx context.Context) {
	s.lessor.promote()
	defer s.lessor.demote()
	for {
		cid := s.fsm.clusterID.Load()
		if cid == 0 {
			cid = randomUint64()
		}
		body, _ := proto.Marshal(&skiffv1.ClusterInit{ClusterId: cid})
		f := s.raft.Apply(append([]byte{entryClusterInit}, body...), 5*time.Second)
		err := f.Error()
		if err == nil {
			break
		}
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrRaftShutdown) {
			return
		}
		s.log.Warn("commit first entry of term failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.expireLeases(ctx)
	}()
	if s.cfg.AutoCompactionRetention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.autoCompact(ctx)
		}()
	}
	wg.Wait()
}

// join asks the listed members to add this one as a voter, retrying with
// backoff until ctx ends.
func (s *Server) join(ctx context.Context) error {
	req := &skiffv1.JoinRequest{Name: s.cfg.Name, MemberId: s.id, PeerAddr: s.advPeer, ClientAddr: s.advClient}
	backoff := 100 * time.Millisecond
	var lastErr error
	for {
		for _, addr := range s.cfg.Join {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			c, err := s.peers.get(addr)
			if err == nil {
				_, err = skiffv1.NewPeerServiceClient(c).Join(cctx, req)
			}
			cancel()
			if err == nil {
				s.log.Info("joined cluster", "via", addr)
				return nil
			}
			lastErr = fmt.Errorf("via %s: %w", addr, err)
			s.log.Warn("join failed; retrying", "via", addr, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("join cluster %v: %w (last error: %v); check that --join lists the peer address (--listen-peer) of a running member", s.cfg.Join, ctx.Err(), lastErr)
		case <-s.ctx.Done():
			return errServerClosed
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// publishAttributes makes sure the cluster knows this member's name and
// client URL (MemberList shows them), re-publishing after a restart with a
// changed --advertise-client.
func (s *Server) publishAttributes(ctx context.Context) {
	want := memberAttrs{Name: s.cfg.Name, ClientURLs: []string{"http://" + s.advClient}}
	for {
		if _, err := s.WaitLeader(ctx); err != nil {
			return
		}
		if got, ok := s.fsm.memberAttrs(s.id); ok && got.Name == want.Name && strings.Join(got.ClientURLs, ",") == strings.Join(want.ClientURLs, ",") {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, _, err := s.propose(pctx, &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
			Member_ID:        s.id,
			MemberAttributes: &membershippb.Attributes{Name: want.Name, ClientUrls: want.ClientURLs},
		}})
		cancel()
		if err == nil {
			continue // loop re-checks what was applied
		}
		s.log.Debug("publish member attributes failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func randomUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	v := binary.LittleEndian.Uint64(b[:])
	if v == 0 {
		v = 1
	}
	return v
}

// header is the response header every answer carries.
func (s *Server) header(rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{
		ClusterId: s.fsm.clusterID.Load(),
		MemberId:  s.id,
		Revision:  rev,
		RaftTerm:  s.raft.CurrentTerm(),
	}
}

// fillHeader completes a header set by the state machine (which knows the
// revision) with this member's fields.
func (s *Server) fillHeader(h **pb.ResponseHeader) {
	if *h == nil {
		*h = s.header(s.fsm.kv().Rev())
		return
	}
	(*h).ClusterId = s.fsm.clusterID.Load()
	(*h).MemberId = s.id
	(*h).RaftTerm = s.raft.CurrentTerm()
}

// peerClients caches one gRPC connection per peer address; connections
// multiplex every forwarded request.
type peerClients struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func (p *peerClients) get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return dialPeer(ctx, a, muxGRPC)
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<31-1), grpc.MaxCallSendMsgSize(1<<31-1)),
	)
	if err != nil {
		return nil, err
	}
	if p.conns == nil {
		p.conns = make(map[string]*grpc.ClientConn)
	}
	p.conns[addr] = c
	return c, nil
}

func (p *peerClients) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for a, c := range p.conns {
		_ = c.Close()
		delete(p.conns, a)
	}
}

// newHCLogger routes hashicorp/raft's logs into slog.
func newHCLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       hclog.Info,
		Output:      &slogWriter{l: l},
		DisableTime: true,
	})
}

type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	switch {
	case strings.HasPrefix(line, "[ERROR]"):
		level = slog.LevelError
	case strings.HasPrefix(line, "[WARN]"):
		level = slog.LevelWarn
	case strings.HasPrefix(line, "[DEBUG]"), strings.HasPrefix(line, "[TRACE]"):
		level = slog.LevelDebug
	}
	w.l.Log(context.Background(), level, line)
	return len(p), nil
}

var _ io.Writer = (*slogWriter)(nil)

// openLogStore opens the Raft log and stable store Config.LogStore names and
// sets s.logStore (timed for the fsync metric); it returns the stable store.
//
// boltdb (the default): raft-boltdb v2, one bbolt file DataDir/raft.db
// holding the log and the stable-store keys. Each append is one bbolt
// transaction, which costs two fsyncs (data pages, then the meta page).
//
// wal: raft-wal, append-only segment files under DataDir/wal with one fsync
// per append; bbolt keeps only its small metadata (and the stable keys).
func (s *Server) openLogStore(hlog hclog.Logger) (raft.StableStore, error) {
	cfg := s.cfg
	switch cfg.LogStore {
	case LogStoreWAL:
		walDir := filepath.Join(cfg.DataDir, "wal")
		if err := os.MkdirAll(walDir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", walDir, err)
		}
		// The meta store is ours to close: WAL.Close leaves it open (and its
		// file lock held, which would block a restart in the same process).
		s.walMeta = &walmeta.BoltMetaDB{}
		wal, err := raftwal.Open(walDir, raftwal.WithLogger(hlog.Named("wal")), raftwal.WithSegmentSize(walSegmentSize), raftwal.WithMetaStore(s.walMeta))
		if err != nil {
			return nil, fmt.Errorf("open raft log in %s: %w (is another member using this --data-dir?)", walDir, err)
		}
		s.wal = wal
		if err := s.cacheLogStore(&timedLogStore{LogStore: wal, observe: s.metrics.observeFsync}); err != nil {
			return nil, err
		}
		return wal, nil
	default:
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", cfg.DataDir, err)
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "wal")); err == nil {
			return nil, fmt.Errorf("%s holds a raft-wal log (%s): start this member with --log-store wal", cfg.DataDir, filepath.Join(cfg.DataDir, "wal"))
		}
		path := filepath.Join(cfg.DataDir, "raft.db")
		bs, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{
			Timeout: 2 * time.Second,
			// The free list is rebuilt by scanning at open instead of
			// being written with every commit: fewer pages per append
			// (the log's head is deleted as fast as its tail grows, so
			// the list is long). Durability is unchanged: the data and
			// meta pages are still fdatasync'ed before StoreLogs returns.
			NoFreelistSync: true,
			// A hashmap free list allocates and frees in O(1) instead of
			// sorting an array on every commit.
			FreelistType: bbolt.FreelistMapType,
			// Map a file of the usual size at once instead of remapping
			// (which blocks every reader and writer) as it grows.
			InitialMmapSize: 64 << 20,
		}})
		if err != nil {
			return nil, fmt.Errorf("open raft log %s: %w (is another member using this --data-dir?)", path, err)
		}
		s.bolt = bs
		if err := s.cacheLogStore(&timedLogStore{LogStore: bs, observe: s.metrics.observeFsync}); err != nil {
			return nil, err
		}
		return bs, nil
	}
}

// logCacheEntries is how many recent entries the log cache keeps: enough
// for several full appends (MaxAppendEntries) to every follower.
const logCacheEntries = 4096

// cacheLogStore puts raft's LogCache in front of the log store: the
// leader's replicators read back every entry they send, and followers every
// entry they apply, which without it is a bbolt read and a msgpack decode
// per entry. Writes still go through to the store (and its fsync) before
// raft counts them; IsMonotonic passes through.
func (s *Server) cacheLogStore(store raft.LogStore) error {
	c, err := raft.NewLogCache(logCacheEntries, store)
	if err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	s.logStore = c
	return nil
}
