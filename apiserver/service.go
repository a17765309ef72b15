package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// maxRetries bounds the retries of writes that lost a race they can
// recover from (an automatic allocation, an unconditional update).
const maxRetries = 8

// resolve finds the kind of a request and checks its namespace shape.
func (s *Server) resolve(ref *skiffv1.ResourceRef, needName bool) (Kind, error) {
	if ref == nil {
		return Kind{}, client.NewBadRequest("the request has no resource reference")
	}
	k, ok := s.kinds[schema.GroupResource{Group: ref.Group, Resource: ref.Resource}]
	if !ok {
		return Kind{}, client.NewNotFound(schema.GroupResource{Group: ref.Group, Resource: ref.Resource}, ref.Name).
			WithMessage(fmt.Sprintf("the server doesn't have a resource type %q", ref.Resource))
	}
	if ref.Version != "" && ref.Version != k.GVR.Version {
		return Kind{}, client.NewBadRequest(fmt.Sprintf("%s is served as version %s, not %s", k.GVR.Resource, k.GVR.Version, ref.Version))
	}
	if needName && ref.Name == "" {
		return Kind{}, client.NewBadRequest("resource name may not be empty")
	}
	if !k.Namespaced && ref.Namespace != "" {
		return Kind{}, client.NewBadRequest(fmt.Sprintf("%s is not namespaced: do not give a namespace", k.GVR.Resource))
	}
	return k, nil
}

// marshal encodes an object for a response.
func marshal(obj runtime.Object) ([]byte, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, client.NewInternal(err)
	}
	return data, nil
}

// hasField reports whether the kind's JSON has a top-level field (spec,
// status).
func hasField(k Kind, name string) bool {
	t := reflect.TypeOf(k.New()).Elem()
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		if tag == name || len(tag) > len(name) && tag[:len(name)+1] == name+"," {
			return true
		}
	}
	return false
}

// topField is the JSON of a top-level field of obj, or nil.
func topField(obj runtime.Object, name string) json.RawMessage {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m[name]
}

// withTopField returns a copy of obj whose top-level field name is taken
// from src.
func withTopField(k Kind, obj, src runtime.Object, name string) (runtime.Object, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if v := topField(src, name); v != nil {
		m[name] = v
	} else {
		delete(m, name)
	}
	data, err = json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := k.New()
	if err := json.Unmarshal(data, out); err != nil {
		return nil, err
	}
	out.GetObjectKind().SetGroupVersionKind(k.GVK())
	return out, nil
}

// checkNamespace fails when a namespaced object's namespace does not
// exist or is being deleted.
func (s *Server) checkNamespace(ctx context.Context, k Kind, ns string) error {
	if !k.Namespaced {
		return nil
	}
	nsKind := s.kinds[schema.GroupResource{Resource: "namespaces"}]
	obj, _, err := s.getObject(ctx, nsKind, "", ns)
	if err != nil {
		return err
	}
	if n := obj.(*corev1.Namespace); n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating {
		return client.NewForbidden(k.GroupResource(), "",
			fmt.Sprintf("unable to create new content in namespace %s because it is being terminated", ns))
	}
	return nil
}

