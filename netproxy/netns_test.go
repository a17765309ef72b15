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
// Pods reach each other and the node only through the node's IP stack (no
// bridge), as a routed CNI does, so conntrack sees every packet.

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

func newTestNode(t *testing.T, pods ...string) *testNode {
	t.Helper()
	n := &testNode{prefix: fmt.Sprintf("snp%d-", os.Getpid()%100000), pods: map[string]string{}}
	add := func(name string) {
		run(t, "ip", "netns", "add", n.ns(name))
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", n.ns(name)).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", n.ns(name), err, out)
			}
		})
		run(t, "ip", "-n", n.ns(name), "link", "set", "lo", "up")
	}
	node := n.ns("node")
	add("node")
	run(t, "ip", "netns", "exec", node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	for i, p := range pods {
		add(p)
		ip := fmt.Sprintf("10.244.0.%d", 10+i)
		n.pods[p] = ip
		veth := fmt.Sprintf("vp%d", i)
		run(t, "ip", "-n", node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", n.ns(p))
		run(t, "ip", "-n", node, "addr", "add", "10.244.0.1/32", "dev", veth)
		run(t, "ip", "-n", node, "link", "set", veth, "up")
		run(t, "ip", "-n", node, "route", "add", ip+"/32", "dev", veth)
		run(t, "ip", "-n", n.ns(p), "addr", "add", ip+"/32", "dev", "eth0")
		run(t, "ip", "-n", n.ns(p), "link", "set", "eth0", "up")
		run(t, "ip", "-n", n.ns(p), "route", "add", "10.244.0.1", "dev", "eth0")
		run(t, "ip", "-n", n.ns(p), "route", "add", "default", "via", "10.244.0.1")
	}
	add("ext")
	run(t, "ip", "-n", node, "link", "add", "vext", "type", "veth", "peer", "name", "eth0", "netns", n.ns("ext"))
	run(t, "ip", "-n", node, "addr", "add", "192.168.77.1/24", "dev", "vext")
	run(t, "ip", "-n", node, "link", "set", "vext", "up")
	run(t, "ip", "-n", n.ns("ext"), "addr", "add", "192.168.77.2/24", "dev", "eth0")
	run(t, "ip", "-n", n.ns("ext"), "link", "set", "eth0", "up")
	// The node's default route: a connection to a cluster IP needs a route
	// before OUTPUT's DNAT rewrites it.
	run(t, "ip", "-n", node, "route", "add", "default", "via", "192.168.77.2")
	return n
}

// serve runs an HTTP server answering its pod's name on port in each pod,
// until the end of the test.
func (n *testNode) serve(t *testing.T, port int, pods ...string) {
	t.Helper()
	for _, p := range pods {
		var ln net.Listener
		err := nsDo(n.ns(p), func() (err error) {
			ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
			return err
		})
		if err != nil {
			t.Fatalf("listen in %s: %v", p, err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, p)
		}), ReadHeaderTimeout: 5 * time.Second}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close(); wg.Wait() })
	}
}

// dialer dials from namespace ns.
func (n *testNode) dial(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := nsDo(n.ns(ns), func() (err error) {
			c, err = (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// get sends one request from namespace ns, on a new connection, and
// returns the answering pod's name.
func (n *testNode) get(ns, hostport string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: n.dial(ns), DisableKeepAlives: true}}
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
