// Package probe runs Kubernetes container probes (exec, httpGet, tcpSocket,
// grpc) once, and tracks their results against a probe's thresholds. The
// agent's pod workers schedule them (initialDelaySeconds, periodSeconds) and
// act on the tracked result: liveness restarts, readiness flips Ready,
// startup gates the other two.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Result of one probe run.
type Result int

// Probe results.
const (
	Unknown Result = iota // not run yet, or the probe could not be run
	Success
	Failure
)

func (r Result) String() string {
	return [...]string{"Unknown", "Success", "Failure"}[r]
}

// ErrUnsupported: the probe has no handler this package knows.
var ErrUnsupported = errors.New("unsupported probe")

// Execer runs cmd in the probed container and returns its exit code and
// combined output (e.g. runtime.Runtime.Exec bound to a pod and container).
type Execer func(ctx context.Context, cmd []string) (exitCode int, output []byte, err error)

// Target is what a probe runs against.
type Target struct {
	PodIP     string
	Container *corev1.Container // for named ports
	Exec      Execer
}

// Run runs p once against t, bounded by the probe's timeoutSeconds (1 s
// when unset). The message says why it failed, as the kubelet's Unhealthy
// events do.
func Run(ctx context.Context, p *corev1.Probe, t Target) (Result, string) {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.Exec != nil:
		return runExec(ctx, p.Exec, t)
	case p.HTTPGet != nil:
		return runHTTP(ctx, p.HTTPGet, t, timeout)
	case p.TCPSocket != nil:
		return runTCP(ctx, p.TCPSocket, t)
	case p.GRPC != nil:
		return runGRPC(ctx, p.GRPC, t)
	}
	return Unknown, ErrUnsupported.Error()
}

func runExec(ctx context.Context, e *corev1.ExecAction, t Target) (Result, string) {
	if t.Exec == nil {
		return Unknown, "exec probe without an execer"
	}
	code, out, err := t.Exec(ctx, e.Command)
	if ctx.Err() != nil {
		return Failure, fmt.Sprintf("command %q timed out", e.Command)
	}
	if err != nil {
		return Unknown, fmt.Sprintf("exec %q: %v", e.Command, err)
	}
	if code != 0 {
		return Failure, fmt.Sprintf("command %q exited with %d: %s", e.Command, code, strings.TrimSpace(string(out)))
	}
	return Success, ""
}

// resolvePort turns a port number or a container port name into a number.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntValue() <= 0 || p.IntValue() > 65535 {
			return 0, fmt.Errorf("invalid port %d", p.IntValue())
		}
		return p.IntValue(), nil
	}
	if c != nil {
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return int(cp.ContainerPort), nil
			}
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	return 0, fmt.Errorf("no container port named %q", p.StrVal)
}

func hostOr(host, podIP string) string {
	if host != "" {
		return host
	}
	return podIP
}

func runHTTP(ctx context.Context, h *corev1.HTTPGetAction, t Target, timeout time.Duration) (Result, string) {
	port, err := resolvePort(h.Port, t.Container)
	if err != nil {
		return Failure, err.Error()
	}
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(hostOr(h.Host, t.PodIP), strconv.Itoa(port))}
	u, err = u.Parse(path)
	if err != nil {
		return Failure, err.Error()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Failure, err.Error()
	}
	req.Header.Set("User-Agent", "skiff-probe/1.0")
	req.Header.Set("Accept", "*/*")
	for _, hd := range h.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	client := &http.Client{
		Timeout: timeout,
		// Like the kubelet: no certificate checks, redirects only on the
		// same host (a redirect elsewhere counts as success, unfollowed).
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true},
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= 10 || r.URL.Host != via[0].URL.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return Failure, fmt.Sprintf("Get %q: %v", u.String(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return Success, ""
	}
	return Failure, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
}

func runTCP(ctx context.Context, s *corev1.TCPSocketAction, t Target) (Result, string) {
	port, err := resolvePort(s.Port, t.Container)
	if err != nil {
		return Failure, err.Error()
	}
	addr := net.JoinHostPort(hostOr(s.Host, t.PodIP), strconv.Itoa(port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Failure, fmt.Sprintf("dial tcp %s: %v", addr, err)
	}
	conn.Close()
	return Success, ""
}

func runGRPC(ctx context.Context, g *corev1.GRPCAction, t Target) (Result, string) {
	addr := net.JoinHostPort(t.PodIP, strconv.Itoa(int(g.Port)))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return Failure, err.Error()
	}
	defer conn.Close()
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return Failure, fmt.Sprintf("grpc health check %s: %v", addr, err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return Failure, fmt.Sprintf("service unhealthy (responded with %q)", resp.Status)
	}
	return Success, ""
}

// Tracker applies a probe's successThreshold and failureThreshold to a
// stream of results. Not safe for concurrent use: one per probe worker.
type Tracker struct {
	successThreshold, failureThreshold int
	successes, failures                int
	result                             Result
}

// NewTracker starts at initial (Kubernetes: readiness starts Failure,
// liveness and startup Success) with the probe's thresholds (defaults 1
// and 3).
func NewTracker(p *corev1.Probe, initial Result) *Tracker {
	t := &Tracker{successThreshold: int(p.SuccessThreshold), failureThreshold: int(p.FailureThreshold), result: initial}
	if t.successThreshold <= 0 {
		t.successThreshold = 1
	}
	if t.failureThreshold <= 0 {
		t.failureThreshold = 3
	}
	return t
}

// Observe records one run's result and reports whether the tracked result
// changed. Unknown results are ignored.
func (t *Tracker) Observe(r Result) (current Result, changed bool) {
	prev := t.result
	switch r {
	case Success:
		t.failures = 0
		t.successes++
		if t.successes >= t.successThreshold {
			t.result = Success
		}
	case Failure:
		t.successes = 0
		t.failures++
		if t.failures >= t.failureThreshold {
			t.result = Failure
		}
	}
	return t.result, t.result != prev
}

// Result is the tracked result.
func (t *Tracker) Result() Result { return t.result }