// prepareCreate decodes, places, defaults and validates a new object.
func (s *Server) prepareCreate(ctx context.Context, k Kind, ref *skiffv1.ResourceRef, data []byte) (runtime.Object, metav1.Object, error) {
	obj, m, err := decodeRequest(k, data)
	if err != nil {
		return nil, nil, err
	}
	if err := s.placeObject(k, ref, m); err != nil {
		return nil, nil, err
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(m.GetGenerateName() + utilrand.String(5))
	}
	if err := s.checkNamespace(ctx, k, m.GetNamespace()); err != nil {
		return nil, nil, err
	}
	s.scheme.Default(obj)
	// Mutating admission (LimitRange defaults) before PrepareForCreate, so
	// a pod's QoS class sees the defaulted resources.
	limitRanges, err := s.admitLimitRangeDefaults(ctx, k, obj, m.GetNamespace())
	if err != nil {
		return nil, nil, err
	}
	// Service account, priority and the default not-ready / unreachable
	// tolerations (Kubernetes' ServiceAccount, Priority and
	// DefaultTolerationSeconds plugins, pure part).
	s.cfg.Admission.Admit(obj)
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(metav1.Now())
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetManagedFields(nil)
	m.SetSelfLink("")
	if hasField(k, "spec") {
		m.SetGeneration(1)
	} else {
		m.SetGeneration(0)
	}
	if p, ok := s.scheme.(CreatePreparer); ok {
		p.PrepareForCreate(obj)
	} else {
		switch o := obj.(type) {
		case *corev1.Pod:
			if o.Status.Phase == "" {
				o.Status.Phase = corev1.PodPending
			}
		case *corev1.Namespace:
			o.Status.Phase = corev1.NamespaceActive
			if len(o.Spec.Finalizers) == 0 {
				o.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
			}
		}
	}
	if errs := s.scheme.Validate(obj); len(errs) > 0 {
		return nil, nil, client.NewInvalid(k.GVK().GroupKind(), m.GetName(), errs)
	}
	// Validating admission; quota is charged in create's transaction.
	if err := admitLimitRanges(k, m.GetName(), obj, limitRanges); err != nil {
		return nil, nil, err
	}
	return obj, m, nil
}

// placeObject reconciles the object's namespace with the request's.
func (s *Server) placeObject(k Kind, ref *skiffv1.ResourceRef, m metav1.Object) error {
	if !k.Namespaced {
		if m.GetNamespace() != "" {
			return client.NewBadRequest(fmt.Sprintf("%s %q is cluster-scoped: metadata.namespace must be empty", k.Kind, m.GetName()))
		}
		return nil
	}
	switch {
	case m.GetNamespace() == "" && ref.Namespace == "":
		m.SetNamespace(metav1.NamespaceDefault)
	case m.GetNamespace() == "":
		m.SetNamespace(ref.Namespace)
	case ref.Namespace != "" && ref.Namespace != m.GetNamespace():
		return client.NewBadRequest(fmt.Sprintf("the namespace of the provided object (%s) does not match the namespace sent on the request (%s)",
			m.GetNamespace(), ref.Namespace))
	}
	if ref.Name != "" && m.GetName() != "" && ref.Name != m.GetName() {
		return client.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the request (%s)", m.GetName(), ref.Name))
	}
	if m.GetName() == "" && ref.Name != "" {
		m.SetName(ref.Name)
	}
	return nil
}

// create stores a prepared object.
func (s *Server) create(ctx context.Context, k Kind, obj runtime.Object, m metav1.Object, dryRun bool) (runtime.Object, error) {
	key := s.objectKey(k, m.GetNamespace(), m.GetName())
	// Each attempt allocates afresh from the object as requested, so a value
	// picked automatically by a lost attempt is not taken for a request.
	requested := obj
	quotaRetries := 0
	for attempt := 0; attempt < maxRetries; attempt++ {
		al := &allocation{}
		if svc, ok := requested.(*corev1.Service); ok {
			svcCopy := svc.DeepCopy()
			var errs field.ErrorList
			var err error
			al, errs, err = s.allocateService(ctx, svcCopy, nil, attempt)
			if err != nil {
				return nil, err
			}
			if len(errs) > 0 {
				return nil, client.NewInvalid(k.GVK().GroupKind(), m.GetName(), errs)
			}
			obj, m = svcCopy, svcCopy
		}
		// Quota admission: the charge commits with the object, or neither.
		qc, err := s.chargeQuotas(ctx, k, obj, m.GetNamespace(), m.GetName())
		if err != nil {
			return nil, err
		}
		data, err := encodeForStore(k, obj)
		if err != nil {
			return nil, client.NewInternal(err)
		}
		if dryRun {
			return obj, nil
		}
		cmps := append(append([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}, al.cmps...), qc.cmps...)
		ops := append(append([]clientv3.Op{clientv3.OpPut(key, string(data))}, al.ops...), qc.ops...)
		resp, err := s.txn(ctx, cmps, ops)
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			m.SetResourceVersion(strconv.FormatInt(resp.Header.Revision, 10))
			s.log.Debug("created", "resource", k.GVR.Resource, "object", m.GetNamespace()+"/"+m.GetName(), "rev", resp.Header.Revision)
			return obj, nil
		}
		if _, _, err := s.getObject(ctx, k, m.GetNamespace(), m.GetName()); err == nil {
			return nil, client.NewAlreadyExists(k.GroupResource(), m.GetName())
		}
		if errs, err := s.explicitTaken(ctx, al); err != nil {
			return nil, err
		} else if len(errs) > 0 {
			return nil, client.NewInvalid(k.GVK().GroupKind(), m.GetName(), errs)
		}
		// An automatically picked value was taken meanwhile, or a quota
		// was charged by another create: pick and judge again. Quota races
		// do not use up the allocation retries (each round lets one through).
		if len(qc.cmps) > 0 && quotaRetries < maxQuotaRetries {
			quotaRetries++
			attempt--
		}
	}
	return nil, client.NewConflict(k.GroupResource(), m.GetName(), "too many concurrent allocations, try again")
}

