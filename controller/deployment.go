package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/skiffhq/skiff/client"
)

// Labels, annotations and condition reasons of Deployments, Kubernetes' own.
const (
	PodTemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey // pod-template-hash
	RevisionAnnotation   = "deployment.kubernetes.io/revision"

	ReasonNewRSAvailable           = "NewReplicaSetAvailable"
	ReasonNewRSCreated             = "NewReplicaSetCreated"
	ReasonRSUpdated                = "ReplicaSetUpdated"
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	ReasonPaused                   = "DeploymentPaused"
	ReasonMinimumAvailable         = "MinimumReplicasAvailable"
	ReasonMinimumUnavailable       = "MinimumReplicasUnavailable"
)

// DeploymentController rolls Deployments out through ReplicaSets: one
// ReplicaSet per pod template (named <deployment>-<pod-template-hash>), the
// current one scaled up and the old ones down as the strategy allows, old
// ones beyond revisionHistoryLimit deleted, and the status and conditions
// written from the ReplicaSets' status.
type DeploymentController struct {
	deps, rss, pods Cache
	w               Writer
	now             func() time.Time
	log             *slog.Logger
	events          EventRecorder
}

// NewDeploymentController reconciles Deployments from deps, managing the
// ReplicaSets in rss; pods are read to see a Recreate's old pods gone.
func NewDeploymentController(deps, rss, pods Cache, w Writer, log *slog.Logger) *DeploymentController {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DeploymentController{deps: deps, rss: rss, pods: pods, w: w, now: time.Now, log: log, events: noEvents{}}
}

// Name is the controller's name.
func (c *DeploymentController) Name() string { return "deployment" }

// TemplateHash is the pod-template-hash of a pod template: the FNV-1a hash
// of its JSON (without the hash label) and the collision count, encoded
// with the alphabet Kubernetes uses for safe names.
func TemplateHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	t = t.DeepCopy()
	delete(t.Labels, PodTemplateHashLabel)
	data, _ := json.Marshal(t) // a struct of plain fields always marshals
	h := fnv.New32a()
	h.Write(data)
	if collisionCount != nil {
		h.Write([]byte(strconv.Itoa(int(*collisionCount))))
	}
	return utilrand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

func sameTemplate(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, PodTemplateHashLabel)
	delete(b.Labels, PodTemplateHashLabel)
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(b.Labels) == 0 {
		b.Labels = nil
	}
	return apiequality.Semantic.DeepEqual(a, b)
}

func revisionOf(o metav1.Object) int64 {
	n, _ := strconv.ParseInt(o.GetAnnotations()[RevisionAnnotation], 10, 64)
	return n
}

func replicasOf(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

// availableOf counts a ReplicaSet's available pods, at most its spec: a
// pod being removed by a scale-down is not counted on, though the status
// may still count it.
func availableOf(rs *appsv1.ReplicaSet) int32 {
	return min(rs.Status.AvailableReplicas, replicasOf(rs))
}

// rollingBounds resolves maxSurge (rounded up) and maxUnavailable (rounded
// down) against replicas; both zero would deadlock, so unavailable becomes 1.
func rollingBounds(d *appsv1.Deployment, replicas int32) (surge, unavailable int32) {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return 0, 0
	}
	quarter := intstr.FromString("25%")
	ms, mu := &quarter, &quarter
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			ms = ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			mu = ru.MaxUnavailable
		}
	}
	s, err1 := intstr.GetScaledValueFromIntOrPercent(ms, int(replicas), true)
	u, err2 := intstr.GetScaledValueFromIntOrPercent(mu, int(replicas), false)
	if err1 != nil || err2 != nil {
		return 0, 1
	}
	surge, unavailable = int32(s), int32(u)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, min(unavailable, replicas)
}

// rollout is one reconcile's working state: private copies of the
// Deployment and of its ReplicaSets, updated as they are written.
type rollout struct {
	d        *appsv1.Deployment
	replicas int32
	newRS    *appsv1.ReplicaSet
	old      []*appsv1.ReplicaSet // oldest revision first
	progress bool                 // a ReplicaSet was created or scaled
	created  bool
	stored   appsv1.DeploymentStatus // the status as read
}

func (r *rollout) all() []*appsv1.ReplicaSet {
	if r.newRS == nil {
		return r.old
	}
	return append([]*appsv1.ReplicaSet{r.newRS}, r.old...)
}

