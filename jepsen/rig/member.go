package rig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Member is one host: a namespace, its address and the store process in it.
type Member struct {
	rig     *Rig
	Index   int    // 0-based
	Name    string // "n1"
	NS      string // network namespace
	IP      string
	DataDir string
	LogPath string

	mu     sync.Mutex
	rejoin bool // wiped and re-added: join the existing cluster on start
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has been reaped
	paused bool
}

// ClientURL is the member's etcd v3 endpoint as seen from the harness.
func (m *Member) ClientURL() string { return "http://" + m.IP + ":2379" }

// ClientAddr is host:port of the client endpoint.
func (m *Member) ClientAddr() string { return m.IP + ":2379" }

// PeerAddr is host:port of the member's peer (raft) endpoint.
func (m *Member) PeerAddr() string { return m.IP + ":2380" }

func (m *Member) args() (string, []string) {
	r := m.rig
	switch r.cfg.DB {
	case DBEtcd:
		state := "new"
		if m.rejoin {
			state = "existing"
		}
		var initial []string
		for _, o := range r.Members {
			initial = append(initial, fmt.Sprintf("%s=http://%s", o.Name, o.PeerAddr()))
		}
		args := []string{
			"--name", m.Name,
			"--data-dir", m.DataDir,
			"--listen-client-urls", m.ClientURL(),
			"--advertise-client-urls", m.ClientURL(),
			"--listen-peer-urls", "http://" + m.PeerAddr(),
			"--initial-advertise-peer-urls", "http://" + m.PeerAddr(),
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", state,
			"--initial-cluster-token", r.cfg.RunID,
			"--logger", "zap",
			"--log-outputs", "stderr",
		}
		if r.cfg.SmallSnapshots {
			args = append(args, "--snapshot-count", fmt.Sprint(EtcdSnapshotCount))
		}
		return r.cfg.EtcdBinary, args
	default:
		args := []string{"server",
			"--name", m.Name,
			"--data-dir", m.DataDir,
			"--listen-client", m.ClientAddr(),
			"--listen-peer", m.PeerAddr(),
		}
		if r.skiffNoAPI {
			// The store alone: the API server and controllers would
			// write keys of their own, which the checkers would see
			// as written by no client.
			args = append(args, "--no-api")
		}
		switch {
		case m.rejoin:
			var peers []string
			for _, o := range r.Members {
				if o != m {
					peers = append(peers, o.PeerAddr())
				}
			}
			args = append(args, "--join", strings.Join(peers, ","))
		case m.Index > 0:
			// Ignored by a member whose data dir already holds raft state.
			args = append(args, "--join", r.Members[0].PeerAddr())
		}
		if r.cfg.SmallSnapshots {
			args = append(args,
				"--snapshot-threshold", fmt.Sprint(SkiffSnapshotThreshold),
				"--trailing-logs", fmt.Sprint(SkiffTrailingLogs),
				"--snapshot-interval", SkiffSnapshotInterval.String())
		}
		if r.cfg.UnsafeFollowerReads {
			args = append(args, "--unsafe-follower-reads")
		}
		return r.cfg.SkiffBinary, args
	}
}

// startMembers starts all members: etcd members together (static initial
// cluster), Skiff members one after the other (the first bootstraps, the
// others join it once it serves).
func (r *Rig) startMembers(ctx context.Context) error {
	for _, m := range r.Members {
		if err := m.Start(); err != nil {
			return err
		}
		if r.cfg.DB == DBSkiff {
			if err := m.waitServing(ctx, 30*time.Second); err != nil {
				return fmt.Errorf("%s did not start serving: %w (log: %s)", m.Name, err, m.LogPath)
			}
		}
	}
	return nil
}

// Start starts the member process in its namespace. The process is in its
// own process group (a terminal's ^C reaches only the harness, which then
// cleans up) and dies with the harness (Pdeathsig).
func (m *Member) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("%s: already running", m.Name)
	}
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	bin, args := m.args()
	fmt.Fprintf(logf, "\n=== %s start: %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	// `ip netns exec` execs the binary in place, so cmd's pid is the member.
	cmd := exec.Command("ip", append([]string{"netns", "exec", m.NS, bin}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	m.cmd, m.done, m.paused = cmd, done, false
	m.rig.Logf("%s started (pid %d)", m.Name, cmd.Process.Pid)
	return nil
}

// Wipe deletes the data dir of a stopped member and marks it to join the
// existing cluster when next started (after it was removed and re-added).
func (m *Member) Wipe() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("%s: wipe while running", m.Name)
	}
	m.rejoin = true
	return os.RemoveAll(m.DataDir)
}

// Running reports whether the member process is alive (possibly paused).
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// PID returns the member's pid, or 0 when it is not running.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Kill sends SIGKILL and waits for the process to be reaped. No-op when the
// member is not running.
func (m *Member) Kill() error { return m.stop(syscall.SIGKILL, 10*time.Second) }