// Create implements ClusterService.
func (s *Server) Create(ctx context.Context, req *skiffv1.CreateRequest) (*skiffv1.CreateResponse, error) {
	k, err := s.resolve(req.Ref, false)
	if err != nil {
		return nil, err
	}
	obj, m, err := s.prepareCreate(ctx, k, req.Ref, req.Object)
	if err != nil {
		return nil, err
	}
	out, err := s.create(ctx, k, obj, m, req.DryRun)
	if err != nil {
		return nil, err
	}
	data, err := marshal(out)
	return &skiffv1.CreateResponse{Object: data}, err
}

type updateMode int

const (
	updateMain updateMode = iota
	updateStatus
)

// update writes obj over the stored object. When obj carries a
// resourceVersion it must be current (else Conflict); without one the
// update is unconditional and retried on races. It returns the stored
// object and whether anything changed.
func (s *Server) update(ctx context.Context, k Kind, obj runtime.Object, mode updateMode, dryRun bool) (runtime.Object, bool, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, false, client.NewInternal(err)
	}
	ns, name := m.GetNamespace(), m.GetName()
	wantRV := m.GetResourceVersion()
	for attempt := 0; attempt < maxRetries; attempt++ {
		old, modRev, err := s.getObject(ctx, k, ns, name)
		if err != nil {
			return nil, false, err
		}
		oldM, _ := meta.Accessor(old)
		if wantRV != "" && wantRV != strconv.FormatInt(modRev, 10) {
			return nil, false, client.NewConflict(k.GroupResource(), name, client.StaleResourceVersion)
		}
		if m.GetUID() != "" && m.GetUID() != oldM.GetUID() {
			return nil, false, client.NewConflict(k.GroupResource(), name,
				fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", m.GetUID(), oldM.GetUID()))
		}
		var next runtime.Object
		switch {
		case mode == updateStatus:
			// Only the status changes.
			next, err = withTopField(k, old, obj, "status")
		case k.HasStatus:
			// Status is written through UpdateStatus only.
			next, err = withTopField(k, obj, old, "status")
		default:
			next = obj.DeepCopyObject()
		}
		if err != nil {
			return nil, false, client.NewInternal(err)
		}
		nm, _ := meta.Accessor(next)
		// Fields the system owns.
		nm.SetUID(oldM.GetUID())
		nm.SetCreationTimestamp(oldM.GetCreationTimestamp())
		nm.SetDeletionTimestamp(oldM.GetDeletionTimestamp())
		nm.SetDeletionGracePeriodSeconds(oldM.GetDeletionGracePeriodSeconds())
		nm.SetGeneration(oldM.GetGeneration())
		nm.SetManagedFields(nil)
		nm.SetSelfLink("")
		nm.SetResourceVersion(strconv.FormatInt(modRev, 10))
		if mode == updateStatus {
			nm.SetLabels(oldM.GetLabels())
			nm.SetAnnotations(oldM.GetAnnotations())
			nm.SetFinalizers(oldM.GetFinalizers())
			nm.SetOwnerReferences(oldM.GetOwnerReferences())
		} else {
			s.scheme.Default(next)
		}
		if hasField(k, "spec") && !bytes.Equal(topField(next, "spec"), topField(old, "spec")) {
			nm.SetGeneration(oldM.GetGeneration() + 1)
		}
		al := &allocation{}
		if svc, ok := next.(*corev1.Service); ok && mode == updateMain {
			var errs field.ErrorList
			al, errs, err = s.allocateService(ctx, svc, old.(*corev1.Service), attempt)
			if err != nil {
				return nil, false, err
			}
			if len(errs) > 0 {
				return nil, false, client.NewInvalid(k.GVK().GroupKind(), name, errs)
			}
		}
		if errs := append(s.scheme.Validate(next), s.scheme.ValidateUpdate(next, old)...); len(errs) > 0 {
			return nil, false, client.NewInvalid(k.GVK().GroupKind(), name, errs)
		}
		key := s.objectKey(k, ns, name)
		// A deleted object whose last finalizer is gone goes away (a
		// Namespace only through its sweep).
		if k.Kind != "Namespace" && nm.GetDeletionTimestamp() != nil && len(nm.GetFinalizers()) == 0 &&
			(nm.GetDeletionGracePeriodSeconds() == nil || *nm.GetDeletionGracePeriodSeconds() == 0) {
			if dryRun {
				return next, true, nil
			}
			ok, rev, err := s.deleteNow(ctx, k, old, modRev)
			if err != nil {
				return nil, false, err
			}
			if ok {
				nm.SetResourceVersion(strconv.FormatInt(rev, 10))
				return next, true, nil
			}
			if wantRV != "" {
				return nil, false, client.NewConflict(k.GroupResource(), name, client.StaleResourceVersion)
			}
			continue
		}
		data, err := encodeForStore(k, next)
		if err != nil {
			return nil, false, client.NewInternal(err)
		}
		oldData, _ := encodeForStore(k, old)
		if bytes.Equal(data, oldData) {
			// Nothing changed: no new revision, as Kubernetes.
			return old, false, nil
		}
		if dryRun {
			return next, true, nil
		}
		cmps := append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)}, al.cmps...)
		ops := append([]clientv3.Op{clientv3.OpPut(key, string(data))}, al.ops...)
		resp, err := s.txn(ctx, cmps, ops)
		if err != nil {
			return nil, false, err
		}
		if resp.Succeeded {
			nm.SetResourceVersion(strconv.FormatInt(resp.Header.Revision, 10))
			return next, true, nil
		}
		if errs, err := s.explicitTaken(ctx, al); err != nil {
			return nil, false, err
		} else if len(errs) > 0 {
			return nil, false, client.NewInvalid(k.GVK().GroupKind(), name, errs)
		}
		if wantRV != "" {
			return nil, false, client.NewConflict(k.GroupResource(), name, client.StaleResourceVersion)
		}
	}
	return nil, false, client.NewConflict(k.GroupResource(), name, "too many concurrent writes, try again")
}

