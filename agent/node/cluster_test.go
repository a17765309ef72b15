package node_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controller"
)

// runControllers runs Skiff's controllers against c until the test ends.
func runControllers(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = controller.NewManager(c, controller.Options{}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// runBinder binds every unbound pod to nodeName: the smallest scheduler,
// for a one-node test.
func runBinder(t *testing.T, c *client.Client, nodeName string) {
	t.Helper()
	inf, err := client.NewInformer(c, "", &corev1.Pod{}, client.ListOptions{FieldSelector: "spec.nodeName="}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bind := func(obj any) {
		p := obj.(*corev1.Pod).DeepCopy()
		if p.Spec.NodeName != "" || p.DeletionTimestamp != nil {
			return
		}
		p.Spec.NodeName = nodeName
		if err := c.Update(ctx, p); err != nil && ctx.Err() == nil && !client.IsConflict(err) && !client.IsNotFound(err) {
			t.Logf("bind %s/%s: %v", p.Namespace, p.Name, err)
		}
	}
	inf.AddHandler(client.Handler{
		OnAdd:    func(o k8sruntime.Object) { go bind(o) },
		OnUpdate: func(_, o k8sruntime.Object) { go bind(o) },
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = inf.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
