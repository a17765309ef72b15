package node

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/agent/runtime"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// Top sampling windows: CPU use is a rate, so it is the difference of two
// readings of the cumulative counters. A second is what `kubectl top` users
// wait for anyway; the bound keeps a caller from holding a stream open.
const (
	defaultTopWindow = time.Second
	maxTopWindow     = 10 * time.Second
)

// userHZ is the unit of the times in /proc/stat (USER_HZ), 100 on every
// Linux architecture the agent runs on.
const userHZ = 100

// Top implements PodStreamService: it reads the cgroup counters of the
// node's running pods (and the node's own from /proc) twice, a window
// apart.
func (s *streamServer) Top(ctx context.Context, req *skiffv1.TopRequest) (*skiffv1.TopResponse, error) {
	if req.Node != "" && req.Node != s.a.cfg.Name {
		return nil, status.Errorf(codes.NotFound, "this is node %s, not %s", s.a.cfg.Name, req.Node)
	}
	if req.Pod != "" && req.Namespace == "" {
		return nil, status.Error(codes.InvalidArgument, "top: a pod needs its namespace")
	}
	window, err := topWindow(req.WindowMs)
	if err != nil {
		return nil, err
	}
	var pods []*corev1.Pod
	if !req.Nodes {
		for _, obj := range s.a.pods.List(labels.Everything()) {
			p := obj.(*corev1.Pod)
			if (req.Namespace == "" || p.Namespace == req.Namespace) && (req.Pod == "" || p.Name == req.Pod) {
				pods = append(pods, p)
			}
		}
		sort.Slice(pods, func(i, j int) bool {
			if pods[i].Namespace != pods[j].Namespace {
				return pods[i].Namespace < pods[j].Namespace
			}
			return pods[i].Name < pods[j].Name
		})
	}
	resp := &skiffv1.TopResponse{}

	// First readings, the window, second readings.
	cpu0, t0, nodeErr := nodeCPUTicks()
	before := make([][]runtime.ContainerStats, len(pods))
	for i, p := range pods {
		before[i], _ = s.a.rt.Stats(ctx, string(p.UID)) // a pod not running has nothing to show
	}
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	windowMs := int32(window / time.Millisecond)

	if req.Nodes {
		cpu1, t1, err := nodeCPUTicks()
		if nodeErr == nil {
			nodeErr = err
		}
		mem, err := nodeWorkingSet()
		if nodeErr == nil {
			nodeErr = err
		}
		if nodeErr != nil {
			return nil, status.Errorf(codes.Internal, "node %s: %v", s.a.cfg.Name, nodeErr)
		}
		used := time.Duration(cpu1-cpu0) * time.Second / userHZ
		resp.Nodes = append(resp.Nodes, &skiffv1.NodeUsage{
			Name:                  s.a.cfg.Name,
			CpuMillicores:         millicores(used, t1.Sub(t0)),
			MemoryWorkingSetBytes: mem,
			WindowMs:              windowMs,
		})
		return resp, nil
	}

	for i, p := range pods {
		after, err := s.a.rt.Stats(ctx, string(p.UID))
		if err != nil || len(after) == 0 {
			continue
		}
		pu := &skiffv1.PodUsage{Namespace: p.Namespace, Name: p.Name, Node: s.a.cfg.Name, WindowMs: windowMs}
		for _, a := range after {
			cu := &skiffv1.ContainerUsage{Name: a.Name, MemoryWorkingSetBytes: int64(a.MemoryWorkingSet)}
			for _, b := range before[i] {
				// A container restarted in the window has a new counter;
				// its use is unknown rather than negative.
				if b.Name == a.Name && a.CPUUsageNanos >= b.CPUUsageNanos && a.Time.After(b.Time) {
					cu.CpuMillicores = millicores(time.Duration(a.CPUUsageNanos-b.CPUUsageNanos), a.Time.Sub(b.Time))
				}
			}
			pu.Containers = append(pu.Containers, cu)
		}
		sort.Slice(pu.Containers, func(x, y int) bool { return pu.Containers[x].Name < pu.Containers[y].Name })
		resp.Pods = append(resp.Pods, pu)
	}
	return resp, nil
}

func topWindow(ms int32) (time.Duration, error) {
	switch w := time.Duration(ms) * time.Millisecond; {
	case ms == 0:
		return defaultTopWindow, nil
	case ms < 0 || w > maxTopWindow:
		return 0, status.Errorf(codes.InvalidArgument, "top: window_ms %d must be between 1 and %d", ms, maxTopWindow.Milliseconds())
	default:
		return w, nil
	}
}

// millicores is CPU time used over a wall-clock interval, in thousandths
// of a CPU, rounded to the nearest.
func millicores(used, over time.Duration) int64 {
	if over <= 0 {
		return 0
	}
	return (int64(used)*1000 + int64(over)/2) / int64(over)
}

// nodeCPUTicks reads the node's busy CPU time (all CPUs, in USER_HZ ticks:
// everything but idle and iowait) from the first line of /proc/stat.
func nodeCPUTicks() (uint64, time.Time, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, time.Time{}, err
	}
	defer f.Close()
	at := time.Now()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, at, fmt.Errorf("/proc/stat is empty")
	}
	return parseCPUStat(sc.Text(), at)
}

func parseCPUStat(line string, at time.Time) (uint64, time.Time, error) {
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, at, fmt.Errorf("/proc/stat: first line %q is not the cpu total", line)
	}
	var busy uint64
	// user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest time is already counted in user and nice.
	for i, f := range fields[1:] {
		if i >= 8 {
			break
		}
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, at, fmt.Errorf("/proc/stat: cpu field %d %q: %w", i+1, f, err)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, at, nil
}

// nodeWorkingSet is the node's memory in use that the kernel cannot
// reclaim without swapping: MemTotal less MemAvailable.
func nodeWorkingSet() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	return parseMeminfoWorkingSet(string(b))
}

func parseMeminfoWorkingSet(meminfo string) (int64, error) {
	vals := map[string]int64{}
	for _, l := range strings.Split(meminfo, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || (k != "MemTotal" && k != "MemAvailable") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/meminfo %s %q: %w", k, v, err)
		}
		vals[k] = kb * 1024
	}
	total, ok1 := vals["MemTotal"]
	avail, ok2 := vals["MemAvailable"]
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("/proc/meminfo lacks MemTotal or MemAvailable")
	}
	return total - avail, nil
}
