// Package runtime runs Kubernetes pods on containerd: a sandbox (pinned
// network namespace attached by CNI, pinned UTS and IPC namespaces, and a
// task-less containerd container holding the pod's labels), containers
// that join it, cgroup v1 limits at pod
// and container level, logs in the CRI format, exec, stop, stats and
// exit/OOM events.
//
// Everything the runtime knows about a pod is also written as labels on its
// containerd containers, so a new Runtime on the same containerd (after an
// agent restart) rebuilds the same view with ListPods and never restarts a
// healthy pod. The runtime is not a reconciler: it does what it is asked;
// the agent's pod workers decide when (restart policy, back-off, probes).
package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	client "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/opencontainers/go-digest"
)

// Sentinel errors, wrapped with details; test with errors.Is.
var (
	// ErrPodNotFound: no sandbox for that pod UID.
	ErrPodNotFound = errors.New("pod not found")
	// ErrContainerNotFound: the pod has no container of that name.
	ErrContainerNotFound = errors.New("container not found")
	// ErrImageNotFound: the image is not on this node (and nothing pulls).
	ErrImageNotFound = errors.New("image not present on node")
	// ErrUnsupported: the pod asks for something this runtime does not do.
	ErrUnsupported = errors.New("unsupported")
	// ErrInvalidInput: the pod or the resolved input is inconsistent.
	ErrInvalidInput = errors.New("invalid pod input")
	// ErrAlreadyRunning: StartContainer on a container that runs.
	ErrAlreadyRunning = errors.New("container already running")
)

// Config is the node-wide setup of the runtime.
type Config struct {
	// DataDir holds pods' files (hosts, volumes, logs), runc state, CNI
	// cache and IPAM state and exec FIFOs.
	DataDir string
	// Namespace is the containerd namespace (must match the daemon's).
	Namespace string
	// PodCIDR is the node's pod network, e.g. 10.244.1.0/24.
	PodCIDR string
	// BridgeName is the node bridge (≤ 15 bytes). It also prefixes netns
	// names, so several runtimes on one host do not collide.
	BridgeName string
	// IPMasq makes the bridge plugin masquerade pod traffic leaving the node.
	IPMasq bool
	// CNIBinDir holds the CNI plugins.
	CNIBinDir string
	// NetnsDir is where pod network namespaces are pinned (`ip netns` lists
	// /var/run/netns).
	NetnsDir string
	// CgroupParent is the cgroup (relative to every hierarchy) pods go under:
	// <CgroupParent>/pod<uid>/<container id>.
	CgroupParent string
	// PauseImage is the busybox image agents keep present. Sandboxes run
	// no process any more (their namespaces are pinned); pods made by
	// earlier agents still have a pause process from it.
	PauseImage string
	// Snapshotter is the containerd snapshotter for container filesystems.
	Snapshotter string
	// PidsLimit caps each pod's processes (0: no limit).
	PidsLimit int64
	// LoggerBinary, when set, is run by the shim for each container with the
	// arguments "cri-logger <log path>" to write CRI-format logs (stdout and
	// stderr tagged, timestamped): a process per container. Empty (the
	// default): the agent copies each container's output from FIFOs into
	// the same format itself (logcopy.go).
	LoggerBinary string
	// ResolvConf is copied into every pod as /etc/resolv.conf.
	ResolvConf string
	// NodeIP is what fieldRef status.hostIP resolves to.
	NodeIP string
}

// DefaultConfig is a runtime under dataDir for the node pod CIDR podCIDR.
func DefaultConfig(dataDir, podCIDR string) Config {
	return Config{
		DataDir:      dataDir,
		Namespace:    "skiff",
		PodCIDR:      podCIDR,
		BridgeName:   "skiff0",
		CNIBinDir:    "/usr/lib/cni",
		NetnsDir:     "/var/run/netns",
		CgroupParent: "skiff",
		PauseImage:   "skiff.local/busybox:latest",
		Snapshotter:  "overlayfs",
		PidsLimit:    4096,
		ResolvConf:   "/etc/resolv.conf",
	}
}

