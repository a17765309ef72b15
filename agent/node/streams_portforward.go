package node

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// portForwardChunk bounds the bytes of one PortForwardResponse: large
// enough to keep the per-message overhead small, well under gRPC's 4 MiB
// message limit.
const portForwardChunk = 32 << 10

// PortForward implements PodStreamService: it dials the pod's IP and port
// from the node (pod IPs are reachable from their node) and copies bytes
// both ways until both sides have closed.
func (s *streamServer) PortForward(stream skiffv1.PodStreamService_PortForwardServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	st := first.GetStart()
	if st == nil {
		return status.Error(codes.InvalidArgument, "port-forward: the first message must say where to connect (start)")
	}
	if st.Port < 1 || st.Port > 65535 {
		return status.Errorf(codes.InvalidArgument, "port-forward: port %d of pod %s/%s is not a TCP port (1-65535)", st.Port, st.Namespace, st.Pod)
	}
	obj, ok := s.a.pods.Get(st.Namespace + "/" + st.Pod)
	if !ok {
		return status.Errorf(codes.NotFound, "pod %s/%s is not on node %s", st.Namespace, st.Pod, s.a.cfg.Name)
	}
	pod := obj.(*corev1.Pod)
	if st.PodUid != "" && string(pod.UID) != st.PodUid {
		return status.Errorf(codes.NotFound, "pod %s/%s (uid %s) is not on node %s", st.Namespace, st.Pod, st.PodUid, s.a.cfg.Name)
	}
	ip := pod.Status.PodIP
	if ip == "" {
		// The status in the cache may lag the runtime's.
		if ps, err := s.a.rt.PodStatus(stream.Context(), string(pod.UID)); err == nil {
			ip = ps.IP
		}
	}
	if ip == "" {
		return status.Errorf(codes.FailedPrecondition, "pod %s/%s has no IP yet (phase %s)", st.Namespace, st.Pod, pod.Status.Phase)
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	addr := net.JoinHostPort(ip, strconv.Itoa(int(st.Port)))
	var d net.Dialer
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := d.DialContext(dctx, "tcp", addr)
	dcancel()
	if err != nil {
		return status.Errorf(codes.Unavailable, "port-forward to pod %s/%s port %d (%s): %v", st.Namespace, st.Pod, st.Port, addr, err)
	}
	tcp := conn.(*net.TCPConn)
	defer tcp.Close()
	// A cancelled stream (the caller went away) unblocks both copies.
	stop := context.AfterFunc(ctx, func() { tcp.Close() })
	defer stop()

	// caller → pod, until the caller half-closes or goes away.
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		for {
			m, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					_ = tcp.CloseWrite()
				} else {
					cancel()
				}
				return
			}
			if len(m.Data) > 0 {
				if _, err := tcp.Write(m.Data); err != nil {
					cancel()
					return
				}
			}
			if m.CloseWrite {
				_ = tcp.CloseWrite()
			}
		}
	}()

	// pod → caller, until the pod closes its side.
	buf := make([]byte, portForwardChunk)
	for {
		n, err := tcp.Read(buf)
		if n > 0 {
			if serr := stream.Send(&skiffv1.PortForwardResponse{Data: append([]byte(nil), buf[:n]...)}); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) {
			if serr := stream.Send(&skiffv1.PortForwardResponse{Eof: true}); serr != nil {
				return serr
			}
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			return status.Errorf(codes.Unavailable, "port-forward: reading from pod %s/%s port %d: %v", st.Namespace, st.Pod, st.Port, err)
		}
	}
	// The pod closed its side; the caller may still be sending.
	select {
	case <-upDone:
	case <-ctx.Done():
	}
	return nil
}
