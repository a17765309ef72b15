package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// portSpec is one [LOCAL:]REMOTE argument of port-forward. Remote is a
// number or a port name (of a container port, or of a Service port with
// svc/NAME); local 0 means any free port.
type portSpec struct {
	local        int
	sameAsRemote bool // no LOCAL: listen on the remote number (a name: the number it resolves to)
	remote       string
	remoteNum    int // when remote is a number
}

// parsePortSpec parses [LOCAL:]REMOTE as kubectl port-forward does.
func parsePortSpec(arg string) (portSpec, error) {
	local, remote, hasLocal := strings.Cut(arg, ":")
	if !hasLocal {
		local, remote = "", arg
	}
	if remote == "" {
		return portSpec{}, fmt.Errorf("port %q: the remote port is missing (give [LOCAL:]REMOTE, e.g. 8080:80)", arg)
	}
	ps := portSpec{remote: remote}
	if n, err := strconv.Atoi(remote); err == nil {
		if n < 1 || n > 65535 {
			return portSpec{}, fmt.Errorf("port %q: remote port %d is not between 1 and 65535", arg, n)
		}
		ps.remoteNum = n
	} else if errs := validation.IsValidPortName(remote); len(errs) > 0 {
		return portSpec{}, fmt.Errorf("port %q: remote %q is neither a port number nor a port name (%s)", arg, remote, strings.Join(errs, "; "))
	}
	switch {
	case !hasLocal:
		ps.sameAsRemote = true
	case local != "": // ":REMOTE" leaves LOCAL 0, any free port
		n, err := strconv.Atoi(local)
		if err != nil || n < 0 || n > 65535 {
			return portSpec{}, fmt.Errorf("port %q: local port %q is not a number between 0 and 65535", arg, local)
		}
		ps.local = n
	}
	return ps, nil
}

// forwardTarget is the pod chosen for TYPE/NAME and the ports resolved on it.
type forwardTarget struct {
	pod   *corev1.Pod
	svc   *corev1.Service // when the target was svc/NAME
	ports []int           // the pod port of each portSpec, in order
}

// splitTarget splits TYPE/NAME (or a bare pod name) into a canonical kind
// and the name.
func splitTarget(arg string) (kind, name string, err error) {
	k, n, ok := strings.Cut(arg, "/")
	if !ok {
		k, n = "pod", arg
	}
	if n == "" || strings.Contains(n, "/") {
		return "", "", fmt.Errorf("%q: give POD or TYPE/NAME (pod/NAME, svc/NAME, deploy/NAME)", arg)
	}
	switch strings.ToLower(k) {
	case "pod", "pods", "po":
		return "pod", n, nil
	case "svc", "service", "services":
		return "service", n, nil
	case "deploy", "deployment", "deployments", "deployment.apps", "deployments.apps":
		return "deployment", n, nil
	case "rs", "replicaset", "replicasets", "replicaset.apps", "replicasets.apps":
		return "replicaset", n, nil
	case "sts", "statefulset", "statefulsets", "statefulset.apps", "statefulsets.apps":
		return "statefulset", n, nil
	case "ds", "daemonset", "daemonsets", "daemonset.apps", "daemonsets.apps":
		return "daemonset", n, nil
	case "job", "jobs", "job.batch", "jobs.batch":
		return "job", n, nil
	case "rc", "replicationcontroller", "replicationcontrollers":
		return "replicationcontroller", n, nil
	}
	return "", "", fmt.Errorf("%q: there are no pods behind a %s; give pod/NAME, svc/NAME, deploy/NAME, rs/NAME, sts/NAME, ds/NAME, job/NAME or rc/NAME", arg, k)
}

