// Package containerd runs, adopts or connects to the containerd daemon an
// agent uses, and moves images in and out of it.
//
// By default every agent data dir gets a private daemon (as k3s embeds one):
// its own root, state, gRPC and ttrpc sockets, the CRI plugin and unused
// snapshotters disabled, started in its own process group so that a ^C to
// the agent leaves it (and the pods) running. containerd outlives the agent;
// a second daemon on the same root would hang on the metadata lock, so a
// restarted agent first probes the socket and adopts a daemon that answers.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	client "github.com/containerd/containerd"
)

// Sentinel errors.
var (
	// ErrMissingDependency: a binary the node needs is not installed; the
	// message names the Debian package.
	ErrMissingDependency = errors.New("missing host dependency")
	// ErrNotServing: the daemon did not answer IsServing before the deadline.
	ErrNotServing = errors.New("containerd is not serving")
)

// DefaultNamespace is the containerd namespace Skiff keeps its images and
// containers in.
const DefaultNamespace = "skiff"

// Config says which daemon to use.
type Config struct {
	// DataDir holds the private daemon's root, state, sockets, config,
	// pidfile and log (under DataDir/containerd). Required unless Socket is set.
	DataDir string
	// Socket, when set, is an existing containerd's gRPC socket to connect to;
	// no daemon is started or adopted.
	Socket string
	// Namespace is the containerd namespace for everything Skiff creates.
	Namespace string
	// Binary is the containerd executable for the private daemon.
	Binary string
	// StartTimeout bounds how long to wait for a daemon to serve.
	StartTimeout time.Duration
}

// DefaultConfig is a private daemon under dataDir.
func DefaultConfig(dataDir string) Config {
	return Config{
		DataDir:      dataDir,
		Namespace:    DefaultNamespace,
		Binary:       "/usr/bin/containerd",
		StartTimeout: 20 * time.Second,
	}
}

// Validate checks the settings against each other.
func (c Config) Validate() error {
	if c.Socket == "" && c.DataDir == "" {
		return errors.New("containerd: either a data dir (private daemon) or a socket is required")
	}
	if c.DataDir != "" && !filepath.IsAbs(c.DataDir) {
		return fmt.Errorf("containerd: data dir %q must be absolute", c.DataDir)
	}
	if c.Namespace == "" {
		return errors.New("containerd: namespace is required")
	}
	if c.StartTimeout <= 0 {
		return errors.New("containerd: start timeout must be positive")
	}
	return nil
}

// CheckHost reports every missing binary a node needs to run pods, naming
// the Debian packages that provide them.
func CheckHost(containerdBinary, cniDir string) error {
	var missing []string
	need := func(path, pkg string) {
		if _, err := os.Stat(path); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", path, pkg))
		}
	}
	if containerdBinary != "" {
		need(containerdBinary, "containerd")
		need(filepath.Join(filepath.Dir(containerdBinary), "containerd-shim-runc-v2"), "containerd")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		missing = append(missing, "runc (Debian package runc)")
	}
	if cniDir != "" {
		for _, p := range []string{"bridge", "host-local", "loopback"} {
			need(filepath.Join(cniDir, p), "containernetworking-plugins")
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; install with: apt-get install -y containerd runc containernetworking-plugins",
		ErrMissingDependency, strings.Join(missing, ", "))
}

// Daemon is a connection to containerd and, for a private daemon, the
// knowledge of its process.
type Daemon struct {
	cfg     Config
	client  *client.Client
	address string
	pid     int
	adopted bool

	mu     sync.Mutex    // guards pid, cmd and exited against Supervise
	cmd    *exec.Cmd     // set when this process started the daemon
	exited chan struct{} // closed when cmd has been reaped
}

// Paths of a private daemon under DataDir.
func (c Config) dir() string        { return filepath.Join(c.DataDir, "containerd") }
func (c Config) configPath() string { return filepath.Join(c.dir(), "config.toml") }
func (c Config) pidPath() string    { return filepath.Join(c.dir(), "containerd.pid") }
func (c Config) logPath() string    { return filepath.Join(c.dir(), "containerd.log") }

// SocketPath is the gRPC address of the private daemon of this config.
func (c Config) SocketPath() string {
	if c.Socket != "" {
		return c.Socket
	}
	return filepath.Join(c.dir(), "containerd.sock")
}

