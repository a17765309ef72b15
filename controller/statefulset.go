package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
)

// Labels a StatefulSet puts on its pods.
const (
	StatefulSetPodNameLabel = appsv1.StatefulSetPodNameLabel // statefulset.kubernetes.io/pod-name
	PodIndexLabel           = appsv1.PodIndexLabel           // apps.kubernetes.io/pod-index
	ControllerRevisionLabel = appsv1.ControllerRevisionHashLabelKey
)

// StatefulSetController gives each of a StatefulSet's replicas a stable
// identity: pod NAME-i for ordinal i in [0, replicas), with hostname NAME-i
// and subdomain spec.serviceName (so the headless service's DNS names it
// NAME-i.SERVICE), and per volumeClaimTemplate a PersistentVolumeClaim
// TEMPLATE-NAME-i that outlives the pod (binding it to a volume is the
// agent's and the storage's business).
//
// OrderedReady (the default) creates pod i only once pods 0..i-1 are
// Running and Ready, and removes surplus pods from the highest ordinal
// down, one at a time, each gone before the next; Parallel creates and
// deletes them all at once. A pod that failed is deleted and recreated
// under the same name. RollingUpdate replaces pods whose template revision
// is not the current one from the highest ordinal down to
// rollingUpdate.partition, one at a time and only while every other pod is
// Running and Ready; OnDelete leaves that to the user.
//
// The revision is the hash of the pod template (the controller-revision-
// hash label, NAME-HASH); Skiff keeps no ControllerRevision objects, so
// `rollout undo` of a StatefulSet is not offered.
type StatefulSetController struct {
	sets, pods Cache
	w          Writer
	now        func() time.Time
	log        *slog.Logger
	events     EventRecorder
}

// NewStatefulSetController reconciles apps/v1 StatefulSets.
func NewStatefulSetController(sets, pods Cache, w Writer, log *slog.Logger) *StatefulSetController {
	if log == nil {
		log = discardLogger()
	}
	return &StatefulSetController{sets: sets, pods: pods, w: w, now: time.Now, log: log, events: noEvents{}}
}

// Name is the controller's name.
func (c *StatefulSetController) Name() string { return "statefulset" }

// ordinalOf is the ordinal of a pod named set-N, or -1.
func ordinalOf(setName, podName string) int {
	rest, ok := strings.CutPrefix(podName, setName+"-")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return -1
	}
	return n
}

func runningAndReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && isReady(p) && p.DeletionTimestamp == nil
}

// Reconcile takes one step towards the StatefulSet's spec: the creations
// and deletions its pod management policy allows now, then the status.
func (c *StatefulSetController) Reconcile(ctx context.Context, key string) (Result, error) {
	cached, ok := c.sets.Get(key)
	if !ok {
		return Result{}, nil
	}
	set := cached.(*appsv1.StatefulSet).DeepCopy()
	replicas := 1
	if set.Spec.Replicas != nil {
		replicas = int(*set.Spec.Replicas)
	}
	revision := set.Name + "-" + TemplateHash(&set.Spec.Template, set.Status.CollisionCount)

	byOrdinal := map[int]*corev1.Pod{}
	var condemned []*corev1.Pod // ordinal >= replicas, or not an ordinal at all
	for _, p := range ownedPods(c.pods, set.Namespace, set.UID) {
		o := ordinalOf(set.Name, p.Name)
		if o >= 0 && o < replicas {
			byOrdinal[o] = p
		} else {
			condemned = append(condemned, p)
		}
	}
	sort.Slice(condemned, func(i, j int) bool {
		return ordinalOf(set.Name, condemned[i].Name) > ordinalOf(set.Name, condemned[j].Name)
	})

	var res Result
	if set.Spec.MinReadySeconds > 0 { // availability comes with time, not events
		res.RequeueAfter = time.Duration(set.Spec.MinReadySeconds) * time.Second
	}
	var err error
	if set.DeletionTimestamp == nil {
		err = c.step(ctx, set, replicas, revision, byOrdinal, condemned)
	}
	return res, errors.Join(err, c.writeStatus(ctx, set, replicas, revision, byOrdinal, condemned))
}

