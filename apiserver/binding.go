package apiserver

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// Limits of Bind.
const (
	// MaxBindings is the most bindings one Bind call may carry.
	MaxBindings = client.MaxBindingsPerCall
	// bindReadChunk is how many pods one read transaction of Bind gets:
	// etcd's default --max-txn-ops (raftstore's too).
	bindReadChunk = 128
	// bindWritesInFlight bounds the concurrent compare-and-swap writes of
	// one Bind call.
	bindWritesInFlight = 128
)

var podsResource = schema.GroupResource{Resource: "pods"}

// Bind implements ClusterService: it binds many pods to nodes, each binding
// a compare-and-swap of its own.
//
// Why it is cheaper than one Update per pod, which it otherwise equals (the
// pod written is the pod an Update setting spec.nodeName writes, plus the
// PodScheduled=True condition Kubernetes' binding subresource sets): one
// request instead of N; a binding names the pod instead of carrying it, so
// no pod is encoded by the caller nor strictly decoded, defaulted and
// validated here; and the pods are read together, 128 per read, and
// serializably when the binding names a version (see below).
//
// The writes stay one transaction per pod, issued together so that the
// store commits them in the same Raft append: one revision per pod, as
// for every other write. Watchers resume after the resourceVersion of the
// last object they saw, so two objects sharing a revision could lose the
// second to a watch broken between them.
func (s *Server) Bind(ctx context.Context, req *skiffv1.BindRequest) (*skiffv1.BindResponse, error) {
	k, ok := s.kinds[podsResource]
	if !ok {
		return nil, client.NewNotFound(podsResource, "").WithMessage(`the server doesn't have a resource type "pods"`)
	}
	n := len(req.GetBindings())
	if n > MaxBindings {
		return nil, client.NewBadRequest(fmt.Sprintf("%d bindings in one request: at most %d", n, MaxBindings))
	}
	results := make([]*skiffv1.BindResult, n)
	fail := func(i int, err *client.StatusError) {
		results[i] = &skiffv1.BindResult{Error: err.Status, Code: int32(err.Code)}
	}

	// Check each binding on its own; the valid ones are read.
	var todo []int // indexes of the bindings to read
	seen := make(map[string]int, n)
	for i, b := range req.Bindings {
		if b.Namespace == "" {
			b.Namespace = metav1.NamespaceDefault
		}
		if err := checkBinding(b); err != nil {
			fail(i, err)
			continue
		}
		key := s.objectKey(k, b.Namespace, b.Name)
		if first, dup := seen[key]; dup {
			fail(i, client.NewBadRequest(fmt.Sprintf("bindings[%d]: pod %s/%s is already bound by bindings[%d] of this request", i, b.Namespace, b.Name, first)))
			continue
		}
		seen[key] = i
		todo = append(todo, i)
	}

	type write struct {
		i      int
		key    string
		data   []byte
		modRev int64
	}
	var writes []write
	// read reads the pods of bindings idx, 128 per transaction, and sorts
	// each binding into writes, failures, or (serializable reads only)
	// again: a read that may have been stale.
	read := func(idx []int, serializable bool) (again []int, err error) {
		for start := 0; start < len(idx); start += bindReadChunk {
			chunk := idx[start:min(start+bindReadChunk, len(idx))]
			ops := make([]clientv3.Op, len(chunk))
			for j, i := range chunk {
				b := req.Bindings[i]
				var opts []clientv3.OpOption
				if serializable {
					opts = append(opts, clientv3.WithSerializable())
				}
				ops[j] = clientv3.OpGet(s.objectKey(k, b.Namespace, b.Name), opts...)
			}
			resp, err := s.txn(ctx, nil, ops)
			if err != nil {
				return nil, err
			}
			for j, i := range chunk {
				b := req.Bindings[i]
				kvs := resp.Responses[j].GetResponseRange().GetKvs()
				if serializable && (len(kvs) == 0 || kvs[0].ModRevision < wantRevision(b)) {
					again = append(again, i)
					continue
				}
				if len(kvs) == 0 {
					fail(i, client.NewNotFound(podsResource, b.Name))
					continue
				}
				data, err := boundPod(k, b, kvs[0].Value, kvs[0].ModRevision)
				if err != nil {
					fail(i, err)
					continue
				}
				writes = append(writes, write{i: i, key: string(kvs[0].Key), data: data, modRev: kvs[0].ModRevision})
			}
		}
		return again, nil
	}
	// Bindings that name the version they were decided on are read
	// serializably (from the member's state at once, without waiting for a
	// read index behind the writes in flight — under load that wait was
	// most of a Bind call). That is safe because every write compares the
	// pod's mod revision with the one read: a stale read can only make the
	// write fail, never overwrite a newer pod. And a read that shows the
	// pod older than the binding's version, or not at all, is known stale
	// and read again linearizably, so no binding fails for a read that was
	// behind. Bindings without a version have nothing to tell a stale read
	// by, and are read linearizably.
	var withRV, withoutRV []int
	for _, i := range todo {
		if req.Bindings[i].ResourceVersion != "" {
			withRV = append(withRV, i)
		} else {
			withoutRV = append(withoutRV, i)
		}
	}
	stale, err := read(withRV, true)
	if err != nil {
		return nil, err
	}
	if _, err := read(append(withoutRV, stale...), false); err != nil {
		return nil, err
	}

	// One compare-and-swap per pod, all in flight together.
	var wg sync.WaitGroup
	sem := make(chan struct{}, bindWritesInFlight)
	var mu sync.Mutex // guards results written by the goroutines
	var storeErr error
	for _, w := range writes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			resp, err := s.txn(ctx,
				[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(w.key), "=", w.modRev)},
				[]clientv3.Op{clientv3.OpPut(w.key, string(w.data))})
			mu.Lock()
			defer mu.Unlock()
			b := req.Bindings[w.i]
			switch {
			case err != nil:
				// The write's outcome is unknown; the caller must look.
				storeErr = err
			case !resp.Succeeded:
				fail(w.i, client.NewConflict(podsResource, b.Name, client.StaleResourceVersion))
			default:
				results[w.i] = &skiffv1.BindResult{ResourceVersion: strconv.FormatInt(resp.Header.Revision, 10)}
			}
		}()
	}
	wg.Wait()
	if storeErr != nil {
		return nil, storeErr
	}
	return &skiffv1.BindResponse{Results: results}, nil
}

