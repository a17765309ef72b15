package podstate

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestShouldRestart(t *testing.T) {
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		code   int32
		init   bool
		want   bool
	}{
		{corev1.RestartPolicyAlways, 0, false, true}, {corev1.RestartPolicyAlways, 1, false, true},
		{corev1.RestartPolicyAlways, 0, true, false}, {corev1.RestartPolicyAlways, 1, true, true},
		{corev1.RestartPolicyOnFailure, 0, false, false}, {corev1.RestartPolicyOnFailure, 137, false, true},
		{corev1.RestartPolicyNever, 1, false, false}, {"", 0, false, true},
	} {
		if got := ShouldRestart(tc.policy, tc.code, tc.init); got != tc.want {
			t.Errorf("ShouldRestart(%q, %d, init=%v) = %v, want %v", tc.policy, tc.code, tc.init, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := NewBackoff(0, 0, 0)
	now := time.Unix(1000, 0)
	var got []time.Duration
	for i := 0; i < 7; i++ {
		got = append(got, b.Next("p/c", now))
		now = now.Add(time.Second)
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if w, left := b.Waiting("p/c", now); !w || left != 299*time.Second {
		t.Errorf("Waiting right after: %v %v", w, left)
	}
	if w, _ := b.Waiting("p/c", now.Add(6*time.Minute)); w {
		t.Error("still waiting after the delay")
	}
	if d := b.Next("p/c", now.Add(11*time.Minute)); d != InitialBackoff {
		t.Errorf("after 11 min without restart: %v, want the initial delay", d)
	}
	b.Forget("p/c")
	if w, _ := b.Waiting("p/c", now); w {
		t.Error("waiting after Forget")
	}
}

func running(name string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func exited(name string, code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
}

func TestPhase(t *testing.T) {
	pod := func(policy corev1.RestartPolicy, init bool) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: policy, Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}}
		if init {
			p.Spec.InitContainers = []corev1.Container{{Name: "i"}}
		}
		return p
	}
	for _, tc := range []struct {
		name      string
		pod       *corev1.Pod
		init, app []corev1.ContainerStatus
		want      corev1.PodPhase
	}{
		{"nothing yet", pod(corev1.RestartPolicyAlways, false), nil, nil, corev1.PodPending},
		{"one started", pod(corev1.RestartPolicyAlways, false), nil, []corev1.ContainerStatus{running("a")}, corev1.PodPending},
		{"all running", pod(corev1.RestartPolicyAlways, false), nil, []corev1.ContainerStatus{running("a"), running("b")}, corev1.PodRunning},
		{"init running", pod(corev1.RestartPolicyAlways, true), []corev1.ContainerStatus{running("i")}, nil, corev1.PodPending},
		{"init failed, Never", pod(corev1.RestartPolicyNever, true), []corev1.ContainerStatus{exited("i", 1)}, nil, corev1.PodFailed},
		{"all done ok, Never", pod(corev1.RestartPolicyNever, false), nil, []corev1.ContainerStatus{exited("a", 0), exited("b", 0)}, corev1.PodSucceeded},
		{"one failed, Never", pod(corev1.RestartPolicyNever, false), nil, []corev1.ContainerStatus{exited("a", 0), exited("b", 2)}, corev1.PodFailed},
		{"failed, OnFailure restarts", pod(corev1.RestartPolicyOnFailure, false), nil, []corev1.ContainerStatus{exited("a", 0), exited("b", 2)}, corev1.PodRunning},
		{"exited, Always restarts", pod(corev1.RestartPolicyAlways, false), nil, []corev1.ContainerStatus{exited("a", 0), running("b")}, corev1.PodRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Phase(tc.pod, tc.init, tc.app); got != tc.want {
				t.Errorf("Phase = %s, want %s", got, tc.want)
			}
		})
	}
}