func (s *Server) decodeUpdate(k Kind, ref *skiffv1.ResourceRef, data []byte) (runtime.Object, error) {
	obj, m, err := decodeRequest(k, data)
	if err != nil {
		return nil, err
	}
	if err := s.placeObject(k, ref, m); err != nil {
		return nil, err
	}
	if m.GetName() == "" {
		return nil, client.NewBadRequest("metadata.name is required")
	}
	return obj, nil
}

// Update implements ClusterService.
func (s *Server) Update(ctx context.Context, req *skiffv1.UpdateRequest) (*skiffv1.UpdateResponse, error) {
	k, err := s.resolve(req.Ref, false)
	if err != nil {
		return nil, err
	}
	obj, err := s.decodeUpdate(k, req.Ref, req.Object)
	if err != nil {
		return nil, err
	}
	out, _, err := s.update(ctx, k, obj, updateMain, req.DryRun)
	if err != nil {
		return nil, err
	}
	data, err := marshal(out)
	return &skiffv1.UpdateResponse{Object: data}, err
}

// UpdateStatus implements ClusterService.
func (s *Server) UpdateStatus(ctx context.Context, req *skiffv1.UpdateStatusRequest) (*skiffv1.UpdateStatusResponse, error) {
	k, err := s.resolve(req.Ref, false)
	if err != nil {
		return nil, err
	}
	if !k.HasStatus {
		return nil, client.NewMethodNotAllowed(fmt.Sprintf("%s have no status subresource", k.GVR.Resource))
	}
	obj, err := s.decodeUpdate(k, req.Ref, req.Object)
	if err != nil {
		return nil, err
	}
	out, _, err := s.update(ctx, k, obj, updateStatus, false)
	if err != nil {
		return nil, err
	}
	data, err := marshal(out)
	return &skiffv1.UpdateStatusResponse{Object: data}, err
}

