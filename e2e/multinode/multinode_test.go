package multinode

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestMultiNode starts one server and three agents on three hosts and runs,
// in order (each step builds on the one before): cross-node networking with
// the backend on node-b only, the loss of node-b, and a rolling update under
// load on the two nodes left. The cluster runs with the binary's default
// node-loss detection, so the node-loss figure is the one users get
// (SKIFF_MULTINODE_TUNED=1: the shorter heartbeats of startCluster).
func TestMultiNode(t *testing.T) {
	requireHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c := startClusterWith(t, ctx, os.Getenv("SKIFF_MULTINODE_TUNED") == "")
	if !t.Run("CrossNodeNetworking", func(t *testing.T) { testCrossNode(ctx, c.in(t)) }) {
		return
	}
	if !t.Run("NodeLoss", func(t *testing.T) { testNodeLoss(ctx, c.in(t)) }) {
		return
	}
	t.Run("RollingUpdate", func(t *testing.T) { testRollingUpdate(ctx, c.in(t)) })
}

// in returns c reporting to subtest t.
func (c *cluster) in(t *testing.T) *cluster {
	cc := *c
	cc.t = t
	return &cc
}

const backendSelector = "app=backend"

// setUnschedulable cordons or uncordons a node (there is no cordon verb
// yet: the API, as `kubectl cordon` does).
func (c *cluster) setUnschedulable(ctx context.Context, name string, v bool) {
	c.t.Helper()
	c.poll(ctx, 30*time.Second, fmt.Sprintf("set %s unschedulable=%v", name, v), func() (bool, error) {
		var n corev1.Node
		if err := c.client.Get(ctx, "", name, &n); err != nil {
			return false, err
		}
		n.Spec.Unschedulable = v
		return c.client.Update(ctx, &n) == nil, nil
	})
}

// waitBackend waits for n live backend pods, all Running and Ready, whose
// nodes satisfy onNode, and returns them.
func (c *cluster) waitBackend(ctx context.Context, n int, timeout time.Duration, onNode func(string) bool) []corev1.Pod {
	c.t.Helper()
	var live []corev1.Pod
	c.poll(ctx, timeout, fmt.Sprintf("%d backend pods Running and Ready on the expected nodes", n), func() (bool, error) {
		pods, err := c.pods(ctx, backendSelector)
		if err != nil {
			return false, err
		}
		live = livePods(pods)
		return backendDone(live, n, onNode), fmt.Errorf("live backend pods: %s", describePods(live))
	})
	return live
}

func backendDone(live []corev1.Pod, n int, onNode func(string) bool) bool {
	if len(live) != n {
		return false
	}
	for i := range live {
		if !podReady(&live[i]) || !onNode(live[i].Spec.NodeName) {
			return false
		}
	}
	return true
}

// readyPods are the live pods that are Running and Ready.
func readyPods(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range livePods(pods) {
		if podReady(&p) {
			out = append(out, p)
		}
	}
	return out
}

func describePods(pods []corev1.Pod) string {
	var s []string
	for _, p := range pods {
		s = append(s, fmt.Sprintf("%s on %q %s ready=%v", p.Name, p.Spec.NodeName, p.Status.Phase, podReady(&p)))
	}
	return "[" + strings.Join(s, "; ") + "]"
}

// exec runs a command in a pod through `skiff exec`.
func (c *cluster) exec(ctx context.Context, pod string, cmd ...string) (string, error) {
	return c.skiff(ctx, append([]string{"exec", pod, "--"}, cmd...)...)
}

var hostnameRE = regexp.MustCompile(`hostname: ([a-z0-9.-]+)`)

