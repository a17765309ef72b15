package sched

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Benchmarks of the pure core: no API, no binding. The cluster is N nodes
// of 32 cpu / 128Gi / 110 pods in three zones; the pods belong to ten
// ReplicaSets and request 100m / 256Mi, like a typical stateless workload.
// Run with:
//
//	go test ./sched -run '^$' -bench . -benchtime 20000x
//
// pods/s is the figure to read; it includes filtering, scoring, the
// tie-break and assuming the placement into the snapshot. The machine is
// shared, so pods/cpu-s (pods per second of process CPU time, GC included)
// is reported beside it: it does not drop when other processes take the
// cores.

func benchCluster(b *testing.B, nodes int) *Scheduler {
	b.Helper()
	snap := NewSnapshot()
	for i := range nodes {
		snap.AddNode(mkNode(fmt.Sprintf("node-%05d", i),
			alloc("cpu", "32"), alloc("memory", "128Gi"), alloc("pods", "110"),
			nodeLabels("topology.kubernetes.io/zone", fmt.Sprintf("zone-%d", i%3))))
	}
	s, err := New(snap, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchPods(n int, opts ...podOpt) []*corev1.Pod {
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		rs := fmt.Sprintf("rs-%d", i%10)
		pods[i] = mkPod(fmt.Sprintf("%s-%d", rs, i), append([]podOpt{
			podLabels("app", rs), ownedBy(rs), req("cpu", "100m", "memory", "256Mi"),
		}, opts...)...)
	}
	return pods
}

// BenchmarkSchedule places one pod per iteration (and assumes it). Every
// 10,000 pods the cluster is emptied, off the clock, so the figure is that
// of scheduling 10,000 pods onto an empty cluster.
func BenchmarkSchedule(b *testing.B) {
	for _, nodes := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			benchScheduleOne(b, nodes, benchPods(10000))
		})
	}
}

// BenchmarkScheduleConstrained is the same with pods that carry a zone
// spread constraint (ScheduleAnyway) and a preferred hostname
// anti-affinity, the expensive kinds: each needs a walk over every pod.
func BenchmarkScheduleConstrained(b *testing.B) {
	for _, nodes := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			pods := benchPods(10000, func(p *corev1.Pod) {
				app := p.Labels["app"]
				spread("topology.kubernetes.io/zone", 1, corev1.ScheduleAnyway, map[string]string{"app": app})(p)
				affinity(&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
					PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
						Weight: 10, PodAffinityTerm: podTerm("kubernetes.io/hostname", map[string]string{"app": app}),
					}},
				}})(p)
			})
			benchScheduleOne(b, nodes, pods[:2000])
		})
	}
}

// cpuClock measures process CPU time around the timed parts only.
type cpuClock struct {
	total time.Duration
	mark  time.Duration
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (c *cpuClock) start() { c.mark = processCPU() }
func (c *cpuClock) stop()  { c.total += processCPU() - c.mark }

func reportRates(b *testing.B, pods int, cpu *cpuClock) {
	b.ReportMetric(float64(pods)/b.Elapsed().Seconds(), "pods/s")
	if cpu.total > 0 {
		b.ReportMetric(float64(pods)/cpu.total.Seconds(), "pods/cpu-s")
	}
}

func benchScheduleOne(b *testing.B, nodes int, pods []*corev1.Pod) {
	s := benchCluster(b, nodes)
	var cpu cpuClock
	b.ReportAllocs()
	b.ResetTimer()
	cpu.start()
	for i := range b.N {
		k := i % len(pods)
		if k == 0 && i > 0 {
			b.StopTimer()
			cpu.stop()
			s = benchCluster(b, nodes)
			cpu.start()
			b.StartTimer()
		}
		if pl := s.ScheduleBatch(pods[k : k+1])[0]; pl.Err != nil {
			b.Fatal(pl.Err)
		}
	}
	cpu.stop()
	reportRates(b, b.N, &cpu)
}

// BenchmarkScheduleBatch10k is the scenario for the core: one
// ScheduleBatch of 10,000 pods onto an empty cluster per iteration.
func BenchmarkScheduleBatch10k(b *testing.B) {
	pods := benchPods(10000)
	for _, nodes := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			var cpu cpuClock
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				s := benchCluster(b, nodes)
				cpu.start()
				b.StartTimer()
				for _, pl := range s.ScheduleBatch(pods) {
					if pl.Err != nil {
						b.Fatal(pl.Err)
					}
				}
				b.StopTimer()
				cpu.stop()
				b.StartTimer()
			}
			reportRates(b, b.N*len(pods), &cpu)
		})
	}
}

// BenchmarkSnapshotAddPod is the informer side: recording a bound pod (as
// when the watch confirms a binding), at 5,000 nodes.
func BenchmarkSnapshotAddPod(b *testing.B) {
	s := benchCluster(b, 5000)
	pods := benchPods(10000)
	bound := make([]*corev1.Pod, len(pods))
	for i, p := range pods {
		bound[i] = p.DeepCopy()
		bound[i].Spec.NodeName = fmt.Sprintf("node-%05d", i%5000)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.snap.AddPod(bound[i%len(bound)]); err != nil {
			b.Fatal(err)
		}
	}
}
