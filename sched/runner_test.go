package sched

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// runnerEnv is a real single-member raftstore in the test process, an API
// server on it, and a Runner scheduling through the API.
type runnerEnv struct {
	t      *testing.T
	c      *client.Client
	ctx    context.Context
	runner *Runner
}

func startRunner(t *testing.T, opts RunnerOptions) *runnerEnv {
	t.Helper()
	srv := apiservertest.Start(t, apiservertest.StartSkiffStore(t))
	c := srv.Client()
	if testing.Verbose() && opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r, err := NewRunner(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != context.Canceled {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Run did not return within 15s of cancel")
		}
	})
	return &runnerEnv{t: t, c: c, ctx: ctx, runner: r}
}

// createNode creates n with its status (allocatable, Ready).
func (e *runnerEnv) createNode(n *corev1.Node) {
	e.t.Helper()
	status := n.Status
	if err := e.c.Create(e.ctx, n); err != nil {
		e.t.Fatalf("create node %s: %v", n.Name, err)
	}
	n.Status = status
	if err := e.c.UpdateStatus(e.ctx, n); err != nil {
		e.t.Fatalf("node %s status: %v", n.Name, err)
	}
}

func (e *runnerEnv) createPod(p *corev1.Pod) {
	e.t.Helper()
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].Image = "busybox"
	}
	if err := e.c.Create(e.ctx, p); err != nil {
		e.t.Fatalf("create pod %s: %v", p.Name, err)
	}
}

func (e *runnerEnv) pod(name string) *corev1.Pod {
	e.t.Helper()
	p := &corev1.Pod{}
	if err := e.c.Get(e.ctx, "default", name, p); err != nil {
		e.t.Fatalf("get pod %s: %v", name, err)
	}
	return p
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
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, err)
}

// waitBound waits for pod name to be bound and returns its node.
func (e *runnerEnv) waitBound(name string) string {
	e.t.Helper()
	var node string
	eventually(e.t, 20*time.Second, "pod "+name+" bound", func() error {
		node = e.pod(name).Spec.NodeName
		if node == "" {
			return fmt.Errorf("not bound")
		}
		return nil
	})
	return node
}

// waitUnschedulable waits for the PodScheduled=False condition of pod name
// to carry want, and for a FailedScheduling event saying the same.
func (e *runnerEnv) waitUnschedulable(name, want string) {
	e.t.Helper()
	eventually(e.t, 20*time.Second, "pod "+name+" reported unschedulable", func() error {
		p := e.pod(name)
		if p.Spec.NodeName != "" {
			return fmt.Errorf("bound to %s", p.Spec.NodeName)
		}
		cond := podScheduledCondition(p)
		if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != ConditionUnschedulable || cond.Message != want {
			return fmt.Errorf("PodScheduled condition %+v, want False/Unschedulable %q", cond, want)
		}
		var evs corev1.EventList
		if err := e.c.List(e.ctx, "default", &evs, client.ListOptions{}); err != nil {
			return err
		}
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Name == name && ev.Reason == EventFailedScheduling && ev.Message == want && ev.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("no FailedScheduling event %q among %d events", want, len(evs.Items))
	})
}

func (e *runnerEnv) wantEvent(name, reason, message string) {
	e.t.Helper()
	eventually(e.t, 10*time.Second, "event "+reason+" for "+name, func() error {
		var evs corev1.EventList
		if err := e.c.List(e.ctx, "default", &evs, client.ListOptions{}); err != nil {
			return err
		}
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Name == name && ev.Reason == reason && ev.Message == message {
				return nil
			}
		}
		return fmt.Errorf("not among %d events", len(evs.Items))
	})
}