// testCrossNode: (a) of issues 6 and 7. The backend (the seed manifest set)
// runs on node-b only; a client pod on node-a reaches a pod on node-b by
// pod IP without NAT, the backend by Service DNS name, with requests spread
// over every replica through the ClusterIP; the NodePort and the seed's
// Ingress (host hello.kube.sspcloud.fr) answer on every node's address from
// outside the cluster.
func testCrossNode(ctx context.Context, c *cluster) {
	t := c.t
	// Backends on node-b only: the other two nodes are cordoned while the
	// Deployment scales up, and uncordoned after.
	c.setUnschedulable(ctx, "node-a", true)
	c.setUnschedulable(ctx, "node-c", true)
	c.mustSkiff(ctx, "apply", "-f", "testdata/backend-app.yaml")
	c.mustSkiff(ctx, "apply", "-f", "testdata/probes.yaml")
	c.mustSkiff(ctx, "scale", "deployment", "backend", "--replicas=3")
	start := time.Now()
	backends := c.waitBackend(ctx, 3, 3*time.Minute, func(n string) bool { return n == "node-b" })
	t.Logf("3 backend replicas Running and Ready on node-b %v after scale", time.Since(start).Round(100*time.Millisecond))
	c.setUnschedulable(ctx, "node-a", false)
	c.setUnschedulable(ctx, "node-c", false)
	client := c.waitPodRunning(ctx, "client", 2*time.Minute)
	echo := c.waitPodRunning(ctx, "echo-ip", 2*time.Minute)
	if client.Spec.NodeName != "node-a" || echo.Spec.NodeName != "node-b" {
		t.Fatalf("client on %q, echo-ip on %q: want node-a and node-b", client.Spec.NodeName, echo.Spec.NodeName)
	}

	t.Run("PodIPNoNAT", func(t *testing.T) {
		c := c.in(t)
		url := fmt.Sprintf("http://%s:8080/cgi-bin/ip", echo.Status.PodIP)
		var seen string
		c.poll(ctx, 60*time.Second, "client on node-a gets an answer from echo-ip on node-b at "+url, func() (bool, error) {
			out, err := c.exec(ctx, "client", "timeout", "5", "wget", "-qO-", url)
			// busybox httpd listens on IPv6 and writes an IPv4 peer as
			// "[::ffff:a.b.c.d]".
			seen = strings.TrimPrefix(strings.Trim(strings.TrimSpace(out), "[]"), "::ffff:")
			return err == nil, err
		})
		if seen != client.Status.PodIP {
			t.Errorf("echo-ip on node-b saw the caller as %q, want the client pod's own IP %s (traffic between pods must not be NATed)", seen, client.Status.PodIP)
		} else {
			t.Logf("echo-ip (%s on node-b) saw the caller as %s, the client pod's IP on node-a", echo.Status.PodIP, seen)
		}
	})

	t.Run("ServiceDNSName", func(t *testing.T) {
		c := c.in(t)
		var out string
		c.poll(ctx, 60*time.Second, "wget http://backend from the client on node-a", func() (bool, error) {
			var err error
			out, err = c.exec(ctx, "client", "timeout", "5", "wget", "-qO-", "http://backend")
			return err == nil && strings.Contains(out, "skiff httpd"), err
		})
		m := hostnameRE.FindStringSubmatch(out)
		if m == nil || !slices.ContainsFunc(backends, func(p corev1.Pod) bool { return p.Name == m[1] }) {
			t.Errorf("http://backend answered %q: want the page of one of the backend pods %s", out, describePods(backends))
		}
	})

	t.Run("ClusterIPSpread", func(t *testing.T) {
		c.in(t).checkSpread(ctx, "http://application/", backends, "on node-b")
	})

	t.Run("NodePortEveryNode", func(t *testing.T) {
		c := c.in(t)
		for _, a := range c.agents {
			url := fmt.Sprintf("http://%s:30080/", a.host.IP)
			c.poll(ctx, 60*time.Second, "NodePort "+url+" ("+a.name+") from outside the cluster", func() (bool, error) {
				code, body, err := httpGet(ctx, url, "")
				return err == nil && code == http.StatusOK && strings.Contains(body, "skiff httpd"),
					fmt.Errorf("status %d, body %q, error %v", code, body, err)
			})
		}
		t.Logf("NodePort 30080 answered on %s, %s and %s", c.agents[0].host.IP, c.agents[1].host.IP, c.agents[2].host.IP)
	})
	t.Run("IngressEveryNode", func(t *testing.T) {
		c := c.in(t)
		if !hasFlag(c.agentHelp, "--ingress-http-port") {
			t.Skip("this skiff agent runs no Ingress router (no --ingress-http-port)")
		}
		// The seed's Ingress: host hello.kube.sspcloud.fr, prefix / to the
		// Service application, served on port 80 of every node.
		for _, a := range c.agents {
			url := fmt.Sprintf("http://%s/", a.host.IP)
			c.poll(ctx, 60*time.Second, "Ingress host hello.kube.sspcloud.fr at "+url+" ("+a.name+")", func() (bool, error) {
				code, body, err := httpGet(ctx, url, "hello.kube.sspcloud.fr")
				return err == nil && code == http.StatusOK && strings.Contains(body, "skiff httpd"),
					fmt.Errorf("status %d, body %q, error %v", code, body, err)
			})
			// A host no Ingress names gets no backend.
			if code, body, err := httpGet(ctx, url, "other.example.com"); err != nil || code != http.StatusNotFound {
				t.Errorf("%s with Host other.example.com: got %d %q (error %v), want 404", url, code, body, err)
			}
		}
		t.Logf("Ingress answered for hello.kube.sspcloud.fr on port 80 of %s, %s and %s", c.agents[0].host.IP, c.agents[1].host.IP, c.agents[2].host.IP)
	})
}

