package api

import (
	"reflect"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Labels the API server puts on a Job's pod template to tie its pods to it.
const (
	JobControllerUIDLabel       = batchv1.ControllerUidLabel
	JobNameLabel                = batchv1.JobNameLabel
	legacyJobControllerUIDLabel = "controller-uid"
	legacyJobNameLabel          = "job-name"
)

// GenerateJobSelector does what Kubernetes' API server does when a Job is
// created, once the Job has its uid: unless spec.manualSelector is true, it
// labels the pod template with the Job's uid and name (in the current and
// the legacy label keys) and, when the Job has no selector, selects pods by
// the uid label. A uid is unique to this Job, so its pods can never be
// confused with another Job's of the same name. It does nothing to a Job
// without a uid. Validation afterwards checks the selector matches.
func GenerateJobSelector(job *batchv1.Job) {
	if job.UID == "" || (job.Spec.ManualSelector != nil && *job.Spec.ManualSelector) {
		return
	}
	uid := string(job.UID)
	l := job.Spec.Template.Labels
	if l == nil {
		l = map[string]string{}
	}
	l[JobControllerUIDLabel] = uid
	l[legacyJobControllerUIDLabel] = uid
	// A name too long for a label value is left out rather than failing.
	if len(validation.IsValidLabelValue(job.Name)) == 0 {
		l[JobNameLabel] = job.Name
		l[legacyJobNameLabel] = job.Name
	}
	job.Spec.Template.Labels = l
	if job.Spec.Selector == nil {
		job.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{JobControllerUIDLabel: uid}}
	}
}

// PrepareForCreate does to a new object what Kubernetes' API server does
// on create besides defaulting, before validation: a client cannot create
// status, so status is cleared (a Pod starts Pending, with its QoS class;
// a Namespace Active, with the kubernetes finalizer); a Job with a uid gets its generated selector. The
// API server calls it after assigning uid, then Default, then Validate.
func PrepareForCreate(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		o.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: PodQOSClass(&o.Spec)}
		return
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
		// The namespace controller removes this finalizer once the
		// namespace's contents are gone, and only then the namespace.
		if len(o.Spec.Finalizers) == 0 {
			o.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
		}
		return
	case *batchv1.Job:
		GenerateJobSelector(o)
	case *corev1.Node, *corev1.PersistentVolume, *corev1.PersistentVolumeClaim:
		// Kubernetes lets these be created with status (kubelets
		// register nodes with theirs; volumes are bound by status).
		return
	}
	clearStatus(obj)
}

// clearStatus zeroes an object's Status field, if it has one.
func clearStatus(obj runtime.Object) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return
	}
	if f := v.Elem().FieldByName("Status"); f.IsValid() && f.CanSet() && f.Kind() == reflect.Struct {
		f.Set(reflect.Zero(f.Type()))
	}
}

// PodQOSClass computes a pod's quality-of-service class from its
// containers' CPU and memory requests and limits, as the kubelet and
// scheduler use it: BestEffort with none at all, Guaranteed when every
// container limits both and requests equal limits, Burstable otherwise.
// Call it on a defaulted spec (requests default to limits).
func PodQOSClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	requests := corev1.ResourceList{}
	limits := corev1.ResourceList{}
	guaranteed := true
	qosResource := func(n corev1.ResourceName) bool { return n == corev1.ResourceCPU || n == corev1.ResourceMemory }
	containers := append(append([]corev1.Container(nil), spec.Containers...), spec.InitContainers...)
	for _, c := range containers {
		for n, q := range c.Resources.Requests {
			if qosResource(n) && q.Sign() > 0 {
				addQuantity(requests, n, q)
			}
		}
		found := 0
		for n, q := range c.Resources.Limits {
			if qosResource(n) && q.Sign() > 0 {
				addQuantity(limits, n, q)
				found++
			}
		}
		if found < 2 {
			guaranteed = false
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		for n, r := range requests {
			if l, ok := limits[n]; !ok || l.Cmp(r) != 0 {
				guaranteed = false
				break
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// addQuantity adds q to list[n], without sharing q's storage.
func addQuantity(list corev1.ResourceList, n corev1.ResourceName, q resource.Quantity) {
	sum := list[n].DeepCopy()
	sum.Add(q)
	list[n] = sum
}
