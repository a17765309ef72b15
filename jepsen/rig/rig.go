// Package rig builds the hosts a jepsen run breaks: one network namespace
// per host, each with a veth pair plugged into a private bridge in the root
// namespace, and a real store member (Skiff or etcd) running inside each
// namespace with its own data dir and log.
//
// The harness itself stays in the root namespace and reaches every member
// through the bridge (the bridge holds the subnet's .1 address), so network
// faults injected between members never cut the clients off: a client bound
// to a minority member keeps talking to that member, as in Jepsen.
//
// Every object the rig creates is named with the run id (namespaces
// "<id>-n1", bridge "<id>br", host-side veths "<id>v1"), so parallel runs do
// not clash and leftovers of a crashed run can be found and removed by name
// (see CleanupStale). Close removes everything, and is safe to call twice.
package rig

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DB names the store implementation a rig runs.
type DB string

// The store implementations the rig knows how to start.
const (
	DBSkiff DB = "skiff"
	DBEtcd  DB = "etcd"
)

// Sentinel errors.
var (
	// ErrNotRoot: network namespaces, veths and iptables need root.
	ErrNotRoot = errors.New("the jepsen rig needs root (network namespaces, veth pairs, iptables): run it as root, e.g. with sudo")
	// ErrNoFreeSubnet: every candidate 10.213.x.0/24 is already routed on this host.
	ErrNoFreeSubnet = errors.New("no free 10.213.x.0/24 subnet for the rig's bridge")
)

// DefaultPrefix starts every run id, so leftovers are recognisable.
const DefaultPrefix = "sj"

// stateDir holds one owner file per live run: "<runid>.pid" with the pid of
// the harness that owns it. A run whose owner is dead is stale.
const stateDir = "/run/skiff-jepsen"

// Config describes a rig.
type Config struct {
	// RunID names every object the rig creates; at most 8 characters of
	// [a-z0-9]. Empty: DefaultPrefix + 6 random hex digits.
	RunID string
	// Nodes is the number of hosts (members): 3 or 5 usually; 1..9.
	Nodes int
	// DB selects the member implementation.
	DB DB
	// SkiffBinary and EtcdBinary are the member executables.
	SkiffBinary string
	EtcdBinary  string
	// WorkDir holds each member's data dir (and log, without LogDir).
	// Empty: a temp dir that Close removes; a given dir is kept.
	WorkDir string
	// LogDir, when set, receives the members' logs (<name>.log), so they
	// outlive the data dirs as part of a run's output.
	LogDir string
	// UnsafeFollowerReads starts Skiff members with the planted bug
	// --unsafe-follower-reads (reads served without a read-index).
	UnsafeFollowerReads bool
	// SmallSnapshots starts members with snapshot settings small enough
	// that a follower cut off for a few seconds falls behind the leader's
	// compacted log: Skiff with --snapshot-threshold
	// SkiffSnapshotThreshold --trailing-logs SkiffTrailingLogs
	// --snapshot-interval SkiffSnapshotInterval, etcd with
	// --snapshot-count EtcdSnapshotCount.
	SmallSnapshots bool
	// Log receives progress lines; nil = discard.
	Log io.Writer
}

