// Package bench measures a store cluster under client load and compares
// Skiff with etcd: the same workloads, the same Go client, one cluster at a
// time on the same machine, with the CPU time each cluster's processes used.
//
// The figures are for the README and for spotting regressions by eye; they are
// never assertions in tests. On a shared two-core machine a run measures the
// machine as much as the store, which is why CPU seconds are printed beside
// every throughput figure.
package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is a running set of store member processes.
type Cluster struct {
	Kind      string // "skiff" or "etcd"
	Endpoints []string
	dir       string

	mu    sync.Mutex
	procs []*exec.Cmd
	done  []chan struct{}
}

// Spec says how to start a cluster.
type Spec struct {
	Kind    string // "skiff" or "etcd"
	Binary  string // skiff binary (its "server" subcommand) or etcd
	Members int
	// ExtraArgs are appended to every member's command line.
	ExtraArgs []string
	// Log receives progress lines; nil discards them.
	Log func(format string, args ...any)
}

// Start launches the members in a fresh temporary directory and waits until
// they form a cluster with a leader. On error everything started is stopped.
func Start(ctx context.Context, spec Spec) (*Cluster, error) {
	if spec.Log == nil {
		spec.Log = func(string, ...any) {}
	}
	dir, err := os.MkdirTemp("", "skiff-bench-"+spec.Kind+"-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Kind: spec.Kind, dir: dir}
	var clientAddrs, peerAddrs []string
	for i := 0; i < spec.Members; i++ {
		ca, err := freeAddr()
		if err != nil {
			c.Stop()
			return nil, err
		}
		pa, err := freeAddr()
		if err != nil {
			c.Stop()
			return nil, err
		}
		clientAddrs, peerAddrs = append(clientAddrs, ca), append(peerAddrs, pa)
	}
	c.Endpoints = clientAddrs
	switch spec.Kind {
	case "etcd":
		var initial []string
		for i, pa := range peerAddrs {
			initial = append(initial, fmt.Sprintf("m%d=http://%s", i, pa))
		}
		for i := range clientAddrs {
			args := []string{
				"--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(dir, fmt.Sprintf("m%d", i)),
				"--listen-client-urls", "http://" + clientAddrs[i], "--advertise-client-urls", "http://" + clientAddrs[i],
				"--listen-peer-urls", "http://" + peerAddrs[i], "--initial-advertise-peer-urls", "http://" + peerAddrs[i],
				"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
				"--initial-cluster-token", "skiff-bench", "--log-level", "error",
			}
			if err := c.spawn(spec.Binary, fmt.Sprintf("m%d", i), args); err != nil {
				c.Stop()
				return nil, err
			}
		}
		for _, ep := range clientAddrs {
			if err := c.waitServing(ctx, ep); err != nil {
				c.Stop()
				return nil, err
			}
		}
	case "skiff":
		// Bootstrap one member, then join the others one at a time, as an
		// operator would.
		for i := range clientAddrs {
			args := []string{"server", "--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(dir, fmt.Sprintf("m%d", i)),
				"--listen-client", clientAddrs[i], "--listen-peer", peerAddrs[i], "--log-level", "warn",
				// The store alone, as etcd runs: no API server or controllers.
				"--no-api", "--no-admin-config"}
			if os.Getenv("SKIFF_BENCH_PPROF") != "" {
				// For profiling: members serve /debug/pprof/ on a logged port.
				maddr, err := freeAddr()
				if err != nil {
					c.Stop()
					return nil, err
				}
				args = append(args, "--listen-metrics", maddr, "--enable-pprof")
				spec.Log("skiff m%d: pprof at http://%s/debug/pprof/", i, maddr)
			}
			args = append(args, spec.ExtraArgs...)
			if i > 0 {
				args = append(args, "--join", strings.Join(peerAddrs[:i], ","))
			}
			if err := c.spawn(spec.Binary, fmt.Sprintf("m%d", i), args); err != nil {
				c.Stop()
				return nil, err
			}
			if err := c.waitServing(ctx, clientAddrs[i]); err != nil {
				c.Stop()
				return nil, err
			}
			if err := c.waitMembers(ctx, i+1); err != nil {
				c.Stop()
				return nil, err
			}
		}
	default:
		c.Stop()
		return nil, fmt.Errorf("unknown cluster kind %q", spec.Kind)
	}
	if err := c.waitMembers(ctx, spec.Members); err != nil {
		c.Stop()
		return nil, err
	}
	spec.Log("%s: %d members up at %s (pids %v)", spec.Kind, spec.Members, strings.Join(clientAddrs, ","), c.PIDs())
	return c, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (c *Cluster) spawn(bin, name string, args []string) error {
	logf, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Members die with the benchmark even if it is killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s %s: %w", bin, name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	c.mu.Lock()
	c.procs = append(c.procs, cmd)
	c.done = append(c.done, done)
	c.mu.Unlock()
	return nil
}

// Client returns a client balancing over every member.
func (c *Cluster) Client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

func (c *Cluster) waitServing(ctx context.Context, ep string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	return c.poll(ctx, 60*time.Second, "member at "+ep+" serving", func() error {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := cli.Status(sctx, ep)
		return err
	})
}

// waitMembers waits for n started members and a leader that serves a
// linearizable read.
func (c *Cluster) waitMembers(ctx context.Context, n int) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints[:n], DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	return c.poll(ctx, 60*time.Second, fmt.Sprintf("%d members and a leader", n), func() error {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ml, err := cli.MemberList(sctx)
		if err != nil {
			return err
		}
		started := 0
		for _, m := range ml.Members {
			if m.Name != "" && len(m.ClientURLs) > 0 {
				started++
			}
		}
		if started != n {
			return fmt.Errorf("%d of %d members started", started, n)
		}
		_, err = cli.Get(sctx, "bench-probe")
		return err
	})
}

func (c *Cluster) poll(ctx context.Context, d time.Duration, what string, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return nil
		}
		c.mu.Lock()
		for i, done := range c.done {
			select {
			case <-done:
				c.mu.Unlock()
				return fmt.Errorf("%s member %d exited while waiting for %s; log:\n%s", c.Kind, i, what, c.logTail(i))
			default:
			}
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: waited %v for %s: %w", c.Kind, d, what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) logTail(i int) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("m%d.log", i)))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// PIDs are the member processes' ids.
func (c *Cluster) PIDs() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pids []int
	for _, p := range c.procs {
		pids = append(pids, p.Process.Pid)
	}
	return pids
}

// CPU is the user+system CPU time the members have used so far, from
// /proc/<pid>/stat (utime and stime, in clock ticks of 1/100 s on Linux).
func (c *Cluster) CPU() time.Duration {
	var total time.Duration
	for _, pid := range c.PIDs() {
		d, err := procCPU(pid)
		if err == nil {
			total += d
		}
	}
	return total
}

func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields after it are
	// counted from the closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed stat times")
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticksPerSecond, nil
}

// Stop terminates every member (SIGTERM, then SIGKILL after 5s) and removes
// the temporary directory. It is safe to call more than once.
func (c *Cluster) Stop() {
	c.mu.Lock()
	procs, done := c.procs, c.done
	c.procs, c.done = nil, nil
	c.mu.Unlock()
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	// One grace period for all members, then SIGKILL for any still running.
	grace := time.After(5 * time.Second)
	for i := range procs {
		select {
		case <-done[i]:
		case <-grace:
			for j := i; j < len(procs); j++ {
				_ = procs[j].Process.Kill()
			}
			<-done[i]
		}
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}
