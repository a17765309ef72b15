package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/gossip"
)

// Sentinel errors, wrapped with details; test with errors.Is.
var (
	// ErrInvalidConfig: a setting, or two settings together, make no sense.
	ErrInvalidConfig = errors.New("invalid agent config")
	// ErrNoPodCIDR: the control plane assigned the Node no pod CIDR
	// within PodCIDRTimeout.
	ErrNoPodCIDR = errors.New("no pod CIDR assigned")
)

// Config of an agent.
type Config struct {
	// Name is the Node's name (default: the host name).
	Name string
	// Client reaches the cluster API; the agent does not close it.
	Client *client.Client
	// DataDir holds the private containerd, pods' files, logs, runc and
	// CNI state. Absolute.
	DataDir string
	// ContainerdSocket, when set, is an existing containerd to use instead
	// of the private daemon under DataDir.
	ContainerdSocket string
	// ContainerdBinary runs the private daemon.
	ContainerdBinary string
	// CNIBinDir holds the bridge, host-local and loopback plugins.
	CNIBinDir string
	// NodeIP is the address reported as InternalIP and hostIP (default: the
	// source address of the default route, else 127.0.0.1).
	NodeIP string
	// PodCIDR is this node's pod range. Empty: the Node's spec.podCIDR,
	// which the control plane's node IPAM controller assigns (the agent
	// waits up to PodCIDRTimeout for it).
	PodCIDR string
	// PodCIDRTimeout bounds that wait (default 60s).
	PodCIDRTimeout time.Duration
	// ClusterCIDR is the cluster's pod network (the service proxy's).
	ClusterCIDR string
	// BridgeName is the node's CNI bridge (≤ 15 bytes); it also prefixes
	// the pods' netns names.
	BridgeName string
	// CgroupParent is the cgroup all pods go under, in every hierarchy.
	CgroupParent string
	// MaxPods is status.capacity.pods.
	MaxPods int
	// Labels are added to the well-known ones on the Node.
	Labels map[string]string
	// HeartbeatInterval is how often the node's Lease (kube-node-lease) is
	// renewed and its status checked; the status is written when it
	// changed or is not Ready in the API, and every
	// NodeStatusReportInterval (default 1m) otherwise.
	HeartbeatInterval        time.Duration
	NodeStatusReportInterval time.Duration
	// LeaseDuration is the Lease's leaseDurationSeconds (default 40s).
	LeaseDuration time.Duration
	// Gossip, when set, joins the cluster's gossip pool (package gossip):
	// a template whose name, role and key the agent fills in.
	Gossip *gossip.Config
	// Resync is how often every pod is re-synced when nothing changes.
	Resync time.Duration
	// StatusWriters is how many pod statuses are written concurrently.
	StatusWriters int
	// LoggerBinary, when set, is a CRI logger the shims run per container
	// (`skiff cri-logger PATH`); empty (the default), the agent copies the
	// logs itself (see runtime.Config.LoggerBinary).
	LoggerBinary string
	// ClusterCA (PEM) verifies the client certificates of callers of the
	// agent's log and exec endpoint (the API server's). Empty: no endpoint,
	// so no `skiff logs`/`skiff exec` for this node's pods.
	ClusterCA []byte
	// StreamListen is the address of the log and exec endpoint (TLS gRPC),
	// reported as status.daemonEndpoints.kubeletEndpoint.
	StreamListen string
	// Proxy runs the service proxy (iptables rules for cluster IPs, node
	// ports and load-balancer IPs, see netproxy) and keeps routes to the
	// other nodes' pod CIDRs. The chains are global to the host: one
	// agent per host runs it. Teardown removes them.
	Proxy bool
	// DNS serves the cluster DNS on the node's pod gateway address
	// (the first address of the pod CIDR), port 53, and points every pod's
	// resolv.conf at it with the cluster search paths.
	DNS bool
	// ClusterDomain is the DNS domain of the cluster.
	ClusterDomain string
	// DNSUpstreams ("host:port") get the names outside ClusterDomain;
	// empty: those are NXDOMAIN.
	DNSUpstreams []string
	// InsecureRegistries ("host" or "host:port", as in image references)
	// are pulled from without a verified certificate, over plain HTTP when
	// they answer HTTPS with HTTP. Registries on loopback always are.
	InsecureRegistries []string
	// Ingress runs the built-in Ingress router (package ingress) on every
	// address of the node: HTTP on IngressHTTPPort, HTTPS (certificates by
	// SNI from the Ingresses' TLS Secrets) on IngressHTTPSPort. Off in
	// DefaultConfig, because the ports are host-wide (several agents on one
	// host, as tests run them, would collide); `skiff agent` and `skiff up`
	// turn it on unless --disable-ingress.
	Ingress bool
	// IngressHTTPPort is the router's HTTP port (default 80).
	IngressHTTPPort int
	// IngressHTTPSPort is the router's HTTPS port (default 443); 0 serves
	// no HTTPS.
	IngressHTTPSPort int
	// Version is reported as nodeInfo.kubeletVersion.
	Version string
	// Log receives the agent's lines (default: discard).
	Log *slog.Logger
}

