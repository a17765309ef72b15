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
	// benchBindEnv "update" binds with one Update per pod (the fallback)
	// instead of Bind calls, to compare.
	benchBindEnv = "SKIFF_BENCH_SCHED_BIND"
	// benchProfileEnv names a file for a CPU profile of the scheduling
	// (from the scheduler's start until every pod is Running).
	benchProfileEnv = "SKIFF_BENCH_SCHED_CPUPROFILE"
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
// API server in this process, N hollow nodes (hollow_test.go: registered
// Node and Lease, bound pods reported Running with an UpdateStatus, no
// containers), P pending pods created beforehand; then a Runner starts and
// two clocks run from that moment: until every pod is bound through the
// API, and until the hollow nodes have reported every pod Running. It
// prints pods/s for both. A benchmark, not a test: it asserts only that
// every pod got bound and reported Running.
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
	var results []benchResult
	for _, nodes := range nodeCounts {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			r := benchSchedOnce(t, nodes, podCounts[0])
			t.Logf("bound in %v, Running in %v, stats %+v, hollow-node reporting errors %d",
				r.bound, r.running, r.stats, r.reportingErrors)
			results = append(results, r)
		})
	}
	fmt.Print("\nscheduler, end to end through the API: in-process raftstore + API server, hollow nodes\n" +
		"(each registers a Node and its Lease and reports the pods bound to it Running, without containers);\n" +
		"the clocks start with the scheduler (informer sync included); CPU is the whole process's (store, API server,\n" +
		"scheduler, hollow nodes) until all pods are Running, and pods/CPU-s what the same work would reach on idle cores\n\n")
	fmt.Printf("%6s %6s | %12s %9s | %14s %11s | %10s %11s | %7s %10s | %7s | %s\n",
		"nodes", "pods", "bound pods/s", "all bound", "Running pods/s", "all Running", "bind calls", "bind errors",
		"CPU", "pods/CPU-s", "load 1m", "setup: nodes, pod creates")
	for _, r := range results {
		fmt.Printf("%6d %6d | %12.0f %8.2fs | %14.0f %10.2fs | %10d %11d | %6.1fs %10.0f | %7.1f | %.1fs, %.0f/s\n",
			r.nodes, r.pods, float64(r.pods)/r.bound.Seconds(), r.bound.Seconds(),
			float64(r.pods)/r.running.Seconds(), r.running.Seconds(),
			r.stats.BindCalls, r.stats.BindErrors, r.cpu.Seconds(), float64(r.pods)/r.cpu.Seconds(),
			r.load, r.nodeSetup.Seconds(), r.podCreates)
	}
}

type benchResult struct {
	nodes, pods     int
	bound, running  time.Duration // from the scheduler's start
	stats           RunnerStats
	load            float64 // 1-minute load average when the clocks started
	nodeSetup       time.Duration
	podCreates      float64 // pods/s
	reportingErrors int64
	// cpu is the CPU time of the whole process (store, API server,
	// scheduler, hollow nodes) until every pod was Running.
	cpu time.Duration
}

// loadAverage is the 1-minute load average, or -1.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

func benchSchedOnce(t *testing.T, numNodes, numPods int) benchResult {
	srv := apiservertest.Start(t, apiservertest.StartSkiffStore(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	res := benchResult{nodes: numNodes, pods: numPods}

	start := time.Now()
	fleet, err := startHollowFleet(ctx, c, numNodes, 64)
	if err != nil {
		t.Fatalf("hollow nodes: %v", err)
	}
	defer fleet.stop()
	res.nodeSetup = time.Since(start)

	start = time.Now()
	err = parallel(numPods, 64, func(i int) error {
		p := mkPod(fmt.Sprintf("pod-%05d", i), req("cpu", "100m", "memory", "128Mi"), podLabels("app", fmt.Sprintf("app-%d", i%50)))
		p.Spec.Containers[0].Image = "busybox"
		return c.Create(ctx, p)
	})
	if err != nil {
		t.Fatalf("creating pods: %v", err)
	}
	res.podCreates = float64(numPods) / time.Since(start).Seconds()

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
	switch b := os.Getenv(benchBindEnv); b {
	case "", "bind":
	case "update":
		r.noBind.Store(true)
	default:
		t.Fatalf("%s=%q: want bind or update", benchBindEnv, b)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	if path := os.Getenv(benchProfileEnv); path != "" {
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
	res.load = loadAverage()
	cpu0 := processCPU()
	start = time.Now()
	go func() { done <- r.Run(rctx) }()
	defer func() {
		rcancel()
		<-done
	}()
	deadline := time.Now().Add(15 * time.Minute)
	for res.bound == 0 || fleet.running.Load() < int64(numPods) {
		if time.Now().After(deadline) {
			t.Fatalf("after 15 minutes: %d of %d pods bound, %d reported Running (stats %+v, %d reporting errors)",
				r.Stats().Scheduled, numPods, fleet.running.Load(), r.Stats(), fleet.errors.Load())
		}
		if res.bound == 0 && r.Stats().Scheduled >= int64(numPods) {
			res.bound = time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.running = time.Since(start)
	res.cpu = processCPU() - cpu0
	res.stats = r.Stats()
	res.reportingErrors = fleet.errors.Load()

	// Paged: 10,000 pods are more than one gRPC message may carry.
	unbound, notRunning, total := 0, 0, 0
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
			if p.Status.Phase != corev1.PodRunning {
				notRunning++
			}
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	if unbound > 0 || notRunning > 0 || total != numPods {
		t.Errorf("of %d pods (want %d), %d unbound and %d not Running after the runner counted %d bound and the hollow nodes %d Running",
			total, numPods, unbound, notRunning, r.Stats().Scheduled, fleet.running.Load())
	}
	return res
}