// Get implements ClusterService.
func (s *Server) Get(ctx context.Context, req *skiffv1.GetRequest) (*skiffv1.GetResponse, error) {
	k, err := s.resolve(req.Ref, true)
	if err != nil {
		return nil, err
	}
	ns := req.Ref.Namespace
	if k.Namespaced && ns == "" {
		ns = metav1.NamespaceDefault
	}
	obj, _, err := s.getObject(ctx, k, ns, req.Ref.Name)
	if err != nil {
		return nil, err
	}
	data, err := marshal(obj)
	return &skiffv1.GetResponse{Object: data}, err
}

// deleteNow removes the stored object if its mod revision is still modRev,
// releasing what it holds. ok is false when it changed meanwhile.
func (s *Server) deleteNow(ctx context.Context, k Kind, obj runtime.Object, modRev int64) (ok bool, rev int64, err error) {
	m, _ := meta.Accessor(obj)
	key := s.objectKey(k, m.GetNamespace(), m.GetName())
	al := &allocation{}
	if svc, isSvc := obj.(*corev1.Service); isSvc {
		al = s.releaseService(svc)
	}
	resp, err := s.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)},
		append([]clientv3.Op{clientv3.OpDelete(key)}, al.ops...))
	if err != nil {
		return false, 0, err
	}
	return resp.Succeeded, resp.Header.Revision, nil
}

// Finalizers set by propagation policies; the garbage collector removes
// them once dependents are handled.
const (
	FinalizerOrphan     = "orphan"
	FinalizerForeground = "foregroundDeletion"
)

