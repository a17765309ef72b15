package bench

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Workload is one benchmark step. Run drives the cluster until ctx ends and
// returns one latency sample per completed operation.
type Workload struct {
	Name string
	// Setup, if set, prepares the cluster before the timed part.
	Setup func(ctx context.Context, c *Cluster) error
	Run   func(ctx context.Context, c *Cluster) ([]time.Duration, error)
}

// Result is a workload's figures on one cluster.
type Result struct {
	Ops     int
	Errors  int
	Elapsed time.Duration
	P50     time.Duration
	P99     time.Duration
	CPU     time.Duration // CPU time used by the members during the step
	Err     error
}

// OpsPerSec is completed operations per second of wall time.
func (r Result) OpsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Measure runs w for d against c and summarises it.
func Measure(ctx context.Context, c *Cluster, w Workload, d time.Duration) Result {
	if w.Setup != nil {
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := w.Setup(sctx, c)
		cancel()
		if err != nil {
			return Result{Err: fmt.Errorf("setup: %w", err)}
		}
	}
	cpu0 := c.CPU()
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat, err := w.Run(wctx, c)
	// Operations are counted over the step's duration; the few ms a step
	// takes to wind down (and a watch step's drain) are not load time.
	r := Result{Elapsed: min(time.Since(start), d), CPU: c.CPU() - cpu0, Err: err, Ops: len(lat)}
	if err == nil && ctx.Err() != nil {
		r.Err = ctx.Err()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.P50, r.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return r
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

// Workloads are the standard steps in table order.
func Workloads() []Workload {
	return []Workload{
		{"put-1", nil, putLoad(1)},
		{"put-16", nil, putLoad(16)},
		{"put-64", nil, putLoad(64)},
		{"put-256", nil, putLoad(256)},
		{"range-linearizable-64", populate, rangeLoad(64, false)},
		{"range-serializable-64", populate, rangeLoad(64, true)},
		{"txn-cas-64", nil, casLoad(64)},
		{"watch-fanout-100", nil, watchLoad(100)},
		{"watch-fanout-1000", nil, watchLoad(1000)},
	}
}

// Select picks workloads by comma-separated names or prefixes ("put"
// selects every put step); "" or "all" selects everything.
func Select(spec string) ([]Workload, error) {
	all := Workloads()
	if spec == "" || spec == "all" {
		return all, nil
	}
	var out []Workload
	for _, want := range strings.Split(spec, ",") {
		want = strings.TrimSpace(want)
		n := 0
		for _, w := range all {
			if w.Name == want || strings.HasPrefix(w.Name, want+"-") {
				out = append(out, w)
				n++
			}
		}
		if n == 0 {
			var names []string
			for _, w := range all {
				names = append(names, w.Name)
			}
			return nil, fmt.Errorf("no workload %q (have %s)", want, strings.Join(names, ", "))
		}
	}
	return out, nil
}

const (
	keySpace  = 10000
	valueSize = 256
	readKeys  = 1000
)

// clients opens n clients that balance over every member. Many goroutines
// share each client (gRPC multiplexes), as applications do.
func clients(c *Cluster, n int) ([]*clientv3.Client, func(), error) {
	var cs []*clientv3.Client
	closeAll := func() {
		for _, cli := range cs {
			cli.Close()
		}
	}
	for i := 0; i < n; i++ {
		cli, err := c.Client()
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		cs = append(cs, cli)
	}
	return cs, closeAll, nil
}

// closedLoop runs workers goroutines, each doing op back to back until ctx
// ends, and collects the latency of every successful op. Errors other than
// the end of the step fail the workload after the step.
func closedLoop(ctx context.Context, workers, conns int, c *Cluster, op func(ctx context.Context, cli *clientv3.Client, worker int, rng *rand.Rand) error) ([]time.Duration, error) {
	cs, closeAll, err := clients(c, min(conns, workers))
	if err != nil {
		return nil, err
	}
	defer closeAll()
	var (
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
		errs     int
		wg       sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := cs[w%len(cs)]
			rng := rand.New(rand.NewSource(int64(w)))
			lat := make([]time.Duration, 0, 1024)
			for ctx.Err() == nil {
				t0 := time.Now()
				err := op(ctx, cli, w, rng)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					mu.Lock()
					errs++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return all, fmt.Errorf("%d operations failed, first: %w", errs, firstErr)
	}
	return all, nil
}

func key(i int) string { return fmt.Sprintf("bench/%08d", i) }

func putLoad(workers int) func(context.Context, *Cluster) ([]time.Duration, error) {
	value := strings.Repeat("v", valueSize)
	return func(ctx context.Context, c *Cluster) ([]time.Duration, error) {
		return closedLoop(ctx, workers, 16, c, func(ctx context.Context, cli *clientv3.Client, _ int, rng *rand.Rand) error {
			_, err := cli.Put(ctx, key(rng.Intn(keySpace)), value)
			return err
		})
	}
}

// populate writes the keys the read workloads read, through a few workers.
func populate(ctx context.Context, c *Cluster) error {
	const n = readKeys
	cli, err := c.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	value := strings.Repeat("v", valueSize)
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if _, err := cli.Put(ctx, key(i), value); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func rangeLoad(workers int, serializable bool) func(context.Context, *Cluster) ([]time.Duration, error) {
	return func(ctx context.Context, c *Cluster) ([]time.Duration, error) {
		var o []clientv3.OpOption
		if serializable {
			o = append(o, clientv3.WithSerializable())
		}
		return closedLoop(ctx, workers, 16, c, func(ctx context.Context, cli *clientv3.Client, _ int, rng *rand.Rand) error {
			r, err := cli.Get(ctx, key(rng.Intn(readKeys)), o...)
			if err == nil && len(r.Kvs) != 1 {
				return fmt.Errorf("range of a populated key returned %d kvs", len(r.Kvs))
			}
			return err
		})
	}
}

// casLoad: each worker owns a key and updates it with a compare on its mod
// revision, as Skiff's API server does; a lost race reads the key back.
func casLoad(workers int) func(context.Context, *Cluster) ([]time.Duration, error) {
	return func(ctx context.Context, c *Cluster) ([]time.Duration, error) {
		revs := make([]int64, workers)
		return closedLoop(ctx, workers, 16, c, func(ctx context.Context, cli *clientv3.Client, w int, _ *rand.Rand) error {
			k := fmt.Sprintf("bench-cas/%04d", w)
			r, err := cli.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(k), "=", revs[w])).
				Then(clientv3.OpPut(k, strconv.FormatInt(revs[w], 10))).
				Else(clientv3.OpGet(k)).
				Commit()
			if err != nil {
				return err
			}
			if r.Succeeded {
				revs[w] = r.Header.Revision
			} else if g := r.Responses[0].GetResponseRange(); g != nil && len(g.Kvs) == 1 {
				revs[w] = g.Kvs[0].ModRevision
			}
			return nil
		})
	}
}

// watchLoad: watchers watch one key spread over 10 connections; one writer
// puts its send time 50 times a second; every delivered event is one op and
// its latency is delivery time minus send time.
func watchLoad(watchers int) func(context.Context, *Cluster) ([]time.Duration, error) {
	return func(ctx context.Context, c *Cluster) ([]time.Duration, error) {
		const conns = 10
		cs, closeAll, err := clients(c, conns)
		if err != nil {
			return nil, err
		}
		defer closeAll()
		k := fmt.Sprintf("bench-watch/%d", time.Now().UnixNano())
		base := time.Now()
		wctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var (
			mu      sync.Mutex
			all     []time.Duration
			wg      sync.WaitGroup
			created sync.WaitGroup
		)
		for i := 0; i < watchers; i++ {
			wg.Add(1)
			created.Add(1)
			wch := cs[i%conns].Watch(wctx, k, clientv3.WithCreatedNotify())
			go func() {
				defer wg.Done()
				var lat []time.Duration
				first := true
				for resp := range wch {
					if first {
						first = false
						created.Done()
					}
					now := time.Since(base)
					for _, e := range resp.Events {
						sent, err := strconv.ParseInt(string(e.Kv.Value), 10, 64)
						if err == nil {
							lat = append(lat, now-time.Duration(sent))
						}
					}
				}
				if first {
					created.Done()
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			}()
		}
		createdCh := make(chan struct{})
		go func() { created.Wait(); close(createdCh) }()
		select {
		case <-createdCh:
		case <-ctx.Done():
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("watchers not all created before the step ended")
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var werr error
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-tick.C:
				if _, err := cs[0].Put(ctx, k, strconv.FormatInt(int64(time.Since(base)), 10)); err != nil && ctx.Err() == nil {
					werr = err
					break loop
				}
			}
		}
		// Let events in flight arrive, then stop the watchers.
		drain := time.NewTimer(500 * time.Millisecond)
		<-drain.C
		cancel()
		wg.Wait()
		return all, werr
	}
}
