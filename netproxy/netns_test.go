package netproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// This file builds a tiny cluster node out of network namespaces:
//
//	            ext (192.168.77.2)  -- a host outside the cluster
//	              |
//	node (192.168.77.1; 10.244.0.1 on every pod link; the proxy's rules)
//	  |        |        |         |
//	web1     web2     web3     client      pods, 10.244.0.10-13/32,
//	                                        routed point to point
//
// Pods reach each other and the node only through the node's IP stack, as
// a routed CNI does, so conntrack sees every packet. The bridged variant
// puts them on bridge cni0 (10.244.0.1/24) as the agent's bridge CNI
// does; there bridge-nf-call-iptables makes bridged frames pass iptables.

// requireRoot skips a test that needs to create namespaces and rules.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and iptables rules")
	}
	for _, bin := range []string{"ip", "iptables-restore", "iptables-save", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	if testing.Short() {
		t.Skip("builds network namespaces")
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nsDo runs fn on a thread switched into network namespace ns (a name
// under /run/netns). Sockets fn creates stay in ns after it returns.
func nsDo(ns string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Keep the thread locked: it ends with this goroutine instead of
		// running others in the wrong namespace.
		return fmt.Errorf("setns back: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// testNode is the namespaces above, deleted at the end of the test.
type testNode struct {
	prefix string
	pods   map[string]string // pod name -> IP
}

func (n *testNode) ns(name string) string { return n.prefix + name }

// addNetns creates network namespace name with lo up, deleted at the end
// of the test.
func addNetns(t *testing.T, name string) {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// attachPod links namespace pod to namespace node with a veth (veth in
// node, eth0 in pod): the pod has ip/32 and a default route via gw, which
// the node holds on its end; the node routes ip/32 to the pod.
func attachPod(t *testing.T, node, pod, veth, gw, ip string) {
	t.Helper()
	run(t, "ip", "-n", node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod)
	run(t, "ip", "-n", node, "addr", "add", gw+"/32", "dev", veth)
	run(t, "ip", "-n", node, "link", "set", veth, "up")
	run(t, "ip", "-n", node, "route", "add", ip+"/32", "dev", veth)
	run(t, "ip", "-n", pod, "addr", "add", ip+"/32", "dev", "eth0")
	run(t, "ip", "-n", pod, "link", "set", "eth0", "up")
	run(t, "ip", "-n", pod, "route", "add", gw, "dev", "eth0")
	run(t, "ip", "-n", pod, "route", "add", "default", "via", gw)
}

// link joins namespaces a and b with a veth named ifname on both sides,
// addresses ipA and ipB (CIDR form).
func link(t *testing.T, a, b, ifname, ipA, ipB string) {
	t.Helper()
	run(t, "ip", "-n", a, "link", "add", ifname, "type", "veth", "peer", "name", ifname, "netns", b)
	run(t, "ip", "-n", a, "addr", "add", ipA, "dev", ifname)
	run(t, "ip", "-n", a, "link", "set", ifname, "up")
	run(t, "ip", "-n", b, "addr", "add", ipB, "dev", ifname)
	run(t, "ip", "-n", b, "link", "set", ifname, "up")
}

func nsPrefix() string { return fmt.Sprintf("snp%d-", os.Getpid()%100000) }

// attachBridgedPod plugs namespace pod into bridge cni0 of namespace
// node, as the CNI bridge plugin does: ip/24 on eth0, default route via the
// bridge's address, hairpin on so the pod can reach itself through a
// service.
func attachBridgedPod(t *testing.T, node, pod, veth, ip string) {
	t.Helper()
	run(t, "ip", "-n", node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod)
	run(t, "ip", "-n", node, "link", "set", veth, "master", "cni0")
	run(t, "ip", "-n", node, "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
	run(t, "ip", "-n", node, "link", "set", veth, "up")
	run(t, "ip", "-n", pod, "addr", "add", ip+"/24", "dev", "eth0")
	run(t, "ip", "-n", pod, "link", "set", "eth0", "up")
	run(t, "ip", "-n", pod, "route", "add", "default", "via", "10.244.0.1")
}

// newTestNode builds the node of the picture above. bridged puts the pods
// on a Linux bridge (the agent's CNI) instead of routed point-to-point
// links; the proxy then relies on bridge-nf-call-iptables.
func newTestNode(t *testing.T, bridged bool, pods ...string) *testNode {
	t.Helper()
	n := &testNode{prefix: nsPrefix(), pods: map[string]string{}}
	node := n.ns("node")
	addNetns(t, node)
	run(t, "ip", "netns", "exec", node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	if bridged {
		if err := exec.Command("ip", "netns", "exec", node, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1").Run(); err != nil {
			t.Skipf("no bridge netfilter (br_netfilter) here: %v", err)
		}
		run(t, "ip", "-n", node, "link", "add", "cni0", "type", "bridge")
		run(t, "ip", "-n", node, "addr", "add", "10.244.0.1/24", "dev", "cni0")
		run(t, "ip", "-n", node, "link", "set", "cni0", "up")
	}
	for i, p := range pods {
		addNetns(t, n.ns(p))
		ip := fmt.Sprintf("10.244.0.%d", 10+i)
		n.pods[p] = ip
		if bridged {
			attachBridgedPod(t, node, n.ns(p), fmt.Sprintf("vp%d", i), ip)
		} else {
			attachPod(t, node, n.ns(p), fmt.Sprintf("vp%d", i), "10.244.0.1", ip)
		}
	}
	addNetns(t, n.ns("ext"))
	link(t, node, n.ns("ext"), "vext", "192.168.77.1/24", "192.168.77.2/24")
	// The node's default route: a connection to a cluster IP needs a route
	// before OUTPUT's DNAT rewrites it.
	run(t, "ip", "-n", node, "route", "add", "default", "via", "192.168.77.2")
	return n
}

// serve runs an HTTP server in each pod, answering "<pod> <client IP>" on
// port, until the end of the test.
func (n *testNode) serve(t *testing.T, port int, pods ...string) {
	t.Helper()
	for _, p := range pods {
		serveIn(t, n.ns(p), p, port)
	}
}

// serveIn runs that server in network namespace ns (full name), answering
// name.
func serveIn(t *testing.T, ns, p string, port int) {
	t.Helper()
	var ln net.Listener
	err := nsDo(ns, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", p, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprint(w, p+" "+host) // who answered, and whom it saw
	}), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); wg.Wait() })
}

// dialFrom dials from network namespace ns (full name).
func dialFrom(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := nsDo(ns, func() (err error) {
			c, err = (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// get sends one request from namespace ns, on a new connection, and
// returns the answering pod's name.
func (n *testNode) get(ns, hostport string) (string, error) {
	body, err := getFrom(n.ns(ns), hostport)
	if f := strings.Fields(body); err == nil && len(f) > 0 {
		return f[0], nil
	}
	return body, err
}

// getFrom sends one request from network namespace ns (full name) on a
// new connection and returns the body.
func getFrom(ns, hostport string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: dialFrom(ns), DisableKeepAlives: true}}
	resp, err := c.Get("http://" + hostport + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// hits sends count requests and counts answers by pod, stopping at the
// first failure (counted as "error: ...").
func (n *testNode) hits(ns, hostport string, count int) map[string]int {
	out := map[string]int{}
	for i := 0; i < count; i++ {
		who, err := n.get(ns, hostport)
		if err != nil {
			out["error: "+err.Error()]++
			break // one failure says enough; do not wait out more timeouts
		}
		out[who]++
	}
	return out
}

// spreadOver checks that hits went to exactly the pods want, each at least
// once, and nowhere else.
func spreadOver(hits map[string]int, want ...string) error {
	for _, w := range want {
		if hits[w] == 0 {
			return fmt.Errorf("no request reached %s: %v", w, hits)
		}
	}
	if len(hits) != len(want) {
		return fmt.Errorf("requests reached %v, want only %v", hits, want)
	}
	return nil
}

// eventually polls check until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, err)
}

// serveUDP answers every datagram on port in namespace ns with name, until
// the end of the test.
func serveUDP(t *testing.T, ns, name string, port int) {
	t.Helper()
	var pc net.PacketConn
	err := nsDo(ns, func() (err error) {
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("udp listen in %s: %v", ns, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name), from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
}

// udpClient binds UDP port in namespace ns and returns a function that
// sends one datagram to addr and returns the answer (or the error text).
func udpClient(t *testing.T, ns string, port int) func(addr string) string {
	t.Helper()
	var pc net.PacketConn
	err := nsDo(ns, func() (err error) {
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("udp client in %s: %v", ns, err)
	}
	t.Cleanup(func() { pc.Close() })
	return func(addr string) string {
		ua, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err.Error()
		}
		if _, err := pc.WriteTo([]byte("?"), ua); err != nil {
			return err.Error()
		}
		buf := make([]byte, 512)
		for {
			_ = pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return err.Error()
			}
			if from.String() == ua.String() { // ignore late answers to earlier asks
				return string(buf[:n])
			}
		}
	}
}
