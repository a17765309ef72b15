//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves; the agent reads it (proxy, DNS, Ingress).

package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/dns"
	"github.com/skiffhq/skiff/netproxy"
)

// startNetwork starts the node's service networking: the sysctls pods
// need, the service proxy (iptables) and the routes to other nodes' pod
// CIDRs (Config.Proxy), the cluster DNS on the node's pod gateway
// address (Config.DNS), whose address goes into every pod's resolv.conf,
// and the Ingress router on the node's addresses (Config.Ingress).
// The goroutines run until runCtx ends; ctx bounds the start.
func (a *Agent) startNetwork(ctx, runCtx context.Context) error {
	cfg := a.cfg
	gw, bits, err := podGateway(a.podCIDR)
	if err != nil {
		return err
	}
	// The bridge is made here, before any pod, with its MAC pinned
	// (ensureBridge): left to the CNI plugin, it would take the lowest MAC
	// of its ports and change it when that pod goes, and the other pods'
	// ARP entries for the gateway would go stale. DNS listens on the
	// gateway address the bridge plugin gives it.
	if err := ensureBridge(ctx, cfg.BridgeName, fmt.Sprintf("%s/%d", gw, bits)); err != nil {
		return err
	}
	if !cfg.Proxy && !cfg.DNS && !cfg.Ingress {
		return nil
	}
	if cfg.Proxy || cfg.DNS {
		if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
			return err
		}
		// Bridged pod-to-pod traffic must pass iptables for the reverse NAT of
		// a cluster IP whose endpoint is on the same bridge.
		if err := writeSysctl("net/bridge/bridge-nf-call-iptables", "1"); err != nil {
			a.log.Warn("bridged traffic may bypass iptables (service replies between pods on this node can break)", "err", err)
		}
	}
	svcInf, err := client.NewInformer(cfg.Client, "", &corev1.Service{}, client.ListOptions{}, 0)
	if err != nil {
		return err
	}
	epInf, err := client.NewInformer(cfg.Client, "", &corev1.Endpoints{}, client.ListOptions{}, 0)
	if err != nil {
		return err
	}
	if cfg.Ingress {
		// First: a taken port fails Start before the proxy and DNS start.
		if err := a.startIngress(runCtx, svcInf, epInf); err != nil {
			return err
		}
	}
	if cfg.Proxy {
		pcfg := netproxy.DefaultConfig()
		pcfg.NodeName = cfg.Name
		pcfg.ClusterCIDR = cfg.ClusterCIDR
		pcfg.Logger = a.log.With("component", "proxy")
		proxy, err := netproxy.New(pcfg, svcInf, epInf)
		if err != nil {
			return fmt.Errorf("service proxy: %w", err)
		}
		svcInf.AddHandler(proxy.Handler())
		epInf.AddHandler(proxy.Handler())

		nodeInf, err := client.NewInformer(cfg.Client, "", &corev1.Node{}, client.ListOptions{}, 0)
		if err != nil {
			return err
		}
		routes, err := netproxy.NewRoutes(netproxy.RoutesConfig{NodeName: cfg.Name, Logger: a.log.With("component", "routes")}, nodeInf)
		if err != nil {
			return fmt.Errorf("pod routes: %w", err)
		}
		nodeInf.AddHandler(routes.Handler())
		a.goRun(func() { a.runLogged(runCtx, "node informer", nodeInf.Run) })
		a.goRun(func() { a.runLogged(runCtx, "service proxy", proxy.Run) })
		a.goRun(func() { a.runLogged(runCtx, "pod routes", routes.Run) })
		a.proxy = proxy
	}
	a.goRun(func() { a.runLogged(runCtx, "service informer", svcInf.Run) })
	a.goRun(func() { a.runLogged(runCtx, "endpoints informer", epInf.Run) })
	if !cfg.DNS {
		return nil
	}
	if !svcInf.WaitForSync(ctx) || !epInf.WaitForSync(ctx) {
		return fmt.Errorf("services and endpoints informers did not sync: %w", ctx.Err())
	}
	dcfg := dns.DefaultConfig()
	dcfg.Domain = cfg.ClusterDomain
	dcfg.Listen = net.JoinHostPort(gw, "53")
	dcfg.Upstreams = cfg.DNSUpstreams
	dcfg.Logger = a.log.With("component", "dns")
	srv, err := dns.New(dcfg, svcInf, epInf, nil)
	if err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	if err := srv.Listen(); err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	a.goRun(func() { a.runLogged(runCtx, "cluster DNS", srv.Run) })
	a.dnsIP = gw
	if a.hostResolv, err = os.ReadFile("/etc/resolv.conf"); err != nil {
		a.log.Warn("no host resolv.conf: pods get only the cluster search paths", "err", err)
	}
	a.log.Info("cluster DNS serving", "address", srv.Addr(), "domain", cfg.ClusterDomain)
	return nil
}

