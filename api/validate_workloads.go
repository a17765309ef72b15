package api

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	pkglabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Controllers own the pods their selector matches, and create pods from
// their template: a template whose labels the selector does not match would
// create pods the controller does not see, forever.

// validateSelectorAndTemplate checks a workload's label selector and that it
// selects the pods its template makes. what names the kind in messages.
func validateSelectorAndTemplate(sel *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec, p *field.Path, what string) field.ErrorList {
	var errs field.ErrorList
	if sel == nil {
		return field.ErrorList{field.Required(p.Child("selector"), "")}
	}
	errs = append(errs, metavalidation.ValidateLabelSelector(sel, metavalidation.LabelSelectorValidationOptions{}, p.Child("selector"))...)
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		errs = append(errs, field.Invalid(p.Child("selector"), sel, "empty selector is invalid for "+what))
		return errs
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return errs // already reported by ValidateLabelSelector
	}
	if !selector.Matches(pkglabels.Set(tmpl.Labels)) {
		errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), tmpl.Labels, "`selector` does not match template `labels`"))
	}
	return errs
}

var alwaysRestart = podRules{restartPolicies: []corev1.RestartPolicy{corev1.RestartPolicyAlways}}

// validateLongRunningTemplate: pods of replica controllers run forever, so
// their template may not carry a deadline.
func validateLongRunningTemplate(t *corev1.PodTemplateSpec, p *field.Path, kind string) field.ErrorList {
	errs := validatePodTemplate(t, p, alwaysRestart)
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Invalid(p.Child("spec", "activeDeadlineSeconds"), *t.Spec.ActiveDeadlineSeconds,
			fmt.Sprintf("activeDeadlineSeconds in %s is not Supported", kind)))
	}
	return errs
}

