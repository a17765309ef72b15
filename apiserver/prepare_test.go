package apiserver_test

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
)

// Create does what Kubernetes does to a new object before validation: a
// client cannot create status, and a Job gets a selector from its uid.
func TestCreatePreparesObjects(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)

	p := pod("default", "claims-running", nil)
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.2.3"}
	if err := c.Create(ctx, p); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	got := &corev1.Pod{}
	if err := c.Get(ctx, "default", "claims-running", got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodPending || got.Status.PodIP != "" || got.Status.QOSClass != corev1.PodQOSGuaranteed {
		t.Errorf("created pod status = %+v, want Pending, no IP, QoS Guaranteed", got.Status)
	}

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pi"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "pi", Image: "busybox"}},
		}}},
		Status: batchv1.JobStatus{Succeeded: 5},
	}
	if err := c.Create(ctx, job); err != nil {
		t.Fatalf("create job: %v", err)
	}
	gotJob := &batchv1.Job{}
	if err := c.Get(ctx, "default", "pi", gotJob); err != nil {
		t.Fatal(err)
	}
	if gotJob.Status.Succeeded != 0 {
		t.Errorf("created job status succeeded = %d, want 0", gotJob.Status.Succeeded)
	}
	sel := gotJob.Spec.Selector
	if sel == nil || sel.MatchLabels["batch.kubernetes.io/controller-uid"] != string(gotJob.UID) {
		t.Fatalf("job selector = %v, want one on controller-uid %s", sel, gotJob.UID)
	}
	if gotJob.Spec.Template.Labels["batch.kubernetes.io/job-name"] != "pi" {
		t.Errorf("job template labels = %v, want job-name=pi", gotJob.Spec.Template.Labels)
	}
}

// New pods get what Kubernetes' default admission plugins add: the
// default service account, priority 0, and tolerations of the not-ready
// and unreachable taints — for 5 s by Skiff's default, not 300 s — unless
// the pod states its own.
func TestCreateAdmitsPods(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)

	if err := c.Create(ctx, pod("default", "plain", nil)); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	got := &corev1.Pod{}
	if err := c.Get(ctx, "default", "plain", got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.ServiceAccountName != "default" || got.Spec.Priority == nil || *got.Spec.Priority != 0 {
		t.Errorf("service account %q, priority %v; want default and 0", got.Spec.ServiceAccountName, got.Spec.Priority)
	}
	seconds := map[string]int64{}
	for _, tol := range got.Spec.Tolerations {
		if tol.Effect == corev1.TaintEffectNoExecute && tol.Operator == corev1.TolerationOpExists && tol.TolerationSeconds != nil {
			seconds[tol.Key] = *tol.TolerationSeconds
		}
	}
	if seconds[corev1.TaintNodeNotReady] != 5 || seconds[corev1.TaintNodeUnreachable] != 5 || len(got.Spec.Tolerations) != 2 {
		t.Errorf("tolerations = %+v, want not-ready and unreachable NoExecute for 5s", got.Spec.Tolerations)
	}

	own := pod("default", "patient", nil)
	own.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
		Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrInt64(600)}}
	if err := c.Create(ctx, own); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	if err := c.Get(ctx, "default", "patient", got); err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Tolerations) != 2 || *got.Spec.Tolerations[0].TolerationSeconds != 600 {
		t.Errorf("tolerations = %+v, want the pod's own unreachable one (600s) kept and a not-ready one added", got.Spec.Tolerations)
	}
}

func ptrInt64(v int64) *int64 { return &v }
