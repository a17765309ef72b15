package apiserver_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// ImportImage and ListImages refuse what they cannot relay, and every
// error about a node names it: n1 publishes no agent endpoint, n2's agent
// does not answer. (The relay itself is tested end to end with a real
// agent in cmd/skiff.)
func TestImageRelayRefusals(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := ctxT(t)
	if err := c.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}); err != nil {
		t.Fatal(err)
	}
	// n2 points at a port nothing listens on any more.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := lis.Addr().(*net.TCPAddr).Port
	lis.Close()
	n2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2",
		Annotations: map[string]string{"skiff.io/agent-cert-sha256": strings.Repeat("ab", 32)}}}
	if err := c.Create(ctx, n2); err != nil {
		t.Fatal(err)
	}
	n2.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	n2.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(deadPort)
	if err := c.UpdateStatus(ctx, n2); err != nil {
		t.Fatal(err)
	}

	// send opens an import, sends msgs and returns how it ended.
	send := func(msgs ...*skiffv1.ImportImageRequest) error {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, err := c.PodStreams().ImportImage(cctx)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := s.Send(m); err != nil {
				break // the server ended the call; CloseAndRecv says why
			}
		}
		_, err = s.CloseAndRecv()
		return err
	}
	data := []byte("not read: refused before")
	for _, tc := range []struct {
		name string
		msgs []*skiffv1.ImportImageRequest
		code codes.Code
		want string
	}{
		{"empty stream", nil, codes.InvalidArgument, "the stream ended before naming the node"},
		{"no node", []*skiffv1.ImportImageRequest{{Data: data}}, codes.InvalidArgument, "the first message must name the node"},
		{"unknown node", []*skiffv1.ImportImageRequest{{Node: "n9"}, {Data: data}}, codes.NotFound, `nodes "n9" not found`},
		{"no endpoint", []*skiffv1.ImportImageRequest{{Node: "n1"}, {Data: data}}, codes.Unavailable, "node n1 publishes no log/exec endpoint"},
		{"agent down", []*skiffv1.ImportImageRequest{{Node: "n2"}, {Data: data}}, codes.Unavailable, "cannot reach the agent of node n2"},
	} {
		err := send(tc.msgs...)
		if st, _ := status.FromError(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.want) {
			t.Errorf("import, %s: %v, want %s containing %q", tc.name, err, tc.code, tc.want)
		}
	}

	for _, tc := range []struct {
		node string
		code codes.Code
		want string
	}{
		{"", codes.InvalidArgument, "list images: name the node"},
		{"n9", codes.NotFound, `nodes "n9" not found`},
		{"n1", codes.Unavailable, "node n1 publishes no log/exec endpoint"},
		{"n2", codes.Unavailable, "cannot reach the agent of node n2"},
	} {
		_, err := c.PodStreams().ListImages(ctx, &skiffv1.ListImagesRequest{Node: tc.node})
		if st, _ := status.FromError(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.want) {
			t.Errorf("list images of %q: %v, want %s containing %q", tc.node, err, tc.code, tc.want)
		}
	}
}
