package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The harness: one Cluster type shared by every test. A Cluster is a set of
// members of one backend (Skiff in-process, or etcd processes), each with its
// own data dir under t.TempDir() and fixed loopback ports, so a member can be
// killed and restarted on the same data dir and addresses.

// opts tune a cluster; zero values mean the backend's defaults.
type opts struct {
	// SnapshotThreshold and TrailingLogs make snapshots frequent so that a
	// lagging member has to be caught up by snapshot.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotInterval is how often raft considers taking a snapshot.
	SnapshotInterval time.Duration
	// ProgressNotifyInterval is the server's watch progress_notify period.
	ProgressNotifyInterval time.Duration
	// AutoCompactionRetention turns on periodic auto-compaction.
	AutoCompactionRetention time.Duration
	// UnsafeFollowerReads plants Skiff's stale-read bug (Skiff only).
	UnsafeFollowerReads bool
}

// raftInspector is an optional capability of a node (Skiff's): raft indexes
// that let a test prove a catch-up needed a snapshot.
type raftInspector interface {
	// AppliedIndex is the raft index applied to the state machine.
	AppliedIndex() uint64
	// SnapshotIndex is the last index covered by the newest snapshot in the
	// member's data dir (0 if none).
	SnapshotIndex() uint64
}

// node is one member process (or in-process server) as a backend runs it.
type node interface {
	// ClientAddr and PeerAddr are host:port, stable across restarts.
	ClientAddr() string
	PeerAddr() string
	// Stop kills the member without handing over leadership.
	Stop() error
	// Restart starts it again on the same data dir and ports.
	Restart(ctx context.Context) error
	// Running reports whether the member was started and not stopped.
	Running() bool
}

// backend starts members of one implementation.
type backend interface {
	Name() string
	// Bootstrap starts a new cluster of n members.
	Bootstrap(t *testing.T, n int, o opts) []node
	// Join starts one more member and makes it part of the running cluster
	// reachable through cli and through the peers' addresses.
	Join(t *testing.T, cli *clientv3.Client, peers []node, o opts) node
}

// backends registered by the backend_*_test.go files.
var backends = map[string]backend{}

// defaultBackend is "skiff" once the Skiff backend is compiled in.
func selectBackend(t *testing.T) backend {
	t.Helper()
	name := os.Getenv("SKIFF_IT_BACKEND")
	if name == "" {
		name = "skiff"
		if _, ok := backends[name]; !ok {
			name = "etcd"
		}
	}
	b, ok := backends[name]
	if !ok {
		t.Fatalf("SKIFF_IT_BACKEND=%q: no such backend (have %v)", name, backendNames())
	}
	return b
}

func backendNames() []string {
	var names []string
	for n := range backends {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Cluster is a running set of members plus helpers to talk to them.
type Cluster struct {
	t       *testing.T
	backend backend
	opts    opts

	mu      sync.Mutex
	members []node
	clients []*clientv3.Client
}

// newCluster starts n members, waits for a leader and returns the cluster.
// Everything is stopped when the test ends.
func newCluster(t *testing.T, n int, o opts) *Cluster {
	t.Helper()
	b := selectBackend(t)
	c := &Cluster{t: t, backend: b, opts: o}
	t.Cleanup(c.shutdown)
	c.members = b.Bootstrap(t, n, o)
	c.WaitLeader(30 * time.Second)
	return c
}

func (c *Cluster) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cli := range c.clients {
		cli.Close()
	}
	c.clients = nil
	for _, m := range c.members {
		if m.Running() {
			if err := m.Stop(); err != nil {
				c.t.Logf("stopping member %s: %v", m.ClientAddr(), err)
			}
		}
	}
}

// Members returns the current members (including stopped ones).
func (c *Cluster) Members() []node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]node(nil), c.members...)
}

// Endpoints are the client addresses of the running members.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members() {
		if m.Running() {
			eps = append(eps, m.ClientAddr())
		}
	}
	return eps
}

// Client returns a client that balances over the given endpoints (all running
// members when none are given). It is closed when the test ends.
func (c *Cluster) Client(endpoints ...string) *clientv3.Client {
	c.t.Helper()
	if len(endpoints) == 0 {
		endpoints = c.Endpoints()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		// The server's limit is what is tested, not the client's.
		MaxCallSendMsgSize: 4 << 20,
	})
	if err != nil {
		c.t.Fatalf("client for %v: %v", endpoints, err)
	}
	c.mu.Lock()
	c.clients = append(c.clients, cli)
	c.mu.Unlock()
	return cli
}

