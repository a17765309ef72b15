package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiffhq/skiff/agent/node"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/gossip"
)

// agentFlags are the node settings shared by `skiff agent` and `skiff up`.
type agentFlags struct {
	name, dataDir, socket, nodeIP, podCIDR, clusterCIDR, bridge, cgroupParent string
	streamListen, clusterDomain                                               string
	dnsUpstreams, insecureRegistries                                          []string
	disableProxy, disableDNS, disableIngress                                  bool
	ingressHTTPPort, ingressHTTPSPort                                         int
	labels                                                                    []string
	maxPods                                                                   int
	heartbeat                                                                 time.Duration
}

// register adds the flags; defaultDataDir "" leaves --data-dir to the caller.
func (f *agentFlags) register(fs *pflag.FlagSet, defaultDataDir string) {
	host, _ := os.Hostname()
	d := node.DefaultConfig("", "", nil)
	fs.StringVar(&f.name, "name", strings.ToLower(host), "node name")
	if defaultDataDir != "" {
		fs.StringVar(&f.dataDir, "data-dir", defaultDataDir, "directory for the private containerd, pods' files and logs")
	}
	fs.StringVar(&f.socket, "containerd-socket", "", "use this existing containerd socket instead of a private daemon")
	fs.StringVar(&f.nodeIP, "node-ip", "", "address reported for the node (default: the default route's source address)")
	fs.StringVar(&f.podCIDR, "pod-cidr", "", "this node's pod range (default: the Node's spec.podCIDR, which the server assigns from its --cluster-cidr)")
	fs.StringVar(&f.clusterCIDR, "cluster-cidr", d.ClusterCIDR, "the cluster's pod network (the service proxy's; the server's --cluster-cidr)")
	fs.StringVar(&f.bridge, "bridge", d.BridgeName, "name of the node's CNI bridge")
	fs.StringVar(&f.cgroupParent, "cgroup-parent", d.CgroupParent, "cgroup all pods go under (in every hierarchy)")
	fs.StringSliceVar(&f.labels, "node-labels", nil, "extra node labels, key=value[,key=value]")
	fs.IntVar(&f.maxPods, "max-pods", d.MaxPods, "pods this node accepts (status.capacity.pods)")
	fs.DurationVar(&f.heartbeat, "heartbeat-interval", d.HeartbeatInterval, "how often the node's Lease is renewed (its status is written on change, or every minute)")
	fs.BoolVar(&f.disableProxy, "disable-proxy", false, "do not run the service proxy (iptables rules for Services) nor the routes to other nodes' pod CIDRs")
	fs.BoolVar(&f.disableDNS, "disable-dns", false, "do not serve the cluster DNS on the node's pod gateway address (pods then get the host's resolv.conf)")
	fs.StringVar(&f.clusterDomain, "cluster-domain", d.ClusterDomain, "DNS domain of the cluster")
	fs.StringSliceVar(&f.dnsUpstreams, "dns-upstream", nil, "host:port servers the cluster DNS forwards other names to (default: none, they are NXDOMAIN)")
	fs.BoolVar(&f.disableIngress, "disable-ingress", false, "do not run the built-in Ingress router (HTTP and HTTPS on every address of the node)")
	fs.IntVar(&f.ingressHTTPPort, "ingress-http-port", d.IngressHTTPPort, "port of the Ingress router's HTTP listener, on every address of the node")
	fs.IntVar(&f.ingressHTTPSPort, "ingress-https-port", d.IngressHTTPSPort, "port of the Ingress router's HTTPS listener (certificates by SNI from the Ingresses' TLS Secrets); 0: no HTTPS")
	fs.StringArrayVar(&f.insecureRegistries, "insecure-registry", nil, "registry host[:port] to pull from without a verified certificate, over plain HTTP if it speaks no TLS (repeat for several; registries on loopback always are)")
	fs.StringVar(&f.streamListen, "listen-streams", d.StreamListen, "address of the agent's log and exec endpoint (TLS; the API server calls it)")
}