// resolveForward picks the pod for target and maps every port spec to a
// port of that pod.
func resolveForward(ctx context.Context, c *client.Client, ns, target string, specs []portSpec) (*forwardTarget, error) {
	kind, name, err := splitTarget(target)
	if err != nil {
		return nil, err
	}
	ft := &forwardTarget{}
	if ft.pod, ft.svc, err = podBehind(ctx, c, ns, kind, name, pickPod); err != nil {
		return nil, err
	}
	if ft.pod.Status.Phase != corev1.PodRunning {
		phase := ft.pod.Status.Phase
		if phase == "" {
			phase = corev1.PodPending
		}
		return nil, fmt.Errorf("unable to forward port because pod %s/%s is not running (phase %s)", ft.pod.Namespace, ft.pod.Name, phase)
	}
	for _, s := range specs {
		p, err := ft.podPort(s)
		if err != nil {
			return nil, err
		}
		ft.ports = append(ft.ports, p)
	}
	return ft, nil
}

// podBehind returns the pod kind/name names (kind as splitTarget gives it):
// the pod itself, or the one pick chooses among the pods the Service's or
// the workload's selector matches (with the Service, for svc/NAME).
func podBehind(ctx context.Context, c *client.Client, ns, kind, name string, pick func([]corev1.Pod) *corev1.Pod) (*corev1.Pod, *corev1.Service, error) {
	var (
		sel labels.Selector
		svc *corev1.Service
		err error
	)
	what := kind + "/" + name
	switch kind {
	case "pod":
		pod := &corev1.Pod{}
		if err := c.Get(ctx, ns, name, pod); err != nil {
			return nil, nil, cliError(err)
		}
		return pod, nil, nil
	case "service":
		svc = &corev1.Service{}
		if err := c.Get(ctx, ns, name, svc); err != nil {
			return nil, nil, cliError(err)
		}
		if len(svc.Spec.Selector) == 0 {
			return nil, nil, fmt.Errorf("service %s/%s has no selector: there is no pod behind it", ns, name)
		}
		sel = labels.SelectorFromSet(svc.Spec.Selector)
	default:
		w, ok := newWorkload(kind)
		if !ok || w.selector == nil {
			return nil, nil, fmt.Errorf("%s: no pods behind a %s", what, kind)
		}
		if err := c.Get(ctx, ns, name, w.obj); err != nil {
			return nil, nil, cliError(err)
		}
		if sel, err = metav1.LabelSelectorAsSelector(w.selector()); err != nil {
			return nil, nil, fmt.Errorf("%s in %s: pod selector: %w", what, ns, err)
		}
		if sel.Empty() {
			return nil, nil, fmt.Errorf("%s in %s has an empty pod selector: it does not say which pods are its own", what, ns)
		}
	}
	var pods corev1.PodList
	if err := c.List(ctx, ns, &pods, client.ListOptions{LabelSelector: sel.String()}); err != nil {
		return nil, nil, cliError(err)
	}
	pod := pick(pods.Items)
	if pod == nil {
		return nil, nil, fmt.Errorf("no ready pod behind %s in namespace %s (%d pods match %s)", what, ns, len(pods.Items), sel)
	}
	return pod, svc, nil
}

// pickPod chooses a Running and Ready pod that is not being deleted; the
// oldest first, as the one least likely to be replaced soon, then by name.
func pickPod(pods []corev1.Pod) *corev1.Pod {
	var ready []*corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(p) {
			ready = append(ready, p)
		}
	}
	sort.Slice(ready, func(i, j int) bool {
		a, b := ready[i].CreationTimestamp, ready[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return ready[i].Name < ready[j].Name
	})
	if len(ready) == 0 {
		return nil
	}
	return ready[0]
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podPort maps one spec to a port of the chosen pod: through the
// Service's port and targetPort for svc/NAME, else a number as given or
// a container port's name.
func (ft *forwardTarget) podPort(s portSpec) (int, error) {
	if ft.svc == nil {
		if s.remoteNum != 0 {
			return s.remoteNum, nil
		}
		return containerPortByName(ft.pod, s.remote)
	}
	for _, sp := range ft.svc.Spec.Ports {
		if (s.remoteNum != 0 && int(sp.Port) == s.remoteNum) || (s.remoteNum == 0 && sp.Name == s.remote) {
			if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
				return 0, fmt.Errorf("service %s port %s is %s: only TCP can be forwarded", ft.svc.Name, s.remote, sp.Protocol)
			}
			switch {
			case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
				p, err := containerPortByName(ft.pod, sp.TargetPort.StrVal)
				if err != nil {
					return 0, fmt.Errorf("service %s port %s: targetPort %w", ft.svc.Name, s.remote, err)
				}
				return p, nil
			case sp.TargetPort.IntVal != 0:
				return int(sp.TargetPort.IntVal), nil
			default:
				return int(sp.Port), nil
			}
		}
	}
	var have []string
	for _, sp := range ft.svc.Spec.Ports {
		h := strconv.Itoa(int(sp.Port))
		if sp.Name != "" {
			h += "/" + sp.Name
		}
		have = append(have, h)
	}
	return 0, fmt.Errorf("service %s has no port %s (its ports: %s)", ft.svc.Name, s.remote, strings.Join(have, ", "))
}

