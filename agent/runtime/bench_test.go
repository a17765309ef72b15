package runtime_test

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/agent/runtime"
)

// TestManyPodsStartLatency starts SKIFF_BENCH_PODS pods (4 at a time) and
// logs the start latency percentiles: a figure, not an assertion. Skipped
// unless the variable is set:
//
//	SKIFF_BENCH_PODS=50 go test ./agent/runtime -run TestManyPods -v
func TestManyPodsStartLatency(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SKIFF_BENCH_PODS"))
	if n <= 0 {
		t.Skip("set SKIFF_BENCH_PODS=N to measure the start latency of N pods")
	}
	e := setup(t)
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 4)
	)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			pod := newPod(fmt.Sprintf("bench-%d", i), corev1.Container{Name: "web", Image: "nginx", Resources: limits("100m", "32Mi")})
			t0 := time.Now()
			_, err := e.rt.RunPod(ctx(t, 120*time.Second), runtime.PodInput{Pod: pod})
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			lat = append(lat, d)
		}(i)
	}
	wg.Wait()
	total := time.Since(start)
	for _, err := range errs {
		t.Error(err)
	}
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(time.Millisecond) }
	t.Logf("%d pods running in %v (4 in parallel); RunPod latency p50 %v p90 %v p99 %v max %v",
		len(lat), total.Round(time.Millisecond), pct(0.5), pct(0.9), pct(0.99), lat[len(lat)-1].Round(time.Millisecond))
	pods, err := e.rt.ListPods(ctx(t, 30*time.Second))
	if err != nil || len(pods) != n {
		t.Errorf("ListPods: %d pods, %v", len(pods), err)
	}
	start = time.Now()
	for _, p := range pods {
		if err := e.rt.RemovePod(ctx(t, 60*time.Second), p.UID, 0); err != nil {
			t.Error(err)
		}
	}
	t.Logf("removed %d pods in %v", len(pods), time.Since(start).Round(time.Millisecond))
}