// Reconcile brings the Deployment with key (namespace/name) one step
// closer to its spec and writes its status.
func (c *DeploymentController) Reconcile(ctx context.Context, key string) (Result, error) {
	cached, ok := c.deps.Get(key)
	if !ok {
		return Result{}, nil
	}
	d := cached.(*appsv1.Deployment).DeepCopy()
	if d.DeletionTimestamp != nil {
		return Result{}, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || d.Spec.Selector == nil || sel.Empty() {
		return Result{}, nil // validation forbids it; selecting everything would be worse
	}
	r := &rollout{d: d, replicas: 1, stored: *d.Status.DeepCopy()}
	if d.Spec.Replicas != nil {
		r.replicas = *d.Spec.Replicas
	}
	if err := c.claim(ctx, r, sel); err != nil {
		return Result{}, err
	}
	var errs []error
	if !d.Spec.Paused {
		errs = append(errs, c.roll(ctx, r))
	} else {
		errs = append(errs, c.scalePaused(ctx, r))
	}
	errs = append(errs, c.cleanup(ctx, r))
	res, err := c.writeStatus(ctx, r)
	errs = append(errs, err)
	if err == nil {
		errs = append(errs, c.autoRollback(ctx, r))
	}
	return res, errors.Join(errs...)
}

// AutoRollbackAnnotation, set to "true" on a Deployment, opts it into
// Skiff's automatic rollback: a rollout that exceeds its progress deadline
// puts the template of the previous revision back, as `skiff rollout undo`
// would. Kubernetes has no such thing; it is off unless asked for.
const AutoRollbackAnnotation = "skiff.io/auto-rollback"

// RolledBackAnnotation records on the Deployment the revision an automatic
// rollback abandoned.
const RolledBackAnnotation = "skiff.io/rolled-back-from"

func (c *DeploymentController) autoRollback(ctx context.Context, r *rollout) error {
	d := r.d
	if d.Annotations[AutoRollbackAnnotation] != "true" || d.Spec.Paused || r.newRS == nil || len(r.old) == 0 {
		return nil
	}
	cond := condition(&d.Status, appsv1.DeploymentProgressing)
	if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != ReasonProgressDeadlineExceeded {
		return nil
	}
	prev := r.old[len(r.old)-1] // the highest old revision
	tmpl := prev.Spec.Template.DeepCopy()
	delete(tmpl.Labels, PodTemplateHashLabel)
	d.Spec.Template = *tmpl
	d.Annotations[RolledBackAnnotation] = r.newRS.Annotations[RevisionAnnotation]
	if err := c.w.Update(ctx, d); err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("rolling back deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	c.log.Info("rolled back a rollout past its progress deadline", "deployment", d.Namespace+"/"+d.Name,
		"from_revision", r.newRS.Annotations[RevisionAnnotation], "to_template_of", revisionOf(prev))
	c.events.Event(d, corev1.EventTypeWarning, "DeploymentRollback",
		fmt.Sprintf("Rolled back to the template of revision %d: revision %s exceeded its progress deadline", revisionOf(prev), r.newRS.Annotations[RevisionAnnotation]))
	return nil
}

// claim sorts the Deployment's ReplicaSets into new and old, adopting
// matching orphans and releasing those that stopped matching.
func (c *DeploymentController) claim(ctx context.Context, r *rollout, sel labels.Selector) error {
	d := r.d
	var owned []*appsv1.ReplicaSet
	for _, o := range inNamespace(c.rss, d.Namespace, nil) {
		rs := o.(*appsv1.ReplicaSet)
		matches := sel.Matches(labels.Set(rs.Labels))
		ref := controllerOf(rs)
		switch {
		case ref != nil && ref.UID == d.UID && matches:
			owned = append(owned, rs.DeepCopy())
		case ref != nil && ref.UID == d.UID && rs.DeletionTimestamp == nil:
			cp := rs.DeepCopy()
			cp.OwnerReferences = withoutOwner(cp.OwnerReferences, d.UID)
			if err := c.w.Update(ctx, cp); err != nil && !client.IsNotFound(err) {
				return fmt.Errorf("releasing replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
			}
		case ref == nil && matches && rs.DeletionTimestamp == nil:
			cp := rs.DeepCopy()
			cp.OwnerReferences = withControllerRef(cp.OwnerReferences, controllerRef(d, kindDeployment))
			if err := c.w.Update(ctx, cp); err != nil {
				if client.IsNotFound(err) {
					continue
				}
				return fmt.Errorf("adopting replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
			}
			owned = append(owned, cp)
		}
	}
	sort.SliceStable(owned, func(i, j int) bool {
		ri, rj := revisionOf(owned[i]), revisionOf(owned[j])
		if ri != rj {
			return ri < rj
		}
		return owned[i].CreationTimestamp.Before(&owned[j].CreationTimestamp)
	})
	for _, rs := range owned {
		// The newest matching ReplicaSet wins if several match the template.
		if sameTemplate(&rs.Spec.Template, &d.Spec.Template) && rs.DeletionTimestamp == nil {
			if r.newRS != nil {
				r.old = append(r.old, r.newRS)
			}
			r.newRS = rs
			continue
		}
		r.old = append(r.old, rs)
	}
	if r.newRS == nil {
		// A ReplicaSet this Deployment made for its template whose stored
		// template differs (a server defaulting a field the Deployment's
		// template lacks) is still the new one: never create another.
		hash := TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
		for i, rs := range r.old {
			if rs.Name == d.Name+"-"+hash && rs.Labels[PodTemplateHashLabel] == hash && rs.DeletionTimestamp == nil {
				r.newRS = rs
				r.old = append(r.old[:i:i], r.old[i+1:]...)
				break
			}
		}
	}
	sort.SliceStable(r.old, func(i, j int) bool { return revisionOf(r.old[i]) < revisionOf(r.old[j]) })
	return nil
}

// roll moves the rollout one step: creates the new ReplicaSet, then scales
// by the strategy.
func (c *DeploymentController) roll(ctx context.Context, r *rollout) error {
	if err := c.ensureNewRS(ctx, r); err != nil {
		return err
	}
	if r.d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return c.recreate(ctx, r)
	}
	if err := c.scaleNewRS(ctx, r); err != nil {
		return err
	}
	return c.scaleDownOld(ctx, r)
}

func (c *DeploymentController) maxOldRevision(r *rollout) int64 {
	var highest int64
	for _, rs := range r.old {
		highest = max(highest, revisionOf(rs))
	}
	return highest
}

// ensureNewRS creates the ReplicaSet of the current template (at 0
// replicas: scaling is the strategy's), or gives an old one that matches
// again (a rollback) the next revision.
func (c *DeploymentController) ensureNewRS(ctx context.Context, r *rollout) error {
	d := r.d
	next := c.maxOldRevision(r) + 1
	if r.newRS != nil {
		if revisionOf(r.newRS) >= next && r.newRS.Spec.MinReadySeconds == d.Spec.MinReadySeconds {
			return nil
		}
		rs := r.newRS.DeepCopy()
		if rs.Annotations == nil {
			rs.Annotations = map[string]string{}
		}
		if revisionOf(rs) < next {
			rs.Annotations[RevisionAnnotation] = strconv.FormatInt(next, 10)
		}
		rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
		if err := c.w.Update(ctx, rs); err != nil {
			return fmt.Errorf("revision of replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
		}
		r.newRS = rs
		return nil
	}
	hash := TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
	tmpl := d.Spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[PodTemplateHashLabel] = hash
	sel := d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[PodTemplateHashLabel] = hash
	rsLabels := map[string]string{}
	for k, v := range tmpl.Labels {
		rsLabels[k] = v
	}
	zero := int32(0)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       d.Namespace,
			Name:            d.Name + "-" + hash,
			Labels:          rsLabels,
			Annotations:     map[string]string{RevisionAnnotation: strconv.FormatInt(next, 10)},
			OwnerReferences: []metav1.OwnerReference{controllerRef(d, kindDeployment)},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: &zero, MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: *tmpl},
	}
	if err := c.w.Create(ctx, rs); err != nil {
		if client.IsAlreadyExists(err) {
			// Either our cache is behind (the next reconcile sees it) or
			// another template hashed to the same name: count a collision so
			// the next hash differs.
			if o, ok := c.rss.Get(d.Namespace + "/" + rs.Name); ok {
				existing := o.(*appsv1.ReplicaSet)
				if isControlledBy(existing, d.UID) && !sameTemplate(&existing.Spec.Template, &d.Spec.Template) {
					n := int32(1)
					if d.Status.CollisionCount != nil {
						n = *d.Status.CollisionCount + 1
					}
					d.Status.CollisionCount = &n
				}
			}
		}
		return fmt.Errorf("creating replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	c.log.Info("created replicaset", "deployment", d.Namespace+"/"+d.Name, "replicaset", rs.Name, "revision", next)
	r.newRS, r.created, r.progress = rs, true, true
	return nil
}

// scalePaused follows spec.replicas on a paused Deployment whose replicas
// are all in one ReplicaSet (even if its template is no longer current), as
// `skiff scale` expects; a rollout paused in the middle keeps its sizes
// until resumed.
func (c *DeploymentController) scalePaused(ctx context.Context, r *rollout) error {
	var active []*appsv1.ReplicaSet
	for _, rs := range r.all() {
		if replicasOf(rs) > 0 {
			active = append(active, rs)
		}
	}
	switch {
	case len(active) == 1:
		return c.scale(ctx, r, active[0], r.replicas)
	case len(active) == 0 && r.newRS != nil:
		return c.scale(ctx, r, r.newRS, r.replicas)
	case len(active) == 0 && len(r.old) > 0:
		return c.scale(ctx, r, r.old[len(r.old)-1], r.replicas)
	}
	return nil
}

// scale sets rs's replicas to n.
func (c *DeploymentController) scale(ctx context.Context, r *rollout, rs *appsv1.ReplicaSet, n int32) error {
	if replicasOf(rs) == n {
		return nil
	}
	cp := rs.DeepCopy()
	cp.Spec.Replicas = &n
	cp.Spec.MinReadySeconds = r.d.Spec.MinReadySeconds
	if err := c.w.Update(ctx, cp); err != nil {
		return fmt.Errorf("scaling replicaset %s/%s to %d: %w", rs.Namespace, rs.Name, n, err)
	}
	c.log.Info("scaled replicaset", "deployment", r.d.Namespace+"/"+r.d.Name, "replicaset", rs.Name, "from", replicasOf(rs), "to", n)
	dir := "up"
	if n < replicasOf(rs) {
		dir = "down"
	}
	c.events.Event(r.d, corev1.EventTypeNormal, "ScalingReplicaSet", fmt.Sprintf("Scaled %s replica set %s from %d to %d", dir, rs.Name, replicasOf(rs), n))
	*rs = *cp
	r.progress = true
	return nil
}

// recreate scales every old ReplicaSet to zero, waits until their pods are
// gone, then scales the new one up.
func (c *DeploymentController) recreate(ctx context.Context, r *rollout) error {
	for _, rs := range r.old {
		if err := c.scale(ctx, r, rs, 0); err != nil {
			return err
		}
	}
	for _, rs := range r.old {
		if rs.Status.Replicas > 0 || c.hasPods(rs) {
			return nil // their pods' deletions requeue the Deployment
		}
	}
	return c.scale(ctx, r, r.newRS, r.replicas)
}

// hasPods: some pod of rs still exists and has not finished.
func (c *DeploymentController) hasPods(rs *appsv1.ReplicaSet) bool {
	for _, o := range inNamespace(c.pods, rs.Namespace, nil) {
		p := o.(*corev1.Pod)
		if isControlledBy(p, rs.UID) && !isTerminal(p) {
			return true
		}
	}
	return false
}

// scaleNewRS grows the new ReplicaSet as far as maxSurge allows (or shrinks
// it to spec.replicas).
func (c *DeploymentController) scaleNewRS(ctx context.Context, r *rollout) error {
	cur := replicasOf(r.newRS)
	if cur >= r.replicas {
		return c.scale(ctx, r, r.newRS, r.replicas)
	}
	surge, _ := rollingBounds(r.d, r.replicas)
	// Count pods, not only specs: an old ReplicaSet just scaled down may
	// not have deleted its surplus pod yet, and maxSurge bounds pods.
	var total int32
	for _, rs := range r.all() {
		total += max(replicasOf(rs), rs.Status.Replicas)
	}
	room := r.replicas + surge - total
	if room <= 0 {
		return nil
	}
	return c.scale(ctx, r, r.newRS, cur+min(room, r.replicas-cur))
}

// scaleDownOld shrinks old ReplicaSets as far as maxUnavailable allows:
// first their unavailable pods (losing them costs no availability), then,
// oldest first, as many as the available pods above the minimum.
func (c *DeploymentController) scaleDownOld(ctx context.Context, r *rollout) error {
	var oldTotal, allTotal int32
	for _, rs := range r.old {
		oldTotal += replicasOf(rs)
	}
	if oldTotal == 0 {
		return nil
	}
	for _, rs := range r.all() {
		allTotal += replicasOf(rs)
	}
	_, unavailable := rollingBounds(r.d, r.replicas)
	minAvailable := r.replicas - unavailable
	newUnavailable := replicasOf(r.newRS) - availableOf(r.newRS)
	budget := allTotal - minAvailable - newUnavailable
	if budget <= 0 {
		return nil
	}
	for _, rs := range r.old {
		if budget <= 0 {
			break
		}
		unhealthy := replicasOf(rs) - availableOf(rs)
		if unhealthy <= 0 {
			continue
		}
		down := min(budget, unhealthy)
		if err := c.scale(ctx, r, rs, replicasOf(rs)-down); err != nil {
			return err
		}
		budget -= down
	}
	var availableTotal int32
	for _, rs := range r.all() {
		availableTotal += availableOf(rs)
	}
	excess := availableTotal - minAvailable
	for _, rs := range r.old {
		if excess <= 0 {
			break
		}
		n := replicasOf(rs)
		if n == 0 {
			continue
		}
		down := min(n, excess)
		if err := c.scale(ctx, r, rs, n-down); err != nil {
			return err
		}
		excess -= down
	}
	return nil
}

// cleanup deletes old, empty ReplicaSets beyond revisionHistoryLimit,
// lowest revision first.
func (c *DeploymentController) cleanup(ctx context.Context, r *rollout) error {
	limit := int32(10)
	if r.d.Spec.RevisionHistoryLimit != nil {
		limit = *r.d.Spec.RevisionHistoryLimit
	}
	var empty []*appsv1.ReplicaSet
	for _, rs := range r.old {
		if replicasOf(rs) == 0 && rs.Status.Replicas == 0 && rs.DeletionTimestamp == nil {
			empty = append(empty, rs)
		}
	}
	var errs []error
	for i := 0; i < len(empty)-int(limit); i++ {
		rs := empty[i]
		if _, err := c.w.Delete(ctx, rs.DeepCopy(), &client.DeleteOptions{PreconditionUID: string(rs.UID)}); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting old replicaset %s/%s: %w", rs.Namespace, rs.Name, err))
			continue
		}
		c.log.Info("deleted old replicaset", "deployment", r.d.Namespace+"/"+r.d.Name, "replicaset", rs.Name)
	}
	return errors.Join(errs...)
}

func condition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setCondition sets a condition, keeping its transition time unless the
// status changes and its update time unless anything changes.
func setCondition(st *appsv1.DeploymentStatus, c appsv1.DeploymentCondition, now metav1.Time) {
	old := condition(st, c.Type)
	if old == nil {
		c.LastTransitionTime, c.LastUpdateTime = now, now
		st.Conditions = append(st.Conditions, c)
		return
	}
	if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
		return
	}
	c.LastTransitionTime, c.LastUpdateTime = old.LastTransitionTime, now
	if old.Status != c.Status {
		c.LastTransitionTime = now
	}
	*old = c
}

// writeStatus records the revision on the Deployment and its status from
// the ReplicaSets, with the Available and Progressing conditions.
func (c *DeploymentController) writeStatus(ctx context.Context, r *rollout) (Result, error) {
	d := r.d
	if r.newRS != nil {
		if rev := r.newRS.Annotations[RevisionAnnotation]; rev != "" && d.Annotations[RevisionAnnotation] != rev {
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations[RevisionAnnotation] = rev
			if err := c.w.Update(ctx, d); err != nil {
				if client.IsNotFound(err) {
					return Result{}, nil
				}
				return Result{}, fmt.Errorf("revision of deployment %s/%s: %w", d.Namespace, d.Name, err)
			}
		}
	}
	now := metav1.NewTime(c.now())
	prev := r.stored
	st := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, CollisionCount: d.Status.CollisionCount}
	st.Conditions = append(st.Conditions, prev.Conditions...)
	for _, rs := range r.all() {
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if r.newRS != nil {
		st.UpdatedReplicas = r.newRS.Status.Replicas
	}
	st.UnavailableReplicas = max(r.replicas-st.AvailableReplicas, 0)

	_, unavailable := rollingBounds(d, r.replicas)
	if st.AvailableReplicas >= r.replicas-unavailable {
		setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: ReasonMinimumAvailable, Message: "Deployment has minimum availability."}, now)
	} else {
		setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse,
			Reason: ReasonMinimumUnavailable, Message: "Deployment does not have minimum availability."}, now)
	}

	var res Result
	complete := r.newRS != nil && st.UpdatedReplicas == r.replicas && st.Replicas == r.replicas &&
		st.AvailableReplicas == r.replicas && availableOf(r.newRS) == r.replicas
	changed := st.Replicas != prev.Replicas || st.UpdatedReplicas != prev.UpdatedReplicas ||
		st.ReadyReplicas != prev.ReadyReplicas || st.AvailableReplicas != prev.AvailableReplicas
	rsName := ""
	if r.newRS != nil {
		rsName = r.newRS.Name
	}
	prog := condition(&st, appsv1.DeploymentProgressing)
	switch {
	case d.Spec.Paused:
		setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionUnknown,
			Reason: ReasonPaused, Message: "Deployment is paused"}, now)
	case complete:
		setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
			Reason: ReasonNewRSAvailable, Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", rsName)}, now)
	case r.created:
		setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
			Reason: ReasonNewRSCreated, Message: fmt.Sprintf("Created new replica set %q", rsName)}, now)
	case r.progress || changed || prog == nil || prog.Status == corev1.ConditionUnknown ||
		(prog.Reason == ReasonNewRSAvailable && prog.Status == corev1.ConditionTrue):
		// Progress (or a rollout starting): the deadline counts from now.
		setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
			Reason: ReasonRSUpdated, Message: fmt.Sprintf("ReplicaSet %q is progressing.", rsName)}, now)
		if p := condition(&st, appsv1.DeploymentProgressing); p.Reason == ReasonRSUpdated {
			p.LastUpdateTime = now
		}
		fallthrough
	default:
		if deadline := d.Spec.ProgressDeadlineSeconds; deadline != nil && *deadline != int32(^uint32(0)>>1) {
			p := condition(&st, appsv1.DeploymentProgressing)
			if p.Status == corev1.ConditionTrue {
				left := p.LastUpdateTime.Add(time.Duration(*deadline) * time.Second).Sub(now.Time)
				if left <= 0 {
					setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
						Reason: ReasonProgressDeadlineExceeded, Message: fmt.Sprintf("ReplicaSet %q has timed out progressing.", rsName)}, now)
				} else {
					res.RequeueAfter = left + 10*time.Millisecond
				}
			}
		}
	}
	if apiequality.Semantic.DeepEqual(st, prev) {
		return res, nil
	}
	d.Status = st
	if err := c.w.UpdateStatus(ctx, d); err != nil && !client.IsNotFound(err) {
		return res, fmt.Errorf("status of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	return res, nil
}

func (c *DeploymentController) register(q *client.Queue[string], deps, rss, pods *client.Informer) {
	deps.AddHandler(keyHandler(q, selfKey))
	rss.AddHandler(keyHandler(q, func(obj runtime.Object) []string {
		rs, ok := obj.(*appsv1.ReplicaSet)
		if !ok {
			return nil
		}
		return c.deploymentsOfRS(rs)
	}))
	pods.AddHandler(client.Handler{OnDelete: func(obj runtime.Object) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		if ref := controllerOf(p); ref != nil && ref.Kind == kindReplicaSet.Kind {
			if o, ok := c.rss.Get(p.Namespace + "/" + ref.Name); ok {
				for _, k := range c.deploymentsOfRS(o.(*appsv1.ReplicaSet)) {
					q.Add(k)
				}
			}
		}
	}})
}

// deploymentsOfRS: its controller if a Deployment, else (an orphan) every
// Deployment whose selector matches it.
func (c *DeploymentController) deploymentsOfRS(rs *appsv1.ReplicaSet) []string {
	if ref := controllerOf(rs); ref != nil {
		if ref.Kind != kindDeployment.Kind {
			return nil
		}
		return []string{rs.Namespace + "/" + ref.Name}
	}
	var keys []string
	for _, o := range inNamespace(c.deps, rs.Namespace, nil) {
		d := o.(*appsv1.Deployment)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(rs.Labels)) {
			keys = append(keys, client.KeyOf(d))
		}
	}
	return keys
}