func TestRunnerResourcesAndRetry(t *testing.T) {
	e := startRunner(t, RunnerOptions{})
	for i := 1; i <= 3; i++ {
		e.createNode(mkNode(fmt.Sprintf("n%d", i), alloc(corev1.ResourceCPU, "1")))
	}
	// 600m each: no two fit on one node.
	for i := 0; i < 3; i++ {
		e.createPod(mkPod(fmt.Sprintf("p%d", i), req("cpu", "600m")))
	}
	seen := map[string]string{}
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("p%d", i)
		node := e.waitBound(name)
		if other, dup := seen[node]; dup {
			t.Errorf("%s and %s both on %s, which has room for one", other, name, node)
		}
		seen[node] = name
	}
	e.wantEvent("p0", EventScheduled, "Successfully assigned default/p0 to "+e.pod("p0").Spec.NodeName)

	// A fourth fits nowhere, says why, and is placed once a node joins.
	e.createPod(mkPod("p3", req("cpu", "600m")))
	e.waitUnschedulable("p3", "0/3 nodes are available: 3 Insufficient cpu.")
	if got := e.runner.Unschedulable(); len(got) != 1 || got[0] != "default/p3" {
		t.Errorf("Unschedulable() = %v, want [default/p3]", got)
	}
	e.createNode(mkNode("n4", alloc(corev1.ResourceCPU, "1")))
	if node := e.waitBound("p3"); node != "n4" {
		t.Errorf("p3 bound to %s, want n4 (the only node with room)", node)
	}

	// Deleting a pod frees its node for a pending one.
	e.createPod(mkPod("p4", req("cpu", "600m")))
	e.waitUnschedulable("p4", "0/4 nodes are available: 4 Insufficient cpu.")
	freed := e.pod("p1").Spec.NodeName
	if _, err := e.c.Delete(e.ctx, e.pod("p1"), &client.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if node := e.waitBound("p4"); node != freed {
		t.Errorf("p4 bound to %s, want %s (freed by p1)", node, freed)
	}
}

func TestRunnerSelectorsAndTaints(t *testing.T) {
	e := startRunner(t, RunnerOptions{})
	e.createNode(mkNode("plain"))
	e.createNode(mkNode("ssd", nodeLabels("disk", "ssd")))
	e.createNode(mkNode("gpu", taint("gpu", "true", corev1.TaintEffectNoSchedule)))

	e.createPod(mkPod("wants-ssd", nodeSelectorOpt("disk", "ssd")))
	if node := e.waitBound("wants-ssd"); node != "ssd" {
		t.Errorf("wants-ssd on %s, want ssd", node)
	}
	e.createPod(mkPod("tolerates", nodeSelectorOpt("kubernetes.io/hostname", "gpu"),
		tolerate(corev1.Toleration{Key: "gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})))
	if node := e.waitBound("tolerates"); node != "gpu" {
		t.Errorf("tolerates on %s, want gpu", node)
	}
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("plain-%d", i)
		e.createPod(mkPod(name))
		if node := e.waitBound(name); node == "gpu" {
			t.Errorf("%s on the tainted node gpu without a toleration", name)
		}
	}

	e.createPod(mkPod("wants-nvme", nodeSelectorOpt("disk", "nvme")))
	e.waitUnschedulable("wants-nvme",
		"0/3 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 2 node(s) didn't match Pod's node affinity/selector.")
	// Labelling a node is a change that may help: the pod is retried.
	n := &corev1.Node{}
	if err := e.c.Get(e.ctx, "", "plain", n); err != nil {
		t.Fatal(err)
	}
	n.Labels["disk"] = "nvme"
	if err := e.c.Update(e.ctx, n); err != nil {
		t.Fatal(err)
	}
	if node := e.waitBound("wants-nvme"); node != "plain" {
		t.Errorf("wants-nvme on %s, want plain (labelled disk=nvme)", node)
	}

	// Pods for another scheduler are left alone.
	other := mkPod("other-scheduler")
	other.Spec.SchedulerName = "someone-else"
	e.createPod(other)
	e.createPod(mkPod("after-other"))
	e.waitBound("after-other")
	if node := e.pod("other-scheduler").Spec.NodeName; node != "" {
		t.Errorf("pod of another scheduler bound to %s", node)
	}
}

func TestRunnerNoNodes(t *testing.T) {
	e := startRunner(t, RunnerOptions{})
	e.createPod(mkPod("lonely"))
	e.waitUnschedulable("lonely", "no nodes available to schedule pods")
	e.createNode(mkNode("n1"))
	if node := e.waitBound("lonely"); node != "n1" {
		t.Errorf("lonely on %s, want n1", node)
	}
}