func containerPortByName(pod *corev1.Pod, name string) (int, error) {
	var have []string
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
					return 0, fmt.Errorf("port %q of pod %s/%s is %s: only TCP can be forwarded", name, pod.Namespace, pod.Name, p.Protocol)
				}
				return int(p.ContainerPort), nil
			}
			if p.Name != "" {
				have = append(have, fmt.Sprintf("%s=%d", p.Name, p.ContainerPort))
			}
		}
	}
	if len(have) == 0 {
		have = []string{"none"}
	}
	return 0, fmt.Errorf("port name %q is not a container port of pod %s/%s (named ports: %s)", name, pod.Namespace, pod.Name, strings.Join(have, ", "))
}

// forwarder serves the local listeners of one port-forward session.
type forwarder struct {
	streams   skiffv1.PodStreamServiceClient
	namespace string
	pod       string
	out       io.Writer // "Forwarding from" and "Handling connection" lines
	errOut    io.Writer
	mu        sync.Mutex // serialises writes to out and errOut
	// lost receives (without blocking) the first error that says the pod
	// is gone or no longer running: the session ends then, as kubectl's.
	lost chan error
}

func (f *forwarder) printf(w io.Writer, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(w, format, args...)
}

// listenAll opens a listener per address and spec. A LOCAL of 0 picks a free
// port on the first address and uses the same number on the others.
func listenAll(addrs []string, specs []portSpec, podPorts []int) ([]net.Listener, []int, error) {
	var ls []net.Listener
	var remotes []int
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	for i, s := range specs {
		local := s.local
		if s.sameAsRemote {
			local = s.remoteNum
			if local == 0 {
				local = podPorts[i]
			}
		}
		for _, a := range addrs {
			l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(local)))
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("unable to listen on %s port %d: %w", a, local, err)
			}
			if local == 0 {
				local = l.Addr().(*net.TCPAddr).Port
			}
			ls = append(ls, l)
			remotes = append(remotes, podPorts[i])
		}
	}
	return ls, remotes, nil
}

// serve accepts connections on l until ctx ends, forwarding each to port
// of the pod on a stream of its own.
func (f *forwarder) serve(ctx context.Context, l net.Listener, port int) {
	local := l.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				f.printf(f.errOut, "error accepting on port %d: %v\n", local, err)
			}
			return
		}
		f.printf(f.out, "Handling connection for %d\n", local)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.forward(ctx, conn.(*net.TCPConn), port); err != nil {
				f.printf(f.errOut, "error forwarding port %d to pod %s/%s: %v\n", port, f.namespace, f.pod, err)
				if client.IsNotFound(err) || client.IsBadRequest(err) {
					select {
					case f.lost <- err:
					default:
					}
				}
			}
		}()
	}
}