// checkSpread sends batches of 30 requests to url from the client pod on
// node-a: every request must succeed, and every backend must answer some.
// A backend that has just become ready may not be in every node's rules
// yet (the proxy syncs at most once per MinSyncInterval), so a batch that
// missed one is repeated until a deadline.
func (c *cluster) checkSpread(ctx context.Context, url string, backends []corev1.Pod, where string) {
	t := c.t
	t.Helper()
	const n = 30
	deadline := time.Now().Add(20 * time.Second)
	var count map[string]int
	var missing []string
	for attempt := 1; ; attempt++ {
		out, err := c.exec(ctx, "client", "sh", "-c",
			fmt.Sprintf(`for i in $(seq %d); do timeout 5 wget -qO- %s || echo REQUEST-FAILED; done`, n, url))
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Count(out, "REQUEST-FAILED"); f > 0 {
			t.Errorf("%d of %d requests to %s failed (batch %d)", f, n, url, attempt)
		}
		count = map[string]int{}
		for _, m := range hostnameRE.FindAllStringSubmatch(out, -1) {
			count[m[1]]++
		}
		missing = missing[:0]
		for _, p := range backends {
			if count[p.Name] == 0 {
				missing = append(missing, fmt.Sprintf("%s (%s, on %s)", p.Name, p.Status.PodIP, p.Spec.NodeName))
			}
		}
		if len(missing) == 0 || t.Failed() || time.Now().After(deadline) {
			break
		}
		t.Logf("batch %d to %s reached %v, not yet %v: again", attempt, url, count, missing)
	}
	if len(missing) > 0 {
		t.Errorf("replicas %v got none of %d requests to %s (spread: %v)", missing, n, url, count)
	}
	if t.Failed() {
		eps, _ := c.skiff(ctx, "get", "endpoints", "-o", "yaml")
		pods, _ := c.skiff(ctx, "get", "pods", "-o", "wide")
		t.Logf("endpoints:\n%s\npods:\n%s", eps, pods)
	}
	t.Logf("%d requests to %s from node-a spread over the replicas %s: %v", n, url, where, count)
}

