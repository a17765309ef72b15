//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves.

package netproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func endpointsOf(name string, port int32, ips ...string) *corev1.Endpoints {
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	if len(ips) == 0 {
		return ep
	}
	ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "http", Port: port, Protocol: corev1.ProtocolTCP}}}
	for _, ip := range ips {
		ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: ip})
	}
	ep.Subsets = []corev1.EndpointSubset{ss}
	return ep
}

// counterless is iptables-save output without counters and comments lines,
// for comparing rule sets.
func counterless(save string) string {
	var out []string
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	for _, l := range strings.Split(save, "\n") {
		if strings.HasPrefix(l, "#") || l == "" {
			continue
		}
		out = append(out, counters.ReplaceAllString(l, ""))
	}
	return strings.Join(out, "\n")
}

func TestProxierInNetns(t *testing.T) {
	requireRoot(t)
	for _, bridged := range []bool{false, true} {
		name := "routed pods"
		if bridged {
			name = "bridged pods"
		}
		t.Run(name, func(t *testing.T) { testProxier(t, bridged) })
	}
}

func testProxier(t *testing.T, bridged bool) {
	n := newTestNode(t, bridged, "web1", "web2", "web3", "client")
	n.serve(t, 8080, "web1", "web2", "web3")
	node := n.ns("node")
	saveAll := func() string {
		return counterless(run(t, "ip", "netns", "exec", node, "iptables-save", "-t", "nat") +
			run(t, "ip", "netns", "exec", node, "iptables-save", "-t", "filter"))
	}
	pristine := saveAll()

	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080},
		}},
	}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatalf("create service: %v", err)
	}
	empty := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "empty"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	if err := c.Create(ctx, empty); err != nil {
		t.Fatalf("create service: %v", err)
	}
	ep := endpointsOf("web", 8080, n.pods["web1"], n.pods["web2"], n.pods["web3"])
	if err := c.Create(ctx, ep); err != nil {
		t.Fatalf("create endpoints: %v", err)
	}
	vip := svc.Spec.ClusterIP + ":80"
	t.Logf("cluster IP %s, pods %v", vip, n.pods)

	svcs, err := client.NewInformer(c, "", &corev1.Service{}, client.ListOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	eps, err := client.NewInformer(c, "", &corev1.Endpoints{}, client.ListOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.NodeName = "node"
	cfg.ClusterCIDR = "10.244.0.0/16"
	cfg.MinSyncInterval = 50 * time.Millisecond
	cfg.Runner = &Exec{Prefix: []string{"ip", "netns", "exec", node}}
	cfg.Conntrack = &NetlinkConntrack{Netns: "/run/netns/" + node}
	cfg.Logger = testLogger(t)
	p, err := New(cfg, svcs, eps)
	if err != nil {
		t.Fatal(err)
	}
	svcs.AddHandler(p.Handler())
	eps.AddHandler(p.Handler())

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, f := range []func(context.Context) error{svcs.Run, eps.Run, p.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f(runCtx) }()
	}
	stopped := false
	stopProxy := func() {
		if !stopped {
			stopped = true
			stop()
			wg.Wait()
		}
	}
	// Whatever happens, leave the node namespace's tables as found (the
	// namespace goes too, but Cleanup is what the agent will rely on).
	defer func() {
		stopProxy()
		if err := p.Cleanup(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}()

	t.Run("cluster IP from a pod reaches every endpoint", func(t *testing.T) {
		eventually(t, 30*time.Second, "spread over web1..3", func() error {
			return spreadOver(n.hits("client", vip, 40), "web1", "web2", "web3")
		})
	})
	t.Run("node port from outside reaches every endpoint", func(t *testing.T) {
		eventually(t, 10*time.Second, "spread over web1..3", func() error {
			return spreadOver(n.hits("ext", "192.168.77.1:30080", 40), "web1", "web2", "web3")
		})
	})
	t.Run("cluster IP from the node itself", func(t *testing.T) {
		eventually(t, 10*time.Second, "spread over web1..3", func() error {
			return spreadOver(n.hits("node", vip, 40), "web1", "web2", "web3")
		})
	})
	t.Run("a pod reaches itself through its service (hairpin)", func(t *testing.T) {
		eventually(t, 10*time.Second, "web1 among the answers to web1", func() error {
			return spreadOver(n.hits("web1", vip, 40), "web1", "web2", "web3")
		})
	})
	t.Run("service without endpoints refuses at once", func(t *testing.T) {
		eventually(t, 10*time.Second, "connection refused", func() error {
			start := time.Now()
			_, err := n.get("client", empty.Spec.ClusterIP+":80")
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("got %v, want connection refused", err)
			}
			if d := time.Since(start); d > time.Second {
				return fmt.Errorf("refused after %v", d)
			}
			return nil
		})
	})
	t.Run("a removed endpoint stops getting traffic", func(t *testing.T) {
		err := client.RetryOnConflict(ctx, 5, func() error {
			cur := &corev1.Endpoints{}
			if err := c.Get(ctx, "default", "web", cur); err != nil {
				return err
			}
			cur.Subsets = endpointsOf("web", 8080, n.pods["web1"], n.pods["web2"]).Subsets
			return c.Update(ctx, cur)
		})
		if err != nil {
			t.Fatalf("update endpoints: %v", err)
		}
		eventually(t, 10*time.Second, "spread over web1, web2 only", func() error {
			return spreadOver(n.hits("client", vip, 30), "web1", "web2")
		})
		// Now that it converged, web3 must get nothing, from anywhere.
		if err := spreadOver(n.hits("client", vip, 40), "web1", "web2"); err != nil {
			t.Errorf("cluster IP after removal: %v", err)
		}
		if err := spreadOver(n.hits("ext", "192.168.77.1:30080", 40), "web1", "web2"); err != nil {
			t.Errorf("node port after removal: %v", err)
		}
	})
	t.Run("sessionAffinity ClientIP pins a client to one endpoint", func(t *testing.T) {
		err := client.RetryOnConflict(ctx, 5, func() error {
			cur := &corev1.Service{}
			if err := c.Get(ctx, "default", "web", cur); err != nil {
				return err
			}
			cur.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			return c.Update(ctx, cur)
		})
		if err != nil {
			t.Fatalf("update service: %v", err)
		}
		eventually(t, 10*time.Second, "every request to one endpoint", func() error {
			if !strings.Contains(string(p.Rules()), "--rcheck") {
				return errors.New("affinity rules not written yet")
			}
			h := n.hits("client", vip, 20)
			if len(h) != 1 || h["web1"]+h["web2"] != 20 {
				return fmt.Errorf("answers %v", h)
			}
			return nil
		})
	})
	t.Run("UDP: a client on one source port follows the endpoint change", func(t *testing.T) {
		for _, p := range []string{"web1", "web2"} {
			serveUDP(t, n.ns(p), p, 5353)
		}
		udp := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "udp"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}}
		if err := c.Create(ctx, udp); err != nil {
			t.Fatal(err)
		}
		udpEP := func(pod string) []corev1.EndpointSubset {
			return []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: n.pods[pod]}},
				Ports: []corev1.EndpointPort{{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP}}}}
		}
		if err := c.Create(ctx, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "udp"}, Subsets: udpEP("web1")}); err != nil {
			t.Fatal(err)
		}
		ask := udpClient(t, n.ns("client"), 40000) // one source port throughout
		vip := udp.Spec.ClusterIP + ":53"
		eventually(t, 10*time.Second, "web1 answers", func() error {
			if got := ask(vip); got != "web1" {
				return fmt.Errorf("answer %q", got)
			}
			return nil
		})
		err := client.RetryOnConflict(ctx, 5, func() error {
			cur := &corev1.Endpoints{}
			if err := c.Get(ctx, "default", "udp", cur); err != nil {
				return err
			}
			cur.Subsets = udpEP("web2")
			return c.Update(ctx, cur)
		})
		if err != nil {
			t.Fatal(err)
		}
		// web1 still runs: without the conntrack flush this client would
		// keep reaching it for as long as it keeps asking.
		eventually(t, 10*time.Second, "web2 answers the same client port", func() error {
			if got := ask(vip); got != "web2" {
				return fmt.Errorf("answer %q", got)
			}
			return nil
		})
	})
	t.Run("a full rewrite is idempotent", func(t *testing.T) {
		before := saveAll()
		p.mu.Lock()
		p.lastRules = nil
		p.mu.Unlock()
		if err := p.Sync(ctx); err != nil {
			t.Fatalf("sync: %v", err)
		}
		if after := saveAll(); after != before {
			t.Errorf("rules changed by a resync:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("a deleted service's chains go", func(t *testing.T) {
		for _, name := range []string{"web", "udp"} {
			cur := &corev1.Service{}
			if err := c.Get(ctx, "default", name, cur); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Delete(ctx, cur, nil); err != nil {
				t.Fatalf("delete service: %v", err)
			}
		}
		eventually(t, 10*time.Second, "no rules for default/web and default/udp", func() error {
			if s := saveAll(); strings.Contains(s, "default/web:http") || strings.Contains(s, "default/udp:dns") {
				return errors.New("iptables still has rules of default/web or default/udp")
			}
			return nil
		})
		if got := strings.Count(saveAll(), ":"+prefixEndpoint); got != 0 {
			t.Errorf("%d endpoint chains left, want 0", got)
		}
	})

	stopProxy()
	if err := p.Cleanup(ctx); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	if after := saveAll(); after != pristine {
		t.Errorf("cleanup left the tables changed:\nbefore:\n%s\nafter:\n%s", pristine, after)
	}
}
