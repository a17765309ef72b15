package node

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/containerd/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// ImportImage implements PodStreamService: it loads the tarball the caller
// streams into the node's containerd. The pieces go through a pipe straight
// into containerd's importer, which reads the tar in one pass and writes
// each blob to the content store as it comes, so the agent holds at most
// one piece at a time.
func (s *streamServer) ImportImage(stream skiffv1.PodStreamService_ImportImageServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "import image: the stream ended before naming the node")
	}
	if err != nil {
		return err
	}
	if first.Node != s.a.cfg.Name {
		return status.Errorf(codes.NotFound, "this is node %s, not %q", s.a.cfg.Name, first.Node)
	}
	source := first.Source
	if source == "" {
		source = "the stream"
	}
	start := time.Now()
	pr, pw := io.Pipe()
	var received int64
	recvDone := make(chan struct{})
	recvErr := make(chan error, 1) // why the caller's side broke, if it did
	// The caller's pieces → the pipe. Recv ends with an error once the
	// handler returns (its context is done), so this goroutine cannot
	// outlive the call even when the caller stops sending.
	go func() {
		defer close(recvDone)
		m := first
		for {
			if len(m.Data) > 0 {
				if _, err := pw.Write(m.Data); err != nil {
					return // the importer gave up; it says why
				}
				received += int64(len(m.Data))
			}
			var err error
			m, err = stream.Recv()
			if errors.Is(err, io.EOF) {
				_ = pw.Close()
				return
			}
			if err != nil {
				recvErr <- err // before the pipe fails the importer
				_ = pw.CloseWithError(fmt.Errorf("receiving %s: %w", source, err))
				return
			}
		}
	}()
	names, err := s.a.daemon.ImportImage(ctx, pr)
	if err == nil {
		// The importer stops at the tar's end marker; the padding after it
		// (and anything else the caller sends) is read and dropped so
		// that the caller can finish its side.
		_, err = io.Copy(io.Discard, pr)
	}
	if err != nil {
		_ = pr.CloseWithError(err)
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		select {
		case rerr := <-recvErr:
			return rerr // the upload broke, not the image
		default:
		}
		s.a.log.Warn("image import failed", "source", source, "err", err)
		return importError(s.a.cfg.Name, source, err)
	}
	<-recvDone // the pipe reached EOF, so the sender is done
	if len(names) == 0 {
		return status.Errorf(codes.InvalidArgument, "node %s: %s holds no image", s.a.cfg.Name, source)
	}
	s.a.log.Info("images imported", "source", source, "images", names, "bytes", received, "took", time.Since(start).Round(time.Millisecond))
	return stream.SendAndClose(&skiffv1.ImportImageResponse{Node: s.a.cfg.Name, Images: names, Bytes: received})
}

// ListImages implements PodStreamService: the images of the node's
// containerd.
func (s *streamServer) ListImages(ctx context.Context, req *skiffv1.ListImagesRequest) (*skiffv1.ListImagesResponse, error) {
	if req.Node != "" && req.Node != s.a.cfg.Name {
		return nil, status.Errorf(codes.NotFound, "this is node %s, not %q", s.a.cfg.Name, req.Node)
	}
	list, err := s.a.daemon.ListImages(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "node %s: list images: %v", s.a.cfg.Name, err)
	}
	resp := &skiffv1.ListImagesResponse{Images: make([]*skiffv1.NodeImage, 0, len(list))}
	for _, img := range list {
		resp.Images = append(resp.Images, &skiffv1.NodeImage{Node: s.a.cfg.Name, Name: img.Name, Digest: img.Digest,
			SizeBytes: img.Size, Unpacked: img.Unpacked})
	}
	return resp, nil
}

// importError turns a failed import into a status naming the node and the
// file: a tarball containerd cannot read is the caller's to fix
// (InvalidArgument, with what is wanted); a containerd that does not answer
// is Unavailable; anything else is the node's problem (Internal).
func importError(node, source string, err error) error {
	msg := err.Error()
	switch {
	case errdefs.IsUnavailable(err):
		return status.Errorf(codes.Unavailable, "node %s: %s: containerd: %s", node, source, msg)
	case errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(msg, "archive/tar:") ||
		strings.Contains(msg, "unrecognized image format") || strings.Contains(msg, "untar ") ||
		strings.Contains(msg, "index.json") || strings.Contains(msg, "OCI version") || strings.Contains(msg, "not found"):
		return status.Errorf(codes.InvalidArgument, "node %s: %s: %s (want an uncompressed OCI image layout or `docker save` tarball)", node, source, msg)
	}
	return status.Errorf(codes.Internal, "node %s: %s: %s", node, source, msg)
}