// Validate checks the settings and their relations.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "" || !filepath.IsAbs(c.DataDir):
		return fmt.Errorf("%w: data dir %q must be an absolute path", ErrInvalidInput, c.DataDir)
	case c.Namespace == "":
		return fmt.Errorf("%w: containerd namespace is required", ErrInvalidInput)
	case c.BridgeName == "" || len(c.BridgeName) > 15:
		return fmt.Errorf("%w: bridge name %q must be 1..15 bytes", ErrInvalidInput, c.BridgeName)
	case c.CgroupParent == "" || filepath.IsAbs(c.CgroupParent):
		return fmt.Errorf("%w: cgroup parent %q must be a relative path", ErrInvalidInput, c.CgroupParent)
	case c.PauseImage == "" || c.Snapshotter == "" || c.CNIBinDir == "" || c.NetnsDir == "":
		return fmt.Errorf("%w: pause image, snapshotter, CNI dir and netns dir are required", ErrInvalidInput)
	}
	p, err := netip.ParsePrefix(c.PodCIDR)
	if err != nil || !p.Addr().Is4() || p.Bits() > 28 {
		return fmt.Errorf("%w: pod CIDR %q must be an IPv4 prefix of /28 or larger", ErrInvalidInput, c.PodCIDR)
	}
	return nil
}

// Runtime runs pods on one containerd. Its methods are safe for concurrent
// use; operations on one pod should come from one worker (the runtime
// serialises them per pod anyway).
type Runtime struct {
	cfg    Config
	client *client.Client
	net    *network

	mu      sync.Mutex
	podLock map[string]*podMutex // per pod UID, while anyone holds or waits
	oomSeen map[string]bool      // container IDs with a /tasks/oom event
	// unpacked: image contents (manifest digest) found unpacked for the
	// snapshotter (image).
	unpacked map[digest.Digest]bool

	logs      *logCopies // containers' log copies (when LoggerBinary is empty)
	closeOnce sync.Once

	events chan Event
	stop   context.CancelFunc
	done   chan struct{}
}

// New makes a runtime on c (which the caller owns and closes) and starts
// watching containerd's task events. Close stops the watch.
func New(ctx context.Context, c *client.Client, cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{"pods", "runc", "fifo", "cni"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o711); err != nil {
			return nil, err
		}
	}
	n, err := newNetwork(cfg)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &Runtime{
		cfg:      cfg,
		client:   c,
		net:      n,
		podLock:  map[string]*podMutex{},
		oomSeen:  map[string]bool{},
		unpacked: map[digest.Digest]bool{},
		events:   make(chan Event, 256),
		stop:     cancel,
		done:     make(chan struct{}),
	}
	r.logs = acquireLogCopies(filepath.Join(cfg.DataDir, "fifo", "logs"))
	if err := r.reattachLogs(ctx); err != nil {
		cancel()
		r.logs.release()
		return nil, err
	}
	envs, errs := c.Subscribe(wctx, r.eventFilters()...)
	go r.watchEvents(wctx, envs, errs)
	return r, nil
}

// Close stops the event watch and the log copies. Pods keep running;
// their output waits in the FIFOs for the next runtime.
func (r *Runtime) Close() error {
	r.stop()
	<-r.done
	r.closeOnce.Do(r.logs.release)
	return nil
}

// Config returns the runtime's configuration.
func (r *Runtime) Config() Config { return r.cfg }

func (r *Runtime) ns(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

type podMutex struct {
	sync.Mutex
	refs int // holders and waiters; the entry goes when it drops to 0
}

// lockPod serialises operations on one pod and returns the unlock.
func (r *Runtime) lockPod(uid string) func() {
	r.mu.Lock()
	l, ok := r.podLock[uid]
	if !ok {
		l = &podMutex{}
		r.podLock[uid] = l
	}
	l.refs++
	r.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		r.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(r.podLock, uid)
		}
		r.mu.Unlock()
	}
}
