package sched

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// hollowFleet is a set of hollow nodes for the end-to-end benchmark, in
// the manner of Kubernetes' kubemark: each registers a Node (status with
// allocatable, Ready, addresses) and its Lease in kube-node-lease owned by
// the Node, as an agent does, and reports every pod bound to it Running
// with an UpdateStatus — the same write an agent makes — without running
// anything.
//
// The fleet watches the bound pods with one watch rather than one per
// node: in this process 5,000 watch streams would each have the API server
// decode every pod event, and the benchmark would measure that fan-out on
// two cores rather than the scheduler. Each node still reports its own pods
// from its own goroutine, in the order they were bound to it.
type hollowFleet struct {
	c      *client.Client
	nodes  map[string]*hollowNode
	inf    *client.Informer
	wg     sync.WaitGroup
	cancel context.CancelFunc

	running, errors atomic.Int64
}

type hollowNode struct {
	name string
	ip   string
	mu   sync.Mutex
	// pending are pods bound to the node and not yet reported; reported
	// are the keys already written Running (the watch may show a pod
	// again before its Running status arrives).
	pending  []*corev1.Pod
	reported map[string]bool
	wake     chan struct{}
}

// hollowNodeObject is the Node a hollow node registers: 32 cpus, 128Gi,
// 110 pods, in one of three zones.
func hollowNodeObject(i int) *corev1.Node {
	name := fmt.Sprintf("hollow-%05d", i)
	rl := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("128Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	now := metav1.Now()
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			corev1.LabelHostname:     name,
			corev1.LabelOSStable:     "linux",
			corev1.LabelArchStable:   "amd64",
			corev1.LabelTopologyZone: fmt.Sprintf("zone-%d", i%3),
		}},
		Status: corev1.NodeStatus{
			Capacity:    rl,
			Allocatable: rl,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				Message: "hollow node is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: hollowIP(i, 0)},
				{Type: corev1.NodeHostName, Address: name}},
			NodeInfo: corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "hollow"},
		},
	}
}

// hollowIP is an address of node i: its own (pod 0) or one for a pod.
func hollowIP(i, pod int) string {
	return fmt.Sprintf("10.%d.%d.%d", 64+i/256, i%256, pod%250+1)
}

// startHollowFleet registers n hollow nodes (workers at a time) and starts
// reporting the pods bound to them. Stop with stop.
func startHollowFleet(ctx context.Context, c *client.Client, n, workers int) (*hollowFleet, error) {
	f := &hollowFleet{c: c, nodes: make(map[string]*hollowNode, n)}
	var mu sync.Mutex
	err := parallel(n, workers, func(i int) error {
		node := hollowNodeObject(i)
		status := node.Status
		if err := c.Create(ctx, node); err != nil {
			return fmt.Errorf("registering %s: %w", node.Name, err)
		}
		node.Status = status
		if err := c.UpdateStatus(ctx, node); err != nil {
			return fmt.Errorf("status of %s: %w", node.Name, err)
		}
		secs := int32(40)
		now := metav1.NewMicroTime(time.Now())
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: node.Name,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &node.Name, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
		}
		if err := c.Create(ctx, lease); err != nil {
			return fmt.Errorf("lease of %s: %w", node.Name, err)
		}
		mu.Lock()
		f.nodes[node.Name] = &hollowNode{name: node.Name, ip: hollowIP(i, 0), reported: map[string]bool{}, wake: make(chan struct{}, 1)}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Bound and not yet Running: a pod leaves this view once reported.
	inf, err := client.NewInformer(c, metav1.NamespaceAll, &corev1.Pod{},
		client.ListOptions{FieldSelector: "spec.nodeName!=,status.phase=Pending"}, 0)
	if err != nil {
		return nil, err
	}
	f.inf = inf
	inf.AddHandler(client.Handler{
		OnAdd:    f.podBound,
		OnUpdate: func(_, o runtime.Object) { f.podBound(o) },
	})
	ctx, f.cancel = context.WithCancel(ctx)
	f.wg.Add(1)
	go func() { defer f.wg.Done(); _ = inf.Run(ctx) }()
	for _, hn := range f.nodes {
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.runNode(ctx, hn) }()
	}
	if !inf.WaitForSync(ctx) {
		f.stop()
		return nil, fmt.Errorf("hollow nodes' pod watch did not sync: %w", ctx.Err())
	}
	return f, nil
}

func (f *hollowFleet) stop() {
	f.cancel()
	f.wg.Wait()
}

// podBound hands a pod bound to one of the fleet's nodes to that node.
func (f *hollowFleet) podBound(o runtime.Object) {
	p := o.(*corev1.Pod)
	hn := f.nodes[p.Spec.NodeName]
	if hn == nil || p.DeletionTimestamp != nil {
		return
	}
	hn.mu.Lock()
	if !hn.reported[podKey(p)] {
		hn.pending = append(hn.pending, p)
	}
	hn.mu.Unlock()
	select {
	case hn.wake <- struct{}{}:
	default:
	}
}

// runNode reports the node's pods Running, one after the other.
func (f *hollowFleet) runNode(ctx context.Context, hn *hollowNode) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hn.wake:
		}
		hn.mu.Lock()
		todo := hn.pending
		hn.pending = nil
		hn.mu.Unlock()
		for _, p := range todo {
			key := podKey(p)
			hn.mu.Lock()
			done := hn.reported[key]
			hn.mu.Unlock()
			if done {
				continue
			}
			ours, err := f.reportRunning(ctx, hn, p)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				f.errors.Add(1)
				continue // the watch shows the pod again if it still matters
			}
			hn.mu.Lock()
			hn.reported[key] = true
			hn.mu.Unlock()
			if ours {
				f.running.Add(1)
			}
		}
	}
}

// reportRunning writes the status an agent writes once every container of
// the pod has started and is ready. False when the pod turned out to be
// another one, or no longer bound to the node.
func (f *hollowFleet) reportRunning(ctx context.Context, hn *hollowNode, cached *corev1.Pod) (ours bool, err error) {
	p := cached.DeepCopy()
	ours = true
	err = client.RetryOnConflict(ctx, 5, func() error {
		now := metav1.Now()
		p.Status.Phase = corev1.PodRunning
		p.Status.HostIP = hn.ip
		p.Status.HostIPs = []corev1.HostIP{{IP: hn.ip}}
		p.Status.PodIP = hn.ip // hollow: no pod network
		p.Status.PodIPs = []corev1.PodIP{{IP: hn.ip}}
		p.Status.StartTime = &now
		p.Status.Conditions = nil
		for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
		}
		p.Status.ContainerStatuses = nil
		for _, c := range p.Spec.Containers {
			started := true
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, ImageID: "hollow://" + c.Image, ContainerID: "hollow://" + string(p.UID) + "/" + c.Name,
				Ready: true, Started: &started, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
		err := f.c.UpdateStatus(ctx, p)
		if client.IsConflict(err) {
			fresh := &corev1.Pod{}
			if gerr := f.c.Get(ctx, cached.Namespace, cached.Name, fresh); gerr != nil {
				return gerr
			}
			if fresh.UID != cached.UID || fresh.Spec.NodeName != hn.name {
				ours = false // replaced or moved meanwhile: not ours to report
				return nil
			}
			p = fresh
		}
		return err
	})
	return ours, err
}