// runLogged runs f until ctx ends and logs an early stop.
func (a *Agent) runLogged(ctx context.Context, what string, f func(context.Context) error) {
	if err := f(ctx); err != nil && ctx.Err() == nil {
		a.log.Error(what+" stopped", "err", err)
	}
}

// resolvConf is the pod's /etc/resolv.conf with the cluster DNS, or nil
// (the host's file) when the agent serves no DNS.
func (a *Agent) resolvConf(pod *corev1.Pod) []byte {
	if a.dnsIP == "" {
		return nil
	}
	return dns.ResolvConf(pod, dns.ResolvConfig{ClusterDNS: []string{a.dnsIP}, ClusterDomain: a.cfg.ClusterDomain, Host: a.hostResolv})
}

// podGateway is the first address of the pod CIDR (host-local's default
// gateway, which the bridge plugin puts on the bridge) and the prefix length.
func podGateway(podCIDR string) (string, int, error) {
	p, err := netip.ParsePrefix(podCIDR)
	if err != nil || !p.Addr().Is4() {
		return "", 0, fmt.Errorf("%w: pod CIDR %q", ErrInvalidConfig, podCIDR)
	}
	p = p.Masked()
	return p.Addr().Next().String(), p.Bits(), nil
}

// ensureBridge makes the CNI bridge with the gateway address, up, unless
// it exists (the bridge plugin adopts it and finds its address in place),
// and pins its MAC address. A Linux bridge whose address was never set
// takes the lowest MAC of its ports: when the pod holding it is deleted,
// the gateway's MAC changes under the other pods, whose ARP entries keep
// the old one (no gratuitous ARP) and whose packets to the gateway —
// Service traffic, DNS — are dropped until the entry expires and is
// probed again, tens of seconds. Setting the address, even to the one it
// has, makes the kernel keep it (addr_assign_type "set"); an existing
// bridge keeps the MAC its pods already know.
func ensureBridge(ctx context.Context, name, addr string) error {
	if _, err := net.InterfaceByName(name); err != nil {
		if out, err := exec.CommandContext(ctx, "ip", "link", "add", name, "type", "bridge").CombinedOutput(); err != nil &&
			!strings.Contains(string(out), "File exists") {
			return fmt.Errorf("ip link add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
	}
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	mac := ifc.HardwareAddr
	if len(mac) != 6 || bytes.Equal(mac, make([]byte, 6)) {
		// An unpinned bridge without ports has no address: pick one,
		// locally administered and unicast.
		mac = make(net.HardwareAddr, 6)
		if _, err := rand.Read(mac); err != nil {
			return fmt.Errorf("bridge %s: MAC address: %w", name, err)
		}
		mac[0] = mac[0]&^0x01 | 0x02
	}
	for _, args := range [][]string{{"link", "set", name, "address", mac.String()}, {"addr", "replace", addr, "dev", name}, {"link", "set", name, "up"}} {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func writeSysctl(name, value string) error {
	p := "/proc/sys/" + name
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == value {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(name, "/", "."), value, err)
	}
	return nil
}

// teardownNetwork removes the proxy's iptables chains and jumps and the
// routes to other nodes (Teardown, with the agent stopped).
func teardownNetwork(ctx context.Context, st nodeState) error {
	if !st.Proxy {
		return nil
	}
	var errs []error
	if err := netproxy.Cleanup(ctx, &netproxy.Exec{}); err != nil {
		errs = append(errs, fmt.Errorf("service proxy rules: %w", err))
	}
	routes, err := netproxy.NewRoutes(netproxy.RoutesConfig{NodeName: st.Name}, nil)
	if err == nil {
		err = routes.Cleanup(ctx)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("pod routes: %w", err))
	}
	return errors.Join(errs...)
}