// Validate checks the settings and fills defaults.
func (c *Config) Validate() error {
	if c.RunID == "" {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		c.RunID = DefaultPrefix + hex.EncodeToString(b[:])
	}
	if len(c.RunID) > 8 {
		return fmt.Errorf("run id %q: at most 8 characters (interface names are limited to 15)", c.RunID)
	}
	for _, r := range c.RunID {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return fmt.Errorf("run id %q: only [a-z0-9] allowed", c.RunID)
		}
	}
	if c.Nodes < 1 || c.Nodes > 9 {
		return fmt.Errorf("nodes = %d: want 1..9", c.Nodes)
	}
	switch c.DB {
	case DBSkiff:
		if c.SkiffBinary == "" {
			return errors.New("db skiff needs the skiff binary path (--skiff-binary)")
		}
		p, err := filepath.Abs(c.SkiffBinary)
		if err != nil {
			return err
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("skiff binary: %w", err)
		}
		c.SkiffBinary = p
	case DBEtcd:
		if c.EtcdBinary == "" {
			c.EtcdBinary = "/usr/bin/etcd"
		}
		if _, err := os.Stat(c.EtcdBinary); err != nil {
			return fmt.Errorf("etcd binary: %w (install Debian's etcd-server)", err)
		}
	default:
		return fmt.Errorf("db %q: want skiff or etcd", c.DB)
	}
	if c.UnsafeFollowerReads && c.DB != DBSkiff {
		return errors.New("unsafe follower reads is a Skiff-only test mode")
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// probeSkiff asks the Skiff binary's server help whether it has --no-api
// (servers since the control plane landed run an API server and controllers
// by default, whose own keys the checkers would see as phantom writes).
func (r *Rig) probeSkiff(ctx context.Context) {
	if r.cfg.DB != DBSkiff {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(cctx, r.cfg.SkiffBinary, "server", "--help").CombinedOutput()
	r.skiffNoAPI = strings.Contains(string(out), "--no-api")
}

// Snapshot settings with SmallSnapshots.
const (
	SkiffSnapshotThreshold = 256
	SkiffTrailingLogs      = 64
	SkiffSnapshotInterval  = time.Second
	EtcdSnapshotCount      = 100
	// EtcdCatchUpEntries is etcd 3.4's snapshotCatchUpEntries: the leader
	// keeps this many entries before its latest snapshot for slow
	// followers, whatever --snapshot-count says (not configurable).
	EtcdCatchUpEntries = 5000
)

// Rig is a set of hosts with one member each.
type Rig struct {
	cfg     Config
	subnet  string // "10.213.x"
	bridge  string
	workDir string
	ownDir  bool
	// skiffNoAPI: the Skiff binary's server has --no-api (probed once
	// in Start).
	skiffNoAPI bool
	Members    []*Member

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg; Start builds the hosts.
func New(cfg Config) (*Rig, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Rig{cfg: cfg, bridge: cfg.RunID + "br"}, nil
}

// RunID returns the id naming this rig's objects.
func (r *Rig) RunID() string { return r.cfg.RunID }

// DB returns the member implementation.
func (r *Rig) DB() DB { return r.cfg.DB }

// Logf writes a progress line.
func (r *Rig) Logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "%s [%s] %s\n", time.Now().UTC().Format("15:04:05.000"), r.cfg.RunID, fmt.Sprintf(format, args...))
}

// Start checks for root, removes stale leftovers, builds the bridge and the
// namespaces, and starts every member; it returns once every member serves
// a linearizable read. On error the caller must still call Close.
func (r *Rig) Start(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if err := CleanupStale(ctx, DefaultPrefix, r.cfg.Log); err != nil {
		r.Logf("cleanup of stale runs: %v", err)
	}
	if err := r.claim(); err != nil {
		return err
	}
	if err := r.pickSubnet(ctx); err != nil {
		return err
	}
	if r.cfg.WorkDir == "" {
		d, err := os.MkdirTemp("", "skiff-jepsen-"+r.cfg.RunID+"-")
		if err != nil {
			return err
		}
		r.workDir, r.ownDir = d, true
	} else {
		r.workDir = r.cfg.WorkDir
		if err := os.MkdirAll(r.workDir, 0o755); err != nil {
			return err
		}
	}
	if err := r.buildNetwork(ctx); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	for i := 0; i < r.cfg.Nodes; i++ {
		name := fmt.Sprintf("n%d", i+1)
		m := &Member{
			rig:     r,
			Index:   i,
			Name:    name,
			NS:      r.cfg.RunID + "-" + name,
			IP:      fmt.Sprintf("%s.%d", r.subnet, 11+i),
			DataDir: filepath.Join(r.workDir, name, "data"),
			LogPath: filepath.Join(r.workDir, name, "member.log"),
		}
		if r.cfg.LogDir != "" {
			m.LogPath = filepath.Join(r.cfg.LogDir, name+".log")
		}
		if err := os.MkdirAll(filepath.Dir(m.LogPath), 0o755); err != nil {
			return err
		}
		r.Members = append(r.Members, m)
	}
	r.probeSkiff(ctx)
	if err := r.startMembers(ctx); err != nil {
		return err
	}
	return r.WaitHealthy(ctx, 60*time.Second)
}

// claim writes the owner file so concurrent runs leave this one alone.
func (r *Rig) claim() error {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(stateDir, r.cfg.RunID+".pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// pickSubnet chooses 10.213.x.0/24 from the run id, skipping any x already
// present in the host's routing table (another run, another tool).
func (r *Rig) pickSubnet(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "ip", "-4", "route", "show").Output()
	if err != nil {
		return fmt.Errorf("ip route: %w", err)
	}
	h := fnv.New32a()
	h.Write([]byte(r.cfg.RunID))
	start := int(h.Sum32() % 250)
	for k := 0; k < 250; k++ {
		x := 1 + (start+k)%250
		s := fmt.Sprintf("10.213.%d", x)
		if !strings.Contains(string(out), s+".") {
			r.subnet = s
			return nil
		}
	}
	return ErrNoFreeSubnet
}

// Subnet returns the rig's /24 prefix, e.g. "10.213.7".
func (r *Rig) Subnet() string { return r.subnet }

// WorkDir returns the directory with the members' data dirs and logs.
func (r *Rig) WorkDir() string { return r.workDir }

func (r *Rig) buildNetwork(ctx context.Context) error {
	if err := ip(ctx, "link", "add", r.bridge, "type", "bridge"); err != nil {
		return err
	}
	if err := ip(ctx, "addr", "add", r.subnet+".1/24", "dev", r.bridge); err != nil {
		return err
	}
	if err := ip(ctx, "link", "set", r.bridge, "up"); err != nil {
		return err
	}
	for i := 0; i < r.cfg.Nodes; i++ {
		ns := fmt.Sprintf("%s-n%d", r.cfg.RunID, i+1)
		veth := fmt.Sprintf("%sv%d", r.cfg.RunID, i+1)
		steps := [][]string{
			{"netns", "add", ns},
			{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"link", "set", veth, "master", r.bridge},
			{"link", "set", veth, "up"},
			{"-n", ns, "addr", "add", fmt.Sprintf("%s.%d/24", r.subnet, 11+i), "dev", "eth0"},
			{"-n", ns, "link", "set", "eth0", "up"},
			{"-n", ns, "link", "set", "lo", "up"},
		}
		for _, s := range steps {
			if err := ip(ctx, s...); err != nil {
				return err
			}
		}
	}
	r.Logf("network up: bridge %s %s.1/24, %d namespaces", r.bridge, r.subnet, r.cfg.Nodes)
	return nil
}

// Close stops every member (SIGKILL) and removes the namespaces, veths,
// bridge, owner file and (if the rig made it) the work dir. It uses its own
// deadline so it still works after the run's context was cancelled.
func (r *Rig) Close() error {
	r.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var errs []error
		for _, m := range r.Members {
			if err := m.Kill(); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, removeRun(ctx, r.cfg.RunID))
		if r.ownDir {
			errs = append(errs, os.RemoveAll(r.workDir))
		}
		r.closeErr = errors.Join(errs...)
		r.Logf("rig removed")
	})
	return r.closeErr
}

