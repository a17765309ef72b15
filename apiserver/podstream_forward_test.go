package apiserver_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// PortForward and Top refuse what they cannot serve before they reach for
// an agent, with errors that say why; an agent that cannot be reached is a
// warning of Top, not a failure. (The forwarding itself is tested end to
// end with a real agent in cmd/skiff.)
func TestPortForwardAndTopRefusals(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	pending := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pending", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if err := c.Create(ctx, pending); err != nil {
		t.Fatal(err)
	}
	running := pending.DeepCopy()
	running.ResourceVersion, running.Name = "", "running"
	if err := c.Create(ctx, running); err != nil {
		t.Fatal(err)
	}
	running.Status.Phase = corev1.PodRunning
	if err := c.UpdateStatus(ctx, running); err != nil {
		t.Fatal(err)
	}
	// n1 exists but publishes no agent endpoint.
	if err := c.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}); err != nil {
		t.Fatal(err)
	}

	forward := func(start *skiffv1.PortForwardStart) error {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, err := c.PodStreams().PortForward(cctx)
		if err != nil {
			return err
		}
		if err := s.Send(&skiffv1.PortForwardRequest{Start: start}); err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	for _, tc := range []struct {
		start *skiffv1.PortForwardStart
		code  codes.Code
		want  string
	}{
		{nil, codes.InvalidArgument, "the first message must say where to connect"},
		{&skiffv1.PortForwardStart{Pod: "running", Port: 0}, codes.InvalidArgument, "port 0 is not a TCP port"},
		{&skiffv1.PortForwardStart{Pod: "running", Port: 70000}, codes.InvalidArgument, "port 70000 is not a TCP port"},
		{&skiffv1.PortForwardStart{Pod: "absent", Port: 80}, codes.NotFound, `pods "absent" not found`},
		{&skiffv1.PortForwardStart{Pod: "pending", Port: 80}, codes.InvalidArgument, "pod default/pending is not running (phase Pending)"},
		{&skiffv1.PortForwardStart{Pod: "running", Port: 80}, codes.Unavailable, "node n1 publishes no log/exec endpoint"},
	} {
		err := forward(tc.start)
		if st, _ := status.FromError(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.want) {
			t.Errorf("port-forward %v: %v, want %s containing %q", tc.start, err, tc.code, tc.want)
		}
	}

	for _, tc := range []struct {
		req  *skiffv1.TopRequest
		want string
	}{
		{&skiffv1.TopRequest{WindowMs: -1}, "window_ms -1 must be between 1 and 10000"},
		{&skiffv1.TopRequest{WindowMs: 10001}, "window_ms 10001"},
		{&skiffv1.TopRequest{Pod: "running"}, "a pod needs its namespace"},
	} {
		if _, err := c.PodStreams().Top(ctx, tc.req); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("top %v: %v, want InvalidArgument containing %q", tc.req, err, tc.want)
		}
	}
	if _, err := c.PodStreams().Top(ctx, &skiffv1.TopRequest{Nodes: true, Node: "n9"}); status.Code(err) != codes.NotFound {
		t.Errorf("top of an unknown node: %v, want NotFound", err)
	}
	// Only n1 runs a pod; it cannot be reached, which is a warning.
	for _, req := range []*skiffv1.TopRequest{{Nodes: true}, {Namespace: "default"}, {}} {
		resp, err := c.PodStreams().Top(ctx, req)
		if err != nil || len(resp.Pods)+len(resp.Nodes) != 0 || len(resp.Warnings) != 1 ||
			!strings.HasPrefix(resp.Warnings[0], "node n1 publishes no log/exec endpoint") {
			t.Errorf("top %v: %v, %v; want one warning naming node n1", req, resp, err)
		}
	}
	// A namespace with no running pods asks no node.
	resp, err := c.PodStreams().Top(ctx, &skiffv1.TopRequest{Namespace: "empty"})
	if err != nil || len(resp.Warnings)+len(resp.Pods) != 0 {
		t.Errorf("top of an empty namespace: %v, %v; want nothing", resp, err)
	}
}
