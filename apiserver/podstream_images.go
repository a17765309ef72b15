package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// listImagesTimeout bounds one agent's answer to ListImages.
const listImagesTimeout = 30 * time.Second

// ImportImage implements PodStreamService by relaying the upload to the
// named node's agent. Each piece is passed on before the next is read, so
// the server holds one piece at a time and gRPC flow control slows the
// caller down to the pace of the node. Callers need the same rights as for
// exec: being authenticated (the stream interceptor) is enough.
func (p *podStreams) ImportImage(stream skiffv1.PodStreamService_ImportImageServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return client.NewBadRequest("import image: the stream ended before naming the node")
	}
	if err != nil {
		return err
	}
	name := first.Node
	if name == "" {
		return client.NewBadRequest("import image: the first message must name the node")
	}
	conn, err := p.dialNode(ctx, name)
	if err != nil {
		return err
	}
	defer conn.Close()
	up, err := skiffv1.NewPodStreamServiceClient(conn).ImportImage(ctx)
	if err != nil {
		return nodeCallError(name, err)
	}
	m := proto.Clone(first).(*skiffv1.ImportImageRequest)
	for {
		if err := up.Send(m); err != nil {
			// io.EOF: the agent ended the call; its status says why.
			if _, rerr := up.CloseAndRecv(); rerr != nil {
				return nodeCallError(name, rerr)
			}
			return nodeCallError(name, err)
		}
		m, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err // the caller went away; cancel ends the agent's call
		}
		if m.Node != "" && m.Node != name {
			return client.NewBadRequest(fmt.Sprintf("import image: node %q in a later message; the first named %q", m.Node, name))
		}
	}
	resp, err := up.CloseAndRecv()
	if err != nil {
		return nodeCallError(name, err)
	}
	return stream.SendAndClose(resp)
}

// ListImages implements PodStreamService by asking the named node's agent.
func (p *podStreams) ListImages(ctx context.Context, req *skiffv1.ListImagesRequest) (*skiffv1.ListImagesResponse, error) {
	if req.Node == "" {
		return nil, client.NewBadRequest("list images: name the node")
	}
	conn, err := p.dialNode(ctx, req.Node)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, listImagesTimeout)
	defer cancel()
	resp, err := skiffv1.NewPodStreamServiceClient(conn).ListImages(cctx, req)
	if err != nil {
		return nil, nodeCallError(req.Node, err)
	}
	return resp, nil
}

// nodeCallError keeps the code of an agent's error and makes sure its
// message names the node, so that a caller talking to several nodes knows
// which one failed (and does not take an unreachable agent for the API
// server being down).
func nodeCallError(node string, err error) error {
	st, ok := status.FromError(agentError(node, err))
	if !ok {
		return status.Errorf(codes.Unknown, "node %s: %v", node, err)
	}
	if strings.Contains(st.Message(), "node "+node) {
		return st.Err()
	}
	return status.Errorf(st.Code(), "node %s: %s", node, st.Message())
}