// forward copies one local connection to and from a PortForward stream.
// Each side's end of input becomes a half-close of the other, so
// protocols that read to EOF work; the stream ends once both are closed.
func (f *forwarder) forward(ctx context.Context, conn *net.TCPConn, port int) error {
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	s, err := f.streams.PortForward(ctx)
	if err != nil {
		return client.FromError(err)
	}
	start := &skiffv1.PortForwardStart{Namespace: f.namespace, Pod: f.pod, Port: int32(port)}
	if err := s.Send(&skiffv1.PortForwardRequest{Start: start}); err != nil {
		_, err = s.Recv() // the status says why the stream broke
		return client.FromError(err)
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				if s.Send(&skiffv1.PortForwardRequest{Data: append([]byte(nil), buf[:n]...)}) != nil {
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					_ = s.CloseSend()
				} else {
					cancel()
				}
				return
			}
		}
	}()
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // we are shutting down, or the local side broke
			}
			return client.FromError(err)
		}
		if len(m.Data) > 0 {
			if _, err := conn.Write(m.Data); err != nil {
				return nil // the local client went away
			}
		}
		if m.Eof {
			_ = conn.CloseWrite()
		}
	}
}

func newPortForwardCmd() *cobra.Command {
	var (
		cf        cliFlags
		addresses []string
	)
	cmd := &cobra.Command{
		Use:   "port-forward TYPE/NAME [LOCAL_PORT:]REMOTE_PORT [...]",
		Short: "Forward one or more local ports to a pod",
		Long: `Listen on local ports and forward each connection to a port of a pod, through
the API server and the agent of the pod's node (which connects to the pod's IP).
TYPE/NAME is a pod (POD, pod/NAME) or a workload whose Running and Ready pod is
chosen: svc/NAME, deploy/NAME, rs/NAME, sts/NAME. With svc/NAME, REMOTE_PORT is
a port of the Service (number or name) and is mapped to its targetPort.
A LOCAL_PORT of 0, or ":REMOTE_PORT", picks a free local port.`,
		Example: `  skiff port-forward web-7d9f 8080:80
  skiff port-forward svc/web 8080:http
  skiff port-forward deploy/web :80 --address 0.0.0.0`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var specs []portSpec
			for _, a := range args[1:] {
				s, err := parsePortSpec(a)
				if err != nil {
					return err
				}
				specs = append(specs, s)
			}
			addrs, err := parseAddresses(addresses)
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rctx, rcancel := cf.request(ctx)
			ft, err := resolveForward(rctx, c, c.Namespace, args[0], specs)
			rcancel()
			if err != nil {
				return err
			}
			ls, remotes, err := listenAll(addrs, specs, ft.ports)
			if err != nil {
				return err
			}
			f := &forwarder{streams: c.PodStreams(), namespace: ft.pod.Namespace, pod: ft.pod.Name,
				out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), lost: make(chan error, 1)}
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var wg sync.WaitGroup
			for i, l := range ls {
				f.printf(f.out, "Forwarding from %s -> %d\n", l.Addr(), remotes[i])
				wg.Add(1)
				go func() {
					defer wg.Done()
					f.serve(ctx, l, remotes[i])
				}()
			}
			var lost error
			select {
			case <-ctx.Done():
			case err := <-f.lost:
				lost = fmt.Errorf("lost connection to pod %s/%s: %w", ft.pod.Namespace, ft.pod.Name, err)
				cancel()
			}
			for _, l := range ls {
				l.Close()
			}
			wg.Wait()
			return lost
		},
	}
	cf.register(cmd, false)
	cmd.Flags().StringSliceVar(&addresses, "address", []string{"127.0.0.1"}, "addresses to listen on (comma-separated IPs or localhost)")
	return cmd
}

// parseAddresses checks --address: IPs, or localhost (127.0.0.1 and ::1).
func parseAddresses(in []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, a := range in {
		a = strings.TrimSpace(a)
		switch {
		case a == "localhost":
			add("127.0.0.1")
			add("::1")
		case net.ParseIP(a) != nil:
			add(a)
		default:
			return nil, fmt.Errorf("--address %q: give IP addresses or localhost", a)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--address: give at least one address")
	}
	return out, nil
}

func init() { rootCmd.AddCommand(newPortForwardCmd()) }
