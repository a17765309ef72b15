package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/client"
)

// MaxBurst caps the pods one reconcile creates or deletes; the rest follow
// in the next reconcile, once these show in the cache.
const MaxBurst = 500

// ReplicaSetController keeps spec.replicas pods matching a ReplicaSet's (or a
// ReplicationController's) selector: it adopts orphans that match,
// releases pods that stopped matching, creates pods from the template and
// deletes the cheapest pods first, then writes the status.
type ReplicaSetController struct {
	kind   schema.GroupVersionKind // apps/v1 ReplicaSet or v1 ReplicationController
	owners Cache                   // objects of kind
	pods   Cache
	w      Writer
	exp    *Expectations
	now    func() time.Time
	log    *slog.Logger
	events EventRecorder
}

// NewReplicaSetController reconciles apps/v1 ReplicaSets from rsCache.
func NewReplicaSetController(rsCache, pods Cache, w Writer, exp *Expectations, log *slog.Logger) *ReplicaSetController {
	return newReplicaController(kindReplicaSet, rsCache, pods, w, exp, log)
}

// NewReplicationControllerController reconciles v1 ReplicationControllers.
func NewReplicationControllerController(rcCache, pods Cache, w Writer, exp *Expectations, log *slog.Logger) *ReplicaSetController {
	return newReplicaController(kindReplicationController, rcCache, pods, w, exp, log)
}

func newReplicaController(kind schema.GroupVersionKind, owners, pods Cache, w Writer, exp *Expectations, log *slog.Logger) *ReplicaSetController {
	if exp == nil {
		exp = NewExpectations(0, nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ReplicaSetController{kind: kind, owners: owners, pods: pods, w: w, exp: exp, now: time.Now, log: log, events: noEvents{}}
}

// Name is the controller's name in logs and Manager options.
func (c *ReplicaSetController) Name() string {
	if c.kind == kindReplicationController {
		return "replicationcontroller"
	}
	return "replicaset"
}

// replicaView is what the controller needs of a ReplicaSet or a
// ReplicationController, on a private copy of the object.
type replicaView struct {
	obj             runtime.Object
	meta            metav1.Object
	selector        labels.Selector
	replicas        int32
	template        *corev1.PodTemplateSpec
	minReadySeconds int32
	status          appsv1.ReplicaSetStatus
	// withStatus returns obj carrying st.
	withStatus func(st appsv1.ReplicaSetStatus) runtime.Object
}

func viewOf(obj runtime.Object) (*replicaView, error) {
	switch o := obj.(type) {
	case *appsv1.ReplicaSet:
		o = o.DeepCopy()
		sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector)
		if err != nil {
			return nil, err
		}
		if o.Spec.Selector == nil || sel.Empty() {
			sel = labels.Nothing() // an empty selector would claim every pod
		}
		v := &replicaView{obj: o, meta: o, selector: sel, replicas: 1, template: &o.Spec.Template,
			minReadySeconds: o.Spec.MinReadySeconds, status: o.Status}
		if o.Spec.Replicas != nil {
			v.replicas = *o.Spec.Replicas
		}
		v.withStatus = func(st appsv1.ReplicaSetStatus) runtime.Object { o.Status = st; return o }
		return v, nil
	case *corev1.ReplicationController:
		o = o.DeepCopy()
		sel := labels.Nothing()
		if len(o.Spec.Selector) > 0 {
			sel = labels.SelectorFromSet(o.Spec.Selector)
		}
		v := &replicaView{obj: o, meta: o, selector: sel, replicas: 1, template: o.Spec.Template,
			minReadySeconds: o.Spec.MinReadySeconds}
		if o.Spec.Replicas != nil {
			v.replicas = *o.Spec.Replicas
		}
		v.status = appsv1.ReplicaSetStatus{Replicas: o.Status.Replicas, FullyLabeledReplicas: o.Status.FullyLabeledReplicas,
			ReadyReplicas: o.Status.ReadyReplicas, AvailableReplicas: o.Status.AvailableReplicas,
			ObservedGeneration: o.Status.ObservedGeneration}
		v.withStatus = func(st appsv1.ReplicaSetStatus) runtime.Object {
			o.Status.Replicas, o.Status.FullyLabeledReplicas = st.Replicas, st.FullyLabeledReplicas
			o.Status.ReadyReplicas, o.Status.AvailableReplicas = st.ReadyReplicas, st.AvailableReplicas
			o.Status.ObservedGeneration = st.ObservedGeneration
			return o
		}
		return v, nil
	}
	return nil, fmt.Errorf("replica controller: unexpected %T", obj)
}

// Reconcile brings the ReplicaSet with key (namespace/name) to its spec.
func (c *ReplicaSetController) Reconcile(ctx context.Context, key string) (Result, error) {
	cached, ok := c.owners.Get(key)
	if !ok {
		c.exp.Forget(key)
		return Result{}, nil
	}
	v, err := viewOf(cached)
	if err != nil {
		return Result{}, err
	}
	owner := v.meta
	var errs []error

	// Claim: own the matching pods, release the ones that stopped matching.
	var owned []*corev1.Pod
	for _, o := range inNamespace(c.pods, owner.GetNamespace(), nil) {
		pod := o.(*corev1.Pod)
		matches := v.selector.Matches(labels.Set(pod.Labels))
		ref := controllerOf(pod)
		switch {
		case ref != nil && ref.UID == owner.GetUID():
			if matches {
				owned = append(owned, pod)
			} else if pod.DeletionTimestamp == nil {
				errs = append(errs, c.release(ctx, pod, owner))
			}
		case ref == nil && matches && isActive(pod) && owner.GetDeletionTimestamp() == nil:
			adopted, err := c.adopt(ctx, pod, owner)
			if err != nil {
				errs = append(errs, err)
			} else if adopted != nil {
				owned = append(owned, adopted)
			}
		}
	}
	var active []*corev1.Pod
	for _, p := range owned {
		if isActive(p) {
			active = append(active, p)
		}
	}

	// A failed adoption or release leaves the count unsure: no scaling on
	// it (the retry comes with the error).
	claimed := errors.Join(errs...) == nil
	var res Result
	if sat, wait := c.exp.Satisfied(key, c.pods); !sat {
		res.RequeueAfter = wait
	} else if owner.GetDeletionTimestamp() == nil && claimed {
		errs = append(errs, c.manage(ctx, key, v, active))
	}

	// Status from what is observed now; pods created above show up in a later
	// reconcile (their events requeue the key).
	now := c.now()
	st := appsv1.ReplicaSetStatus{Replicas: int32(len(active)), ObservedGeneration: owner.GetGeneration(), Conditions: v.status.Conditions}
	var tmplLabels labels.Selector = labels.Everything()
	if v.template != nil {
		tmplLabels = labels.SelectorFromSet(v.template.Labels)
	}
	for _, p := range active {
		if tmplLabels.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if isReady(p) {
			st.ReadyReplicas++
		}
		avail, in := availableIn(p, v.minReadySeconds, now)
		if avail {
			st.AvailableReplicas++
		} else if in > 0 && (res.RequeueAfter == 0 || in < res.RequeueAfter) {
			res.RequeueAfter = in
		}
	}
	if !apiequality.Semantic.DeepEqual(st, v.status) {
		if err := c.writeStatus(ctx, v, st); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("status of %s %s: %w", c.kind.Kind, key, err))
		}
	}
	return res, errors.Join(errs...)
}

