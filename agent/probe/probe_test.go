package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func TestHTTPGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			if r.Header.Get("X-Check") != "yes" {
				w.WriteHeader(http.StatusBadRequest)
			}
		case "/away":
			http.Redirect(w, r, "http://192.0.2.1/elsewhere", http.StatusFound)
		case "/slow":
			time.Sleep(2 * time.Second)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ip, port := hostPort(t, srv.Listener.Addr().String())
	c := &corev1.Container{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	get := func(path string, p intstr.IntOrString, hdr ...corev1.HTTPHeader) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: p, HTTPHeaders: hdr}}}
	}
	for _, tc := range []struct {
		name  string
		probe *corev1.Probe
		want  Result
	}{
		{"ok by named port with header", get("/healthz", intstr.FromString("http"), corev1.HTTPHeader{Name: "X-Check", Value: "yes"}), Success},
		{"400 without header", get("/healthz", intstr.FromInt32(int32(port))), Failure},
		{"503", get("/down", intstr.FromInt32(int32(port))), Failure},
		{"redirect off-host counts as success", get("/away", intstr.FromInt32(int32(port))), Success},
		{"timeout", get("/slow", intstr.FromInt32(int32(port))), Failure},
		{"unknown port name", get("/healthz", intstr.FromString("nope")), Failure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := Run(context.Background(), tc.probe, Target{PodIP: ip, Container: c})
			if got != tc.want {
				t.Errorf("got %v (%s), want %v", got, msg, tc.want)
			}
		})
	}
}

func TestTCPAndExec(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ip, port := hostPort(t, l.Addr().String())
	tcp := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}}}
	if got, msg := Run(context.Background(), tcp, Target{PodIP: ip}); got != Success {
		t.Errorf("tcp open: %v %s", got, msg)
	}
	l.Close()
	if got, _ := Run(context.Background(), tcp, Target{PodIP: ip}); got != Failure {
		t.Errorf("tcp closed: %v", got)
	}
	execer := func(code int) Execer {
		return func(ctx context.Context, cmd []string) (int, []byte, error) { return code, []byte("out"), nil }
	}
	ex := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	if got, _ := Run(context.Background(), ex, Target{Exec: execer(0)}); got != Success {
		t.Errorf("exec 0: %v", got)
	}
	if got, msg := Run(context.Background(), ex, Target{Exec: execer(1)}); got != Failure || msg == "" {
		t.Errorf("exec 1: %v %q", got, msg)
	}
}

func TestGRPC(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(l) }()
	defer s.Stop()
	ip, port := hostPort(t, l.Addr().String())
	p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(port)}}, TimeoutSeconds: 5}
	if got, msg := Run(context.Background(), p, Target{PodIP: ip}); got != Success {
		t.Errorf("serving: %v %s", got, msg)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if got, _ := Run(context.Background(), p, Target{PodIP: ip}); got != Failure {
		t.Errorf("not serving: %v", got)
	}
}

func TestTracker(t *testing.T) {
	tr := NewTracker(&corev1.Probe{SuccessThreshold: 2, FailureThreshold: 3}, Failure)
	steps := []struct {
		in      Result
		want    Result
		changed bool
	}{
		{Success, Failure, false}, {Success, Success, true}, {Failure, Success, false}, {Unknown, Success, false},
		{Failure, Success, false}, {Failure, Failure, true}, {Success, Failure, false}, {Failure, Failure, false},
	}
	for i, s := range steps {
		got, changed := tr.Observe(s.in)
		if got != s.want || changed != s.changed {
			t.Fatalf("step %d: Observe(%v) = %v, %v; want %v, %v", i, s.in, got, changed, s.want, s.changed)
		}
	}
}