func validateReplicationController(rc *corev1.ReplicationController) field.ErrorList {
	p := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, nonNegativePtr(rc.Spec.Replicas, p.Child("replicas"))...)
	errs = append(errs, nonNegative(int64(rc.Spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	if len(rc.Spec.Selector) == 0 {
		errs = append(errs, field.Required(p.Child("selector"), ""))
	} else {
		errs = append(errs, validLabels(rc.Spec.Selector, p.Child("selector"))...)
	}
	if rc.Spec.Template == nil {
		return append(errs, field.Required(p.Child("template"), ""))
	}
	if len(rc.Spec.Selector) > 0 && !pkglabels.SelectorFromSet(rc.Spec.Selector).Matches(pkglabels.Set(rc.Spec.Template.Labels)) {
		errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), rc.Spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	return append(errs, validateLongRunningTemplate(rc.Spec.Template, p.Child("template"), "ReplicationController")...)
}

func validateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	p := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, nonNegativePtr(rs.Spec.Replicas, p.Child("replicas"))...)
	errs = append(errs, nonNegative(int64(rs.Spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	errs = append(errs, validateSelectorAndTemplate(rs.Spec.Selector, &rs.Spec.Template, p, "replicaset")...)
	return append(errs, validateLongRunningTemplate(&rs.Spec.Template, p.Child("template"), "ReplicaSet")...)
}

func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	s := &d.Spec
	p := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, nonNegativePtr(s.Replicas, p.Child("replicas"))...)
	errs = append(errs, validateSelectorAndTemplate(s.Selector, &s.Template, p, "deployment")...)
	errs = append(errs, validateLongRunningTemplate(&s.Template, p.Child("template"), "Deployment")...)

	sp := p.Child("strategy")
	switch s.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.Strategy.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(sp.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if s.Strategy.RollingUpdate == nil {
			errs = append(errs, field.Required(sp.Child("rollingUpdate"), "this should be defaulted and never be nil"))
		} else {
			errs = append(errs, validateSurgeUnavailable(s.Strategy.RollingUpdate.MaxSurge, s.Strategy.RollingUpdate.MaxUnavailable, sp.Child("rollingUpdate"))...)
		}
	default:
		errs = append(errs, supported(s.Strategy.Type, sp.Child("type"), appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType)...)
	}
	errs = append(errs, nonNegative(int64(s.MinReadySeconds), p.Child("minReadySeconds"))...)
	errs = append(errs, nonNegativePtr(s.RevisionHistoryLimit, p.Child("revisionHistoryLimit"))...)
	if s.ProgressDeadlineSeconds != nil {
		errs = append(errs, nonNegativePtr(s.ProgressDeadlineSeconds, p.Child("progressDeadlineSeconds"))...)
		if *s.ProgressDeadlineSeconds <= s.MinReadySeconds {
			errs = append(errs, field.Invalid(p.Child("progressDeadlineSeconds"), *s.ProgressDeadlineSeconds, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

// validateSurgeUnavailable checks a rolling update's maxSurge and
// maxUnavailable: non-negative numbers or percentages, unavailable at most
// 100%, and not both zero (the rollout could never make progress).
func validateSurgeUnavailable(surge, unavailable *intstr.IntOrString, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, intOrPercent(surge, p.Child("maxSurge"))...)
	errs = append(errs, intOrPercent(unavailable, p.Child("maxUnavailable"))...)
	if unavailable != nil && unavailable.Type == intstr.String {
		if pct, ok := percentValue(*unavailable); ok && pct > 100 {
			errs = append(errs, field.Invalid(p.Child("maxUnavailable"), unavailable.StrVal, "must not be greater than 100%"))
		}
	}
	if isZero(surge) && isZero(unavailable) {
		errs = append(errs, field.Invalid(p.Child("maxUnavailable"), unavailable.String(), "may not be 0 when `maxSurge` is 0"))
	}
	return errs
}

func intOrPercent(v *intstr.IntOrString, p *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	switch v.Type {
	case intstr.Int:
		return nonNegative(int64(v.IntValue()), p)
	default:
		errs := invalidIfMsgs(p, v.StrVal, validation.IsValidPercent(v.StrVal))
		if len(errs) > 0 {
			return field.ErrorList{field.Invalid(p, v.StrVal, "must be an integer or percentage (e.g '5%')")}
		}
		return nil
	}
}

func percentValue(v intstr.IntOrString) (int, bool) {
	if v.Type != intstr.String || len(validation.IsValidPercent(v.StrVal)) > 0 {
		return 0, false
	}
	var n int
	_, err := fmt.Sscanf(v.StrVal, "%d%%", &n)
	return n, err == nil
}

func isZero(v *intstr.IntOrString) bool {
	if v == nil {
		return true
	}
	if v.Type == intstr.Int {
		return v.IntValue() == 0
	}
	n, ok := percentValue(*v)
	return ok && n == 0
}

func validateStatefulSet(ss *appsv1.StatefulSet) field.ErrorList {
	s := &ss.Spec
	p := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, supported(s.PodManagementPolicy, p.Child("podManagementPolicy"),
		appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)...)
	up := p.Child("updateStrategy")
	switch s.UpdateStrategy.Type {
	case appsv1.OnDeleteStatefulSetStrategyType:
		if s.UpdateStrategy.RollingUpdate != nil {
			errs = append(errs, field.Invalid(up.Child("rollingUpdate"), s.UpdateStrategy.RollingUpdate,
				"only allowed for updateStrategy 'RollingUpdate'"))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru != nil {
			errs = append(errs, nonNegativePtr(ru.Partition, up.Child("rollingUpdate", "partition"))...)
			if ru.MaxUnavailable != nil {
				errs = append(errs, intOrPercent(ru.MaxUnavailable, up.Child("rollingUpdate", "maxUnavailable"))...)
				if isZero(ru.MaxUnavailable) {
					errs = append(errs, field.Invalid(up.Child("rollingUpdate", "maxUnavailable"), ru.MaxUnavailable.String(), "must be greater than 0"))
				}
			}
		}
	default:
		errs = append(errs, supported(s.UpdateStrategy.Type, up.Child("type"),
			appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)...)
	}
	if s.ServiceName != "" {
		errs = append(errs, dnsLabel(s.ServiceName, p.Child("serviceName"))...)
	}
	errs = append(errs, nonNegativePtr(s.Replicas, p.Child("replicas"))...)
	errs = append(errs, nonNegative(int64(s.MinReadySeconds), p.Child("minReadySeconds"))...)
	errs = append(errs, nonNegativePtr(s.RevisionHistoryLimit, p.Child("revisionHistoryLimit"))...)
	if s.Ordinals != nil {
		errs = append(errs, nonNegative(int64(s.Ordinals.Start), p.Child("ordinals", "start"))...)
	}
	if r := s.PersistentVolumeClaimRetentionPolicy; r != nil {
		rp := p.Child("persistentVolumeClaimRetentionPolicy")
		errs = append(errs, supported(r.WhenDeleted, rp.Child("whenDeleted"), appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType)...)
		errs = append(errs, supported(r.WhenScaled, rp.Child("whenScaled"), appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType)...)
	}
	errs = append(errs, validateSelectorAndTemplate(s.Selector, &s.Template, p, "statefulset")...)
	// Each pod gets a volume per claim template, named after it, which its
	// containers mount: validate the template as the pods will be.
	tmpl := s.Template.DeepCopy()
	for _, c := range s.VolumeClaimTemplates {
		tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name},
		}})
	}
	errs = append(errs, validateLongRunningTemplate(tmpl, p.Child("template"), "StatefulSet")...)
	for i := range s.VolumeClaimTemplates {
		vp := p.Child("volumeClaimTemplates").Index(i)
		c := &s.VolumeClaimTemplates[i]
		if c.Name == "" {
			errs = append(errs, field.Required(vp.Child("metadata", "name"), ""))
		} else {
			errs = append(errs, dnsSubdomain(c.Name, vp.Child("metadata", "name"))...)
		}
		errs = append(errs, validatePVCSpec(&c.Spec, vp.Child("spec"))...)
	}
	return errs
}

// validateStatefulSetUpdate: a StatefulSet's identity (selector, service,
// claims, pod management) is fixed; only scale, template and the update
// knobs change.
func validateStatefulSetUpdate(newSS, oldSS *appsv1.StatefulSet) field.ErrorList {
	mutated := newSS.Spec.DeepCopy()
	mutated.Replicas = oldSS.Spec.Replicas
	mutated.Template = oldSS.Spec.Template
	mutated.UpdateStrategy = oldSS.Spec.UpdateStrategy
	mutated.MinReadySeconds = oldSS.Spec.MinReadySeconds
	mutated.PersistentVolumeClaimRetentionPolicy = oldSS.Spec.PersistentVolumeClaimRetentionPolicy
	mutated.RevisionHistoryLimit = oldSS.Spec.RevisionHistoryLimit
	mutated.Ordinals = oldSS.Spec.Ordinals
	if !apiequality.Semantic.DeepEqual(*mutated, oldSS.Spec) {
		return field.ErrorList{field.Forbidden(field.NewPath("spec"), "updates to statefulset spec for fields other than 'replicas', "+
			"'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")}
	}
	return nil
}

func validateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	s := &ds.Spec
	p := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, validateSelectorAndTemplate(s.Selector, &s.Template, p, "daemonset")...)
	errs = append(errs, validateLongRunningTemplate(&s.Template, p.Child("template"), "DaemonSet")...)
	errs = append(errs, nonNegative(int64(s.MinReadySeconds), p.Child("minReadySeconds"))...)
	errs = append(errs, nonNegativePtr(s.RevisionHistoryLimit, p.Child("revisionHistoryLimit"))...)
	up := p.Child("updateStrategy")
	switch s.UpdateStrategy.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru == nil {
			errs = append(errs, field.Required(up.Child("rollingUpdate"), ""))
		} else {
			errs = append(errs, validateSurgeUnavailable(ru.MaxSurge, ru.MaxUnavailable, up.Child("rollingUpdate"))...)
		}
	default:
		errs = append(errs, supported(s.UpdateStrategy.Type, up.Child("type"),
			appsv1.RollingUpdateDaemonSetStrategyType, appsv1.OnDeleteDaemonSetStrategyType)...)
	}
	return errs
}