// memberClient is a client bound to one member only (no balancing), for
// asserting what that member itself answers.
func (c *Cluster) memberClient(m node) *clientv3.Client {
	return c.Client(m.ClientAddr())
}

// status asks one member for its Maintenance Status.
func (c *Cluster) status(m node) (*clientv3.StatusResponse, error) {
	cli := c.memberClient(m)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cli.Status(ctx, m.ClientAddr())
}

// WaitLeader polls the running members until all of them agree on a leader
// that is itself running and says so, and returns that member.
func (c *Cluster) WaitLeader(d time.Duration) node {
	c.t.Helper()
	var leader node
	c.eventually(d, "a leader all running members agree on", func() error {
		leader = nil
		var leaderID uint64
		for _, m := range c.Members() {
			if !m.Running() {
				continue
			}
			st, err := c.status(m)
			if err != nil {
				return fmt.Errorf("status of %s: %w", m.ClientAddr(), err)
			}
			if st.Leader == 0 {
				return fmt.Errorf("%s knows no leader", m.ClientAddr())
			}
			if leaderID != 0 && st.Leader != leaderID {
				return fmt.Errorf("members disagree on leader: %x vs %x", leaderID, st.Leader)
			}
			leaderID = st.Leader
			if st.Header.MemberId == st.Leader {
				leader = m
			}
		}
		if leader == nil {
			return fmt.Errorf("leader %x is not a running member", leaderID)
		}
		// A leader that has committed an entry of its term answers a
		// linearizable read; waiting for one keeps tests from racing the
		// first no-op entry.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := c.memberClient(leader).Get(ctx, "harness-probe"); err != nil {
			return fmt.Errorf("linearizable read on leader: %w", err)
		}
		return nil
	})
	return leader
}

// Leader returns the current leader (waiting for one).
func (c *Cluster) Leader() node { return c.WaitLeader(30 * time.Second) }

// Followers returns the running members that are not the leader.
func (c *Cluster) Followers() []node {
	leader := c.Leader()
	var fs []node
	for _, m := range c.Members() {
		if m.Running() && m != leader {
			fs = append(fs, m)
		}
	}
	return fs
}

// Kill stops m without a leadership handover.
func (c *Cluster) Kill(m node) {
	c.t.Helper()
	if err := m.Stop(); err != nil {
		c.t.Fatalf("stop %s: %v", m.ClientAddr(), err)
	}
}

// Restart brings a killed member back on its data dir.
func (c *Cluster) Restart(m node) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Restart(ctx); err != nil {
		c.t.Fatalf("restart %s: %v", m.ClientAddr(), err)
	}
}

// Join adds one member to the running cluster.
func (c *Cluster) Join() node {
	c.t.Helper()
	m := c.backend.Join(c.t, c.Client(), c.Members(), c.opts)
	c.mu.Lock()
	c.members = append(c.members, m)
	c.mu.Unlock()
	return m
}

// Forget drops m from the harness after it was removed from the cluster.
func (c *Cluster) Forget(m node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.members {
		if x == m {
			c.members = append(c.members[:i], c.members[i+1:]...)
			return
		}
	}
}

// eventually polls f until it returns nil or d passes, then fails the test
// with f's last error.
func (c *Cluster) eventually(d time.Duration, what string, f func() error) {
	c.t.Helper()
	eventually(c.t, d, what, f)
}

func eventually(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	wait := 10 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", d, what, err)
		}
		time.Sleep(wait)
		if wait < 250*time.Millisecond {
			wait *= 2
		}
	}
}

// freePort reserves a loopback port by binding :0 and releasing it. Used only
// by the etcd backend, which needs every peer URL before any member starts.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// isUnavailable reports errors a client sees while a member is down or an
// election is running; tests treat those as "outcome unknown", never as lost.
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	s := err.Error()
	for _, frag := range []string{"Unavailable", "DeadlineExceeded", "no leader", "leader changed",
		"timed out", "connection refused", "transport", "EOF", "stopped", "shutdown", "closing"} {
		if strings.Contains(s, frag) {
			return true
		}
	}
	return false
}

// dialOK reports whether a TCP connection to addr succeeds.
func dialOK(addr string) (bool, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false, err
	}
	conn.Close()
	return true, nil
}

// tctx is a context bounded by d and by the end of the test.
func tctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// consistently checks f keeps returning nil for d (polling), failing the test
// at the first error. It is how a test asserts that something does not happen.
func consistently(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := f(); err != nil {
			t.Fatalf("%s stopped holding: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
