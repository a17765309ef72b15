package apiserver

import (
	"context"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// systemNamespaces exist from bootstrap and cannot be deleted.
// kube-node-lease holds the agents' heartbeat Leases; Kubernetes lets it
// be deleted and recreates it within a minute, Skiff refuses instead (the
// agents' Lease renewals would fail until then).
var systemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

func (s *Server) namespaceKind() Kind { return s.kinds[schema.GroupResource{Resource: "namespaces"}] }

// bootstrapNamespaces creates the system namespaces that are missing; each
// with a create-if-absent transaction, so concurrent servers agree.
func (s *Server) bootstrapNamespaces(ctx context.Context) error {
	k := s.namespaceKind()
	for _, name := range systemNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, UID: uuid.NewUUID(), CreationTimestamp: metav1.Now(),
			Labels: map[string]string{"kubernetes.io/metadata.name": name}},
			Spec:   corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
		data, err := encodeForStore(k, ns)
		if err != nil {
			return err
		}
		key := s.objectKey(k, "", name)
		if _, err := s.etcd.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(data))).Commit(); err != nil {
			return fmt.Errorf("bootstrapping namespace %s: %w", name, err)
		}
	}
	return nil
}

// deleteNamespace marks a namespace Terminating and starts the sweep that
// deletes everything in it and then the namespace itself. The sweep runs in
// the background (as Kubernetes' namespace controller does); a server that
// restarts resumes the sweeps of Terminating namespaces.
func (s *Server) deleteNamespace(ctx context.Context, k Kind, req *skiffv1.DeleteRequest) (*skiffv1.DeleteResponse, error) {
	name := req.Ref.Name
	for _, sys := range systemNamespaces {
		if name == sys {
			return nil, client.NewForbidden(k.GroupResource(), name, "this namespace may not be deleted")
		}
	}
	for attempt := 0; attempt < maxRetries; attempt++ {
		obj, modRev, err := s.getObject(ctx, k, "", name)
		if err != nil {
			return nil, err
		}
		ns := obj.(*corev1.Namespace)
		if req.PreconditionUid != "" && string(ns.UID) != req.PreconditionUid {
			return nil, client.NewConflict(k.GroupResource(), name, "Precondition failed: UID mismatch")
		}
		if req.PreconditionResourceVersion != "" && req.PreconditionResourceVersion != ns.ResourceVersion {
			return nil, client.NewConflict(k.GroupResource(), name, "Precondition failed: ResourceVersion mismatch")
		}
		if req.DryRun {
			data, err := marshal(ns)
			return &skiffv1.DeleteResponse{Object: data, Pending: true}, err
		}
		if ns.DeletionTimestamp == nil {
			now := metav1.Now()
			zero := int64(0)
			ns.DeletionTimestamp, ns.DeletionGracePeriodSeconds = &now, &zero
			ns.Status.Phase = corev1.NamespaceTerminating
			data, err := encodeForStore(k, ns)
			if err != nil {
				return nil, client.NewInternal(err)
			}
			key := s.objectKey(k, "", name)
			resp, err := s.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)},
				[]clientv3.Op{clientv3.OpPut(key, string(data))})
			if err != nil {
				return nil, err
			}
			if !resp.Succeeded {
				continue
			}
			ns.ResourceVersion = strconv.FormatInt(resp.Header.Revision, 10)
		}
		s.startSweep(name)
		data, err := marshal(ns)
		return &skiffv1.DeleteResponse{Object: data, Pending: true}, err
	}
	return nil, client.NewConflict(k.GroupResource(), name, "too many concurrent writes, try again")
}

// startSweep runs one sweep per namespace at a time, for the life of Run.
func (s *Server) startSweep(ns string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sweeps[ns] || s.runCtx == nil || s.runCtx.Err() != nil {
		return
	}
	s.sweeps[ns] = true
	ctx := s.runCtx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.sweeps, ns)
			s.mu.Unlock()
		}()
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			err := s.sweepNamespace(ctx, ns)
			if err == nil {
				s.log.Info("namespace deleted", "namespace", ns)
				return
			}
			s.log.Warn("namespace sweep failed, retrying", "namespace", ns, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}()
}

// sweepNamespace deletes every object of every namespaced kind in ns, then
// ns. Objects are removed outright: their finalizers and grace periods are
// not waited for.
func (s *Server) sweepNamespace(ctx context.Context, ns string) error {
	for _, k := range s.scheme.Kinds() {
		if !k.Namespaced {
			continue
		}
		resp, err := s.etcd.Get(ctx, s.listPrefix(k, ns), clientv3.WithPrefix())
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			obj, err := decodeStored(k, kv.Value, kv.ModRevision)
			if err != nil {
				return err
			}
			if _, _, err := s.deleteNow(ctx, k, obj, kv.ModRevision); err != nil {
				return err
			}
		}
		// Something written meanwhile is caught by the next pass.
		if len(resp.Kvs) > 0 {
			if again, err := s.etcd.Get(ctx, s.listPrefix(k, ns), clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
				return err
			} else if again.Count > 0 {
				return fmt.Errorf("%d %s appeared while sweeping", again.Count, k.GVR.Resource)
			}
		}
	}
	_, err := s.etcd.Delete(ctx, s.objectKey(s.namespaceKind(), "", ns))
	return err
}

// resumeNamespaceSweeps restarts the sweeps a previous run left unfinished.
func (s *Server) resumeNamespaceSweeps(ctx context.Context) {
	k := s.namespaceKind()
	rctx, cancel := context.WithTimeout(ctx, s.cfg.StoreRequestTimeout)
	defer cancel()
	resp, err := s.etcd.Get(rctx, s.listPrefix(k, ""), clientv3.WithPrefix())
	if err != nil {
		s.log.Warn("listing namespaces to resume sweeps", "err", err)
		return
	}
	for _, kv := range resp.Kvs {
		obj, err := decodeStored(k, kv.Value, kv.ModRevision)
		if err != nil {
			continue
		}
		if ns := obj.(*corev1.Namespace); ns.DeletionTimestamp != nil {
			s.startSweep(ns.Name)
		}
	}
}