func validateControllerRevision(cr *appsv1.ControllerRevision) field.ErrorList {
	var errs field.ErrorList
	if cr.Data.Raw == nil && cr.Data.Object == nil {
		errs = append(errs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	return append(errs, nonNegative(cr.Revision, field.NewPath("revision"))...)
}

// validateJobSpec checks a Job's spec; topLevel is false inside a CronJob's
// jobTemplate, whose selector the Job gets only when it is created.
func validateJobSpec(s *batchv1.JobSpec, p *field.Path, topLevel bool) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegativePtr(s.Parallelism, p.Child("parallelism"))...)
	errs = append(errs, nonNegativePtr(s.Completions, p.Child("completions"))...)
	errs = append(errs, positivePtr(s.ActiveDeadlineSeconds, p.Child("activeDeadlineSeconds"))...)
	errs = append(errs, nonNegativePtr(s.BackoffLimit, p.Child("backoffLimit"))...)
	errs = append(errs, nonNegativePtr(s.TTLSecondsAfterFinished, p.Child("ttlSecondsAfterFinished"))...)
	if s.CompletionMode != nil {
		errs = append(errs, supported(*s.CompletionMode, p.Child("completionMode"), batchv1.NonIndexedCompletion, batchv1.IndexedCompletion)...)
		if *s.CompletionMode == batchv1.IndexedCompletion && s.Completions == nil {
			errs = append(errs, field.Required(p.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
		}
	}
	if s.Selector != nil {
		errs = append(errs, validateSelectorAndTemplate(s.Selector, &s.Template, p, "job")...)
	}
	// A Job's pods run to completion: restarting them always would never
	// let the Job finish.
	errs = append(errs, validatePodTemplate(&s.Template, p.Child("template"), podRules{
		restartPolicies: []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever},
	})...)
	return errs
}

// validateJobUpdate: a Job's selector and pod template are fixed once it
// runs pods (Kubernetes relaxes the template for suspended jobs' scheduling
// directives; Skiff does not yet).
func validateJobUpdate(newJob, oldJob *batchv1.Job) field.ErrorList {
	p := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, immutable(newJob.Spec.Selector, oldJob.Spec.Selector, p.Child("selector"))...)
	errs = append(errs, immutable(newJob.Spec.Template, oldJob.Spec.Template, p.Child("template"))...)
	errs = append(errs, immutable(newJob.Spec.Completions, oldJob.Spec.Completions, p.Child("completions"))...)
	errs = append(errs, immutable(newJob.Spec.CompletionMode, oldJob.Spec.CompletionMode, p.Child("completionMode"))...)
	return errs
}