// httpGet fetches url from the test's own (root) namespace, outside the
// cluster, with the given Host header, and returns status and body.
func httpGet(ctx context.Context, url, host string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	// No proxy from the environment: the nodes are on the lab bridge.
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// testNodeLoss: (b). node-b, with every backend replica, loses its agent
// and containerd (kill -9) and its network; the replicas must come back
// Running on the other nodes. The time is a figure, printed; the deadline
// is only a generous bound.
func testNodeLoss(ctx context.Context, c *cluster) {
	t := c.t
	victim := c.agents[1]
	var d appsv1.Deployment
	if err := c.client.Get(ctx, "default", "backend", &d); err != nil {
		t.Fatal(err)
	}
	replicas := int(*d.Spec.Replicas)
	pods, err := c.pods(ctx, backendSelector)
	if err != nil {
		t.Fatal(err)
	}
	onVictim := 0
	for _, p := range livePods(pods) {
		if p.Spec.NodeName == victim.name {
			onVictim++
		}
	}
	if onVictim == 0 {
		t.Fatalf("no backend pod on %s before the loss: %s", victim.name, describePods(pods))
	}
	cpid := victim.containerdPID()
	if cpid <= 0 || !isProcessOf(cpid, victim.dataDir) {
		t.Fatalf("containerd of %s not found (pidfile says %d)", victim.name, cpid)
	}
	// The machine dies: agent and containerd killed, and its network cut
	// (the pods' own processes stay, as they would on a frozen host, but
	// nobody can reach them).
	t0 := time.Now()
	if err := victim.proc.stop(syscall.SIGKILL, 0); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(cpid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill containerd %d: %v", cpid, err)
	}
	if err := victim.host.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed agent %s (pid %d) and its containerd (pid %d), cut %s off; %d of %d backend replicas were on it; node-loss detection: %s",
		victim.name, victim.proc.pid(), cpid, victim.host.Name, onVictim, replicas, c.tuning)

	// Polled every 100ms: the replacements' own timestamps have a
	// precision of one second.
	before := map[string]bool{}
	for _, p := range pods {
		before[string(p.UID)] = true
	}
	tl := newLossTimeline(t0)
	var doneAt time.Duration
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var n corev1.Node
		if err := c.client.Get(ctx, "", victim.name, &n); err == nil && nodeReady(&n) != corev1.ConditionTrue {
			tl.observe("node Ready!=True")
		}
		pods, err := c.pods(ctx, backendSelector)
		if err == nil {
			for _, p := range pods {
				if before[string(p.UID)] {
					if p.Spec.NodeName == victim.name && p.DeletionTimestamp != nil {
						tl.observe("pod Terminating")
					}
					continue
				}
				tl.observe("replacement created")
				if p.Spec.NodeName != "" {
					tl.observe("replacement bound")
				}
				if podReady(&p) {
					tl.observe("replacement Running+Ready")
				}
			}
			if backendDone(livePods(pods), replicas, func(n string) bool { return n != victim.name }) {
				doneAt = time.Since(t0)
				tl.observe("all Running+Ready")
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("node loss: %d backend replicas not Running elsewhere after 5m (seen: %s; last error %v); live backend pods: %s",
				replicas, tl, err, describePods(livePods(pods)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	tl.phases = map[string]time.Time{}
	if err := logPhases(tl.phases, filepath.Join(c.logDir, "server.log"), lossPhases, victim.name, t0); err != nil {
		t.Logf("server log not read for the phases: %v", err)
	}
	for _, a := range c.agents {
		if a != victim {
			if err := logPhases(tl.phases, a.logPath, agentPhases, victim.name, t0); err != nil {
				t.Logf("log of %s not read for the phases: %v", a.name, err)
			}
		}
	}
	fmt.Printf("FIGURE node loss (kill -9 agent+containerd, host cut): %d/%d backend replicas Running and Ready on other nodes after %v "+
		"(%s; pods tolerate the taints for 5s). Since the kill: %s\n",
		replicas, replicas, doneAt.Round(100*time.Millisecond), c.tuning, tl)

	// The Service follows: requests from node-a reach every new replica.
	pods, err = c.pods(ctx, backendSelector)
	if err != nil {
		t.Fatal(err)
	}
	c.checkSpread(ctx, "http://application/", readyPods(pods), "after the loss of "+victim.name)
}

// testRollingUpdate: (c). A client pod loops requests through the
// ClusterIP while the backend Deployment rolls (`skiff rollout restart`),
// scales down to 1 and up again, and the replaced pods stop; the error
// count is printed.
func testRollingUpdate(ctx context.Context, c *cluster) {
	t := c.t
	var d appsv1.Deployment
	if err := c.client.Get(ctx, "default", "backend", &d); err != nil {
		t.Fatal(err)
	}
	replicas := int(*d.Spec.Replicas)
	c.waitBackend(ctx, replicas, 2*time.Minute, func(string) bool { return true })

	var svc corev1.Service
	if err := c.client.Get(ctx, "default", "application", &svc); err != nil {
		t.Fatal(err)
	}
	// The loop runs until /tmp/stop exists in the client pod, then prints
	// its counts. A failed request (2 s timeout: busybox wget's own -T
	// crashes) is logged with the time, wget's exit status and message,
	// and whether the cluster IP itself and the name's DNS lookup answer
	// right after, to tell a proxy problem from a DNS one.
	loop := fmt.Sprintf(`rm -f /tmp/stop; ok=0; err=0
while [ ! -e /tmp/stop ]; do
  if timeout 2 wget -q -O /dev/null http://application/ 2>/tmp/werr; then ok=$((ok+1)); else
    rc=$?; err=$((err+1))
    timeout 2 wget -q -O /dev/null http://%s/; byip=$?
    timeout 2 nslookup application.default.svc.cluster.local >/dev/null 2>&1; dns=$?
    echo "error at $(date +%%T): exit $rc $(cat /tmp/werr); then by cluster IP: exit $byip, DNS lookup: exit $dns"
  fi
done
echo "ok=$ok err=$err"`, svc.Spec.ClusterIP)
	lctx, lcancel := context.WithTimeout(ctx, 6*time.Minute)
	defer lcancel()
	type result struct {
		out string
		err error
	}
	res := make(chan result, 1)
	go func() {
		out, err := c.exec(lctx, "client", "sh", "-c", loop)
		res <- result{out, err}
	}()
	// The loop is running once it has made /tmp/stop absent and requests
	// go through; give it a baseline before the rollout starts.
	c.poll(ctx, 30*time.Second, "request loop started", func() (bool, error) {
		_, err := c.exec(ctx, "client", "sh", "-c", "test ! -e /tmp/stop")
		return err == nil, err
	})
	start := time.Now()
	c.mustSkiff(ctx, "rollout", "restart", "deployment/backend")
	c.mustSkiff(ctx, "rollout", "status", "deployment/backend", "--timeout", "4m")
	rolled := time.Since(start)
	// Then a scale down and up again under the same loop.
	c.mustSkiff(ctx, "scale", "deployment", "backend", "--replicas=1")
	c.waitBackend(ctx, 1, 2*time.Minute, func(string) bool { return true })
	c.mustSkiff(ctx, "scale", "deployment", "backend", fmt.Sprintf("--replicas=%d", replicas))
	c.waitBackend(ctx, replicas, 2*time.Minute, func(string) bool { return true })
	// The pods the rollout and the scale-down replaced are still
	// terminating (busybox httpd ignores SIGTERM, so they serve through
	// their 30 s grace period): keep the loop going until the agents have
	// stopped them all, the moment their processes die included. (Pods of
	// the lost node-b stay terminating for good: its agent is gone.)
	c.poll(ctx, 2*time.Minute, "replaced backend pods stopped", func() (bool, error) {
		pods, err := c.pods(ctx, backendSelector)
		if err != nil {
			return false, err
		}
		var terminating []corev1.Pod
		for _, p := range pods {
			if p.DeletionTimestamp != nil && p.Spec.NodeName != "node-b" {
				terminating = append(terminating, p)
			}
		}
		return len(terminating) == 0, fmt.Errorf("still terminating: %s", describePods(terminating))
	})
	looped := time.Since(start)
	if _, err := c.exec(ctx, "client", "touch", "/tmp/stop"); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-res:
	case <-ctx.Done():
		t.Fatal("request loop did not finish")
	}
	if r.err != nil {
		t.Fatalf("request loop: %v", r.err)
	}
	m := countsRE.FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("request loop output %q: no ok=N err=M line", r.out)
	}
	ok, _ := strconv.Atoi(m[1])
	errs, _ := strconv.Atoi(m[2])
	if ok == 0 {
		t.Fatalf("no request succeeded during the rollout: %q", r.out)
	}
	fmt.Printf("FIGURE rolling update of %d replicas (rollout restart, done in %v), then scale %d->1->%d, until every replaced pod stopped (%v): %d requests through the ClusterIP from node-a, %d errors\n",
		replicas, rolled.Round(100*time.Millisecond), replicas, replicas, looped.Round(100*time.Millisecond), ok+errs, errs)
	if errs > 0 {
		t.Logf("failed requests (not asserted: 0 to 19 seen in runs on the shared machine):\n%s", r.out)
	}
}

var countsRE = regexp.MustCompile(`ok=(\d+) err=(\d+)`)