// step makes the changes allowed now. Under OrderedReady it stops at the
// first pod that is not Running and Ready: nothing after it may change.
func (c *StatefulSetController) step(ctx context.Context, set *appsv1.StatefulSet, replicas int, revision string, byOrdinal map[int]*corev1.Pod, condemned []*corev1.Pod) error {
	ordered := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	var errs []error
	for i := 0; i < replicas; i++ {
		p := byOrdinal[i]
		switch {
		case p == nil:
			errs = append(errs, c.createPod(ctx, set, i, revision))
			if ordered {
				return errors.Join(errs...)
			}
		case p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded:
			// Its name must be free before it can run again.
			if p.DeletionTimestamp == nil {
				errs = append(errs, c.deletePod(ctx, set, p, "recreating pod that "+strings.ToLower(string(p.Status.Phase))))
			}
			if ordered {
				return errors.Join(errs...)
			}
		case ordered && !runningAndReady(p):
			return errors.Join(errs...)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// Scale down, highest ordinal first.
	for _, p := range condemned {
		if p.DeletionTimestamp != nil {
			if ordered {
				return nil // wait until it is gone
			}
			continue
		}
		errs = append(errs, c.deletePod(ctx, set, p, "scale down"))
		if ordered {
			return errors.Join(errs...)
		}
	}
	if len(condemned) > 0 && ordered {
		return errors.Join(errs...)
	}

	// Rolling update: one pod at a time, from the highest ordinal down to
	// the partition, while all the others are Running and Ready.
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return errors.Join(errs...)
	}
	partition := 0
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		partition = int(*ru.Partition)
	}
	for i := replicas - 1; i >= partition; i-- {
		p := byOrdinal[i]
		if p == nil || p.DeletionTimestamp != nil {
			return errors.Join(errs...) // one change at a time
		}
		if p.Labels[ControllerRevisionLabel] == revision {
			if !runningAndReady(p) {
				return errors.Join(errs...)
			}
			continue
		}
		for j := 0; j < replicas; j++ {
			if q := byOrdinal[j]; j != i && (q == nil || !runningAndReady(q)) {
				return errors.Join(errs...)
			}
		}
		errs = append(errs, c.deletePod(ctx, set, p, "update to revision "+revision))
		return errors.Join(errs...)
	}
	return errors.Join(errs...)
}

func (c *StatefulSetController) createPod(ctx context.Context, set *appsv1.StatefulSet, ordinal int, revision string) error {
	name := fmt.Sprintf("%s-%d", set.Name, ordinal)
	t := set.Spec.Template.DeepCopy()
	lbl := t.Labels
	if lbl == nil {
		lbl = map[string]string{}
	}
	lbl[StatefulSetPodNameLabel] = name
	lbl[PodIndexLabel] = strconv.Itoa(ordinal)
	lbl[ControllerRevisionLabel] = revision
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: set.Namespace, Name: name, Labels: lbl, Annotations: t.Annotations,
			Finalizers: t.Finalizers, OwnerReferences: []metav1.OwnerReference{controllerRef(set, kindStatefulSet)}},
		Spec: t.Spec,
	}
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = set.Spec.ServiceName
	for _, tmpl := range set.Spec.VolumeClaimTemplates {
		claim := tmpl.Name + "-" + name
		if err := c.ensureClaim(ctx, set, &tmpl, claim, ordinal); err != nil {
			return err
		}
		vol := corev1.Volume{Name: tmpl.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}
		replaced := false
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == tmpl.Name {
				pod.Spec.Volumes[i], replaced = vol, true
			}
		}
		if !replaced {
			pod.Spec.Volumes = append(pod.Spec.Volumes, vol)
		}
	}
	if err := c.w.Create(ctx, pod); err != nil {
		if client.IsAlreadyExists(err) {
			return nil // a pod of that name is being deleted, or the cache is behind
		}
		c.events.Event(set, corev1.EventTypeWarning, "FailedCreate", fmt.Sprintf("create Pod %s in StatefulSet %s failed error: %v", name, set.Name, err))
		return fmt.Errorf("creating pod %s/%s: %w", set.Namespace, name, err)
	}
	c.log.Info("created pod", "statefulset", set.Namespace+"/"+set.Name, "pod", name)
	c.events.Event(set, corev1.EventTypeNormal, "SuccessfulCreate", fmt.Sprintf("create Pod %s in StatefulSet %s successful", name, set.Name))
	return nil
}