// cronJobNameMax: a CronJob's jobs are named <name>-<11 digit time>, and a
// Job's name must leave room for its pods' suffix, so 52 characters.
const cronJobNameMax = 52

func validateCronJob(cj *batchv1.CronJob) field.ErrorList {
	s := &cj.Spec
	p := field.NewPath("spec")
	var errs field.ErrorList
	if len(cj.Name) > cronJobNameMax {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), cj.Name, fmt.Sprintf("must be no more than %d characters", cronJobNameMax)))
	}
	if s.Schedule == "" {
		errs = append(errs, field.Required(p.Child("schedule"), ""))
	} else if err := ParseSchedule(s.Schedule); err != nil {
		errs = append(errs, field.Invalid(p.Child("schedule"), s.Schedule, err.Error()))
	}
	if s.TimeZone != nil && *s.TimeZone == "" {
		errs = append(errs, field.Invalid(p.Child("timeZone"), "", "unknown time zone"))
	}
	errs = append(errs, supported(s.ConcurrencyPolicy, p.Child("concurrencyPolicy"),
		batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent)...)
	errs = append(errs, nonNegativePtr(s.StartingDeadlineSeconds, p.Child("startingDeadlineSeconds"))...)
	errs = append(errs, nonNegativePtr(s.SuccessfulJobsHistoryLimit, p.Child("successfulJobsHistoryLimit"))...)
	errs = append(errs, nonNegativePtr(s.FailedJobsHistoryLimit, p.Child("failedJobsHistoryLimit"))...)
	jp := p.Child("jobTemplate")
	errs = append(errs, validLabels(s.JobTemplate.Labels, jp.Child("metadata", "labels"))...)
	return append(errs, validateJobSpec(&s.JobTemplate.Spec, jp.Child("spec"), false)...)
}

