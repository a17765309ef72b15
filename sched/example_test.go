package sched_test

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/sched"
)

func exampleNode(name, cpu string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(cpu),
				corev1.ResourceMemory: resource.MustParse("4Gi"),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
}

func examplePod(name, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:      "app",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}},
		}}},
	}
}

// The shape of a scheduler loop: informer events feed the snapshot, a batch
// of unbound pods is placed (each assumed before the next), each placement
// is bound with a compare-and-swap, and a failed binding is forgotten.
func ExampleScheduler_ScheduleBatch() {
	snap := sched.NewSnapshot()
	snap.AddNode(exampleNode("node-a", "2"))
	snap.AddNode(exampleNode("node-b", "1"))

	s, err := sched.New(snap, sched.DefaultConfig())
	if err != nil {
		panic(err)
	}
	pods := []*corev1.Pod{examplePod("web-0", "1"), examplePod("web-1", "1"), examplePod("web-2", "1"), examplePod("web-3", "1")}
	for _, pl := range s.ScheduleBatch(pods) {
		var fitErr *sched.FitError
		switch {
		case errors.As(pl.Err, &fitErr):
			// PodScheduled=False, reason Unschedulable, and a
			// FailedScheduling event with this message; retry when the
			// cluster changes.
			fmt.Printf("%s: %v\n", pl.Pod.Name, fitErr)
		case pl.Err != nil:
			fmt.Printf("%s: %v\n", pl.Pod.Name, pl.Err)
		default:
			// bind(pl.Pod, pl.Node) with a CAS here; on failure:
			//   snap.RemovePod(pl.Pod)
			fmt.Printf("%s: bound\n", pl.Pod.Name)
		}
	}
	// Output:
	// web-0: bound
	// web-1: bound
	// web-2: bound
	// web-3: 0/2 nodes are available: 2 Insufficient cpu.
}
