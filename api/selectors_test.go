package api

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFieldSelectors(t *testing.T) {
	pods, _ := ResolveResource("pods")
	deploys, _ := ResolveResource("deploy")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "prod", Labels: map[string]string{"app": "web", "tier": "front"}},
		Spec:       corev1.PodSpec{NodeName: "n1", RestartPolicy: corev1.RestartPolicyAlways},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	tests := []struct {
		info    KindInfo
		field   string
		label   string
		match   bool
		wantErr string
	}{
		{info: pods, field: "spec.nodeName=n1", match: true},
		{info: pods, field: "spec.nodeName=", match: false},
		{info: pods, field: "spec.nodeName=n1,status.phase!=Running", match: false},
		{info: pods, field: "metadata.namespace=prod,metadata.name=web-1", match: true},
		{info: pods, field: "spec.hostNetwork=false", label: "app=web,tier in (front,back)", match: true},
		{info: pods, label: "app=web,!canary", match: true},
		{info: pods, label: "app notin (web)", match: false},
		{info: pods, field: "spec.containers=x", wantErr: "field label not supported: spec.containers"},
		{info: deploys, field: "status.replicas=1", wantErr: "field label not supported"},
		{info: pods, field: "a==b==c", wantErr: "invalid field selector"},
		{info: pods, label: "app in web", wantErr: "invalid label selector"},
	}
	for _, tt := range tests {
		t.Run(tt.field+"|"+tt.label, func(t *testing.T) {
			fs, err := ParseFieldSelector(tt.info, tt.field)
			if err == nil {
				ls, lerr := ParseLabelSelector(tt.label)
				err = lerr
				if err == nil {
					if got := Matches(pod, ls, fs); got != tt.match {
						t.Errorf("Matches = %v, want %v", got, tt.match)
					}
				}
			}
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	if !Matches(&appsv1.Deployment{}, nil, nil) {
		t.Errorf("nil selectors must match everything")
	}
	// Every advertised field has a value in SelectableFields.
	for _, k := range Kinds() {
		set := SelectableFields(k.New())
		for _, f := range SelectableFieldNames(k) {
			if _, ok := set[f]; !ok {
				t.Errorf("%s: advertised field %s missing from SelectableFields", k.GVK.Kind, f)
			}
		}
	}
}
