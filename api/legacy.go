package api

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Older API versions Kubernetes still serves for a served kind: manifests
// written for them decode, strictly against the old version's type, and
// are converted to the served version as the Kubernetes API server would
// store them. Only autoscaling/v1 HorizontalPodAutoscaler, common in course
// material (targetCPUUtilizationPercentage), needs this today.
type legacyKind struct {
	to  schema.GroupVersionKind
	new func() runtime.Object
	// convert returns the served-version object; lines maps field paths
	// to manifest lines and is updated for renamed fields.
	convert func(obj runtime.Object, lines map[string]int) runtime.Object
}

var legacyKinds = map[schema.GroupVersionKind]legacyKind{
	autoscalingv1.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"): {
		to:      autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"),
		new:     func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscaler{} },
		convert: convertHPAv1,
	},
}

// convertHPAv1 turns an autoscaling/v1 HPA into autoscaling/v2: the CPU
// utilization target becomes a Resource metric, as Kubernetes converts it.
func convertHPAv1(obj runtime.Object, lines map[string]int) runtime.Object {
	in := obj.(*autoscalingv1.HorizontalPodAutoscaler)
	out := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: in.ObjectMeta}
	out.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
			Kind: in.Spec.ScaleTargetRef.Kind, Name: in.Spec.ScaleTargetRef.Name, APIVersion: in.Spec.ScaleTargetRef.APIVersion,
		},
		MinReplicas: in.Spec.MinReplicas,
		MaxReplicas: in.Spec.MaxReplicas,
	}
	if t := in.Spec.TargetCPUUtilizationPercentage; t != nil {
		out.Spec.Metrics = []autoscalingv2.MetricSpec{cpuUtilization(*t)}
		if l, ok := lines["spec.targetCPUUtilizationPercentage"]; ok {
			for _, p := range []string{"spec.metrics", "spec.metrics[0]", "spec.metrics[0].resource.target.averageUtilization"} {
				lines[p] = l
			}
		}
	}
	out.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: in.Status.ObservedGeneration,
		LastScaleTime:      in.Status.LastScaleTime,
		CurrentReplicas:    in.Status.CurrentReplicas,
		DesiredReplicas:    in.Status.DesiredReplicas,
	}
	if c := in.Status.CurrentCPUUtilizationPercentage; c != nil {
		out.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{
				Name:    corev1.ResourceCPU,
				Current: autoscalingv2.MetricValueStatus{AverageUtilization: c},
			},
		}}
	}
	return out
}

func cpuUtilization(pct int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &pct},
		},
	}
}
