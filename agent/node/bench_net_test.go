//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves; the benchmark waits for the ones the controller writes.

package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/images"
	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/node"
)

// The network benchmark's fixed shape: every path gets the same clients
// and the same time, one after the other, in one run.
const (
	benchNetImage    = "skiff.local/benchhttpd:latest"
	benchNetDuration = 5 * time.Second
	benchNetTimeout  = 5 * time.Second // one request
	benchNetSlices   = 5               // turns the paths of a group take, benchNetDuration in all
)

var benchNetClients = []int{16, 64}

// buildBenchHTTPDImage compiles testdata/benchhttpd as a static binary and
// returns an image of it on the busybox base (the base keeps the image
// usable with exec for a look inside).
func buildBenchHTTPDImage(t *testing.T) images.Image {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "benchhttpd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/benchhttpd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/benchhttpd (static, CGO_ENABLED=0): %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	base, err := images.BusyboxLayer(images.DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	return images.Image{
		Names: []string{benchNetImage},
		Config: ocispec.ImageConfig{
			Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin", "PORT=80"},
			Entrypoint:   []string{"/usr/local/bin/benchhttpd"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
		},
		Layers: []images.Layer{base, {
			{Path: "usr/local", Mode: fs.ModeDir | 0o755},
			{Path: "usr/local/bin", Mode: fs.ModeDir | 0o755},
			{Path: "usr/local/bin/benchhttpd", Mode: 0o755, Data: data},
		}},
	}
}

// importImage imports img into the private containerd under dir (the
// daemon startNode left running).
func importImage(t *testing.T, dir string, img images.Image) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := containerd.Open(ctx, containerd.DefaultConfig(dir))
	if err != nil {
		t.Fatalf("open containerd under %s: %v", dir, err)
	}
	defer d.Close()
	var buf bytes.Buffer
	if err := images.WriteLayout(&buf, img); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ImportImage(ctx, &buf); err != nil {
		t.Fatalf("import %v: %v", img.Names, err)
	}
}

// loadResult is what one load run measured.
type loadResult struct {
	requests int           // answered 200
	errors   int           // failed or not 200
	firstErr error         // the first failure, for the table's note
	conns    int64         // TCP connections the clients opened
	elapsed  time.Duration // from the first request to the last answer
	lat      []time.Duration
}

// add merges another run of the same path into r.
func (r *loadResult) add(o loadResult) {
	r.requests += o.requests
	r.errors += o.errors
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
	r.conns += o.conns
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
}

