package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
)

// DaemonSetController runs one pod of a DaemonSet on every eligible node:
// one whose labels match the template's nodeSelector and required node
// affinity and whose taints the pod tolerates (the template's tolerations
// plus the ones Kubernetes gives daemon pods: not-ready and unreachable
// NoExecute, memory/disk/PID pressure and unschedulable NoSchedule). A pod
// already running on a node stays despite NoSchedule taints added later.
//
// Pods are bound at creation: spec.nodeName is set, the scheduler is not
// involved (Kubernetes since 1.12 sets a node affinity and lets the
// scheduler bind; Skiff's way needs no scheduler, which suits the agents'
// own daemons, and the agent still rejects a pod that does not fit).
//
// RollingUpdate replaces pods of an old template revision while at most
// maxUnavailable (a count, or a percentage of the eligible nodes rounded
// up; at least 1) nodes lack an available pod; old pods that are not
// available are replaced at once. maxSurge is not supported: updates
// delete before they create. OnDelete leaves old pods alone.
type DaemonSetController struct {
	sets, pods, nodes Cache
	w                 Writer
	exp               *Expectations
	now               func() time.Time
	log               *slog.Logger
	events            EventRecorder
}

// NewDaemonSetController reconciles apps/v1 DaemonSets over nodes.
func NewDaemonSetController(sets, pods, nodes Cache, w Writer, log *slog.Logger) *DaemonSetController {
	if log == nil {
		log = discardLogger()
	}
	return &DaemonSetController{sets: sets, pods: pods, nodes: nodes, w: w, exp: NewExpectations(0, nil), now: time.Now, log: log, events: noEvents{}}
}

// Name is the controller's name.
func (c *DaemonSetController) Name() string { return "daemonset" }

// Reconcile converges one DaemonSet's pods to its eligible nodes.
func (c *DaemonSetController) Reconcile(ctx context.Context, key string) (Result, error) {
	cached, ok := c.sets.Get(key)
	if !ok {
		c.exp.Forget(key)
		return Result{}, nil
	}
	ds := cached.(*appsv1.DaemonSet).DeepCopy()
	hash := TemplateHash(&ds.Spec.Template, ds.Status.CollisionCount)
	spec := ds.Spec.Template.Spec.DeepCopy()
	spec.Tolerations = withDaemonTolerations(spec.Tolerations)
	now := c.now()

	byNode := map[string][]*corev1.Pod{}
	var errs []error
	var toDelete []*corev1.Pod
	for _, p := range ownedPods(c.pods, ds.Namespace, ds.UID) {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			toDelete = append(toDelete, p) // recreated by the next round
			continue
		}
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}

	st := appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, CollisionCount: ds.Status.CollisionCount, Conditions: ds.Status.Conditions}
	var createOn []string
	var oldAvailable []*corev1.Pod
	unavailable := 0
	var res Result
	for _, o := range c.nodes.List(nil) {
		node := o.(*corev1.Node)
		pods := byNode[node.Name]
		delete(byNode, node.Name)
		should, _ := fitsNode(spec, node, false)
		stay, _ := fitsNode(spec, node, true)
		if !should && !(stay && len(pods) > 0) {
			st.NumberMisscheduled += int32(min(len(pods), 1))
			toDelete = append(toDelete, pods...)
			continue
		}
		st.DesiredNumberScheduled++
		if len(pods) == 0 {
			createOn = append(createOn, node.Name)
			unavailable++
			continue
		}
		// One pod per node: keep the updated one, else the oldest.
		sort.SliceStable(pods, func(i, j int) bool {
			ui, uj := pods[i].Labels[ControllerRevisionLabel] == hash, pods[j].Labels[ControllerRevisionLabel] == hash
			if ui != uj {
				return ui
			}
			return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp)
		})
		toDelete = append(toDelete, pods[1:]...)
		p := pods[0]
		st.CurrentNumberScheduled++
		avail, in := availableIn(p, ds.Spec.MinReadySeconds, now)
		if isReady(p) {
			st.NumberReady++
		}
		if avail {
			st.NumberAvailable++
		} else {
			unavailable++
			if in > 0 {
				res.RequeueAfter = minPositive(res.RequeueAfter, in)
			}
		}
		switch {
		case p.Labels[ControllerRevisionLabel] == hash:
			st.UpdatedNumberScheduled++
		case ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType:
		case !avail:
			toDelete = append(toDelete, p) // costs no availability
		default:
			oldAvailable = append(oldAvailable, p)
		}
	}
	for _, pods := range byNode { // on nodes that are gone
		st.NumberMisscheduled += int32(min(len(pods), 1))
		toDelete = append(toDelete, pods...)
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable

	if ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType && len(oldAvailable) > 0 {
		maxUnavailable := 1
		if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
			n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, int(st.DesiredNumberScheduled), true)
			if err == nil {
				maxUnavailable = max(n, 1)
			}
		}
		sort.Slice(oldAvailable, func(i, j int) bool { return oldAvailable[i].Spec.NodeName < oldAvailable[j].Spec.NodeName })
		if budget := maxUnavailable - unavailable; budget > 0 {
			toDelete = append(toDelete, oldAvailable[:min(budget, len(oldAvailable))]...)
		}
	}

	if sat, wait := c.exp.Satisfied(key, c.pods); !sat {
		res.RequeueAfter = minPositive(res.RequeueAfter, wait)
	} else if ds.DeletionTimestamp == nil {
		errs = append(errs, c.deletePods(ctx, key, ds, toDelete), c.createPods(ctx, key, ds, hash, createOn))
	}
	if !apiequality.Semantic.DeepEqual(st, ds.Status) {
		ds.Status = st
		if err := c.w.UpdateStatus(ctx, ds); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("status of daemonset %s: %w", key, err))
		}
	}
	return res, errors.Join(errs...)
}