// config builds the agent config for client c.
func (f *agentFlags) config(c *client.Client, log *slog.Logger) (node.Config, error) {
	dir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return node.Config{}, err
	}
	cfg := node.DefaultConfig(f.name, dir, c)
	cfg.ContainerdSocket, cfg.NodeIP, cfg.PodCIDR, cfg.ClusterCIDR = f.socket, f.nodeIP, f.podCIDR, f.clusterCIDR
	cfg.BridgeName, cfg.CgroupParent, cfg.MaxPods, cfg.HeartbeatInterval = f.bridge, f.cgroupParent, f.maxPods, f.heartbeat
	cfg.StreamListen = f.streamListen
	cfg.Proxy, cfg.DNS = !f.disableProxy, !f.disableDNS
	cfg.ClusterDomain, cfg.DNSUpstreams = f.clusterDomain, f.dnsUpstreams
	cfg.InsecureRegistries = f.insecureRegistries
	cfg.Ingress, cfg.IngressHTTPPort, cfg.IngressHTTPSPort = !f.disableIngress, f.ingressHTTPPort, f.ingressHTTPSPort
	cfg.Version = "skiff-" + version
	cfg.Log = log
	if len(f.labels) > 0 {
		cfg.Labels = map[string]string{}
		for _, l := range f.labels {
			k, v, ok := strings.Cut(l, "=")
			if !ok || k == "" {
				return node.Config{}, fmt.Errorf("--node-labels %q: want key=value", l)
			}
			cfg.Labels[k] = v
		}
	}
	return cfg, nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func newAgentCmd() *cobra.Command {
	var (
		af                          agentFlags
		server, token, caFile, conf string
		logLevel, debugListen       string
		memoryLimit                 string
		gf                          gossipFlags
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node agent: join the cluster and run the pods bound to this node on containerd",
		Long: `Run the node agent. It registers this machine as a Node, keeps its status fresh,
and runs the pods the scheduler binds to it on containerd (a private daemon
under --data-dir by default, adopted again after a restart), with CNI networking
and cgroup limits. It also runs the service proxy (iptables), the cluster DNS
on the pod gateway and the Ingress router (--ingress-http-port and
--ingress-https-port on every address of the node; --disable-* turn each
off). Stopping the agent leaves its pods and containerd running; a
restarted agent adopts them without restarting anything. 'skiff teardown-node
--data-dir DIR' removes them all.

Images come from the node's containerd: imported tarballs ('skiff image
import'), else pulled by each container's imagePullPolicy with the pod's
imagePullSecrets. Registries on loopback may speak plain HTTP; any other
registry without a certificate the node trusts needs --insecure-registry
HOST[:PORT] (repeatable).

Authenticate with the cluster's node token and CA (skiff server writes both into
its data dir as node-token and ca.crt), or with a client config (--config).

Needs root and the Debian packages containerd, runc, containernetworking-plugins
and busybox-static.`,
		Example: `  skiff agent --server https://10.0.0.1:6443 --token $(cat node-token) --ca-file ca.crt \
      --name worker-1 --data-dir /var/lib/skiff/agent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			if err := tuneAgentMemory(memoryLimit, cmd.Flags().Changed("memory-limit")); err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("skiff agent must run as root (it creates containers, network namespaces and cgroups)")
			}
			var (
				c  *client.Client
				ca []byte
			)
			if server != "" {
				if token == "" || caFile == "" {
					return fmt.Errorf("--server needs --token (the node token) and --ca-file (the cluster CA, ca.crt in the server's data dir)")
				}
				if ca, err = os.ReadFile(caFile); err != nil {
					return fmt.Errorf("--ca-file: %w", err)
				}
				if c, err = client.Dial(client.Cluster{Server: server, CertificateAuthorityData: ca}, client.AuthInfo{Token: strings.TrimSpace(token)}); err != nil {
					return err
				}
			} else {
				cc, err := client.LoadConfig(client.ConfigPath(conf))
				if err != nil {
					return fmt.Errorf("no --server given, and the client config could not be read: %w", err)
				}
				cl, _, _, err := cc.Resolve("")
				if err != nil {
					return err
				}
				ca = cl.CertificateAuthorityData
				server = cl.Server // for the default --gossip-join
				if c, err = client.New(client.Options{Config: cc}); err != nil {
					return err
				}
			}
			defer c.Close()
			cfg, err := af.config(c, log)
			if err != nil {
				return err
			}
			cfg.ClusterCA = ca
			if cfg.Gossip, _, err = gf.config(cfg.Name, gossip.RoleAgent, hostOf(af.streamListen), gossipAddrsOf(server)); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if debugListen != "" {
				stopDebug, err := serveDebug(debugListen, log)
				if err != nil {
					return err
				}
				defer stopDebug()
			}
			startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			a, err := node.Start(startCtx, cfg)
			cancel()
			if err != nil {
				return err
			}
			<-ctx.Done()
			log.Info("stopping agent; pods and containerd keep running")
			return a.Close()
		},
	}
	f := cmd.Flags()
	af.register(f, filepath.Join(defaultDataDir(), "agent"))
	f.StringVar(&server, "server", "", "API server URL, https://host:port")
	f.StringVar(&token, "token", os.Getenv("SKIFF_TOKEN"), "node join token (default $SKIFF_TOKEN)")
	f.StringVar(&caFile, "ca-file", "", "cluster CA certificate (PEM) the API server's certificate is checked against")
	f.StringVar(&conf, "config", "", "client config to use when --server is not given (default $SKIFFCONFIG or ~/.skiff/config)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&memoryLimit, "memory-limit", defaultAgentMemoryLimit, "soft limit of the agent's Go memory (heap, stacks, runtime; not the binary's pages): past it the garbage collector works harder; 0: none. Unless given, $GOMEMLIMIT wins when set (GOGC is 50 unless $GOGC is set)")
	f.StringVar(&debugListen, "listen-debug", "", "serve Go profiles (/debug/pprof/, e.g. heap) over plain HTTP on this address, for diagnosis only (default: off)")
	gf.register(f, "the --listen-streams host, port 7946", "the --server host, port 7946")
	return cmd
}

// The agent's Go memory settings. It is a small daemon beside the pods: its
// live heap (informer caches, one worker per pod) is under 10 MiB with 120
// pods, and Go's default GOGC=100 lets the heap grow to twice that before
// collecting. GOGC=50 keeps it near what is used. A soft limit
// (--memory-limit) is off by default: on a node of a large cluster, whose
// caches hold more than the limit, the collector would run almost
// continuously (up to about half a CPU) with no warning; an operator who
// knows the node's size may set one.
const (
	defaultAgentGOGC        = 50
	defaultAgentMemoryLimit = "0"
)

// tuneAgentMemory applies GOGC (unless $GOGC is set) and the soft memory
// limit: the --memory-limit flag when given, else $GOMEMLIMIT when set,
// else the default.
func tuneAgentMemory(limit string, flagSet bool) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultAgentGOGC)
	}
	if !flagSet && os.Getenv("GOMEMLIMIT") != "" {
		return nil // the runtime read it
	}
	q, err := resource.ParseQuantity(limit)
	if err != nil || q.Sign() < 0 {
		return fmt.Errorf("--memory-limit %q: want a size such as 24Mi, 64Mi or 0 (none)", limit)
	}
	n := q.Value()
	if n == 0 {
		n = math.MaxInt64 // no limit
	}
	debug.SetMemoryLimit(n)
	return nil
}

// serveDebug serves net/http/pprof on addr (no TLS, no authentication:
// meant for 127.0.0.1 while diagnosing) until the returned stop.
func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen-debug: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("debug endpoint stopped", "err", err)
		}
	}()
	log.Info("serving Go profiles", "address", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { _ = srv.Close(); <-done }, nil
}

func newTeardownNodeCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "teardown-node",
		Short: "Remove every pod, the bridge and the cgroups an agent made, and stop its private containerd",
		Long: `Remove what the agent with this data dir made on this machine: all its pods
(containers, cgroups, network namespaces), its CNI bridge and pod cgroup
parent, the service proxy's iptables chains and the routes to other nodes'
pods, and stop its private containerd. Run it after the agent has stopped.
Images and logs stay in the data dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := filepath.Abs(dataDir)
			if err != nil {
				return err
			}
			log, _ := newLogger("info")
			// No fixed timeout: Teardown allows itself a time that grows
			// with the number of pods; ^C stops it.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return node.Teardown(ctx, dir, log)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", filepath.Join(defaultDataDir(), "agent"), "the agent's data dir")
	return cmd
}

func init() {
	rootCmd.AddCommand(newAgentCmd(), newTeardownNodeCmd())
}
