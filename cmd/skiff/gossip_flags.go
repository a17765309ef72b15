package main

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/controller"
	"github.com/skiffhq/skiff/controlplane"
	"github.com/skiffhq/skiff/gossip"
)

// gossipFlags are the gossip settings of `skiff server`, `skiff up` and
// `skiff agent`.
type gossipFlags struct {
	listen, advertise string
	join              []string
	disable           bool
	rejoin            time.Duration
	probeInterval     time.Duration
	probeTimeout      time.Duration
	suspicionMult     int
}

func (g *gossipFlags) register(fs *pflag.FlagSet, listenDefault, joinDefault string) {
	fs.StringVar(&g.listen, "listen-gossip", "", "host:port of the gossip pool (UDP and TCP) (default: "+listenDefault+")")
	fs.StringVar(&g.advertise, "advertise-gossip", "", "host[:port] other members reach this one's gossip at (default: the --listen-gossip address, or "+
		"an address of this host when that is a wildcard)")
	fs.StringSliceVar(&g.join, "gossip-join", nil, "host:port of gossip members to join, and to re-join periodically so a healed partition merges (default: "+joinDefault+")")
	fs.DurationVar(&g.rejoin, "gossip-rejoin-interval", 30*time.Second, "how often the configured and the dead gossip members are contacted again")
	fs.DurationVar(&g.probeInterval, "gossip-probe-interval", gossip.DefaultProbeInterval,
		"how often this member probes another one (failure detection; memberlist's LAN default is 1s)")
	fs.DurationVar(&g.probeTimeout, "gossip-probe-timeout", gossip.DefaultProbeTimeout,
		"how long a probe waits for a direct answer before asking other members to probe (shorter than --gossip-probe-interval)")
	fs.IntVar(&g.suspicionMult, "gossip-suspicion-mult", gossip.DefaultSuspicionMult,
		"a suspected member is declared dead after this many probe intervals (times log10 of the pool size above 10 members) once others confirm")
	fs.BoolVar(&g.disable, "disable-gossip", false, "do not join the gossip pool (node loss is then detected by heartbeats only, after --node-monitor-grace-period)")
}

// config builds the pool's config (nil with --disable-gossip). defHost is
// the host of the other listeners (the default --listen-gossip host);
// defJoin the default --gossip-join; fallback reports whether the port was
// defaulted (so a taken default port may fall back to a free one).
func (g *gossipFlags) config(name, role, defHost string, defJoin []string) (cfg *gossip.Config, fallback bool, err error) {
	if g.disable {
		return nil, false, nil
	}
	c := gossip.DefaultConfig(name, role)
	c.RejoinInterval = g.rejoin
	c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult = g.probeInterval, g.probeTimeout, g.suspicionMult
	if c.ProbeInterval <= 0 || c.SuspicionMult <= 0 {
		return nil, false, fmt.Errorf("--gossip-probe-interval %v and --gossip-suspicion-mult %d must be positive", c.ProbeInterval, c.SuspicionMult)
	}
	if g.probeTimeout <= 0 || g.probeTimeout >= g.probeInterval {
		return nil, false, fmt.Errorf("--gossip-probe-timeout %v must be positive and shorter than --gossip-probe-interval %v", g.probeTimeout, g.probeInterval)
	}
	c.BindAddr = defHost
	fallback = g.listen == ""
	if g.listen != "" {
		host, port, err := splitGossipAddr("--listen-gossip", g.listen)
		if err != nil {
			return nil, false, err
		}
		c.BindAddr, c.BindPort = host, port
	}
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	if g.advertise != "" {
		host, port := g.advertise, 0
		if h, _, err := net.SplitHostPort(g.advertise); err == nil {
			if _, port, err = splitGossipAddr("--advertise-gossip", g.advertise); err != nil {
				return nil, false, err
			}
			host = h
		}
		if net.ParseIP(host) == nil {
			return nil, false, fmt.Errorf("--advertise-gossip %q: want an IP address, optionally with :port", g.advertise)
		}
		c.AdvertiseAddr, c.AdvertisePort = host, port
	}
	join := g.join
	if len(join) == 0 {
		join = defJoin
	}
	for _, j := range join {
		j = strings.TrimSpace(j)
		if j == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(j); err != nil {
			j = net.JoinHostPort(j, strconv.Itoa(gossip.DefaultPort))
		}
		if _, _, err := splitGossipAddr("--gossip-join", j); err != nil {
			return nil, false, err
		}
		c.Join = append(c.Join, j)
	}
	if err := c.Validate(); err != nil {
		return nil, false, err
	}
	return &c, fallback, nil
}

