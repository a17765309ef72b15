package runtime

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ContainerIDPrefix is how Kubernetes writes containerd container IDs in
// status (containerStatuses[].containerID).
const ContainerIDPrefix = "containerd://"

// KubeStatus renders the runtime's view of a container as the Kubernetes
// container status: state running/terminated (or waiting ContainerCreating
// when created but not started), lastState from the previous instance,
// restartCount. Ready is left false: readiness is the prober's to set.
func (c ContainerStatus) KubeStatus() corev1.ContainerStatus {
	ks := corev1.ContainerStatus{
		Name:         c.Name,
		Image:        c.Image,
		ContainerID:  ContainerIDPrefix + c.ID,
		RestartCount: int32(c.RestartCount),
	}
	started := false
	switch c.State {
	case StateRunning:
		started = true
		ks.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.StartedAt)}
	case StateExited:
		ks.State.Terminated = &corev1.ContainerStateTerminated{
			ExitCode:    c.ExitCode,
			Reason:      c.Reason,
			StartedAt:   metav1.NewTime(c.StartedAt),
			FinishedAt:  metav1.NewTime(c.FinishedAt),
			ContainerID: ks.ContainerID,
		}
	case StateCreated:
		ks.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	default:
		ks.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerStatusUnknown",
			Message: "the container's task is gone (node restarted?)"}
	}
	ks.Started = &started
	if lt := c.LastTermination; lt != nil {
		ks.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{
			ExitCode:   lt.ExitCode,
			Reason:     lt.Reason,
			StartedAt:  metav1.NewTime(lt.StartedAt),
			FinishedAt: metav1.NewTime(lt.FinishedAt),
		}
	}
	return ks
}
