package main

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// workload is an empty object of a kind that runs pods, with what the
// commands on TYPE/NAME read and change in it once it is fetched.
type workload struct {
	obj  runtime.Object
	kind string // as kubectl prints it: deployment.apps, pod, ...
	// selector picks the workload's pods; nil for a pod.
	selector func() *metav1.LabelSelector
	// podSpec is the pod's spec, or the workload's pod template's.
	podSpec func() *corev1.PodSpec
}

// newWorkload returns an empty object of kind, as splitTarget names kinds
// (every kind but service); false for a kind that runs no pods.
func newWorkload(kind string) (workload, bool) {
	switch kind {
	case "pod":
		p := &corev1.Pod{}
		return workload{p, "pod", nil, func() *corev1.PodSpec { return &p.Spec }}, true
	case "deployment":
		d := &appsv1.Deployment{}
		return workload{d, "deployment.apps", func() *metav1.LabelSelector { return d.Spec.Selector },
			func() *corev1.PodSpec { return &d.Spec.Template.Spec }}, true
	case "replicaset":
		r := &appsv1.ReplicaSet{}
		return workload{r, "replicaset.apps", func() *metav1.LabelSelector { return r.Spec.Selector },
			func() *corev1.PodSpec { return &r.Spec.Template.Spec }}, true
	case "statefulset":
		s := &appsv1.StatefulSet{}
		return workload{s, "statefulset.apps", func() *metav1.LabelSelector { return s.Spec.Selector },
			func() *corev1.PodSpec { return &s.Spec.Template.Spec }}, true
	case "daemonset":
		d := &appsv1.DaemonSet{}
		return workload{d, "daemonset.apps", func() *metav1.LabelSelector { return d.Spec.Selector },
			func() *corev1.PodSpec { return &d.Spec.Template.Spec }}, true
	case "job":
		j := &batchv1.Job{}
		return workload{j, "job.batch", func() *metav1.LabelSelector { return j.Spec.Selector },
			func() *corev1.PodSpec { return &j.Spec.Template.Spec }}, true
	case "replicationcontroller":
		r := &corev1.ReplicationController{}
		return workload{r, "replicationcontroller",
			func() *metav1.LabelSelector { return &metav1.LabelSelector{MatchLabels: r.Spec.Selector} },
			func() *corev1.PodSpec {
				if r.Spec.Template == nil {
					r.Spec.Template = &corev1.PodTemplateSpec{}
				}
				return &r.Spec.Template.Spec
			}}, true
	}
	return workload{}, false
}

// updateObject reads the object name (in the client's namespace) into a
// fresh newObj, lets mutate change it and writes it back with a compare on
// the version read, retrying on conflict. mutate's error ends it unwritten.
// (mutateObject does the same on the JSON document of any kind.)
func updateObject[T runtime.Object](ctx context.Context, c *client.Client, name string, newObj func() T, mutate func(T) error) error {
	return client.RetryOnConflict(ctx, 5, func() error {
		obj := newObj()
		if err := c.Get(ctx, "", name, obj); err != nil {
			return err
		}
		if err := mutate(obj); err != nil {
			return err
		}
		return c.Update(ctx, obj)
	})
}