// Delete implements ClusterService. An object is removed at once unless
// something holds it: finalizers (including the ones the Foreground and
// Orphan propagation policies add), or, for a Pod bound to a node, a grace
// period during which the node's agent stops it and then deletes it with
// grace 0. Such an object gets deletionTimestamp and stays until released.
// A Namespace is marked Terminating and swept in the background.
func (s *Server) Delete(ctx context.Context, req *skiffv1.DeleteRequest) (*skiffv1.DeleteResponse, error) {
	k, err := s.resolve(req.Ref, true)
	if err != nil {
		return nil, err
	}
	ns, name := req.Ref.Namespace, req.Ref.Name
	if k.Namespaced && ns == "" {
		ns = metav1.NamespaceDefault
	}
	switch req.Propagation {
	case "", "Background", "Foreground", "Orphan":
	default:
		return nil, client.NewBadRequest(fmt.Sprintf("propagation policy %q is not one of Background, Foreground, Orphan", req.Propagation))
	}
	if req.GracePeriodSeconds != nil && *req.GracePeriodSeconds < 0 {
		return nil, client.NewBadRequest("grace period must not be negative")
	}
	if k.Kind == "Namespace" {
		return s.deleteNamespace(ctx, k, req)
	}
	for attempt := 0; attempt < maxRetries; attempt++ {
		obj, modRev, err := s.getObject(ctx, k, ns, name)
		if err != nil {
			return nil, err
		}
		m, _ := meta.Accessor(obj)
		if req.PreconditionUid != "" && string(m.GetUID()) != req.PreconditionUid {
			return nil, client.NewConflict(k.GroupResource(), name,
				fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", req.PreconditionUid, m.GetUID()))
		}
		if req.PreconditionResourceVersion != "" && req.PreconditionResourceVersion != m.GetResourceVersion() {
			return nil, client.NewConflict(k.GroupResource(), name,
				fmt.Sprintf("Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s",
					req.PreconditionResourceVersion, m.GetResourceVersion()))
		}
		finalizers := m.GetFinalizers()
		addFinalizer := func(f string) {
			for _, x := range finalizers {
				if x == f {
					return
				}
			}
			finalizers = append(finalizers, f)
		}
		switch req.Propagation {
		case "Foreground":
			addFinalizer(FinalizerForeground)
		case "Orphan":
			addFinalizer(FinalizerOrphan)
		}
		grace := int64(0)
		if pod, ok := obj.(*corev1.Pod); ok && pod.Spec.NodeName != "" &&
			pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			grace = corev1.DefaultTerminationGracePeriodSeconds
			if pod.Spec.TerminationGracePeriodSeconds != nil {
				grace = *pod.Spec.TerminationGracePeriodSeconds
			}
			if req.GracePeriodSeconds != nil {
				grace = *req.GracePeriodSeconds
			}
		}
		if len(finalizers) == 0 && grace == 0 {
			if req.DryRun {
				data, err := marshal(obj)
				return &skiffv1.DeleteResponse{Object: data}, err
			}
			ok, rev, err := s.deleteNow(ctx, k, obj, modRev)
			if err != nil {
				return nil, err
			}
			if ok {
				m.SetResourceVersion(strconv.FormatInt(rev, 10))
				data, err := marshal(obj)
				return &skiffv1.DeleteResponse{Object: data}, err
			}
			continue
		}
		// Mark for deletion. A later delete may shorten the grace period,
		// never lengthen it.
		now := metav1.Now()
		if m.GetDeletionTimestamp() == nil {
			deadline := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			m.SetDeletionTimestamp(&deadline)
			m.SetDeletionGracePeriodSeconds(&grace)
		} else if old := m.GetDeletionGracePeriodSeconds(); old == nil || grace < *old {
			deadline := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			m.SetDeletionTimestamp(&deadline)
			m.SetDeletionGracePeriodSeconds(&grace)
		}
		m.SetFinalizers(finalizers)
		data, err := encodeForStore(k, obj)
		if err != nil {
			return nil, client.NewInternal(err)
		}
		if req.DryRun {
			out, err := marshal(obj)
			return &skiffv1.DeleteResponse{Object: out, Pending: true}, err
		}
		key := s.objectKey(k, ns, name)
		resp, err := s.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)},
			[]clientv3.Op{clientv3.OpPut(key, string(data))})
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			m.SetResourceVersion(strconv.FormatInt(resp.Header.Revision, 10))
			out, err := marshal(obj)
			return &skiffv1.DeleteResponse{Object: out, Pending: true}, err
		}
	}
	return nil, client.NewConflict(k.GroupResource(), name, "too many concurrent writes, try again")
}

// Discover implements ClusterService.
func (s *Server) Discover(ctx context.Context, req *skiffv1.DiscoverRequest) (*skiffv1.DiscoverResponse, error) {
	resp := &skiffv1.DiscoverResponse{ServerVersion: Version, StoreEndpoints: s.cfg.StoreEndpoints}
	for _, k := range s.scheme.Kinds() {
		verbs := []string{"create", "delete", "get", "list", "update", "watch", "apply"}
		if k.HasStatus {
			verbs = append(verbs, "updatestatus")
		}
		resp.Resources = append(resp.Resources, &skiffv1.APIResource{
			Group: k.GVR.Group, Version: k.GVR.Version, Resource: k.GVR.Resource, Kind: k.Kind,
			Namespaced: k.Namespaced, ShortNames: k.ShortNames, Singular: k.Singular, Verbs: verbs,
		})
	}
	return resp, nil
}