// writeStatus writes st. The cache is often a step behind a ReplicaSet
// just scaled by its Deployment: on a Conflict, when a fresh read shows the
// same generation (the status computed still holds), it writes once more
// onto the fresh object instead of waiting for a backoff.
func (c *ReplicaSetController) writeStatus(ctx context.Context, v *replicaView, st appsv1.ReplicaSetStatus) error {
	err := c.w.UpdateStatus(ctx, v.withStatus(st))
	r, canRead := c.w.(Reader)
	if !client.IsConflict(err) || !canRead {
		return err
	}
	fresh := v.obj.DeepCopyObject()
	if gerr := r.Get(ctx, v.meta.GetNamespace(), v.meta.GetName(), fresh); gerr != nil {
		return err
	}
	fv, verr := viewOf(fresh)
	if verr != nil || fv.meta.GetGeneration() != v.meta.GetGeneration() || fv.meta.GetUID() != v.meta.GetUID() {
		return err
	}
	return c.w.UpdateStatus(ctx, fv.withStatus(st))
}

// manage creates or deletes pods so that len(active) becomes v.replicas.
func (c *ReplicaSetController) manage(ctx context.Context, key string, v *replicaView, active []*corev1.Pod) error {
	diff := len(active) - int(v.replicas)
	switch {
	case diff < 0:
		if v.template == nil {
			return nil
		}
		n := min(-diff, MaxBurst)
		var errs []error
		for i := 0; i < n; i++ {
			pod := c.newPod(v)
			podKey := pod.Namespace + "/" + pod.Name
			c.exp.ExpectCreate(key, podKey)
			err := c.w.Create(ctx, pod)
			if err != nil {
				c.exp.Cancel(key, podKey)
				if client.IsAlreadyExists(err) { // a random name taken: next round
					continue
				}
				errs = append(errs, fmt.Errorf("creating pod for %s %s: %w", c.kind.Kind, key, err))
				c.events.Event(v.obj, corev1.EventTypeWarning, "FailedCreate", "Error creating: "+err.Error())
				if client.IsInvalid(err) || client.IsForbidden(err) {
					break // the same template fails the same way
				}
				continue
			}
			c.log.Info("created pod", "owner", key, "kind", c.kind.Kind, "pod", podKey)
			c.events.Event(v.obj, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: "+pod.Name)
		}
		return errors.Join(errs...)
	case diff > 0:
		victims := append([]*corev1.Pod(nil), active...)
		rankForDeletion(victims)
		victims = victims[:min(diff, MaxBurst)]
		var errs []error
		for _, p := range victims {
			podKey := p.Namespace + "/" + p.Name
			c.exp.ExpectDelete(key, podKey, p.UID)
			_, err := c.w.Delete(ctx, p.DeepCopy(), &client.DeleteOptions{PreconditionUID: string(p.UID)})
			if err != nil {
				c.exp.Cancel(key, podKey)
				if !client.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("deleting pod %s of %s %s: %w", podKey, c.kind.Kind, key, err))
				}
				continue
			}
			c.log.Info("deleted pod", "owner", key, "kind", c.kind.Kind, "pod", podKey)
			c.events.Event(v.obj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: "+p.Name)
		}
		return errors.Join(errs...)
	}
	return nil
}