// wantRevision is the mod revision the binding names, 0 for none.
func wantRevision(b *skiffv1.PodBinding) int64 {
	rv, _ := strconv.ParseInt(b.ResourceVersion, 10, 64) // checked by checkBinding
	return rv
}

// checkBinding checks what a binding says without reading the pod.
func checkBinding(b *skiffv1.PodBinding) *client.StatusError {
	if b.Name == "" {
		return client.NewBadRequest("a binding names no pod (name is empty)")
	}
	if b.NodeName == "" {
		return client.NewBadRequest(fmt.Sprintf("the binding of pod %s/%s names no node (node_name is empty)", b.Namespace, b.Name))
	}
	if errs := validation.IsDNS1123Subdomain(b.NodeName); len(errs) > 0 {
		return client.NewBadRequest(fmt.Sprintf("the binding of pod %s/%s: node_name %q: %s", b.Namespace, b.Name, b.NodeName, errs[0]))
	}
	if b.ResourceVersion != "" {
		if _, err := strconv.ParseInt(b.ResourceVersion, 10, 64); err != nil {
			return client.NewBadRequest(fmt.Sprintf("the binding of pod %s/%s: invalid resource_version %q", b.Namespace, b.Name, b.ResourceVersion))
		}
	}
	return nil
}

// boundPod is the stored pod data bound as b says, or why it may not be.
// The checks are those of Kubernetes' binding subresource.
func boundPod(k Kind, b *skiffv1.PodBinding, data []byte, modRev int64) ([]byte, *client.StatusError) {
	obj, err := decodeStored(k, data, modRev)
	if err != nil {
		return nil, client.NewInternal(err)
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, client.NewInternal(fmt.Errorf("stored pods decode as %T", obj))
	}
	switch {
	case b.ResourceVersion != "" && b.ResourceVersion != pod.ResourceVersion:
		return nil, client.NewConflict(podsResource, b.Name, client.StaleResourceVersion)
	case b.Uid != "" && b.Uid != string(pod.UID):
		return nil, client.NewConflict(podsResource, b.Name,
			fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", b.Uid, pod.UID))
	case pod.DeletionTimestamp != nil:
		return nil, client.NewConflict(podsResource, b.Name,
			fmt.Sprintf("pod %s is being deleted, cannot be assigned to a host", b.Name))
	case pod.Spec.NodeName != "":
		return nil, client.NewConflict(podsResource, b.Name,
			fmt.Sprintf("pod %s is already assigned to node %q", b.Name, pod.Spec.NodeName))
	case len(pod.Spec.SchedulingGates) > 0:
		return nil, client.NewConflict(podsResource, b.Name,
			fmt.Sprintf("pod %s has non-empty .spec.schedulingGates", b.Name))
	}
	pod.Spec.NodeName = b.NodeName
	// The spec changed: as Update counts it.
	pod.Generation++
	setPodScheduled(pod, metav1.Now())
	out, err := encodeForStore(k, pod)
	if err != nil {
		return nil, client.NewInternal(err)
	}
	return out, nil
}

// setPodScheduled sets the PodScheduled condition True, as Kubernetes'
// binding does (replacing the False a failed attempt may have left).
func setPodScheduled(pod *corev1.Pod, now metav1.Time) {
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		if c.Type != corev1.PodScheduled {
			continue
		}
		if c.Status != corev1.ConditionTrue {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime = corev1.ConditionTrue, "", "", metav1.Time{}
		return
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now,
	})
}