func validateHPA(h *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	s := &h.Spec
	p := field.NewPath("spec")
	var errs field.ErrorList
	ref := p.Child("scaleTargetRef")
	if s.ScaleTargetRef.Kind == "" {
		errs = append(errs, field.Required(ref.Child("kind"), ""))
	} else {
		errs = append(errs, invalidIfMsgs(ref.Child("kind"), s.ScaleTargetRef.Kind, content.IsPathSegmentName(s.ScaleTargetRef.Kind))...)
	}
	if s.ScaleTargetRef.Name == "" {
		errs = append(errs, field.Required(ref.Child("name"), ""))
	} else {
		errs = append(errs, invalidIfMsgs(ref.Child("name"), s.ScaleTargetRef.Name, content.IsPathSegmentName(s.ScaleTargetRef.Name))...)
	}
	if s.MinReplicas != nil && *s.MinReplicas < 1 {
		errs = append(errs, field.Invalid(p.Child("minReplicas"), *s.MinReplicas, "must be greater than or equal to 1"))
	}
	if s.MaxReplicas < 1 {
		errs = append(errs, field.Invalid(p.Child("maxReplicas"), s.MaxReplicas, "must be greater than 0"))
	}
	if s.MinReplicas != nil && s.MaxReplicas < *s.MinReplicas {
		errs = append(errs, field.Invalid(p.Child("maxReplicas"), s.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	for i, m := range s.Metrics {
		errs = append(errs, validateMetric(m, p.Child("metrics").Index(i))...)
	}
	return errs
}

func validateMetric(m autoscalingv2.MetricSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	types := []autoscalingv2.MetricSourceType{autoscalingv2.ObjectMetricSourceType, autoscalingv2.PodsMetricSourceType,
		autoscalingv2.ResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType}
	if e := supported(m.Type, p.Child("type"), types...); len(e) > 0 {
		return e
	}
	set := setPointerFields(&m)
	if len(set) != 1 {
		return append(errs, field.Forbidden(p, "must populate exactly one metric source matching `type`"))
	}
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType:
		if m.Resource == nil {
			return append(errs, field.Required(p.Child("resource"), "must populate information for the given metric source"))
		}
		if m.Resource.Name == "" {
			errs = append(errs, field.Required(p.Child("resource", "name"), ""))
		}
		errs = append(errs, validateMetricTarget(m.Resource.Target, p.Child("resource", "target"), false)...)
	case autoscalingv2.ContainerResourceMetricSourceType:
		if m.ContainerResource == nil {
			return append(errs, field.Required(p.Child("containerResource"), "must populate information for the given metric source"))
		}
		if m.ContainerResource.Container == "" {
			errs = append(errs, field.Required(p.Child("containerResource", "container"), ""))
		}
		errs = append(errs, validateMetricTarget(m.ContainerResource.Target, p.Child("containerResource", "target"), false)...)
	case autoscalingv2.PodsMetricSourceType:
		if m.Pods == nil {
			return append(errs, field.Required(p.Child("pods"), "must populate information for the given metric source"))
		}
		errs = append(errs, validateMetricTarget(m.Pods.Target, p.Child("pods", "target"), false)...)
	case autoscalingv2.ObjectMetricSourceType:
		if m.Object == nil {
			return append(errs, field.Required(p.Child("object"), "must populate information for the given metric source"))
		}
		errs = append(errs, validateMetricTarget(m.Object.Target, p.Child("object", "target"), true)...)
	case autoscalingv2.ExternalMetricSourceType:
		if m.External == nil {
			return append(errs, field.Required(p.Child("external"), "must populate information for the given metric source"))
		}
		errs = append(errs, validateMetricTarget(m.External.Target, p.Child("external", "target"), true)...)
	}
	return errs
}

func validateMetricTarget(t autoscalingv2.MetricTarget, p *field.Path, valueAllowed bool) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, supported(t.Type, p.Child("type"), autoscalingv2.UtilizationMetricType, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType)...)
	switch t.Type {
	case autoscalingv2.UtilizationMetricType:
		if t.AverageUtilization == nil {
			errs = append(errs, field.Required(p.Child("averageUtilization"), "must set `averageUtilization` when `type` is Utilization"))
		} else if *t.AverageUtilization < 1 {
			errs = append(errs, field.Invalid(p.Child("averageUtilization"), *t.AverageUtilization, "must be greater than 0"))
		}
	case autoscalingv2.AverageValueMetricType:
		if t.AverageValue == nil {
			errs = append(errs, field.Required(p.Child("averageValue"), "must set `averageValue` when `type` is AverageValue"))
		} else if t.AverageValue.Sign() <= 0 {
			errs = append(errs, field.Invalid(p.Child("averageValue"), t.AverageValue.String(), "must be positive"))
		}
	case autoscalingv2.ValueMetricType:
		if !valueAllowed {
			errs = append(errs, field.NotSupported(p.Child("type"), t.Type, []autoscalingv2.MetricTargetType{autoscalingv2.UtilizationMetricType, autoscalingv2.AverageValueMetricType}))
		} else if t.Value == nil {
			errs = append(errs, field.Required(p.Child("value"), "must set `value` when `type` is Value"))
		} else if t.Value.Sign() <= 0 {
			errs = append(errs, field.Invalid(p.Child("value"), t.Value.String(), "must be positive"))
		}
	}
	return errs
}