func (c *DaemonSetController) createPods(ctx context.Context, key string, ds *appsv1.DaemonSet, hash string, nodes []string) error {
	var errs []error
	for _, node := range nodes[:min(len(nodes), MaxBurst)] {
		t := ds.Spec.Template.DeepCopy()
		lbl := t.Labels
		if lbl == nil {
			lbl = map[string]string{}
		}
		lbl[ControllerRevisionLabel] = hash
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ds.Namespace, Name: podName(ds.Name), GenerateName: ds.Name + "-",
				Labels: lbl, Annotations: t.Annotations, Finalizers: t.Finalizers,
				OwnerReferences: []metav1.OwnerReference{controllerRef(ds, kindDaemonSet)}},
			Spec: t.Spec,
		}
		pod.Spec.NodeName = node
		pod.Spec.Tolerations = withDaemonTolerations(pod.Spec.Tolerations)
		podKey := pod.Namespace + "/" + pod.Name
		c.exp.ExpectCreate(key, podKey)
		if err := c.w.Create(ctx, pod); err != nil {
			c.exp.Cancel(key, podKey)
			if client.IsAlreadyExists(err) {
				continue
			}
			c.events.Event(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: "+err.Error())
			errs = append(errs, fmt.Errorf("creating pod of daemonset %s on node %s: %w", key, node, err))
			if client.IsInvalid(err) || client.IsForbidden(err) {
				break
			}
			continue
		}
		c.log.Info("created pod", "daemonset", key, "pod", podKey, "node", node)
		c.events.Event(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: "+pod.Name)
	}
	return errors.Join(errs...)
}

func (c *DaemonSetController) deletePods(ctx context.Context, key string, ds *appsv1.DaemonSet, pods []*corev1.Pod) error {
	var errs []error
	for _, p := range pods[:min(len(pods), MaxBurst)] {
		podKey := p.Namespace + "/" + p.Name
		c.exp.ExpectDelete(key, podKey, p.UID)
		if _, err := c.w.Delete(ctx, p.DeepCopy(), &client.DeleteOptions{PreconditionUID: string(p.UID)}); err != nil {
			c.exp.Cancel(key, podKey)
			if !client.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("deleting pod %s of daemonset %s: %w", podKey, key, err))
			}
			continue
		}
		c.log.Info("deleted pod", "daemonset", key, "pod", podKey, "node", p.Spec.NodeName)
		c.events.Event(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: "+p.Name)
	}
	return errors.Join(errs...)
}

func (c *DaemonSetController) register(q *client.Queue[string], sets, pods, nodes *client.Informer) {
	sets.AddHandler(keyHandler(q, selfKey))
	pods.AddHandler(keyHandler(q, controllerKeyOf(kindDaemonSet.Kind)))
	// A node coming, going or changing labels or taints may change where
	// every DaemonSet runs; heartbeats (status only) change nothing.
	all := func(runtime.Object) {
		for _, o := range sets.List(nil) {
			q.Add(client.KeyOf(o))
		}
	}
	nodes.AddHandler(client.Handler{
		OnAdd:    all,
		OnDelete: all,
		OnUpdate: func(old, obj runtime.Object) {
			o, n := old.(*corev1.Node), obj.(*corev1.Node)
			if !apiequality.Semantic.DeepEqual(o.Labels, n.Labels) || !apiequality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) {
				all(obj)
			}
		},
	})
}