// removeRun deletes everything named after runID: processes inside its
// namespaces, the namespaces, host-side links and the owner file.
func removeRun(ctx context.Context, runID string) error {
	var errs []error
	nss, _ := listNetns(ctx)
	for _, ns := range nss {
		if !strings.HasPrefix(ns, runID+"-") {
			continue
		}
		// Processes still inside a namespace of this run were started by
		// this run's rig: kill them by pid before the namespace goes.
		if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if err := ip(ctx, "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	links, _ := listLinks(ctx)
	for _, l := range links {
		if strings.HasPrefix(l, runID) {
			if err := ip(ctx, "link", "del", l); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
				errs = append(errs, err)
			}
		}
	}
	_ = os.Remove(filepath.Join(stateDir, runID+".pid"))
	return errors.Join(errs...)
}

// CleanupStale removes the leftovers of runs whose id starts with prefix and
// whose owner process is gone (crashed or killed harnesses). Live runs of
// other harnesses on the same host are left alone.
func CleanupStale(ctx context.Context, prefix string, log io.Writer) error {
	ids := map[string]bool{}
	nss, err := listNetns(ctx)
	if err != nil {
		return err
	}
	for _, ns := range nss {
		if i := strings.LastIndex(ns, "-n"); i > 0 && strings.HasPrefix(ns, prefix) {
			ids[ns[:i]] = true
		}
	}
	links, _ := listLinks(ctx)
	for _, l := range links {
		if strings.HasPrefix(l, prefix) && strings.HasSuffix(l, "br") {
			ids[strings.TrimSuffix(l, "br")] = true
		}
	}
	var errs []error
	for id := range ids {
		if ownerAlive(id) {
			continue
		}
		if log != nil {
			fmt.Fprintf(log, "removing leftovers of stale run %s\n", id)
		}
		errs = append(errs, removeRun(ctx, id))
		matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "skiff-jepsen-"+id+"-*"))
		for _, m := range matches {
			errs = append(errs, os.RemoveAll(m))
		}
	}
	return errors.Join(errs...)
}

func ownerAlive(runID string) bool {
	b, err := os.ReadFile(filepath.Join(stateDir, runID+".pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	return syscall.Kill(pid, 0) == nil
}

func listNetns(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

func listLinks(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ip", "-o", "link", "show").Output()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if i := strings.Index(name, "@"); i >= 0 {
			name = name[:i]
		}
		names = append(names, name)
	}
	return names, nil
}

// ip runs the ip command with args and returns its output in the error.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NSExec runs a command inside member m's namespace and returns its output.
func (m *Member) NSExec(ctx context.Context, name string, args ...string) (string, error) {
	full := append([]string{"netns", "exec", m.NS, name}, args...)
	out, err := exec.CommandContext(ctx, "ip", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %v: %s", name, strings.Join(args, " "), m.NS, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
