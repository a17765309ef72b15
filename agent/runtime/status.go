package runtime

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	client "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
)

// ListPods rebuilds the view of every pod from containerd's labels and task
// states, sorted by namespace/name.
func (r *Runtime) ListPods(ctx context.Context) ([]PodStatus, error) {
	ctx = r.ns(ctx)
	cs, err := r.client.Containers(ctx, fmt.Sprintf(`labels.%q`, LabelPodUID))
	if err != nil {
		return nil, err
	}
	byUID := map[string][]client.Container{}
	for _, c := range cs {
		l, err := c.Labels(ctx)
		if err != nil {
			continue
		}
		byUID[l[LabelPodUID]] = append(byUID[l[LabelPodUID]], c)
	}
	out := make([]PodStatus, 0, len(byUID))
	for uid, cs := range byUID {
		out = append(out, *r.buildStatus(ctx, uid, cs))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// PodStatus is the view of one pod, or ErrPodNotFound.
func (r *Runtime) PodStatus(ctx context.Context, uid string) (*PodStatus, error) {
	return r.podStatus(r.ns(ctx), uid)
}

func (r *Runtime) podStatus(ctx context.Context, uid string) (*PodStatus, error) {
	cs, err := r.containersOf(ctx, uid, "")
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("%w: uid %s", ErrPodNotFound, uid)
	}
	return r.buildStatus(ctx, uid, cs), nil
}

func (r *Runtime) buildStatus(ctx context.Context, uid string, cs []client.Container) *PodStatus {
	ps := &PodStatus{UID: uid, SandboxState: StateUnknown, NetnsPath: r.netnsPath(uid), CgroupPath: r.podCgroup(uid)}
	for _, c := range cs {
		info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		l := info.Labels
		ps.Namespace, ps.Name = l[LabelPodNamespace], l[LabelPodName]
		if l[LabelRole] == roleSandbox {
			ps.SandboxID = c.ID()
			ps.IP = l[LabelPodIP]
			ps.NetnsPath = l[LabelNetns]
			ps.QOSClass = corev1.PodQOSClass(l[LabelQOS])
			ps.CreatedAt = info.CreatedAt
			if l[LabelUTSNS] != "" {
				// Pinned namespaces: the sandbox runs while they are
				// there (a reboot leaves the files, not the mounts).
				ps.SandboxState = StateExited
				if isPinnedNamespace(l[LabelNetns]) && isPinnedNamespace(l[LabelUTSNS]) && isPinnedNamespace(l[LabelIPCNS]) {
					ps.SandboxState = StateRunning
				}
			} else {
				ps.SandboxState = r.containerStatus(ctx, c).State // a pause process (earlier agents)
			}
			continue
		}
		ps.Containers = append(ps.Containers, r.containerStatus(ctx, c))
	}
	sort.SliceStable(ps.Containers, func(i, j int) bool {
		a, b := ps.Containers[i], ps.Containers[j]
		if a.Init != b.Init {
			return a.Init
		}
		return a.CreatedAt.Before(b.CreatedAt)
	})
	return ps
}

// containerStatus reads one container's labels and task state.
func (r *Runtime) containerStatus(ctx context.Context, c client.Container) ContainerStatus {
	cs := ContainerStatus{ID: c.ID(), State: StateUnknown}
	info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return cs
	}
	l := info.Labels
	cs.Name = l[LabelContainer]
	cs.Image = l[LabelImage]
	cs.Init = l[LabelRole] == roleInit
	cs.CreatedAt = info.CreatedAt
	cs.StartedAt = parseTime(l[LabelStartedAt])
	cs.RestartCount, _ = strconv.Atoi(l[LabelRestartCount])
	cs.LogPath = l[LabelLogPath]
	if code, ok := l[LabelLastExitCode]; ok {
		n, _ := strconv.Atoi(code)
		cs.LastTermination = &Termination{
			ExitCode:   int32(n),
			Reason:     l[LabelLastReason],
			StartedAt:  parseTime(l[LabelLastStartedAt]),
			FinishedAt: parseTime(l[LabelLastFinishedAt]),
		}
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return cs
	}
	if err != nil {
		return cs
	}
	st, err := task.Status(ctx)
	if err != nil {
		return cs
	}
	switch st.Status {
	case client.Running, client.Paused, client.Pausing:
		cs.State = StateRunning
		cs.Pid = task.Pid()
	case client.Created:
		cs.State = StateCreated
	case client.Stopped:
		cs.State = StateExited
		cs.ExitCode = int32(st.ExitStatus)
		cs.FinishedAt = st.ExitTime
		cs.OOMKilled = r.oomKilled(ctx, c, l)
		switch {
		case cs.OOMKilled:
			cs.Reason = "OOMKilled"
		case cs.ExitCode == 0:
			cs.Reason = "Completed"
		default:
			cs.Reason = "Error"
		}
	}
	return cs
}

// oomKilled decides whether an exited container was OOM-killed, from
// evidence only (never from exit code 137). The container's own memory
// cgroup counts the kills of its processes until the task is deleted, and
// is the best witness: a /tasks/oom event alone is not, because an OOM at
// the pod level notifies every container cgroup below it, the ones that
// lost nothing included. Once the cgroup is gone, what was recorded decides:
// the label written by noteCgroupOOM, or an OOM event seen for it.
func (r *Runtime) oomKilled(ctx context.Context, c client.Container, labels map[string]string) bool {
	if labels[LabelOOMKilled] == "true" {
		return true
	}
	if kills, ok := oomKills(r.podCgroup(labels[LabelPodUID]) + "/" + c.ID()); ok {
		if kills > 0 {
			r.persistOOM(ctx, c)
		}
		return kills > 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.oomSeen[c.ID()] || labels[LabelOOMEvent] == "true"
}

// noteCgroupOOM records, before a task's deletion removes its cgroup,
// whether the kernel OOM-killed any of the container's processes.
func (r *Runtime) noteCgroupOOM(ctx context.Context, c client.Container) {
	l, err := c.Labels(ctx)
	if err != nil || l[LabelRole] == roleSandbox || l[LabelOOMKilled] == "true" {
		return
	}
	if kills, ok := oomKills(r.podCgroup(l[LabelPodUID]) + "/" + c.ID()); ok && kills > 0 {
		r.persistOOM(ctx, c)
	}
}

func (r *Runtime) persistOOM(ctx context.Context, c client.Container) {
	_, _ = c.SetLabels(ctx, map[string]string{LabelOOMKilled: "true"})
}

// noteOOMEvent records a /tasks/oom event for the container.
func (r *Runtime) noteOOMEvent(ctx context.Context, c client.Container) {
	r.mu.Lock()
	r.oomSeen[c.ID()] = true
	r.mu.Unlock()
	_, _ = c.SetLabels(ctx, map[string]string{LabelOOMEvent: "true"})
}
