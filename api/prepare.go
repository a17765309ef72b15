package api

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