// Terminate sends SIGTERM, and SIGKILL if the member has not exited within
// grace.
func (m *Member) Terminate(grace time.Duration) error {
	if err := m.stop(syscall.SIGTERM, grace); err == nil {
		return nil
	}
	return m.Kill()
}

func (m *Member) stop(sig syscall.Signal, wait time.Duration) error {
	m.mu.Lock()
	cmd, done, paused := m.cmd, m.done, m.paused
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	if paused && sig != syscall.SIGKILL {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	select {
	case <-done:
	case <-time.After(wait):
		return fmt.Errorf("%s (pid %d) still running %v after %v", m.Name, cmd.Process.Pid, wait, sig)
	}
	m.mu.Lock()
	m.cmd, m.done, m.paused = nil, nil, false
	m.mu.Unlock()
	m.rig.Logf("%s stopped (%v)", m.Name, sig)
	return nil
}

// Pause sends SIGSTOP; Resume sends SIGCONT.
func (m *Member) Pause() error { return m.signal(syscall.SIGSTOP, true) }

// Resume continues a paused member.
func (m *Member) Resume() error { return m.signal(syscall.SIGCONT, false) }

func (m *Member) signal(sig syscall.Signal, paused bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("%s: not running", m.Name)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		return err
	}
	m.paused = paused
	return nil
}

// Client opens an etcd v3 client bound to the given members only.
func Client(members []*Member) (*clientv3.Client, error) {
	var eps []string
	for _, m := range members {
		eps = append(eps, m.ClientAddr())
	}
	return clientv3.New(clientv3.Config{
		Endpoints:            eps,
		DialTimeout:          2 * time.Second,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(),
	})
}

// Status is one member's view of the cluster.
type Status struct {
	Member   *Member
	ID       uint64
	Leader   uint64
	Term     uint64
	Revision int64
	// RaftIndex is the member's raft commit index (etcd: committed
	// index; Skiff: raft CommitIndex).
	RaftIndex uint64
	// AppliedIndex is the raft index of the last entry the member applied
	// (what both stores' snapshot triggers count).
	AppliedIndex uint64
	Err          error
}

// Statuses asks every running member for its status, each with timeout.
func (r *Rig) Statuses(ctx context.Context, timeout time.Duration) []Status {
	out := make([]Status, len(r.Members))
	var wg sync.WaitGroup
	for i, m := range r.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = m.status(ctx, timeout)
		}()
	}
	wg.Wait()
	return out
}

// Status asks this member alone for its status.
func (m *Member) Status(ctx context.Context, timeout time.Duration) Status {
	return m.status(ctx, timeout)
}

func (m *Member) status(ctx context.Context, timeout time.Duration) Status {
	st := Status{Member: m}
	if !m.Running() {
		st.Err = errors.New("not running")
		return st
	}
	c, err := Client([]*Member{m})
	if err != nil {
		st.Err = err
		return st
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.Status(cctx, m.ClientAddr())
	if err != nil {
		st.Err = err
		return st
	}
	st.ID, st.Leader, st.Term, st.Revision = resp.Header.MemberId, resp.Leader, resp.RaftTerm, resp.Header.Revision
	st.RaftIndex, st.AppliedIndex = resp.RaftIndex, resp.RaftAppliedIndex
	return st
}

// Leader returns the member that the highest-term answers name as leader,
// or nil if none is known (or the named leader is not one of the members).
func (r *Rig) Leader(ctx context.Context) *Member {
	sts := r.Statuses(ctx, time.Second)
	byID := map[uint64]*Member{}
	var best Status
	for _, s := range sts {
		if s.Err != nil {
			continue
		}
		byID[s.ID] = s.Member
		if s.Leader != 0 && s.Term >= best.Term {
			best = s
		}
	}
	if best.Leader == 0 {
		return nil
	}
	return byID[best.Leader]
}

// WaitLeader polls until a leader is known.
func (r *Rig) WaitLeader(ctx context.Context, timeout time.Duration) (*Member, error) {
	deadline := time.Now().Add(timeout)
	for {
		if l := r.Leader(ctx); l != nil {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no leader within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (m *Member) waitServing(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st := m.status(ctx, time.Second)
		if st.Err == nil {
			return nil
		}
		if !m.Running() {
			return errors.New("process exited")
		}
		if time.Now().After(deadline) {
			return st.Err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WaitHealthy polls until every member answers a linearizable read through
// its own endpoint (which needs a leader and a quorum).
func (r *Rig) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, m := range r.Members {
		var last error
		for {
			last = m.linearizableRead(ctx)
			if last == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not healthy within %v: %w (log: %s)", m.Name, timeout, last, m.LogPath)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

func (m *Member) linearizableRead(ctx context.Context) error {
	if !m.Running() {
		return errors.New("not running")
	}
	c, err := Client([]*Member{m})
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Get(cctx, "health")
	return err
}
