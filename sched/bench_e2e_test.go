package sched

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

// Environment of TestBenchSchedE2E (make bench-sched).
const (
	benchEnv      = "SKIFF_BENCH_SCHED"       // set to run it
	benchNodesEnv = "SKIFF_BENCH_SCHED_NODES" // comma-separated node counts (default 1000,5000)
	benchPodsEnv  = "SKIFF_BENCH_SCHED_PODS"  // pods per run (default 10000)
	// benchBindersEnv overrides RunnerOptions.Binders.
	benchBindersEnv = "SKIFF_BENCH_SCHED_BINDERS"
)

func envInts(name string, def []int) ([]int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s=%q: want positive integers separated by commas", name, v)
		}
		out = append(out, n)
	}
	return out, nil
}

// parallel runs f(i) for i in [0,n) on workers goroutines and returns the
// first error.
func parallel(n, workers int, f func(i int) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// TestBenchSchedE2E measures scheduling end to end: a real raftstore and
// API server in this process, N registered (fake) Nodes, P pending pods
// created beforehand; then a Runner starts and the clock runs until every
// pod is bound through the API. It prints pods/s. A benchmark, not a test:
// it asserts only that every pod got bound.
func TestBenchSchedE2E(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skipf("set %s=1 (make bench-sched) to run the end-to-end scheduler benchmark", benchEnv)
	}
	nodeCounts, err := envInts(benchNodesEnv, []int{1000, 5000})
	if err != nil {
		t.Fatal(err)
	}
	podCounts, err := envInts(benchPodsEnv, []int{10000})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, nodes := range nodeCounts {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			line := benchSchedOnce(t, nodes, podCounts[0])
			t.Log(line)
			lines = append(lines, line)
		})
	}
	fmt.Println("\nscheduler, end to end through the API (in-process raftstore + API server, fake nodes):")
	for _, l := range lines {
		fmt.Println("  " + l)
	}
}

func benchSchedOnce(t *testing.T, numNodes, numPods int) string {
	srv := apiservertest.Start(t, apiservertest.StartSkiffStore(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	start := time.Now()
	err := parallel(numNodes, 64, func(i int) error {
		n := mkNode(fmt.Sprintf("node-%05d", i),
			alloc(corev1.ResourceCPU, "32"), alloc(corev1.ResourceMemory, "128Gi"),
			nodeLabels("topology.kubernetes.io/zone", fmt.Sprintf("zone-%d", i%3)))
		status := n.Status
		if err := c.Create(ctx, n); err != nil {
			return err
		}
		n.Status = status
		return c.UpdateStatus(ctx, n)
	})
	if err != nil {
		t.Fatalf("creating nodes: %v", err)
	}
	nodeTime := time.Since(start)

	start = time.Now()
	err = parallel(numPods, 64, func(i int) error {
		p := mkPod(fmt.Sprintf("pod-%05d", i), req("cpu", "100m", "memory", "128Mi"), podLabels("app", fmt.Sprintf("app-%d", i%50)))
		p.Spec.Containers[0].Image = "busybox"
		return c.Create(ctx, p)
	})
	if err != nil {
		t.Fatalf("creating pods: %v", err)
	}
	podTime := time.Since(start)

	opts := RunnerOptions{}
	if b, err := envInts(benchBindersEnv, []int{0}); err == nil {
		opts.Binders = b[0]
	} else {
		t.Fatal(err)
	}
	r, err := NewRunner(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	if path := os.Getenv("SKIFF_BENCH_SCHED_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	start = time.Now()
	go func() { done <- r.Run(rctx) }()
	defer func() {
		rcancel()
		<-done
	}()
	deadline := time.Now().Add(15 * time.Minute)
	var firstBound time.Duration
	for r.Stats().Scheduled < int64(numPods) {
		if firstBound == 0 && r.Stats().Scheduled > 0 {
			firstBound = time.Since(start)
			t.Logf("first bound after %v", firstBound)
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d pods bound in 15 minutes (stats %+v)", r.Stats().Scheduled, numPods, r.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)

	// Paged: 10,000 pods are more than one gRPC message may carry.
	unbound, total := 0, 0
	for cont := ""; ; {
		var list corev1.PodList
		if err := c.List(ctx, "default", &list, client.ListOptions{Limit: 1000, Continue: cont}); err != nil {
			t.Fatal(err)
		}
		for _, p := range list.Items {
			total++
			if p.Spec.NodeName == "" {
				unbound++
			}
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	if unbound > 0 || total != numPods {
		t.Errorf("%d of %d pods unbound after the runner counted %d bound", unbound, total, numPods)
	}
	st := r.Stats()
	return fmt.Sprintf("%5d nodes, %5d pods: %7.0f pods/s scheduled (%.2fs incl. informer sync; bind errors %d, events dropped %d, bind calls %d) [setup: nodes %.1fs, pod creates %.0f/s]",
		numNodes, numPods, float64(numPods)/elapsed.Seconds(), elapsed.Seconds(), st.BindErrors, st.DroppedEvents, st.BindCalls,
		nodeTime.Seconds(), float64(numPods)/podTime.Seconds())
}