// splitGossipAddr parses host:port with a clear error naming flag.
func splitGossipAddr(flag, addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: want host:port (e.g. 0.0.0.0:%d): %v", flag, addr, gossip.DefaultPort, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: port %q is not a number in 0-65535", flag, addr, p)
	}
	return host, int(port), nil
}

// hostOf is the host of a host:port or URL ("" when it has none).
func hostOf(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		return u.Hostname()
	}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return ""
}

// gossipAddrsOf is the gossip address (default port) of each host of
// addrs (host:port or URLs).
func gossipAddrsOf(addrs ...string) []string {
	var out []string
	for _, a := range addrs {
		if h := hostOf(strings.TrimSpace(a)); h != "" {
			out = append(out, net.JoinHostPort(h, strconv.Itoa(gossip.DefaultPort)))
		}
	}
	return out
}

// registerNodeLifecycleFlags adds the node lifecycle controller's timings
// (kube-controller-manager's flag names) to a server's flags.
func registerNodeLifecycleFlags(fs *pflag.FlagSet, cp *controlplane.Config) {
	fs.DurationVar(&cp.NodeMonitorGracePeriod, "node-monitor-grace-period", controller.DefaultNodeMonitorGracePeriod,
		"a node whose Lease and status are older is marked Ready=Unknown and tainted unreachable")
	fs.DurationVar(&cp.PodEvictionTimeout, "pod-eviction-timeout", 5*time.Second,
		"how long pods without their own toleration stay on an unreachable or not-ready node before they are evicted (Kubernetes: 5m)")
	fs.DurationVar(&cp.NodeHealthPingTimeout, "node-health-ping-timeout", controller.DefaultNodeHealthPingTimeout,
		"a node gossip suspects is pinged through its Lease; if gossip holds it dead and it has not renewed the Lease this long after the ping, it is marked unreachable")
	fs.DurationVar(&cp.NodeHealthConfirmAge, "node-health-confirm-age", controller.DefaultNodeHealthConfirmAge,
		"a node gossip reports dead is marked unreachable if its Lease is at least this old (when it has no Lease to ping, or answered a ping; a little above the agents' --heartbeat-interval)")
	registerAdmissionFlags(fs, &cp.API)
}

// registerAdmissionFlags: the tolerations the API server gives new pods of
// not-ready and unreachable nodes (kube-apiserver's flags of these names).
func registerAdmissionFlags(fs *pflag.FlagSet, cfg *apiserver.Config) {
	adm := apiserver.SkiffAdmission()
	cfg.Admission = &adm
	fs.Int64Var(&adm.NotReadyTolerationSeconds, "default-not-ready-toleration-seconds", adm.NotReadyTolerationSeconds,
		"seconds new pods tolerate node.kubernetes.io/not-ready:NoExecute (when they say nothing): how long they stay on a node that is not Ready (Kubernetes: 300)")
	fs.Int64Var(&adm.UnreachableTolerationSeconds, "default-unreachable-toleration-seconds", adm.UnreachableTolerationSeconds,
		"seconds new pods tolerate node.kubernetes.io/unreachable:NoExecute (when they say nothing): how long they stay on a lost node (Kubernetes: 300)")
}
