package controller

import (
	"errors"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// ErrNoRevision is returned by RollbackTemplate when the revision asked for
// (or a previous one) is not in the Deployment's history.
var ErrNoRevision = errors.New("revision not found")

// Revision is one entry of a Deployment's rollout history: a ReplicaSet it
// controls and the revision number it carries.
type Revision struct {
	Number     int64
	ReplicaSet *appsv1.ReplicaSet
}

// History lists the revisions of d among rss (any ReplicaSets: those d
// does not control are skipped), lowest first, for `skiff rollout history`.
func History(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) []Revision {
	var out []Revision
	for _, rs := range rss {
		if isControlledBy(rs, d.UID) && revisionOf(rs) > 0 {
			out = append(out, Revision{Number: revisionOf(rs), ReplicaSet: rs})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}

// RollbackTemplate is the pod template `skiff rollout undo` writes into d:
// that of revision (0: the one before the current revision), without the
// pod-template-hash label. The Deployment controller then finds that
// ReplicaSet again, gives it the next revision and rolls back to it.
func RollbackTemplate(d *appsv1.Deployment, rss []*appsv1.ReplicaSet, revision int64) (*corev1.PodTemplateSpec, error) {
	hist := History(d, rss)
	current := revisionOf(d)
	var pick *Revision
	for i := range hist {
		h := &hist[i]
		switch {
		case revision > 0 && h.Number == revision:
			pick = h
		case revision == 0 && h.Number < current && (pick == nil || h.Number > pick.Number):
			pick = h
		}
	}
	if pick == nil {
		if revision == 0 {
			return nil, fmt.Errorf("no revision before %d of deployment %s/%s: %w", current, d.Namespace, d.Name, ErrNoRevision)
		}
		return nil, fmt.Errorf("revision %d of deployment %s/%s: %w", revision, d.Namespace, d.Name, ErrNoRevision)
	}
	t := pick.ReplicaSet.Spec.Template.DeepCopy()
	delete(t.Labels, PodTemplateHashLabel)
	return t, nil
}

// ErrProgressDeadline is returned by RolloutStatus for a rollout that
// exceeded its progress deadline.
var ErrProgressDeadline = errors.New("exceeded its progress deadline")

// RolloutStatus says where a Deployment's rollout is, in kubectl's words,
// for `skiff rollout status`: done once every replica is updated and
// available; an error wrapping ErrProgressDeadline once it has failed.
func RolloutStatus(d *appsv1.Deployment) (msg string, done bool, err error) {
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...", false, nil
	}
	if c := condition(&d.Status, appsv1.DeploymentProgressing); c != nil && c.Reason == ReasonProgressDeadlineExceeded {
		return "", false, fmt.Errorf("deployment %q %w", d.Name, ErrProgressDeadline)
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.UpdatedReplicas < want:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", d.Name, st.UpdatedReplicas, want), false, nil
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", d.Name, st.Replicas-st.UpdatedReplicas), false, nil
	case st.AvailableReplicas < st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", d.Name, st.AvailableReplicas, st.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out", d.Name), true, nil
}
