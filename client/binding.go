package client

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"k8s.io/apimachinery/pkg/types"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// MaxBindingsPerCall is the most bindings the API server takes in one Bind
// call; Client.Bind splits longer lists.
const MaxBindingsPerCall = 1000

// PodBinding binds one pod to one node (Client.Bind).
type PodBinding struct {
	Namespace, Name string
	// UID and ResourceVersion, when set, must be the pod's, or the binding
	// fails with a Conflict: it was decided for that pod at that version.
	UID             types.UID
	ResourceVersion string
	NodeName        string
}

// Bind binds pods to nodes (spec.nodeName), many per call, each binding a
// compare-and-swap of its own: errs[i] is nil when bindings[i] was written,
// and otherwise its *StatusError, for it alone — IsConflict when the pod is
// already bound, being deleted, or changed since the version it names;
// IsNotFound when it is gone. err is set when a call failed as a whole
// (the store unreachable, say; then the outcome of the bindings is unknown
// and errs is nil), and BindUnsupported(err) when the server has no Bind —
// bind with Update then.
func (c *Client) Bind(ctx context.Context, bindings []PodBinding) (errs []error, err error) {
	errs = make([]error, len(bindings))
	for start := 0; start < len(bindings); start += MaxBindingsPerCall {
		chunk := bindings[start:min(start+MaxBindingsPerCall, len(bindings))]
		req := &skiffv1.BindRequest{Bindings: make([]*skiffv1.PodBinding, len(chunk))}
		for i, b := range chunk {
			req.Bindings[i] = &skiffv1.PodBinding{Namespace: b.Namespace, Name: b.Name, Uid: string(b.UID),
				ResourceVersion: b.ResourceVersion, NodeName: b.NodeName}
		}
		resp, err := c.svc.Bind(ctx, req)
		if err != nil {
			return nil, FromError(err)
		}
		if len(resp.Results) != len(chunk) {
			return nil, fmt.Errorf("bind: %d results for %d bindings", len(resp.Results), len(chunk))
		}
		for i, r := range resp.Results {
			if r.GetError() != nil {
				errs[start+i] = &StatusError{Code: codes.Code(r.Code), Status: r.Error}
			}
		}
	}
	return errs, nil
}

// BindUnsupported reports that err is the answer of an API server without
// the Bind call (an older version during an upgrade).
func BindUnsupported(err error) bool {
	return err != nil && FromError(err).Code == codes.Unimplemented
}