func (c *ReplicaSetController) newPod(v *replicaView) *corev1.Pod {
	t := v.template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       v.meta.GetNamespace(),
			Name:            podName(v.meta.GetName()),
			GenerateName:    v.meta.GetName() + "-",
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{controllerRef(v.meta, c.kind)},
		},
		Spec: t.Spec,
	}
	return pod
}

// adopt sets owner as pod's controller; nil, nil when the pod went away.
func (c *ReplicaSetController) adopt(ctx context.Context, cached *corev1.Pod, owner metav1.Object) (*corev1.Pod, error) {
	pod := cached.DeepCopy()
	pod.OwnerReferences = withControllerRef(pod.OwnerReferences, controllerRef(owner, c.kind))
	if err := c.w.Update(ctx, pod); err != nil {
		if client.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("adopting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.log.Info("adopted pod", "owner", owner.GetNamespace()+"/"+owner.GetName(), "pod", pod.Namespace+"/"+pod.Name)
	return pod, nil
}

// release removes owner from a pod that no longer matches its selector.
func (c *ReplicaSetController) release(ctx context.Context, cached *corev1.Pod, owner metav1.Object) error {
	pod := cached.DeepCopy()
	pod.OwnerReferences = withoutOwner(pod.OwnerReferences, owner.GetUID())
	if err := c.w.Update(ctx, pod); err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("releasing pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.log.Info("released pod", "owner", owner.GetNamespace()+"/"+owner.GetName(), "pod", pod.Namespace+"/"+pod.Name)
	return nil
}

// selectorOf is the pod selector of a ReplicaSet or ReplicationController
// (nil if it selects nothing), without copying the object.
func selectorOf(obj runtime.Object) labels.Selector {
	switch o := obj.(type) {
	case *appsv1.ReplicaSet:
		if o.Spec.Selector == nil {
			return nil
		}
		sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector)
		if err != nil || sel.Empty() {
			return nil
		}
		return sel
	case *corev1.ReplicationController:
		if len(o.Spec.Selector) == 0 {
			return nil
		}
		return labels.SelectorFromSet(o.Spec.Selector)
	}
	return nil
}

// ownersOfPod finds the owners that care about pod: its controller if it
// is of this kind, else (an orphan) every owner whose selector matches.
func (c *ReplicaSetController) ownersOfPod(pod *corev1.Pod) []string {
	if ref := controllerOf(pod); ref != nil {
		if ref.Kind != c.kind.Kind {
			return nil
		}
		return []string{pod.Namespace + "/" + ref.Name}
	}
	var keys []string
	for _, o := range inNamespace(c.owners, pod.Namespace, nil) {
		sel := selectorOf(o)
		if sel != nil && sel.Matches(labels.Set(pod.Labels)) {
			keys = append(keys, client.KeyOf(o))
		}
	}
	return keys
}
