package api

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestGenerateJobSelector(t *testing.T) {
	src := "apiVersion: batch/v1\nkind: Job\nmetadata: {name: pi}\nspec:\n  template:\n    metadata: {labels: {app: pi}}\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: perl}]\n"
	tests := []struct {
		name       string
		mutate     func(j *batchv1.Job)
		wantSel    map[string]string
		wantLabels map[string]string
		wantErrs   string
	}{
		{
			name:       "generated",
			wantSel:    map[string]string{"batch.kubernetes.io/controller-uid": "u-1"},
			wantLabels: map[string]string{"app": "pi", "batch.kubernetes.io/controller-uid": "u-1", "controller-uid": "u-1", "batch.kubernetes.io/job-name": "pi", "job-name": "pi"},
		},
		{
			name: "manual selector is left alone",
			mutate: func(j *batchv1.Job) {
				j.Spec.ManualSelector = ptr(true)
				j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
			},
			wantSel:    map[string]string{"app": "pi"},
			wantLabels: map[string]string{"app": "pi"},
		},
		{
			name: "a selector the pods do not match fails validation",
			mutate: func(j *batchv1.Job) {
				j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}
			},
			wantSel:  map[string]string{"app": "other"},
			wantErrs: "spec.template.metadata.labels: FieldValueInvalid",
		},
		{
			name:    "no uid, no change",
			mutate:  func(j *batchv1.Job) { j.UID = "" },
			wantSel: nil, wantLabels: map[string]string{"app": "pi"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := loadDefaulted(t, src).(*batchv1.Job)
			j.UID = "u-1"
			if tt.mutate != nil {
				tt.mutate(j)
			}
			GenerateJobSelector(j)
			var sel map[string]string
			if j.Spec.Selector != nil {
				sel = j.Spec.Selector.MatchLabels
			}
			eq(t, "selector", sel, tt.wantSel)
			if tt.wantLabels != nil {
				eq(t, "template labels", j.Spec.Template.Labels, tt.wantLabels)
			}
			if got := summary(Validate(j)); got != tt.wantErrs {
				t.Errorf("validation = %q, want %q", got, tt.wantErrs)
			}
		})
	}
	long := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 64), UID: "u"}}
	GenerateJobSelector(long)
	if _, ok := long.Spec.Template.Labels[JobNameLabel]; ok {
		t.Errorf("a 64-character name was put in a label value")
	}
}

func TestPodQOSClass(t *testing.T) {
	tests := []struct {
		name       string
		containers string // YAML list of containers
		want       corev1.PodQOSClass
	}{
		{"nothing", "[{name: a, image: b}]", corev1.PodQOSBestEffort},
		{"only extended resources", "[{name: a, image: b, resources: {limits: {example.com/gpu: 1}}}]", corev1.PodQOSBestEffort},
		{"limits only, defaulted requests", "[{name: a, image: b, resources: {limits: {cpu: 1, memory: 1Gi}}}]", corev1.PodQOSGuaranteed},
		{"requests below limits", "[{name: a, image: b, resources: {requests: {cpu: 500m}, limits: {cpu: 1, memory: 1Gi}}}]", corev1.PodQOSBurstable},
		{"cpu only", "[{name: a, image: b, resources: {limits: {cpu: 1}}}]", corev1.PodQOSBurstable},
		{"one of two containers without limits", "[{name: a, image: b, resources: {limits: {cpu: 1, memory: 1Gi}}}, {name: c, image: b}]", corev1.PodQOSBurstable},
		{"requests only", "[{name: a, image: b, resources: {requests: {memory: 64Mi}}}]", corev1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadDefaulted(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: "+tt.containers+"\n").(*corev1.Pod)
			if got := PodQOSClass(&p.Spec); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPrepareForCreate(t *testing.T) {
	p := loadDefaulted(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: b}]\nstatus: {phase: Running, podIP: 10.0.0.1}\n").(*corev1.Pod)
	PrepareForCreate(p)
	eq(t, "pod status", p.Status, corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort})

	d := loadDefaulted(t, deployHead+"status: {replicas: 3, readyReplicas: 3}\n").(*appsv1.Deployment)
	PrepareForCreate(d)
	eq(t, "deployment status", d.Status, appsv1.DeploymentStatus{})

	n := loadDefaulted(t, "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus: {capacity: {cpu: 4}}\n").(*corev1.Node)
	PrepareForCreate(n)
	eq(t, "node keeps its status", n.Status.Capacity.Cpu().String(), "4")
	eq(t, "allocatable defaults to capacity", n.Status.Allocatable.Cpu().String(), "4")

	ns := loadDefaulted(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n").(*corev1.Namespace)
	PrepareForCreate(ns)
	eq(t, "namespace finalizers", ns.Spec.Finalizers, []corev1.FinalizerName{corev1.FinalizerKubernetes})

	j := loadDefaulted(t, "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, uid: u-2}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: b}]\n").(*batchv1.Job)
	PrepareForCreate(j)
	if j.Spec.Selector == nil || j.Spec.Selector.MatchLabels[JobControllerUIDLabel] != "u-2" {
		t.Errorf("job selector not generated: %+v", j.Spec.Selector)
	}
	if errs := Validate(j); len(errs) > 0 {
		t.Errorf("prepared job invalid: %v", errs.ToAggregate())
	}
}