// DefaultConfig is an agent named name with a private containerd under
// dataDir, talking to the cluster through c.
func DefaultConfig(name, dataDir string, c *client.Client) Config {
	return Config{
		Name:              name,
		Client:            c,
		DataDir:           dataDir,
		ContainerdBinary:  containerd.DefaultConfig(dataDir).Binary,
		CNIBinDir:         "/usr/lib/cni",
		ClusterCIDR:       "10.244.0.0/16",
		PodCIDRTimeout:    60 * time.Second,
		BridgeName:        "skiff0",
		CgroupParent:      "skiff",
		MaxPods:           110,
		HeartbeatInterval: 10 * time.Second,
		Resync:            10 * time.Second,
		StatusWriters:     4,
		StreamListen:      ":10250",
		Version:           "skiff",
		Proxy:             true,
		DNS:               true,
		ClusterDomain:     "cluster.local",
		IngressHTTPPort:   80,
		IngressHTTPSPort:  443,
	}
}

// Validate checks the settings and their relations.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Name == "":
		return bad("node name is required")
	case c.Client == nil:
		return bad("a cluster API client is required")
	case c.DataDir == "" || !filepath.IsAbs(c.DataDir):
		return bad("data dir %q must be an absolute path", c.DataDir)
	case c.BridgeName == "" || len(c.BridgeName) > 15:
		return bad("bridge name %q must be 1..15 bytes", c.BridgeName)
	case c.CgroupParent == "" || filepath.IsAbs(c.CgroupParent):
		return bad("cgroup parent %q must be a relative path", c.CgroupParent)
	case c.MaxPods <= 0:
		return bad("max pods must be positive, got %d", c.MaxPods)
	case c.HeartbeatInterval < 100*time.Millisecond:
		return bad("heartbeat interval %v is below 100ms", c.HeartbeatInterval)
	case c.Resync < 100*time.Millisecond:
		return bad("resync %v is below 100ms", c.Resync)
	case c.StatusWriters <= 0:
		return bad("status writers must be positive")
	}
	if err := c.validateHeartbeat(); err != nil {
		return bad("%v", err)
	}
	if c.NodeIP != "" {
		if _, err := netip.ParseAddr(c.NodeIP); err != nil {
			return bad("node IP %q: %v", c.NodeIP, err)
		}
	}
	if c.PodCIDR != "" {
		if p, err := netip.ParsePrefix(c.PodCIDR); err != nil || !p.Addr().Is4() {
			return bad("pod CIDR %q must be an IPv4 prefix", c.PodCIDR)
		}
	}
	if err := (containerd.Registries{Insecure: c.InsecureRegistries}).Validate(); err != nil {
		return bad("%v", err)
	}
	if c.DNS && c.ClusterDomain == "" {
		return bad("cluster DNS needs a cluster domain")
	}
	if c.Ingress {
		if err := c.validateIngress(); err != nil {
			return bad("%v", err)
		}
	}
	if c.Proxy {
		if p, err := netip.ParsePrefix(c.ClusterCIDR); err != nil || !p.Addr().Is4() {
			return bad("the service proxy needs an IPv4 cluster CIDR, got %q", c.ClusterCIDR)
		}
	}
	if c.PodCIDR == "" && c.PodCIDRTimeout <= 0 {
		return bad("pod CIDR timeout %s must be positive when no pod CIDR is given", c.PodCIDRTimeout)
	}
	return nil
}

// validateIngress checks the router's ports: in range, distinct, and not
// the port of the log and exec endpoint.
func (c Config) validateIngress() error {
	if c.IngressHTTPPort < 1 || c.IngressHTTPPort > 65535 {
		return fmt.Errorf("ingress HTTP port %d is not in 1..65535", c.IngressHTTPPort)
	}
	if c.IngressHTTPSPort < 0 || c.IngressHTTPSPort > 65535 {
		return fmt.Errorf("ingress HTTPS port %d is not in 1..65535 (or 0 for no HTTPS)", c.IngressHTTPSPort)
	}
	if c.IngressHTTPSPort == c.IngressHTTPPort {
		return fmt.Errorf("ingress HTTP and HTTPS ports are both %d", c.IngressHTTPPort)
	}
	if _, p, err := net.SplitHostPort(c.StreamListen); err == nil {
		if n, err := strconv.Atoi(p); err == nil && n != 0 && (n == c.IngressHTTPPort || n == c.IngressHTTPSPort) {
			return fmt.Errorf("ingress port %d is also the log and exec endpoint's (%s)", n, c.StreamListen)
		}
	}
	return nil
}
