package podworker_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/agent/podworker"
)

func TestPullPolicyDefaults(t *testing.T) {
	for _, tc := range []struct {
		image string
		set   corev1.PullPolicy
		want  corev1.PullPolicy
	}{
		{image: "busybox", want: corev1.PullAlways},
		{image: "busybox:latest", want: corev1.PullAlways},
		{image: "127.0.0.1:5000/skiff/busybox", want: corev1.PullAlways}, // the port is no tag
		{image: "127.0.0.1:5000/skiff/busybox:latest", want: corev1.PullAlways},
		{image: "127.0.0.1:5000/skiff/busybox:1", want: corev1.PullIfNotPresent},
		{image: "busybox@sha256:" + sha, want: corev1.PullIfNotPresent},
		{image: "busybox:latest@sha256:" + sha, want: corev1.PullIfNotPresent},
		{image: "busybox:1", set: corev1.PullAlways, want: corev1.PullAlways},
		{image: "busybox", set: corev1.PullNever, want: corev1.PullNever},
	} {
		c := &corev1.Container{Image: tc.image, ImagePullPolicy: tc.set}
		if got := podworker.PullPolicy(c); got != tc.want {
			t.Errorf("PullPolicy(%q, set %q) = %q, want %q", tc.image, tc.set, got, tc.want)
		}
	}
}

const sha = "7f36567fd4fb4ee4793d07b910360c7fdb2d2182436a18577181e4d53f622bdb"