// Open connects to the configured daemon: the given socket, or the private
// daemon under DataDir, adopting one that already serves or starting one.
func Open(ctx context.Context, cfg Config) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, address: cfg.SocketPath()}
	if cfg.Socket != "" {
		c, err := d.connect(ctx, cfg.StartTimeout)
		if err != nil {
			return nil, fmt.Errorf("containerd at %s: %w", cfg.Socket, err)
		}
		d.client = c
		return d, nil
	}
	if err := CheckHost(cfg.Binary, ""); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.dir(), 0o711); err != nil {
		return nil, err
	}
	// Adopt: a daemon from an earlier agent run may still be serving.
	pid := readPid(cfg.pidPath())
	if pid > 0 && processAlive(pid) && isOurDaemon(pid, cfg.configPath()) {
		c, err := d.connect(ctx, cfg.StartTimeout)
		if err != nil {
			return nil, fmt.Errorf("containerd pid %d (from %s) is alive but not serving on %s: %w",
				pid, cfg.pidPath(), d.address, err)
		}
		d.client, d.pid, d.adopted = c, pid, true
		return d, nil
	}
	// A daemon that serves on our socket without a pidfile is adopted too
	// (its pid stays unknown, so Stop only closes the connection).
	if _, err := os.Stat(d.address); err == nil && pid == 0 {
		if c, err := d.connect(ctx, 500*time.Millisecond); err == nil {
			d.client, d.adopted = c, true
			return d, nil
		}
	}
	if err := d.start(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Daemon) connect(ctx context.Context, timeout time.Duration) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error = ErrNotServing
	for {
		if _, err := os.Stat(d.address); err == nil {
			c, err := client.New(d.address, client.WithDefaultNamespace(d.cfg.Namespace),
				client.WithTimeout(time.Second))
			if err == nil {
				ok, err := c.IsServing(ctx)
				if ok {
					return c, nil
				}
				c.Close()
				if err != nil {
					lastErr = err
				}
			} else {
				lastErr = err
			}
		}
		d.mu.Lock()
		exited := d.exited
		d.mu.Unlock()
		if exited != nil {
			select {
			case <-exited:
				return nil, fmt.Errorf("containerd exited while starting; see %s", d.cfg.logPath())
			default:
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", ErrNotServing, lastErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (d *Daemon) start(ctx context.Context) error {
	cfg := d.cfg
	_ = os.Remove(d.address) // a stale socket of a dead daemon
	if err := os.WriteFile(cfg.configPath(), []byte(configTOML(cfg)), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(cfg.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(cfg.Binary, "--config", cfg.configPath())
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: signals to the agent's group do not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	d.mu.Lock()
	d.cmd, d.pid, d.exited = cmd, cmd.Process.Pid, exited
	d.mu.Unlock()
	if err := os.WriteFile(cfg.pidPath(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	c, err := d.connect(ctx, cfg.StartTimeout)
	if err != nil {
		_ = d.Stop(context.Background())
		return err
	}
	if d.client != nil {
		// A restart under Supervise: the existing client reconnects by
		// itself; keep it so that holders of it need not change.
		return c.Close()
	}
	d.client = c
	return nil
}

// Supervise starts the private daemon again whenever its process is gone,
// checking every interval until ctx is done. Shims and containers survive
// the gap; the client reconnects to the same socket; event streams break
// and must be re-subscribed (the runtime does). onRestart, if set, is told
// the outcome of each restart. It returns at once for a daemon reached by
// Socket.
func (d *Daemon) Supervise(ctx context.Context, interval time.Duration, onRestart func(pid int, err error)) {
	if d.cfg.Socket != "" {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		if pid := d.PID(); pid > 0 && processAlive(pid) {
			continue
		}
		err := d.start(ctx)
		if onRestart != nil {
			onRestart(d.PID(), err)
		}
	}
}

func configTOML(cfg Config) string {
	q := strconv.Quote
	dir := cfg.dir()
	return fmt.Sprintf(`# Written by skiff for its private containerd; rewritten on every start.
version = 2
root = %s
state = %s
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %s

[ttrpc]
  address = %s

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %s
`, q(filepath.Join(dir, "root")), q(filepath.Join(dir, "state")), q(cfg.SocketPath()),
		q(cfg.SocketPath()+".ttrpc"), q(filepath.Join(dir, "opt")))
}

// Client is the containerd client, with Skiff's namespace as default.
func (d *Daemon) Client() *client.Client { return d.client }

// Namespace is the containerd namespace Skiff uses.
func (d *Daemon) Namespace() string { return d.cfg.Namespace }

// Address is the daemon's gRPC socket.
func (d *Daemon) Address() string { return d.address }

// PID is the private daemon's process id (0 for an existing socket).
func (d *Daemon) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pid
}

// Adopted says the private daemon was already running when Open was called.
func (d *Daemon) Adopted() bool { return d.adopted }

// Close closes the client connection. The daemon keeps running, and so do
// the pods.
func (d *Daemon) Close() error {
	if d.client == nil {
		return nil
	}
	return d.client.Close()
}

// Stop closes the connection and stops the private daemon: SIGTERM, then
// SIGKILL if it has not exited when ctx is done (or after 10 s). Shims and
// containers keep running. Stop on a daemon reached by Socket only closes.
// Cancel Supervise first, or it starts the daemon again.
func (d *Daemon) Stop(ctx context.Context) error {
	_ = d.Close()
	pid := d.PID()
	if pid <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if !d.waitExit(ctx) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		d.waitExit(context.Background())
	}
	_ = os.Remove(d.cfg.pidPath())
	return nil
}

// Kill SIGKILLs the private daemon without any cleanup, as a crash would
// (for tests). The client stays open and reconnects once a daemon serves
// the socket again.
func (d *Daemon) Kill() error {
	pid := d.PID()
	if pid <= 0 {
		return errors.New("containerd: no private daemon to kill")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	d.waitExit(context.Background())
	return nil
}

func (d *Daemon) waitExit(ctx context.Context) bool {
	d.mu.Lock()
	pid, exited := d.pid, d.exited
	d.mu.Unlock()
	if exited != nil {
		select {
		case <-exited:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for processAlive(pid) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// processAlive reports whether pid runs and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// isOurDaemon guards against pid reuse: the process must be containerd run
// with this data dir's config file.
func isOurDaemon(pid int, configPath string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(b), configPath)
}
