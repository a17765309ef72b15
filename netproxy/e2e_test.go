package netproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controller"
	"github.com/skiffhq/skiff/dns"
)

// wgetEnv makes the test binary a one-shot HTTP client (see TestMain).
const wgetEnv = "SKIFF_NETPROXY_TEST_WGET"

// TestMain lets TestServiceByName run this binary inside a pod namespace
// as "wget -O - $SKIFF_NETPROXY_TEST_WGET".
func TestMain(m *testing.M) {
	if url := os.Getenv(wgetEnv); url != "" {
		c := &http.Client{Timeout: 3 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_, _ = io.Copy(os.Stdout, resp.Body)
		resp.Body.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestServiceByName is the path of "curl http://web" inside a pod, with
// every piece but the agent: pods (namespaces with HTTP servers) made
// Ready by hand, the controller manager's Endpoints controller, the
// cluster DNS serving on the node's pod gateway address, the pod's
// resolv.conf from dns.ResolvConf (ip netns exec mounts it), and the
// proxy's rules in the node namespace. A client process in the client pod
// (this test binary, re-executed as a tiny wget: busybox-static's glibc
// resolver crashes) resolves "web" through the search list of its
// /etc/resolv.conf with Go's own resolver and reaches both pods.
func TestServiceByName(t *testing.T) {
	requireRoot(t)
	n := newTestNode(t, true, "web1", "web2", "client")
	n.serve(t, 8080, "web1", "web2")
	node := n.ns("node")

	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web1", "web2"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{NodeName: "node", Containers: []corev1.Container{{Name: "c", Image: "web:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: n.pods[name], PodIPs: []corev1.PodIP{{IP: n.pods[name]}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		if err := c.UpdateStatus(ctx, p); err != nil {
			t.Fatal(err)
		}
	}

	svcs, _ := client.NewInformer(c, "", &corev1.Service{}, client.ListOptions{}, 0)
	eps, _ := client.NewInformer(c, "", &corev1.Endpoints{}, client.ListOptions{}, 0) //lint:ignore SA1019 Skiff serves Endpoints
	cfg := DefaultConfig()
	cfg.NodeName, cfg.ClusterCIDR, cfg.MinSyncInterval = "node", "10.244.0.0/16", 50*time.Millisecond
	cfg.Runner = &Exec{Prefix: []string{"ip", "netns", "exec", node}}
	proxy, err := New(cfg, svcs, eps)
	if err != nil {
		t.Fatal(err)
	}
	svcs.AddHandler(proxy.Handler())
	eps.AddHandler(proxy.Handler())
	dcfg := dns.DefaultConfig()
	dcfg.Listen = "10.244.0.1:53"
	dnsSrv, err := dns.New(dcfg, svcs, eps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := nsDo(node, dnsSrv.Listen); err != nil { // the sockets live in the node namespace
		t.Fatalf("dns listen: %v", err)
	}

	// The client pod's resolv.conf, where ip netns exec mounts it from.
	client := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "client"}}
	dir := filepath.Join("/etc/netns", n.ns("client"))
	createdParent := false
	if _, err := os.Stat("/etc/netns"); os.IsNotExist(err) {
		createdParent = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		if createdParent {
			os.Remove("/etc/netns") // only if empty
		}
	})
	resolv := dns.ResolvConf(client, dns.ResolvConfig{ClusterDNS: []string{"10.244.0.1"}})
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), resolv, 0o644); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f(runCtx) }()
	}
	goRun(svcs.Run)
	goRun(eps.Run)
	goRun(proxy.Run)
	goRun(dnsSrv.Run)
	goRun(controller.NewManager(c, controller.Options{Resync: -1}).Run)
	defer func() {
		stop()
		wg.Wait()
		if err := proxy.Cleanup(context.Background()); err != nil {
			t.Errorf("proxy cleanup: %v", err)
		}
	}()

	wget := func(url string) (string, error) {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		cmd := exec.CommandContext(cctx, "ip", "netns", "exec", n.ns("client"), os.Args[0])
		cmd.Env = append(os.Environ(), wgetEnv+"="+url, "GODEBUG=netdns=go")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("wget %s: %v: %s", url, err, out)
		}
		return string(out), nil
	}
	for _, url := range []string{"http://web/", "http://web.default/", "http://web.default.svc.cluster.local/"} {
		eventually(t, 30*time.Second, "wget "+url+" reaches web1 and web2", func() error {
			seen := map[string]bool{}
			for i := 0; i < 12 && len(seen) < 2; i++ {
				body, err := wget(url)
				if err != nil {
					return err
				}
				if f := strings.Fields(body); len(f) == 2 && f[1] == n.pods["client"] {
					seen[f[0]] = true
				} else {
					return fmt.Errorf("answer %q", body)
				}
			}
			if !seen["web1"] || !seen["web2"] {
				return fmt.Errorf("reached %v", seen)
			}
			return nil
		})
	}
}
