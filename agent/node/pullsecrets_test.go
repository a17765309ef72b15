package node

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPullSecrets(t *testing.T) {
	g := &fakeGetter{secrets: map[string]*corev1.Secret{
		"app/regcred": {ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson},
		"other/leak":  {ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "leak"}},
	}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "p"},
		Spec: corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{ref("missing"), ref("regcred"), ref("leak")}}}
	got, err := PullSecrets(g)(context.Background(), pod)
	if len(got) != 1 || got[0].Name != "regcred" {
		t.Errorf("got %d secrets (%v), want regcred only", len(got), got)
	}
	// Only the pod's namespace is read: other/leak is not the pod's.
	if err == nil || !strings.Contains(err.Error(), "app/missing not found") || !strings.Contains(err.Error(), "app/leak not found") {
		t.Errorf("error %v should name app/missing and app/leak", err)
	}
	none, err := PullSecrets(g)(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app"}})
	if len(none) != 0 || err != nil || g.reads != 3 {
		t.Errorf("pod without secrets: %v, %v after %d reads, want nothing and no read", none, err, g.reads)
	}
}
