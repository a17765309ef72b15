package runtime

import (
	"context"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/events"
	"github.com/containerd/typeurl/v2"
)

// Events delivers container exits and OOM notifications as they happen. An
// OOM event says the container's memory cgroup (or an ancestor, e.g. the
// pod's) hit its limit, not that this container lost a process: use
// ContainerStatus.OOMKilled for that. The channel
// is buffered; when the consumer falls behind, events are dropped (the
// consumer must reconcile from ListPods anyway: events are also lost across
// containerd restarts).
func (r *Runtime) Events() <-chan Event { return r.events }

func (r *Runtime) eventFilters() []string {
	return []string{
		fmt.Sprintf(`topic=="/tasks/exit",namespace==%q`, r.cfg.Namespace),
		fmt.Sprintf(`topic=="/tasks/oom",namespace==%q`, r.cfg.Namespace),
	}
}

// watchEvents reads the subscription New made (so that no event of a pod
// started right after New is missed), and re-subscribes after the daemon
// restarts, until ctx is cancelled.
func (r *Runtime) watchEvents(ctx context.Context, envs <-chan *events.Envelope, errs <-chan error) {
	defer close(r.done)
	for ctx.Err() == nil {
		if envs == nil {
			envs, errs = r.client.Subscribe(ctx, r.eventFilters()...)
		}
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case <-errs:
				break stream
			case env := <-envs:
				if env == nil || env.Event == nil {
					continue
				}
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				r.handleEvent(r.ns(ctx), env.Timestamp, v)
			}
		}
		envs, errs = nil, nil
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (r *Runtime) handleEvent(ctx context.Context, at time.Time, v any) {
	var ev Event
	switch e := v.(type) {
	case *apievents.TaskOOM:
		ev = Event{Kind: EventOOM, ContainerID: e.ContainerID, Time: at}
	case *apievents.TaskExit:
		if e.ID != e.ContainerID {
			return // an exec'd process, not the container
		}
		ev = Event{Kind: EventExited, ContainerID: e.ContainerID, ExitCode: e.ExitStatus, Time: at}
	default:
		return
	}
	c, err := r.client.LoadContainer(ctx, ev.ContainerID)
	if err != nil {
		return
	}
	l, err := c.Labels(ctx)
	if err != nil || l[LabelPodUID] == "" {
		return
	}
	ev.PodUID, ev.Container = l[LabelPodUID], l[LabelContainer]
	if ev.Kind == EventOOM && l[LabelRole] == roleSandbox {
		// With one shim per pod, runc's shim also reports the pause
		// container when a sibling hits its limit; the pause process was
		// not killed.
		return
	}
	if ev.Kind == EventOOM {
		r.noteOOMEvent(ctx, c)
	}
	select {
	case r.events <- ev:
	default:
	}
}
