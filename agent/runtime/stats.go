package runtime

import (
	"context"
	"fmt"
	"time"

	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	_ "github.com/containerd/containerd/metrics/types/v1" // registers the cgroup v1 metrics type
	"github.com/containerd/typeurl/v2"
)

// Stats returns cgroup statistics of every running container of a pod
// (the sandbox excluded), from containerd's task metrics.
func (r *Runtime) Stats(ctx context.Context, uid string) ([]ContainerStats, error) {
	ctx = r.ns(ctx)
	cs, err := r.containersOf(ctx, uid, "")
	if err != nil {
		return nil, err
	}
	var out []ContainerStats
	for _, c := range cs {
		l, err := c.Labels(ctx)
		if err != nil || l[LabelRole] == roleSandbox {
			continue
		}
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue
		}
		m, err := task.Metrics(ctx)
		if err != nil {
			continue // not running
		}
		v, err := typeurl.UnmarshalAny(m.Data)
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", c.ID(), err)
		}
		s, ok := v.(*v1stats.Metrics)
		if !ok {
			return nil, fmt.Errorf("metrics of %s: unexpected type %T (cgroup v1 expected)", c.ID(), v)
		}
		st := ContainerStats{Name: l[LabelContainer], Time: time.Now()}
		if m.Timestamp != nil {
			st.Time = m.Timestamp.AsTime()
		}
		if s.CPU != nil && s.CPU.Usage != nil {
			st.CPUUsageNanos = s.CPU.Usage.Total
		}
		if s.Memory != nil && s.Memory.Usage != nil {
			st.MemoryUsage = s.Memory.Usage.Usage
			st.MemoryLimit = s.Memory.Usage.Limit
			st.MemoryWorkingSet = st.MemoryUsage
			if s.Memory.TotalInactiveFile < st.MemoryUsage {
				st.MemoryWorkingSet -= s.Memory.TotalInactiveFile
			}
		}
		if s.Pids != nil {
			st.Pids = s.Pids.Current
		}
		out = append(out, st)
	}
	return out, nil
}
