//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves; the test reads the ones the controller writes.

package node_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/node"
	"github.com/skiffhq/skiff/agent/runtime"
	"github.com/skiffhq/skiff/client"
)

// execTry runs cmd in a container and returns its output, or an error
// naming the exit code.
func execTry(rt *runtime.Runtime, uid, ctr string, cmd ...string) (string, error) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := rt.Exec(ctx, uid, ctr, runtime.ExecOptions{Cmd: cmd, Stdout: &out, Stderr: &out})
	if err == nil && code != 0 {
		err = fmt.Errorf("exit code %d", code)
	}
	if err != nil {
		return out.String(), fmt.Errorf("exec %v: %w, output %q", cmd, err, out.String())
	}
	return out.String(), nil
}

func skiffChains(t *testing.T) []string {
	t.Helper()
	var chains []string
	for _, table := range []string{"nat", "filter"} {
		out, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			t.Fatalf("iptables-save -t %s: %v", table, err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, ":SKIFF-") {
				chains = append(chains, table+" "+strings.Fields(l)[0][1:])
			}
		}
	}
	return chains
}

// TestServiceByDNSName: through Skiff's control plane, an agent with the
// service proxy and cluster DNS on runs a Deployment of the HTTP image and
// a ClusterIP Service over it. A pod's resolv.conf names the node's DNS
// with the cluster search paths; the pod resolves the Service by its short
// name and by its FQDN to the cluster IP and gets answers from both
// replicas through it; the node reaches the cluster IP; Teardown removes
// every SKIFF iptables chain.
func TestServiceByDNSName(t *testing.T) {
	nodetest.RequireNode(t)
	if before := skiffChains(t); len(before) > 0 {
		t.Skipf("another service proxy runs on this host (its chains: %v)", before)
	}
	e := newControlPlaneEnv(t)
	e.network = true
	a := e.startAgent("n1")
	ctx := e.ctx()

	replicas := int32(2)
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: int64Ptr(1),
					Containers: []corev1.Container{{Name: "httpd", Image: "skiff.local/httpd:latest",
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/healthz", Port: intstrFromInt(80)}}, PeriodSeconds: 1}}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80,
			TargetPort: intstrFromInt(80), Protocol: corev1.ProtocolTCP}}},
	}
	for _, o := range []k8sruntime.Object{d, svc} {
		if err := e.c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var pods corev1.PodList
	nodetest.Poll(t, 60*time.Second, "2 pods Running and Ready, both in the Endpoints", func() (bool, error) {
		pods = corev1.PodList{}
		if err := e.c.List(context.Background(), "default", &pods, client.ListOptions{LabelSelector: "app=web"}); err != nil {
			return false, err
		}
		n := 0
		for i := range pods.Items {
			if running(&pods.Items[i]) {
				n++
			}
		}
		ep := &corev1.Endpoints{}
		if err := e.c.Get(context.Background(), "default", "web", ep); err != nil {
			return false, err
		}
		ready := 0
		for _, s := range ep.Subsets {
			ready += len(s.Addresses)
		}
		return n == 2 && len(pods.Items) == 2 && ready == 2,
			fmt.Errorf("%d of %d pods running, %d ready endpoints", n, len(pods.Items), ready)
	})
	if err := e.c.Get(ctx, "default", "web", svc); err != nil {
		t.Fatal(err)
	}
	vip := svc.Spec.ClusterIP
	if vip == "" || vip == corev1.ClusterIPNone {
		t.Fatalf("service has cluster IP %q", vip)
	}
	t.Logf("service web at %s, pods %s and %s", vip, pods.Items[0].Status.PodIP, pods.Items[1].Status.PodIP)

	// The node reaches the cluster IP.
	if body := httpGet(t, "http://"+vip+"/"); !strings.Contains(body, "web-") {
		t.Errorf("GET http://%s/ from the node: %q, want a web pod's page", vip, body)
	}

	// The pod's resolv.conf: the node's DNS and the search paths.
	client0 := pods.Items[0]
	uid := string(client0.UID)
	gw := strings.TrimSuffix(e.podCIDR, "0/24") + "1"
	resolv := execOut(t, a.Runtime(), uid, "httpd", "cat", "/etc/resolv.conf")
	for _, want := range []string{"nameserver " + gw, "search default.svc.cluster.local svc.cluster.local cluster.local", "options ndots:5"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("pod resolv.conf %q lacks %q", resolv, want)
		}
	}
	// Names resolve from inside the pod, through the pod's resolv.conf (busybox
	// nslookup applies the search paths only to names without a dot).
	for _, name := range []string{"web", "web.default.svc.cluster.local"} {
		nodetest.Poll(t, 15*time.Second, "nslookup "+name+" in the pod", func() (bool, error) {
			// busybox nslookup tries every search path and exits 1 when
			// one of them is NXDOMAIN: the answer is what counts.
			out, err := execTry(a.Runtime(), uid, "httpd", "nslookup", name)
			return strings.Contains(out, vip), err
		})
	}
	// HTTP from the pod to the address "web" resolved to reaches both
	// replicas through the cluster IP (one of them the client itself:
	// hairpin). busybox-static's wget crashes in a pod (exit 139, glibc's
	// resolver), so nc is given the address nslookup found.
	seen := map[string]bool{}
	nodetest.Poll(t, 30*time.Second, "GET http://web/ from the pod reaches both replicas", func() (bool, error) {
		out, err := execTry(a.Runtime(), uid, "httpd", "sh", "-c",
			"printf 'GET / HTTP/1.0\\r\\nHost: web\\r\\n\\r\\n' | nc -w 2 "+vip+" 80")
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if strings.Contains(out, p.Name) {
				seen[p.Name] = true
			}
		}
		return len(seen) == 2, fmt.Errorf("replicas seen: %v", seen)
	})

	// Teardown removes the proxy's chains.
	a.Close()
	tctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := node.Teardown(tctx, e.dir, nil); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if left := skiffChains(t); len(left) > 0 {
		t.Errorf("SKIFF chains left after Teardown: %v", left)
	}
}