func (r loadResult) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// runLoad sends GET url (Host header host) from clients goroutines, each
// one request at a time, for d, over connections kept alive or a new one
// per request, and returns what it saw. Every request is bounded by
// benchNetTimeout, so it returns within d plus that.
func runLoad(ctx context.Context, url, host string, clients int, keepAlive bool, d time.Duration) loadResult {
	var dials atomic.Int64
	dialer := &net.Dialer{Timeout: benchNetTimeout}
	tr := &http.Transport{
		Proxy: nil, // straight to the target, whatever the environment says
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			c, err := dialer.DialContext(ctx, network, addr)
			if err == nil && !keepAlive {
				// Close with a reset once the answer is read: no TIME_WAIT on
				// either side. With an orderly close the pod keeps one per
				// connection, and a later SYN from the same client port
				// (ports come round within a minute at these rates) can meet
				// it and be dropped, costing that request the kernel's 1 s
				// SYN retransmission: the first runs showed p99s of 1 s.
				_ = c.(*net.TCPConn).SetLinger(0)
			}
			return c, err
		},
		DisableKeepAlives:   !keepAlive,
		MaxIdleConns:        clients,
		MaxIdleConnsPerHost: clients,
		MaxConnsPerHost:     clients,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: benchNetTimeout}

	var (
		mu  sync.Mutex
		res loadResult
		wg  sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			var errs int
			var first error
			for ctx.Err() == nil && time.Now().Before(end) {
				t0 := time.Now()
				err := getOnce(ctx, hc, url, host)
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errors += errs
			if res.firstErr == nil {
				res.firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.requests = len(res.lat)
	res.conns = dials.Load()
	return res
}

// getOnce sends one GET and reads the whole answer (so that a kept-alive
// connection can be reused); a status other than 200 is an error.
func getOnce(ctx context.Context, hc *http.Client, url, host string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Host = host
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s (Host %s): status %d", url, host, resp.StatusCode)
	}
	return nil
}

// benchTarget is one way to reach a backend.
type benchTarget struct {
	path string // the column's name: pod IP, ClusterIP, NodePort, Ingress
	url  string
	host string // Host header
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}

// TestBenchNet measures HTTP requests/s and p50/p99 latency from the host
// to one pod: straight to its pod IP (the baseline), through its Service's
// ClusterIP and NodePort (the agent's iptables proxy: DNAT, and for the
// NodePort also masquerade), and through the agent's Ingress router (a
// reverse proxy in the agent process), with connections kept alive and
// with a new connection per request (the iptables proxy's cost is per
// connection: conntrack and NAT on the first packet). It prints one table
// with each path's ratio to the pod IP baseline. A figure, not an
// assertion: `make bench-net` (SKIFF_BENCH_NET=1) runs it; a run fails
// only when a path cannot be reached at all.
//
// The main server is testdata/benchhttpd (Go, keep-alive); busybox httpd,
// the usual test image, forks a process per request and closes every
// connection, so it gets a short row set of its own for reference.
func TestBenchNet(t *testing.T) {
	if os.Getenv("SKIFF_BENCH_NET") != "1" {
		t.Skip("set SKIFF_BENCH_NET=1 (make bench-net) to run the network benchmark")
	}
	nodetest.RequireNode(t)
	if before := skiffChains(t); len(before) > 0 {
		t.Skipf("another service proxy runs on this host (its chains: %v)", before)
	}
	loadStart := loadAvg()
	goImg := buildBenchHTTPDImage(t)
	e := newControlPlaneEnv(t)
	importImage(t, e.dir, goImg)

	httpPort := freePort(t)
	cfg := e.ingressAgentConfig("bench", httpPort, 0)
	cfg.Proxy = true // the ClusterIP and NodePort paths; DNS is not needed
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	a, err := node.Start(sctx, cfg)
	cancel()
	if err != nil {
		t.Fatalf("agent start: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	ctx := e.ctx()

	backends := []struct{ name, image string }{{"bench-go", benchNetImage}, {"bench-busybox", images.HTTPDImage}}
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"}}
	var objs []k8sruntime.Object
	for _, b := range backends {
		labels := map[string]string{"app": b.name}
		objs = append(objs, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: b.name, Namespace: "default", Labels: labels},
			Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: int64Ptr(1),
				Containers: []corev1.Container{{Name: "http", Image: b.image,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
						Path: "/healthz", Port: intstrFromInt(80)}}, PeriodSeconds: 1}}},
			},
		}, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: b.name, Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: labels,
				Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstrFromInt(80), Protocol: corev1.ProtocolTCP}}},
		})
		ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{Host: b.name + ".bench.test",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: b.name, Port: networkingv1.ServiceBackendPort{Name: "http"}}}}}}}})
	}
	objs = append(objs, ing)
	for _, o := range objs {
		if err := e.c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	// Each backend's four ways in, each checked to answer from that pod.
	targets := map[string][]benchTarget{}
	for _, b := range backends {
		nodetest.Poll(t, 90*time.Second, b.name+" Running with its one ready endpoint", func() (bool, error) {
			ep := &corev1.Endpoints{}
			if err := e.c.Get(context.Background(), "default", b.name, ep); err != nil {
				return false, err
			}
			ready := 0
			for _, s := range ep.Subsets {
				ready += len(s.Addresses)
			}
			return ready == 1, fmt.Errorf("%s has %d ready endpoints", b.name, ready)
		})
		pod := &corev1.Pod{}
		svc := &corev1.Service{}
		if err := e.c.Get(ctx, "default", b.name, pod); err != nil {
			t.Fatal(err)
		}
		if err := e.c.Get(ctx, "default", b.name, svc); err != nil {
			t.Fatal(err)
		}
		if pod.Status.PodIP == "" || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.Ports[0].NodePort == 0 {
			t.Fatalf("%s: pod IP %q, cluster IP %q, node port %d: want all three", b.name, pod.Status.PodIP,
				svc.Spec.ClusterIP, svc.Spec.Ports[0].NodePort)
		}
		ts := []benchTarget{
			{"pod IP", "http://" + net.JoinHostPort(pod.Status.PodIP, "80") + "/", ""},
			{"ClusterIP", "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "8080") + "/", ""},
			{"NodePort", "http://" + net.JoinHostPort(a.NodeIP(), strconv.Itoa(int(svc.Spec.Ports[0].NodePort))) + "/", ""},
			{"Ingress", "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)) + "/", b.name + ".bench.test"},
		}
		for _, tg := range ts {
			nodetest.Poll(t, 30*time.Second, fmt.Sprintf("%s via %s (%s) answers from pod %s", b.name, tg.path, tg.url, b.name), func() (bool, error) {
				code, body, err := ingressGet(tg.url, tg.host, nil)
				if err != nil {
					return false, err
				}
				return code == 200 && strings.Contains(body, "hostname"), fmt.Errorf("got %d %q", code, body)
			})
		}
		targets[b.name] = ts
	}

	type row struct {
		server, conn string
		clients      int
		path         string
		r            loadResult
	}
	var rows []row
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer lcancel()
	// measure runs one group of rows: every path of backend with the same
	// clients and connection mode. The machine is shared, so the paths take
	// turns in benchNetSlices slices rather than one block each: a burst of
	// other work then lands on all of them alike instead of on one row.
	measure := func(server, backend string, keepAlive bool, clients int) {
		conn := "new conn/request"
		if keepAlive {
			conn = "keep-alive"
		}
		ts := targets[backend]
		sums := make([]loadResult, len(ts))
		for i := 0; i < benchNetSlices; i++ {
			for j, tg := range ts {
				sums[j].add(runLoad(lctx, tg.url, tg.host, clients, keepAlive, benchNetDuration/benchNetSlices))
			}
		}
		for j, tg := range ts {
			r := sums[j]
			t.Logf("%s %s %d clients %s: %d requests, %d errors (%v), %d connections", server, conn, clients, tg.path,
				r.requests, r.errors, r.firstErr, r.conns)
			if r.requests == 0 {
				t.Fatalf("%s via %s (%s): no request answered in %v: %v", server, tg.path, tg.url, benchNetDuration, r.firstErr)
			}
			rows = append(rows, row{server, conn, clients, tg.path, r})
		}
	}
	// Warm up every path (ARP, conntrack, the router's backend connections)
	// before anything is counted.
	for _, b := range backends {
		for _, tg := range targets[b.name] {
			runLoad(lctx, tg.url, tg.host, 4, false, 300*time.Millisecond)
		}
	}
	for _, keepAlive := range []bool{true, false} {
		for _, n := range benchNetClients {
			measure("benchhttpd (Go)", "bench-go", keepAlive, n)
		}
	}
	measure("busybox httpd", "bench-busybox", false, benchNetClients[0])
	loadEnd := loadAvg()

	var out strings.Builder
	fmt.Fprintf(&out, "\nHTTP GET from the host to one pod on the same node, %v per row (the rows of a group take turns, %d slices each),\n"+
		"each client with one request in flight\n", benchNetDuration, benchNetSlices)
	fmt.Fprintf(&out, "(%d CPUs, shared by the clients, the agent with its Ingress router, containerd and the server; load average %s at start, %s at end)\n",
		runtime.NumCPU(), loadStart, loadEnd)
	fmt.Fprintf(&out, "ratios are to the pod IP row of the same group: req/s as a fraction, latency as a multiple (the proxy overhead)\n\n")
	fmt.Fprintf(&out, "%-16s %-16s %7s %-9s %9s %6s %9s %6s %9s %6s %8s %7s\n",
		"server", "connections", "clients", "path", "req/s", "x pod", "p50", "x pod", "p99", "x pod", "conns", "errors")
	var base loadResult
	for i, r := range rows {
		if r.path == "pod IP" {
			base = r.r
			if i > 0 {
				out.WriteString("\n")
			}
		}
		p50, p99 := percentile(r.r.lat, 0.5), percentile(r.r.lat, 0.99)
		b50, b99 := percentile(base.lat, 0.5), percentile(base.lat, 0.99)
		fmt.Fprintf(&out, "%-16s %-16s %7d %-9s %9.0f %6.2f %9s %6.2f %9s %6.2f %8d %7d\n",
			r.server, r.conn, r.clients, r.path, r.r.rps(), r.r.rps()/base.rps(),
			fmtMs(p50), ratio(p50, b50), fmtMs(p99), ratio(p99, b99), r.r.conns, r.r.errors)
	}
	out.WriteString("\nbusybox httpd forks a process per request, closes every connection (no keep-alive) and listens with a\n" +
		"backlog of 9 (16 clients overflow it while it forks): its rows measure fork+exec and its accept queue more\n" +
		"than the network path, hence benchhttpd, a one-process Go server, for the main rows.\n" +
		"ClusterIP and NodePort: iptables DNAT (NodePort also masquerades node-local traffic); Ingress: HTTP reverse\n" +
		"proxy in the agent (keeps its own connections to the pod alive), reached on 127.0.0.1.\n" +
		"new conn/request: one TCP connection per request, closed by the client with a reset after the answer (no\n" +
		"TIME_WAIT left to collide with later connections); conns counts the connections the clients opened.\n")
	for _, r := range rows {
		if percentile(r.r.lat, 0.99) >= time.Second {
			out.WriteString("a p99 of about 1 s or more is a TCP SYN retransmission (the kernel's initial 1 s timeout): some\n" +
				"connection attempts were dropped (a full accept queue, or a CPU too busy to answer in time).\n")
			break
		}
	}
	var errs []string
	for _, r := range rows {
		if r.r.errors > 0 {
			errs = append(errs, fmt.Sprintf("  %s %s %d clients %s: first error: %v", r.server, r.conn, r.clients, r.path, r.r.firstErr))
		}
	}
	if len(errs) > 0 {
		out.WriteString("errors:\n" + strings.Join(errs, "\n") + "\n")
	}
	fmt.Print(out.String() + "\n")
	if lctx.Err() != nil {
		t.Fatal(errors.New("the load runs outlived their 10 minute bound"))
	}
}

func fmtMs(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func ratio(d, base time.Duration) float64 {
	if base == 0 {
		return 0
	}
	return float64(d) / float64(base)
}
