//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves; the proxy reads it.

package netproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// Config tunes a Proxier.
type Config struct {
	// NodeName is this node's name: endpoints whose nodeName matches are
	// local (externalTrafficPolicy: Local).
	NodeName string
	// NodeIPs are the addresses NodePorts answer on. Empty: every local
	// address of the node (the addrtype LOCAL match), loopback excepted in
	// practice (the kernel does not route DNATed 127.0.0.1 traffic).
	NodeIPs []string
	// ClusterCIDR is the pod network (10.244.0.0/16). Traffic to a cluster
	// IP from outside it is masqueraded. Empty: only NodePort, external and
	// hairpin traffic is.
	ClusterCIDR string
	// MasqueradeAll masquerades all traffic to cluster IPs.
	MasqueradeAll bool
	// MasqueradeBit is the bit of the packet mark the proxy uses (0..31;
	// default 14, 0x4000, as kube-proxy).
	MasqueradeBit int
	// SyncPeriod is the period of full resyncs, which also repair rules
	// someone else removed (default 30s).
	SyncPeriod time.Duration
	// MinSyncInterval is the least time between two syncs; changes within
	// it are coalesced into one (default 1s).
	MinSyncInterval time.Duration
	// Runner runs iptables (default &Exec{}).
	Runner Runner
	// Conntrack removes stale UDP conntrack entries after endpoints go
	// (default &NetlinkConntrack{}: this process's network namespace).
	Conntrack Conntrack
	// Logger (default: discard).
	Logger *slog.Logger
}

// DefaultConfig is the agent's configuration but for node name and CIDR.
func DefaultConfig() Config {
	return Config{MasqueradeBit: 14, SyncPeriod: 30 * time.Second, MinSyncInterval: time.Second}
}

// Validate checks the settings and their relations.
func (c Config) Validate() error {
	var errs []error
	if c.ClusterCIDR != "" {
		if _, n, err := net.ParseCIDR(c.ClusterCIDR); err != nil || n.IP.To4() == nil {
			errs = append(errs, fmt.Errorf("cluster CIDR %q: want an IPv4 CIDR", c.ClusterCIDR))
		}
	}
	for _, ip := range c.NodeIPs {
		if !isIPv4(ip) {
			errs = append(errs, fmt.Errorf("node IP %q: want an IPv4 address", ip))
		}
	}
	if c.MasqueradeBit < 0 || c.MasqueradeBit > 31 {
		errs = append(errs, fmt.Errorf("masquerade bit %d: want 0..31", c.MasqueradeBit))
	}
	if c.MinSyncInterval <= 0 || c.SyncPeriod <= 0 {
		errs = append(errs, errors.New("sync period and min sync interval must be positive"))
	} else if c.MinSyncInterval > c.SyncPeriod {
		errs = append(errs, fmt.Errorf("min sync interval %v exceeds the sync period %v", c.MinSyncInterval, c.SyncPeriod))
	}
	return errors.Join(errs...)
}

// Cache is what the proxier reads Services and Endpoints from (all
// namespaces). *client.Informer implements it. Objects are shared: the
// proxier never modifies them.
type Cache interface {
	List(sel labels.Selector) []runtime.Object
}

// syncedCache is the optional capability of a cache to say whether it has
// listed once; Run does not write rules before then, so that a restarting
// agent never replaces good rules with those of an empty cache.
type syncedCache interface {
	HasSynced() bool
}

var (
	_ Cache       = (*client.Informer)(nil)
	_ syncedCache = (*client.Informer)(nil)
)

// Proxier programs iptables from Services and Endpoints. Sync and Cleanup
// may be called from any goroutine; they are serialized.
type Proxier struct {
	cfg                 Config
	services, endpoints Cache
	run                 Runner
	log                 *slog.Logger
	kick                chan struct{}

	mu        sync.Mutex // serializes syncs; guards the fields below
	lastRules []byte
	lastWrite time.Time
	syncs     int
	lastUDP   map[string]*servicePort // UDP service ports of the last sync, by name
}

