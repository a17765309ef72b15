package sched

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// pendingCluster is an API server on a private raftstore holding nodes
// and pending pods created before any scheduler runs, so that the first
// cycle finds them all queued.
func pendingCluster(t *testing.T, ctx context.Context, nodes, pods int) *client.Client {
	t.Helper()
	srv := apiservertest.Start(t, apiservertest.StartSkiffStore(t))
	c := srv.Client()
	for i := range nodes {
		n := mkNode(fmt.Sprintf("n%d", i), alloc(corev1.ResourceCPU, "64"), alloc(corev1.ResourceMemory, "64Gi"))
		status := n.Status
		if err := c.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		n.Status = status
		if err := c.UpdateStatus(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := parallel(pods, 8, func(i int) error {
		p := mkPod(fmt.Sprintf("p-%03d", i), req("cpu", "10m"))
		p.Spec.Containers[0].Image = "busybox"
		return c.Create(ctx, p)
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

// runRunner runs r until the test ends.
func runRunner(t *testing.T, ctx context.Context, r *Runner) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("Run did not return within 15s of cancel")
		}
	})
}

// boundPods lists the pods and returns their nodes by name ("" unbound).
func boundPods(t *testing.T, ctx context.Context, c *client.Client) map[string]string {
	t.Helper()
	var list corev1.PodList
	if err := c.List(ctx, "default", &list, client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		out[p.Name] = p.Spec.NodeName
	}
	return out
}

func allBound(t *testing.T, ctx context.Context, c *client.Client, want int) func() error {
	return func() error {
		got := boundPods(t, ctx, c)
		bound := 0
		for _, n := range got {
			if n != "" {
				bound++
			}
		}
		if len(got) != want || bound != want {
			return fmt.Errorf("%d of %d pods bound (%d pods exist)", bound, want, len(got))
		}
		return nil
	}
}

// TestRunnerBindsInBatches: pods queued together are bound with a few Bind
// calls, not one write each, and bound as Bind binds (PodScheduled=True).
func TestRunnerBindsInBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const pods = 300
	c := pendingCluster(t, ctx, 3, pods)
	r, err := NewRunner(c, RunnerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, ctx, r)
	eventually(t, 60*time.Second, "every pod bound", allBound(t, ctx, c, pods))
	eventually(t, 10*time.Second, "the runner counts every binding", func() error {
		if st := r.Stats(); st.Scheduled != pods {
			return fmt.Errorf("stats %+v, want %d scheduled", st, pods)
		}
		return nil
	})
	if st := r.Stats(); st.BindCalls > pods/10 {
		t.Errorf("%d pods bound with %d bind calls; want batches (at most %d calls)", st.Scheduled, st.BindCalls, pods/10)
	}
	var p corev1.Pod
	if err := c.Get(ctx, "default", "p-000", &p); err != nil {
		t.Fatal(err)
	}
	if cond := podScheduledCondition(&p); cond == nil || cond.Status != corev1.ConditionTrue {
		t.Errorf("p-000 PodScheduled = %+v, want True (written by Bind)", cond)
	}
	if r.noBind.Load() {
		t.Error("the runner fell back to Update against a server that has Bind")
	}
}

// TestRunnerBindFallsBackToUpdate: against an API server without Bind the
// runner binds with one Update per pod.
func TestRunnerBindFallsBackToUpdate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const pods = 40
	c := pendingCluster(t, ctx, 2, pods)
	r, err := NewRunner(c, RunnerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.bindCall = func(context.Context, []client.PodBinding) ([]error, error) {
		return nil, &client.StatusError{Code: codes.Unimplemented,
			Status: &skiffv1.Status{Message: "unknown method Bind", Reason: client.ReasonInternalError, Code: 500}}
	}
	runRunner(t, ctx, r)
	eventually(t, 60*time.Second, "every pod bound", allBound(t, ctx, c, pods))
	if !r.noBind.Load() {
		t.Error("the runner did not note that the server has no Bind")
	}
	if st := r.Stats(); st.BindErrors != 0 {
		t.Errorf("stats %+v: an unsupported Bind must not count as failed bindings", st)
	}
}

// TestRunnersOverlap: two schedulers run at once over the same pending pods
// (a leadership change). Every pod is bound, and exactly once: the two
// count as many successful bindings together as there are pods, because
// each binding is a compare-and-swap and the loser of each race is told.
func TestRunnersOverlap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const pods = 200
	c := pendingCluster(t, ctx, 4, pods)
	var rs []*Runner
	for _, seed := range []uint64{1, 2} {
		cfg := DefaultConfig()
		cfg.Seed = seed
		r, err := NewRunner(c, RunnerOptions{Config: &cfg, BindBatch: 16})
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	for _, r := range rs {
		runRunner(t, ctx, r)
	}
	eventually(t, 60*time.Second, "every pod bound", allBound(t, ctx, c, pods))
	total := func() int64 { return rs[0].Stats().Scheduled + rs[1].Stats().Scheduled }
	eventually(t, 10*time.Second, "the runners count every binding", func() error {
		if total() < pods {
			return fmt.Errorf("%d bindings counted", total())
		}
		return nil
	})
	if got := total(); got != pods {
		t.Errorf("the two runners counted %d successful bindings (%+v, %+v) for %d pods: some pod was bound twice",
			got, rs[0].Stats(), rs[1].Stats(), pods)
	}
	t.Logf("runner 1 %+v, runner 2 %+v", rs[0].Stats(), rs[1].Stats())
}
