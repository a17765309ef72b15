package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/agent/crilog"
	"github.com/skiffhq/skiff/agent/runtime"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// AnnotationAgentCert is the Node annotation with the SHA-256 of the
// agent's (self-signed) serving certificate: the API server pins it when
// it forwards logs and exec to the agent. The agent in turn accepts only
// callers with a client certificate signed by the cluster CA.
const AnnotationAgentCert = "skiff.io/agent-cert-sha256"

// streamServer serves PodStreamService for the agent's pods.
type streamServer struct {
	skiffv1.UnimplementedPodStreamServiceServer
	a *Agent
}

var _ skiffv1.PodStreamServiceServer = (*streamServer)(nil)

// selfSignedCert makes the agent's serving certificate for host.
func selfSignedCert(host string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "skiff-agent " + host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{host, "localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(sum[:]), nil
}

// startStreams listens for PodStreamService; the caller serves with the
// returned function once the agent is ready.
func (a *Agent) startStreams() (serve func(), stop func(), err error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(a.cfg.ClusterCA) {
		return nil, nil, fmt.Errorf("%w: cluster CA holds no certificate", ErrInvalidConfig)
	}
	cert, sum, err := selfSignedCert(a.cfg.Name)
	if err != nil {
		return nil, nil, err
	}
	lis, err := net.Listen("tcp", a.cfg.StreamListen)
	if err != nil {
		return nil, nil, fmt.Errorf("agent stream endpoint %s: %w", a.cfg.StreamListen, err)
	}
	a.streamPort = int32(lis.Addr().(*net.TCPAddr).Port)
	a.certSHA256 = sum
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	})))
	skiffv1.RegisterPodStreamServiceServer(gs, &streamServer{a: a})
	return func() { _ = gs.Serve(lis) }, func() {
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			gs.Stop()
		}
		_ = lis.Close() // when Serve never ran
	}, nil
}

// findPod resolves the pod of a request among the node's pods, and the
// container (the only one when unnamed).
func (s *streamServer) findPod(ns, name, uid, ctr string) (*corev1.Pod, string, error) {
	obj, ok := s.a.pods.Get(ns + "/" + name)
	if !ok {
		return nil, "", status.Errorf(codes.NotFound, "pod %s/%s is not on node %s", ns, name, s.a.cfg.Name)
	}
	pod := obj.(*corev1.Pod)
	if uid != "" && string(pod.UID) != uid {
		return nil, "", status.Errorf(codes.NotFound, "pod %s/%s (uid %s) is not on node %s", ns, name, uid, s.a.cfg.Name)
	}
	if ctr == "" {
		if len(pod.Spec.Containers) != 1 {
			names := make([]string, 0, len(pod.Spec.Containers))
			for _, c := range pod.Spec.Containers {
				names = append(names, c.Name)
			}
			return nil, "", status.Errorf(codes.InvalidArgument, "a container name must be specified for pod %s/%s, choose one of: %v", ns, name, names)
		}
		ctr = pod.Spec.Containers[0].Name
	}
	return pod, ctr, nil
}

// streamErr maps runtime errors to gRPC statuses.
func streamErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, runtime.ErrPodNotFound), errors.Is(err, runtime.ErrContainerNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, runtime.ErrInvalidInput):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// sender serialises the sends of one stream and counts them as writes.
type sender struct {
	mu   sync.Mutex
	send func(stream int32, p []byte) error
}

type streamWriter struct {
	s      *sender
	stream int32
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if err := w.s.send(w.stream, append([]byte(nil), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Logs implements PodStreamService.
func (s *streamServer) Logs(req *skiffv1.LogsRequest, stream skiffv1.PodStreamService_LogsServer) error {
	pod, ctr, err := s.findPod(req.Namespace, req.Pod, req.PodUid, req.Container)
	if err != nil {
		return err
	}
	opts := crilog.ReadOptions{Tail: -1, Follow: req.Follow, Timestamps: req.Timestamps}
	if req.TailLines > 0 {
		opts.Tail = int(req.TailLines)
	}
	if req.SinceSeconds > 0 {
		opts.Since = time.Now().Add(-time.Duration(req.SinceSeconds) * time.Second)
	}
	snd := &sender{send: func(st int32, p []byte) error {
		return stream.Send(&skiffv1.LogsResponse{Stream: st, Data: p})
	}}
	err = s.a.rt.Logs(stream.Context(), string(pod.UID), ctr, req.Previous, opts, streamWriter{snd, 1}, streamWriter{snd, 2})
	if err != nil && stream.Context().Err() != nil {
		return nil // the caller went away (follow ended)
	}
	return streamErr(err)
}

// Exec implements PodStreamService.
func (s *streamServer) Exec(stream skiffv1.PodStreamService_ExecServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	st := first.GetStart()
	if st == nil || len(st.Command) == 0 {
		return status.Error(codes.InvalidArgument, "exec: the first message must say what to run (start.command)")
	}
	pod, ctr, err := s.findPod(st.Namespace, st.Pod, st.PodUid, st.Container)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	snd := &sender{send: func(sn int32, p []byte) error {
		return stream.Send(&skiffv1.ExecResponse{Stream: sn, Data: p})
	}}
	opts := runtime.ExecOptions{Cmd: st.Command, Stdout: streamWriter{snd, 1}, Stderr: streamWriter{snd, 2}, TTY: st.Tty}
	var stdinW *io.PipeWriter
	if st.Stdin {
		var r *io.PipeReader
		r, stdinW = io.Pipe()
		opts.Stdin = r
	}
	var resize chan runtime.TerminalSize
	if st.Tty {
		resize = make(chan runtime.TerminalSize, 4)
		if sz := st.Size; sz != nil && sz.Width > 0 {
			resize <- runtime.TerminalSize{Width: uint16(sz.Width), Height: uint16(sz.Height)}
		}
		opts.Resize = resize
	}
	go func() {
		defer func() {
			if stdinW != nil {
				stdinW.Close()
			}
		}()
		for {
			m, err := stream.Recv()
			if err != nil {
				return
			}
			if len(m.Stdin) > 0 && stdinW != nil {
				if _, err := stdinW.Write(m.Stdin); err != nil {
					return
				}
			}
			if m.StdinClosed && stdinW != nil {
				stdinW.Close()
				stdinW = nil
			}
			if r := m.Resize; r != nil && resize != nil {
				select {
				case resize <- runtime.TerminalSize{Width: uint16(r.Width), Height: uint16(r.Height)}:
				default:
				}
			}
		}
	}()
	code, err := s.a.rt.Exec(ctx, string(pod.UID), ctr, opts)
	if err != nil {
		return streamErr(err)
	}
	snd.mu.Lock()
	defer snd.mu.Unlock()
	return stream.Send(&skiffv1.ExecResponse{Exited: true, ExitCode: int32(code)})
}