// ensureClaim creates the PersistentVolumeClaim of one volumeClaimTemplate
// for one ordinal, unless it exists: claims outlive pods, so a pod
// recreated under the same name finds its data again.
func (c *StatefulSetController) ensureClaim(ctx context.Context, set *appsv1.StatefulSet, tmpl *corev1.PersistentVolumeClaim, name string, ordinal int) error {
	lbl := map[string]string{}
	if set.Spec.Selector != nil {
		for k, v := range set.Spec.Selector.MatchLabels {
			lbl[k] = v
		}
	}
	for k, v := range tmpl.Labels {
		lbl[k] = v
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: set.Namespace, Name: name, Labels: lbl, Annotations: tmpl.Annotations},
		Spec:       *tmpl.Spec.DeepCopy(),
	}
	if p := set.Spec.PersistentVolumeClaimRetentionPolicy; p != nil && p.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		pvc.OwnerReferences = []metav1.OwnerReference{controllerRef(set, kindStatefulSet)}
	}
	err := c.w.Create(ctx, pvc)
	switch {
	case err == nil:
		c.events.Event(set, corev1.EventTypeNormal, "SuccessfulCreate",
			fmt.Sprintf("create Claim %s Pod %s-%d in StatefulSet %s success", name, set.Name, ordinal, set.Name))
		return nil
	case client.IsAlreadyExists(err):
		return nil
	}
	c.events.Event(set, corev1.EventTypeWarning, "FailedCreate", fmt.Sprintf("create Claim %s for StatefulSet %s failed error: %v", name, set.Name, err))
	return fmt.Errorf("creating claim %s/%s: %w", set.Namespace, name, err)
}

func (c *StatefulSetController) deletePod(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod, why string) error {
	if _, err := c.w.Delete(ctx, p.DeepCopy(), &client.DeleteOptions{PreconditionUID: string(p.UID)}); err != nil && !client.IsNotFound(err) {
		c.events.Event(set, corev1.EventTypeWarning, "FailedDelete", fmt.Sprintf("delete Pod %s in StatefulSet %s failed error: %v", p.Name, set.Name, err))
		return fmt.Errorf("deleting pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.log.Info("deleted pod", "statefulset", set.Namespace+"/"+set.Name, "pod", p.Name, "why", why)
	c.events.Event(set, corev1.EventTypeNormal, "SuccessfulDelete", fmt.Sprintf("delete Pod %s in StatefulSet %s successful", p.Name, set.Name))
	return nil
}

func (c *StatefulSetController) writeStatus(ctx context.Context, set *appsv1.StatefulSet, replicas int, revision string, byOrdinal map[int]*corev1.Pod, condemned []*corev1.Pod) error {
	st := appsv1.StatefulSetStatus{ObservedGeneration: set.Generation, UpdateRevision: revision,
		CurrentRevision: set.Status.CurrentRevision, CollisionCount: set.Status.CollisionCount, Conditions: set.Status.Conditions}
	now := c.now()
	revisions := map[string]int32{}
	count := func(p *corev1.Pod) {
		if p.DeletionTimestamp != nil || isTerminal(p) {
			return
		}
		st.Replicas++
		revisions[p.Labels[ControllerRevisionLabel]]++
		if isReady(p) {
			st.ReadyReplicas++
			if ok, _ := availableIn(p, set.Spec.MinReadySeconds, now); ok {
				st.AvailableReplicas++
			}
		}
	}
	for i := 0; i < replicas; i++ {
		if p := byOrdinal[i]; p != nil {
			count(p)
		}
	}
	for _, p := range condemned {
		count(p)
	}
	st.UpdatedReplicas = revisions[revision]
	if st.CurrentRevision == "" || (st.UpdatedReplicas == int32(replicas) && st.Replicas == int32(replicas)) {
		st.CurrentRevision = revision
	}
	st.CurrentReplicas = revisions[st.CurrentRevision]
	if apiequality.Semantic.DeepEqual(st, set.Status) {
		return nil
	}
	set.Status = st
	if err := c.w.UpdateStatus(ctx, set); err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("status of statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	return nil
}

func (c *StatefulSetController) register(q *client.Queue[string], sets, pods *client.Informer) {
	sets.AddHandler(keyHandler(q, selfKey))
	pods.AddHandler(keyHandler(q, controllerKeyOf(kindStatefulSet.Kind)))
}
