package raftstore

// This file fixes the public shape of a store member so that the server, its
// tests, the benchmarks and the jepsen rig can be written at the same time.
// Implementations live in the other files of the package.
//
//	type Config struct {
//		Name            string        // member name (etcdctl member list shows it); required
//		DataDir         string        // raft log (bolt), stable store, snapshots; required
//		ListenClient    string        // etcd v3 gRPC, default 127.0.0.1:2379; port 0 = pick one
//		ListenPeer      string        // raft + PeerService, default 127.0.0.1:2380; port 0 = pick one
//		AdvertiseClient string        // default: the resolved ListenClient address
//		AdvertisePeer   string        // default: the resolved ListenPeer address
//		Join            []string      // peer addresses of existing members; empty = bootstrap
//		                              // (ignored when DataDir already holds raft state: restart)
//		HeartbeatTimeout time.Duration // raft; defaults tuned for loopback/LAN (e.g. 500ms)
//		ElectionTimeout  time.Duration
//		LeaderLeaseTimeout time.Duration
//		SnapshotThreshold uint64        // raft entries between snapshots (default 10000)
//		SnapshotInterval  time.Duration // how often raft checks (default 30s)
//		TrailingLogs      uint64        // log entries kept after a snapshot (default 10000)
//		AutoCompactionRetention time.Duration // 0 = off; etcd's "periodic" mode
//		ProgressNotifyInterval  time.Duration // watch progress_notify period (default 10m, as etcd)
//		MaxRequestBytes int         // default 1.5 MiB, as etcd
//		MaxTxnOps       int         // default 128, as etcd
//		ListenMetrics   string      // Prometheus /metrics; empty = off
//		Logger          *slog.Logger
//		// UnsafeFollowerReads serves linearizable ranges locally without a
//		// read-index. It exists only so the jepsen checkers can be shown to
//		// catch stale reads; never enable it otherwise.
//		UnsafeFollowerReads bool
//	}
//	func DefaultConfig() Config
//	func (c *Config) Validate() error // relations too (election > heartbeat, ...)
//
//	type Server struct{ ... }
//	func New(cfg Config) (*Server, error)
//	// Start opens the data dir, binds both ports, starts Raft and the gRPC
//	// servers, bootstraps or joins, and returns once the client port serves.
//	// It does not wait for a leader.
//	func (s *Server) Start(ctx context.Context) error
//	// Close stops serving and shuts Raft down without handing leadership over
//	// (in tests, the in-process equivalent of a crash after fsync).
//	func (s *Server) Close() error
//	func (s *Server) ClientAddr() string // resolved host:port
//	func (s *Server) PeerAddr() string
//	func (s *Server) ID() uint64         // etcd member id
//	func (s *Server) IsLeader() bool
//	// WaitLeader blocks until this member knows a leader that has committed
//	// an entry of its term, and returns the leader's member id.
//	func (s *Server) WaitLeader(ctx context.Context) (uint64, error)
//	// AppliedIndex is the raft index applied to the state machine.
//	func (s *Server) AppliedIndex() uint64