// New returns a proxier over the two caches.
func New(cfg Config, services, endpoints Cache) (*Proxier, error) {
	if cfg.SyncPeriod == 0 {
		cfg.SyncPeriod = DefaultConfig().SyncPeriod
	}
	if cfg.MinSyncInterval == 0 {
		cfg.MinSyncInterval = DefaultConfig().MinSyncInterval
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Runner == nil {
		cfg.Runner = &Exec{}
	}
	if cfg.Conntrack == nil {
		cfg.Conntrack = &NetlinkConntrack{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Proxier{cfg: cfg, services: services, endpoints: endpoints, run: cfg.Runner, log: cfg.Logger,
		kick: make(chan struct{}, 1)}, nil
}

// Handler returns the informer handler that asks for a sync on any change;
// add it to the Services and the Endpoints informers.
func (p *Proxier) Handler() client.Handler {
	f := func(runtime.Object) { p.Kick() }
	return client.Handler{OnAdd: f, OnDelete: f, OnUpdate: func(_, o runtime.Object) { f(o) }}
}

// Kick asks Run for a sync soon. It never blocks.
func (p *Proxier) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *Proxier) synced() bool {
	for _, c := range []Cache{p.services, p.endpoints} {
		if s, ok := c.(syncedCache); ok && !s.HasSynced() {
			return false
		}
	}
	return true
}

// Run syncs after changes (at most once per MinSyncInterval) and every
// SyncPeriod until ctx ends, retrying a failed sync with backoff. It leaves
// the rules in place when it returns: connections keep working across an
// agent restart. It returns ctx's error.
func (p *Proxier) Run(ctx context.Context) error {
	period := time.NewTicker(p.cfg.SyncPeriod)
	defer period.Stop()
	var last time.Time
	backoff := time.Duration(0)
	pending := true // the first sync, once the caches are ready
	for {
		if pending && p.synced() {
			if wait := p.cfg.MinSyncInterval - time.Since(last); wait > 0 && !last.IsZero() {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
			last = time.Now()
			if err := p.Sync(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				backoff = min(max(2*backoff, p.cfg.MinSyncInterval), p.cfg.SyncPeriod)
				p.log.Warn("service proxy sync failed, retrying", "in", backoff, "err", err)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(backoff):
				}
				continue
			}
			backoff, pending = 0, false
		}
		var cacheWait <-chan time.Time
		if pending { // caches not synced yet: look again shortly
			cacheWait = time.After(50 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.kick:
			pending = true
		case <-period.C:
			pending = true
		case <-cacheWait:
		}
	}
}

// Sync writes the rules of the current caches now: it ensures the jumps
// from the built-in chains, then rewrites every chain of the proxy with one
// iptables-restore, deleting chains of services that are gone. A sync that
// would write what the last one wrote is skipped unless the last write is
// older than SyncPeriod.
func (p *Proxier) Sync(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	syncsBefore := p.syncs
	ports := p.snapshot()
	existing := map[Table][]string{}
	for _, t := range []Table{TableFilter, TableNAT} {
		out, err := p.run.Save(ctx, t)
		if err != nil {
			return fmt.Errorf("iptables-save %s: %w", t, err)
		}
		existing[t] = ourChains(out)
	}
	rules := buildRules(p.params(), ports, existing)
	if !bytes.Equal(rules, p.lastRules) || time.Since(p.lastWrite) >= p.cfg.SyncPeriod {
		if err := p.run.Restore(ctx, rules); err != nil {
			p.lastRules = nil // write in full next time
			return fmt.Errorf("iptables-restore: %w", err)
		}
		p.lastRules, p.lastWrite = rules, time.Now()
		p.syncs++
	}
	// The jumps go in after the chains they target exist.
	if err := ensureJumps(ctx, p.run); err != nil {
		return err
	}
	p.flushStaleUDP(ctx, ports)
	if p.syncs == syncsBefore {
		return nil
	}
	eps := 0
	for _, sp := range ports {
		eps += len(sp.endpoints)
	}
	p.log.Info("service proxy synced", "node", p.cfg.NodeName, "servicePorts", len(ports), "endpoints", eps,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// flushStaleUDP deletes the conntrack entries that would keep UDP clients
// on what the rules no longer say: flows DNATed to an endpoint that is
// gone, and flows to a service port that is gone, new, or just got its
// first endpoints (entries made before it had any were never DNATed). Failures
// are logged: the rules are right, only old flows linger.
func (p *Proxier) flushStaleUDP(ctx context.Context, ports []*servicePort) {
	cur := map[string]*servicePort{}
	for _, sp := range ports {
		if sp.proto == "udp" {
			cur[sp.name] = sp
		}
	}
	var filters []ConntrackFilter
	// to lists filters for the addresses a client may have used for sp.
	to := func(sp *servicePort, replySrc net.IP) {
		f := ConntrackFilter{Proto: unix.IPPROTO_UDP, ReplySrc: replySrc}
		for _, ip := range append([]string{sp.clusterIP}, sp.externalIPs...) {
			g := f
			g.OrigDst, g.OrigDstPort = net.ParseIP(ip), uint16(sp.port)
			filters = append(filters, g)
		}
		if sp.nodePort != 0 {
			g := f
			g.OrigDstPort = uint16(sp.nodePort)
			filters = append(filters, g)
		}
	}
	if p.lastUDP != nil { // not on the first sync: an agent restart must not move live flows
		for name, now := range cur {
			if _, seen := p.lastUDP[name]; !seen && len(now.endpoints) > 0 {
				to(now, nil) // a new port: packets sent before its rules existed were tracked un-NATed
			}
		}
	}
	for name, old := range p.lastUDP {
		now, ok := cur[name]
		switch {
		case !ok:
			to(old, nil)
		case len(old.endpoints) == 0 && len(now.endpoints) > 0:
			to(now, nil)
		default:
			kept := map[string]bool{}
			for _, e := range now.endpoints {
				kept[e.String()] = true
			}
			// In the old endpoints' order, so the filters come out the
			// same way every time.
			for _, e := range old.endpoints {
				if k := e.String(); !kept[k] {
					kept[k] = true // once per endpoint
					to(old, net.ParseIP(e.ip))
				}
			}
		}
	}
	p.lastUDP = cur
	if len(filters) == 0 {
		return
	}
	n, err := p.cfg.Conntrack.Delete(ctx, filters)
	if err != nil {
		p.log.Warn("flushing stale UDP conntrack entries failed", "node", p.cfg.NodeName, "deleted", n, "err", err)
		return
	}
	p.log.Info("flushed stale UDP conntrack entries", "node", p.cfg.NodeName, "deleted", n)
}

// ensureJumps puts the jumps from built-in chains in place, at the top of
// each, in the order of jumps.
func ensureJumps(ctx context.Context, r Runner) error {
	for i := len(jumps) - 1; i >= 0; i-- {
		j := jumps[i]
		if err := r.EnsureRule(ctx, j.table, j.chain, j.rule...); err != nil {
			return fmt.Errorf("ensure jump %s/%s -> %s: %w", j.table, j.chain, j.rule[len(j.rule)-1], err)
		}
	}
	return nil
}

// Rules returns the iptables-restore input the last successful sync wrote
// (for debugging: `skiff agent` may serve it).
func (p *Proxier) Rules() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.lastRules...)
}

func (p *Proxier) params() ruleParams {
	mark := "0x" + strconv.FormatUint(1<<uint(p.cfg.MasqueradeBit), 16)
	return ruleParams{
		masqMark:      mark + "/" + mark,
		clusterCIDR:   p.cfg.ClusterCIDR,
		masqueradeAll: p.cfg.MasqueradeAll,
		nodeIPs:       p.cfg.NodeIPs,
	}
}

func (p *Proxier) snapshot() []*servicePort {
	var svcs []*corev1.Service
	for _, o := range p.services.List(nil) {
		if s, ok := o.(*corev1.Service); ok {
			svcs = append(svcs, s)
		}
	}
	eps := map[string]*corev1.Endpoints{}
	for _, o := range p.endpoints.List(nil) {
		if e, ok := o.(*corev1.Endpoints); ok {
			eps[e.Namespace+"/"+e.Name] = e
		}
	}
	return servicePorts(svcs, eps, p.cfg.NodeName)
}

// Cleanup removes every rule and chain the proxy (this one or an earlier
// run) created: the jumps from built-in chains, found by their target, and
// every SKIFF- chain in the nat and filter tables. Run must have returned.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastRules = nil
	return Cleanup(ctx, p.run)
}

// Cleanup removes all of the proxy's rules and chains through r (for
// `skiff agent --cleanup` with no Proxier).
func Cleanup(ctx context.Context, r Runner) error {
	var errs []error
	var restore bytes.Buffer
	for _, t := range []Table{TableFilter, TableNAT} {
		save, err := r.Save(ctx, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("iptables-save %s: %w", t, err))
			continue
		}
		for _, line := range strings.Split(string(save), "\n") {
			args := splitRule(line)
			if len(args) < 4 || args[0] != "-A" || strings.HasPrefix(args[1], ChainPrefix) {
				continue
			}
			if target := args[len(args)-1]; args[len(args)-2] == "-j" && strings.HasPrefix(target, ChainPrefix) {
				if err := r.DeleteRule(ctx, t, args[1], args[2:]...); err != nil {
					errs = append(errs, err)
				}
			}
		}
		chains := ourChains(save)
		if len(chains) == 0 {
			continue
		}
		fmt.Fprintf(&restore, "*%s\n", t)
		for _, c := range chains {
			fmt.Fprintf(&restore, ":%s - [0:0]\n", c)
		}
		for _, c := range chains {
			fmt.Fprintf(&restore, "-X %s\n", c)
		}
		restore.WriteString("COMMIT\n")
	}
	if restore.Len() > 0 {
		if err := r.Restore(ctx, restore.Bytes()); err != nil {
			errs = append(errs, fmt.Errorf("iptables-restore: %w", err))
		}
	}
	return errors.Join(errs...)
}
