package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

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
		if c := status.Code(err); c == codes.Canceled || ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		s.a.log.Warn("image import failed", "source", source, "err", err)
		return status.Errorf(codes.InvalidArgument, "node %s: %s: %v (want an uncompressed OCI image layout or `docker save` tarball)", s.a.cfg.Name, source, err)
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
