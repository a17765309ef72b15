package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// PortForward implements PodStreamService by forwarding one connection to
// the pod's agent, which dials the pod. The pod must be Running: kubectl
// refuses the same way rather than hang on a pod that cannot answer.
func (p *podStreams) PortForward(stream skiffv1.PodStreamService_PortForwardServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	st := first.GetStart()
	if st == nil {
		return client.NewBadRequest("port-forward: the first message must say where to connect (start)")
	}
	if st.Port < 1 || st.Port > 65535 {
		return client.NewBadRequest(fmt.Sprintf("port-forward: port %d is not a TCP port (1-65535)", st.Port))
	}
	pod, err := p.getPod(ctx, st.Namespace, st.Pod)
	if err != nil {
		return err
	}
	if pod.Status.Phase != corev1.PodRunning {
		phase := pod.Status.Phase
		if phase == "" {
			phase = corev1.PodPending
		}
		return client.NewBadRequest(fmt.Sprintf("unable to forward port because pod %s/%s is not running (phase %s)", pod.Namespace, pod.Name, phase))
	}
	pod, conn, err := p.dialAgent(ctx, pod.Namespace, pod.Name)
	if err != nil {
		return err
	}
	defer conn.Close()
	up, err := skiffv1.NewPodStreamServiceClient(conn).PortForward(ctx)
	if err != nil {
		return agentError(pod.Spec.NodeName, err)
	}
	fwd := proto.Clone(st).(*skiffv1.PortForwardStart)
	fwd.Namespace, fwd.PodUid = pod.Namespace, string(pod.UID)
	if err := up.Send(&skiffv1.PortForwardRequest{Start: fwd}); err != nil {
		return err
	}
	// caller → agent; the caller's CloseSend becomes ours.
	go func() {
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				_ = up.CloseSend()
				return
			}
			if err != nil {
				cancel()
				return
			}
			if err := up.Send(m); err != nil {
				return // the agent's Recv below reports why
			}
		}
	}()
	for {
		m, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return agentError(pod.Spec.NodeName, err)
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
}

// agentError names the node in an agent that cannot be reached, so that
// the caller does not take it for the API server being down.
func agentError(node string, err error) error {
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable && strings.Contains(st.Message(), "connection error") {
		return status.Errorf(codes.Unavailable, "cannot reach the agent of node %s: %s", node, st.Message())
	}
	return err
}

// topCallTimeout bounds one agent's answer beyond its sampling window.
const topCallTimeout = 10 * time.Second

// Top implements PodStreamService: it asks the agent of every node
// concerned (all nodes for node figures; the nodes running the selected
// pods otherwise) in parallel and merges the answers. A node that does
// not answer becomes a warning, as metrics-server leaves out what it could
// not scrape.
func (p *podStreams) Top(ctx context.Context, req *skiffv1.TopRequest) (*skiffv1.TopResponse, error) {
	if req.WindowMs < 0 || req.WindowMs > 10000 {
		return nil, client.NewBadRequest(fmt.Sprintf("top: window_ms %d must be between 1 and 10000", req.WindowMs))
	}
	if req.Pod != "" && req.Namespace == "" {
		return nil, client.NewBadRequest("top: a pod needs its namespace")
	}
	nodeKind := p.s.kinds[schema.GroupResource{Resource: "nodes"}]
	nodeObjs, err := p.listObjects(ctx, nodeKind, "")
	if err != nil {
		return nil, err
	}
	nodes := map[string]*corev1.Node{}
	for _, o := range nodeObjs {
		n := o.(*corev1.Node)
		nodes[n.Name] = n
	}
	var names []string
	if req.Nodes {
		for name := range nodes {
			if req.Node == "" || name == req.Node {
				names = append(names, name)
			}
		}
		if req.Node != "" && len(names) == 0 {
			return nil, client.NewNotFound(schema.GroupResource{Resource: "nodes"}, req.Node)
		}
	} else {
		podKind := p.s.kinds[schema.GroupResource{Resource: "pods"}]
		var podObjs []runtime.Object
		if req.Pod != "" {
			pod, err := p.getPod(ctx, req.Namespace, req.Pod)
			if err != nil {
				return nil, err
			}
			podObjs = append(podObjs, pod)
		} else if podObjs, err = p.listObjects(ctx, podKind, req.Namespace); err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, o := range podObjs {
			pod := o.(*corev1.Pod)
			if n := pod.Spec.NodeName; n != "" && pod.Status.Phase == corev1.PodRunning && !seen[n] && (req.Node == "" || n == req.Node) {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)

	resp := &skiffv1.TopResponse{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.topNode(ctx, nodes[name], name, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				resp.Warnings = append(resp.Warnings, err.Error())
				return
			}
			resp.Nodes = append(resp.Nodes, r.Nodes...)
			resp.Pods = append(resp.Pods, r.Pods...)
			resp.Warnings = append(resp.Warnings, r.Warnings...)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, client.FromError(err)
	}
	sort.Slice(resp.Nodes, func(i, j int) bool { return resp.Nodes[i].Name < resp.Nodes[j].Name })
	sort.Slice(resp.Pods, func(i, j int) bool {
		a, b := resp.Pods[i], resp.Pods[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	sort.Strings(resp.Warnings)
	return resp, nil
}

// topNode asks one node's agent; its errors name the node.
func (p *podStreams) topNode(ctx context.Context, node *corev1.Node, name string, req *skiffv1.TopRequest) (*skiffv1.TopResponse, error) {
	if node == nil {
		return nil, fmt.Errorf("node %s: pods are bound to it but it is not registered", name)
	}
	conn, err := p.dialNodeObject(node)
	if err != nil {
		return nil, errors.New(client.FromError(err).Error()) // names the node
	}
	defer conn.Close()
	window := time.Duration(req.WindowMs) * time.Millisecond
	cctx, cancel := context.WithTimeout(ctx, window+topCallTimeout)
	defer cancel()
	fwd := proto.Clone(req).(*skiffv1.TopRequest)
	fwd.Node = name
	r, err := skiffv1.NewPodStreamServiceClient(conn).Top(cctx, fwd)
	if err != nil {
		if st, ok := status.FromError(agentError(name, err)); ok {
			if strings.Contains(st.Message(), "node "+name) {
				return nil, errors.New(st.Message())
			}
			return nil, fmt.Errorf("node %s: %s", name, st.Message())
		}
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	return r, nil
}

// listObjects reads every object of a kind in ns ("" for all namespaces
// or a cluster-scoped kind) at one revision.
func (p *podStreams) listObjects(ctx context.Context, k Kind, ns string) ([]runtime.Object, error) {
	resp, err := p.s.etcd.Get(ctx, p.s.listPrefix(k, ns), clientv3.WithPrefix())
	if err != nil {
		return nil, storeError(err)
	}
	out := make([]runtime.Object, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		obj, err := decodeStored(k, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, client.NewInternal(err)
		}
		out = append(out, obj)
	}
	return out, nil
}
