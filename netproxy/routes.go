package netproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// DefaultRouteProtocol marks the routes a Routes syncer owns (the
// "proto" of `ip route`), so it can list and remove exactly those and
// never touches a route someone else made.
const DefaultRouteProtocol = 83

// RoutesConfig tunes a Routes syncer.
type RoutesConfig struct {
	// NodeName is this node: its own pod CIDR gets no route (the CNI
	// bridge serves it).
	NodeName string
	// Protocol marks owned routes (default DefaultRouteProtocol; 1..255,
	// not one of the kernel's own 1..4).
	Protocol int
	// IP is the ip(8) command line prefix (default {"ip"}); tests use
	// {"ip", "-n", "<netns>"}.
	IP []string
	// SyncPeriod is the period of full resyncs (default 30s).
	SyncPeriod time.Duration
	// Logger (default: discard).
	Logger *slog.Logger
}

// Routes keeps, on this node, one route per other node: that node's pod
// CIDR via that node's InternalIP (else ExternalIP). It is the whole
// cross-node pod network when nodes share a layer-2 segment (host-gw, as
// flannel calls it): pods reach pods on other nodes by their own IPs,
// without NAT or encapsulation. Nodes on different segments need an
// overlay, which this is not.
type Routes struct {
	cfg   RoutesConfig
	nodes Cache
	log   *slog.Logger
	kick  chan struct{}
	mu    sync.Mutex
}

// NewRoutes returns a syncer over a cache of Nodes.
func NewRoutes(cfg RoutesConfig, nodes Cache) (*Routes, error) {
	if cfg.Protocol == 0 {
		cfg.Protocol = DefaultRouteProtocol
	}
	if cfg.Protocol <= 4 || cfg.Protocol > 255 {
		return nil, fmt.Errorf("route protocol %d: want 5..255", cfg.Protocol)
	}
	if cfg.NodeName == "" {
		return nil, errors.New("node name is required")
	}
	if len(cfg.IP) == 0 {
		cfg.IP = []string{"ip"}
	}
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Routes{cfg: cfg, nodes: nodes, log: cfg.Logger, kick: make(chan struct{}, 1)}, nil
}

// Handler returns the Node informer handler that asks for a sync.
func (r *Routes) Handler() client.Handler {
	f := func(runtime.Object) {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	return client.Handler{OnAdd: f, OnDelete: f, OnUpdate: func(_, o runtime.Object) { f(o) }}
}

// Run syncs on changes and every SyncPeriod until ctx ends (retrying
// failures at the next kick or period). Routes stay when it returns.
func (r *Routes) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.SyncPeriod)
	defer t.Stop()
	pending := true
	for {
		if pending {
			if s, ok := r.nodes.(syncedCache); !ok || s.HasSynced() {
				if err := r.Sync(ctx); err != nil && ctx.Err() == nil {
					r.log.Warn("pod routes sync failed", "node", r.cfg.NodeName, "err", err)
				}
				pending = false
			}
		}
		var wait <-chan time.Time
		if pending {
			wait = time.After(50 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.kick:
			pending = true
		case <-t.C:
			pending = true
		case <-wait:
		}
	}
}

// wantedRoutes maps each other node's pod CIDRs (IPv4) to its address.
func (r *Routes) wantedRoutes() map[string]string {
	want := map[string]string{}
	for _, o := range r.nodes.List(nil) {
		n, ok := o.(*corev1.Node)
		if !ok || n.Name == r.cfg.NodeName || n.DeletionTimestamp != nil {
			continue
		}
		via := nodeAddress(n)
		if via == "" {
			continue
		}
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			if _, nw, err := net.ParseCIDR(c); err == nil && nw.IP.To4() != nil {
				want[nw.String()] = via
			}
		}
	}
	return want
}

// nodeAddress is the IPv4 InternalIP of n, else its ExternalIP.
func nodeAddress(n *corev1.Node) string {
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type == t && isIPv4(a.Address) {
				return a.Address
			}
		}
	}
	return ""
}

func (r *Routes) ip(ctx context.Context, args ...string) (string, error) {
	argv := append(append([]string{}, r.cfg.IP...), args...)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Current lists the owned routes: destination CIDR -> gateway.
func (r *Routes) Current(ctx context.Context) (map[string]string, error) {
	out, err := r.ip(ctx, "-4", "route", "show", "proto", strconv.Itoa(r.cfg.Protocol))
	if err != nil {
		return nil, err
	}
	have := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		via := ""
		for i := 1; i+1 < len(f); i++ {
			if f[i] == "via" {
				via = f[i+1]
			}
		}
		have[f[0]] = via
	}
	return have, nil
}

// Sync makes the owned routes exactly the wanted ones: replaces missing
// or changed routes, deletes those of nodes that are gone. A route that
// cannot be added (a gateway not on a local segment) is reported and the
// others still go in.
func (r *Routes) Sync(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := r.wantedRoutes()
	have, err := r.Current(ctx)
	if err != nil {
		return err
	}
	var errs []error
	dsts := make([]string, 0, len(want))
	for d := range want {
		dsts = append(dsts, d)
	}
	sort.Strings(dsts)
	for _, dst := range dsts {
		via := want[dst]
		if have[dst] == via {
			continue
		}
		if _, err := r.ip(ctx, "-4", "route", "replace", dst, "via", via, "proto", strconv.Itoa(r.cfg.Protocol)); err != nil {
			errs = append(errs, err)
			continue
		}
		r.log.Info("pod route set", "node", r.cfg.NodeName, "cidr", dst, "via", via)
	}
	for dst := range have {
		if _, ok := want[dst]; ok {
			continue
		}
		if _, err := r.ip(ctx, "-4", "route", "del", dst, "proto", strconv.Itoa(r.cfg.Protocol)); err != nil {
			errs = append(errs, err)
			continue
		}
		r.log.Info("pod route removed", "node", r.cfg.NodeName, "cidr", dst)
	}
	return errors.Join(errs...)
}

// Cleanup deletes every owned route.
func (r *Routes) Cleanup(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	have, err := r.Current(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for dst := range have {
		if _, err := r.ip(ctx, "-4", "route", "del", dst, "proto", strconv.Itoa(r.cfg.Protocol)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
