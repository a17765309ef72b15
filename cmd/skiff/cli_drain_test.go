package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

// runNodeCLI runs cordon, uncordon or drain on a fresh command tree.
func runNodeCLI(t *testing.T, cfg string, args ...string) (string, string, error) {
	t.Helper()
	root := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newCordonCmd(true), newCordonCmd(false), newDrainCmd())
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append(args, "--kubeconfig", cfg))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func drainTestPod(name, node string, owner string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{NodeName: node,
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if owner != "" {
		kind, ownerName, _ := strings.Cut(owner, "/")
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: ownerName,
			UID: "00000000-0000-0000-0000-000000000001", Controller: &yes}}
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func podExists(t *testing.T, c *client.Client, name string) (*corev1.Pod, bool) {
	t.Helper()
	p := &corev1.Pod{}
	err := c.Get(context.Background(), "default", name, p)
	if client.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("get pod %s: %v", name, err)
	}
	return p, true
}

func nodeUnschedulable(t *testing.T, c *client.Client, name string) bool {
	t.Helper()
	n := &corev1.Node{}
	if err := c.Get(context.Background(), "", name, n); err != nil {
		t.Fatalf("get node %s: %v", name, err)
	}
	return n.Spec.Unschedulable
}

// fakeAgent plays the part of the agents of nodes: it confirms the graceful
// delete of their pods (a grace-0 delete) after delay, as an agent does
// once the containers stopped.
func fakeAgent(t *testing.T, c *client.Client, delay time.Duration, nodes ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		seen := map[string]time.Time{}
		for ctx.Err() == nil {
			for _, n := range nodes {
				var list corev1.PodList
				if err := c.List(ctx, "", &list, client.ListOptions{FieldSelector: "spec.nodeName=" + n}); err != nil {
					continue
				}
				for i := range list.Items {
					p := &list.Items[i]
					if p.DeletionTimestamp == nil {
						continue
					}
					if _, ok := seen[string(p.UID)]; !ok {
						seen[string(p.UID)] = time.Now()
					}
					if time.Since(seen[string(p.UID)]) >= delay {
						zero := int64(0)
						_, _ = c.Delete(ctx, p, &client.DeleteOptions{GracePeriodSeconds: &zero})
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func TestCordonDrain(t *testing.T) {
	oldPoll, oldProgress := drainPollInterval, drainProgressInterval
	drainPollInterval, drainProgressInterval = 100*time.Millisecond, 300*time.Millisecond
	t.Cleanup(func() { drainPollInterval, drainProgressInterval = oldPoll, oldProgress })

	srv := apiservertest.Start(t, apiservertest.Store(t))
	cfg := srv.ConfigPath
	c := srv.Client()
	ctx := context.Background()
	for _, n := range []struct{ name, zone string }{{"n1", "a"}, {"n2", "a"}, {"n3", "b"}} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{"zone": n.zone}}}
		if err := c.Create(ctx, node); err != nil {
			t.Fatalf("create node %s: %v", n.name, err)
		}
	}
	emptyDir := func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	}
	mirror := func(p *corev1.Pod) { p.Annotations = map[string]string{mirrorPodAnnotation: "x"} }
	for _, p := range []*corev1.Pod{
		drainTestPod("web-1", "n1", "ReplicaSet/web"),
		drainTestPod("web-2", "n1", "ReplicaSet/web"),
		drainTestPod("ds-1", "n1", "DaemonSet/logs"),
		drainTestPod("bare", "n1", ""),
		drainTestPod("cache", "n1", "ReplicaSet/cache", emptyDir),
		drainTestPod("static", "n1", "", mirror),
		drainTestPod("api-1", "n2", "ReplicaSet/api"),
		drainTestPod("api-2", "n2", "ReplicaSet/api"),
		drainTestPod("db", "n3", "ReplicaSet/db"),
	} {
		if err := c.Create(ctx, p); err != nil {
			t.Fatalf("create pod %s: %v", p.Name, err)
		}
	}

	t.Run("cordon and uncordon", func(t *testing.T) {
		for _, step := range []struct {
			args []string
			want string
			cord bool
		}{
			{[]string{"cordon", "n3"}, "node/n3 cordoned\n", true},
			{[]string{"cordon", "node/n3"}, "node/n3 already cordoned\n", true},
			{[]string{"uncordon", "n3", "--dry-run=client"}, "node/n3 uncordoned (dry run)\n", true},
			{[]string{"uncordon", "n3"}, "node/n3 uncordoned\n", false},
			{[]string{"uncordon", "n3"}, "node/n3 already uncordoned\n", false},
		} {
			out, stderr, err := runNodeCLI(t, cfg, step.args...)
			if err != nil || out != step.want {
				t.Errorf("%v: got %q %v %s, want %q", step.args, out, err, stderr, step.want)
			}
			if got := nodeUnschedulable(t, c, "n3"); got != step.cord {
				t.Errorf("after %v: unschedulable=%v, want %v", step.args, got, step.cord)
			}
		}
		out, _, err := runNodeCLI(t, cfg, "cordon", "-l", "zone=a", "--dry-run")
		if want := "node/n1 cordoned (dry run)\nnode/n2 cordoned (dry run)\n"; err != nil || out != want {
			t.Errorf("cordon -l zone=a --dry-run: got %q %v, want %q", out, err, want)
		}
		if nodeUnschedulable(t, c, "n1") || nodeUnschedulable(t, c, "n2") {
			t.Errorf("a dry-run cordon cordoned")
		}
		if _, stderr, err := runNodeCLI(t, cfg, "cordon", "nope"); err == nil || !strings.Contains(err.Error(), `nodes "nope" not found`) {
			t.Errorf("cordon of a missing node: %v %s", err, stderr)
		}
		if _, _, err := runNodeCLI(t, cfg, "cordon"); err == nil || !strings.Contains(err.Error(), "give NODE or --selector") {
			t.Errorf("cordon without a node: %v", err)
		}
		if _, _, err := runNodeCLI(t, cfg, "drain", "n1", "--dry-run=server"); err == nil || !strings.Contains(err.Error(), "--dry-run=server") {
			t.Errorf("drain --dry-run=server: %v", err)
		}
	})

	t.Run("drain refuses and lists the pods", func(t *testing.T) {
		out, stderr, err := runNodeCLI(t, cfg, "drain", "n1")
		if err == nil {
			t.Fatalf("drain without flags succeeded:\n%s%s", out, stderr)
		}
		if out != "node/n1 cordoned\n" {
			t.Errorf("stdout %q, want only the cordon", out)
		}
		for _, want := range []string{
			`error: unable to drain node "n1" due to error: `,
			"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/ds-1",
			"cannot delete Pods that declare no controller (use --force to override): default/bare",
			"cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache",
			"There are pending nodes to be drained:\n n1\n",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		if strings.Contains(stderr, "static") {
			t.Errorf("the mirror pod is named:\n%s", stderr)
		}
		for _, name := range []string{"web-1", "web-2", "ds-1", "bare", "cache", "static"} {
			if p, ok := podExists(t, c, name); !ok || p.DeletionTimestamp != nil {
				t.Errorf("pod %s was deleted by a refused drain", name)
			}
		}
		if !nodeUnschedulable(t, c, "n1") {
			t.Errorf("a refused drain leaves the node cordoned, as kubectl; it is not")
		}
	})

	t.Run("drain dry run", func(t *testing.T) {
		out, stderr, err := runNodeCLI(t, cfg, "drain", "n1", "--ignore-daemonsets", "--force", "--delete-emptydir-data", "--dry-run=client")
		want := "node/n1 already cordoned\n" +
			"evicting pod default/bare (dry run)\nevicting pod default/cache (dry run)\n" +
			"evicting pod default/web-1 (dry run)\nevicting pod default/web-2 (dry run)\n" +
			"node/n1 drained (dry run)\n"
		if err != nil || out != want {
			t.Errorf("got %v\n%s\nwant\n%s", err, out, want)
		}
		if !strings.Contains(stderr, "Warning: ignoring DaemonSet-managed Pods: default/ds-1") {
			t.Errorf("no DaemonSet warning:\n%s", stderr)
		}
		for _, name := range []string{"web-1", "bare", "cache"} {
			if p, ok := podExists(t, c, name); !ok || p.DeletionTimestamp != nil {
				t.Errorf("pod %s was deleted by a dry run", name)
			}
		}
	})

	t.Run("drain with pod selector waits for the agent", func(t *testing.T) {
		fakeAgent(t, c, 700*time.Millisecond, "n1")
		out, stderr, err := runNodeCLI(t, cfg, "drain", "n1", "--pod-selector", "app=web-1")
		want := "node/n1 already cordoned\nevicting pod default/web-1\npod/web-1 evicted\nnode/n1 drained\n"
		if err != nil || out != want {
			t.Fatalf("got %v\n%s%s\nwant\n%s", err, out, stderr, want)
		}
		if !strings.Contains(stderr, "waiting for 1 pod(s) to terminate") || !strings.Contains(stderr, "default/web-1") {
			t.Errorf("no progress while waiting:\n%s", stderr)
		}
		if _, ok := podExists(t, c, "web-1"); ok {
			t.Errorf("web-1 still there after drain")
		}
		if _, ok := podExists(t, c, "web-2"); !ok {
			t.Errorf("web-2 (not selected) was deleted")
		}
	})

	t.Run("drain everything", func(t *testing.T) {
		fakeAgent(t, c, 100*time.Millisecond, "n1")
		out, stderr, err := runNodeCLI(t, cfg, "drain", "n1", "--ignore-daemonsets", "--force", "--delete-emptydir-data")
		if err != nil {
			t.Fatalf("drain: %v\n%s%s", err, out, stderr)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if lines[0] != "node/n1 already cordoned" || lines[len(lines)-1] != "node/n1 drained" {
			t.Errorf("output:\n%s", out)
		}
		for _, name := range []string{"bare", "cache", "web-2"} {
			for _, want := range []string{"evicting pod default/" + name + "\n", "pod/" + name + " evicted\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if _, ok := podExists(t, c, name); ok {
				t.Errorf("pod %s still there after drain", name)
			}
		}
		for _, want := range []string{"Warning: ignoring DaemonSet-managed Pods: default/ds-1",
			"Warning: deleting Pods that declare no controller: default/bare"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		for _, name := range []string{"ds-1", "static"} {
			if _, ok := podExists(t, c, name); !ok {
				t.Errorf("pod %s was deleted, drain must leave it", name)
			}
		}
	})

	t.Run("node without agent: timeout, then grace 0", func(t *testing.T) {
		out, stderr, err := runNodeCLI(t, cfg, "drain", "n2", "--timeout=1s")
		if err == nil || !strings.Contains(stderr, "global timeout reached: 1s") || !strings.Contains(stderr, "default/api-1, default/api-2") {
			t.Fatalf("drain of a node without agent: want a timeout naming the pods, got %v\n%s%s", err, out, stderr)
		}
		if p, ok := podExists(t, c, "api-1"); !ok || p.DeletionTimestamp == nil {
			t.Errorf("api-1 should be marked for deletion and kept (no agent confirms): %v", ok)
		}
		out, stderr, err = runNodeCLI(t, cfg, "drain", "n2", "--grace-period=0", "--timeout=20s")
		if err != nil || !strings.HasSuffix(out, "pod/api-2 evicted\nnode/n2 drained\n") {
			t.Fatalf("drain --grace-period=0: %v\n%s%s", err, out, stderr)
		}
		for _, name := range []string{"api-1", "api-2"} {
			if _, ok := podExists(t, c, name); ok {
				t.Errorf("pod %s still there", name)
			}
		}
	})
}
