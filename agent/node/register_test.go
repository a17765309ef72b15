package node_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/node"
	"github.com/skiffhq/skiff/controller"
	"github.com/skiffhq/skiff/controlplane"
)

// TestAgentPodCIDRFromControlPlane: an agent without a pod CIDR registers
// its Node without one, waits, and runs pods in the range the leader's node
// IPAM controller assigned (the cluster CIDR here is one free /24, so the
// assignment is known); a Node deleted under the running agent comes back
// with the same range.
func TestAgentPodCIDRFromControlPlane(t *testing.T) {
	nodetest.RequireNode(t)
	cidr := nodetest.FreeCIDR(t)
	e := newControlPlaneEnvWith(t, func(cfg *controlplane.Config) {
		cfg.NodeIPAM = controller.NodeIPAMOptions{ClusterCIDR: cidr, NodeCIDRMaskSize: 24}
	})
	c := e.c
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.podCIDR = "" // the agent gives none

	a := e.startAgent("n1")
	if a.PodCIDR() != cidr {
		t.Fatalf("agent pod CIDR = %q, want %s (the only /24 of the cluster CIDR)", a.PodCIDR(), cidr)
	}
	n := &corev1.Node{}
	if err := c.Get(ctx, "", "n1", n); err != nil {
		t.Fatal(err)
	}
	if n.Spec.PodCIDR != cidr || len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != cidr {
		t.Errorf("node spec.podCIDR %q, podCIDRs %v; want %s", n.Spec.PodCIDR, n.Spec.PodCIDRs, cidr)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sleeper", Namespace: "default"},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: int64Ptr(0), Containers: []corev1.Container{{
			Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}}}},
	}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	p := e.waitPod("default", "sleeper", 60*time.Second, "running", running)
	if ip, err := netip.ParseAddr(p.Status.PodIP); err != nil || !netip.MustParsePrefix(cidr).Contains(ip) {
		t.Errorf("pod IP %q is not in the node's pod CIDR %s", p.Status.PodIP, cidr)
	}

	// Deleted under the running agent: re-registered with the range its
	// bridge and pods use.
	if _, err := c.Delete(ctx, n, nil); err != nil {
		t.Fatal(err)
	}
	nodetest.Poll(t, 30*time.Second, "node n1 registered again with its pod CIDR", func() (bool, error) {
		again := &corev1.Node{}
		if err := c.Get(context.Background(), "", "n1", again); err != nil {
			return false, err
		}
		if again.UID == n.UID {
			return false, fmt.Errorf("still the old node")
		}
		return again.Spec.PodCIDR == cidr, fmt.Errorf("spec.podCIDR %q", again.Spec.PodCIDR)
	})
}

// TestAgentWithoutPodCIDRTimesOut: with no controller to assign a range
// (a bare API server), an agent without a pod CIDR gives up after its
// PodCIDRTimeout with an error saying what to do, and leaves nothing
// running.
func TestAgentWithoutPodCIDRTimesOut(t *testing.T) {
	e := newEnv(t)
	cfg := node.DefaultConfig("lonely", e.dir, e.c)
	cfg.BridgeName, cfg.CgroupParent = e.marker, e.marker
	cfg.StreamListen = ":0"
	cfg.Proxy, cfg.DNS = false, false
	cfg.PodCIDRTimeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	a, err := node.Start(ctx, cfg)
	if err == nil {
		a.Close()
		t.Fatal("agent started without a pod CIDR")
	}
	took := time.Since(start)
	if !errors.Is(err, node.ErrNoPodCIDR) || !strings.Contains(err.Error(), "--cluster-cidr") || !strings.Contains(err.Error(), "--pod-cidr") {
		t.Errorf("error %v: want ErrNoPodCIDR naming --cluster-cidr and --pod-cidr", err)
	}
	if took < cfg.PodCIDRTimeout || took > cfg.PodCIDRTimeout+30*time.Second {
		t.Errorf("gave up after %v, want about %v", took, cfg.PodCIDRTimeout)
	}
	n := &corev1.Node{}
	if err := e.c.Get(ctx, "", "lonely", n); err != nil {
		t.Fatalf("the node was not registered: %v", err)
	}
	if n.Spec.PodCIDR != "" {
		t.Errorf("node has pod CIDR %q: the agent chose one itself", n.Spec.PodCIDR)
	}
}
