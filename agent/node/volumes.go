package node

// Local persistent volumes, the way k3s's local-path provisioner works with
// volumeBindingMode WaitForFirstConsumer: a claim stays Pending until a pod
// that uses it is bound to a node; the agent of that node then makes a
// directory under its data dir, a PersistentVolume for it (pinned to the
// node by nodeAffinity, claimRef to the claim) and binds the claim.
//
// Vocabulary: a claim is a PersistentVolumeClaim, a volume a
// PersistentVolume; "provisioned" volumes are the ones an agent made (label
// and annotation skiff.dev/provisioned-by=<node>), "static" ones a user
// created.
//
// Why it is safe without a central binder:
//   - The volume made for a claim is named pvc-<claim uid> (as Kubernetes'
//     provisioners name them), so two passes, two pods or two nodes racing
//     for one claim collide on the name: never two volumes for one claim.
//   - The claim is bound with a compare-and-swap on its resourceVersion
//     (spec.volumeName). A lost race re-reads the claim; a volume made for a
//     claim someone else bound is deleted, a static one released.
//   - Only the agent that provisioned a volume ever deletes it or its
//     directory, and not while a pod of its node still uses the claim.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// Names the agent puts on the volumes it provisions and the claims it binds.
const (
	// LabelProvisionedBy (label and annotation) names the node whose agent
	// made a PersistentVolume: only that agent deletes it and its directory.
	LabelProvisionedBy = "skiff.dev/provisioned-by"
	// LocalStorageClass is the storage class of provisioned volumes when the
	// claim names none.
	LocalStorageClass = "local"
	// LocalProvisioner is the provisioner name (annotation
	// pv.kubernetes.io/provisioned-by, as Kubernetes' provisioners set).
	LocalProvisioner = "skiff.dev/local-path"

	annProvisionedBy     = "pv.kubernetes.io/provisioned-by"
	annBindCompleted     = "pv.kubernetes.io/bind-completed"
	annBoundByController = "pv.kubernetes.io/bound-by-controller"
	annSelectedNode      = "volume.kubernetes.io/selected-node"
)

// provisionedClasses are the claims' storage classes this node provisions
// for: none named (nil), "local", and k3s's "local-path" so its manifests
// work unchanged. An empty class ("") asks for a static volume only, as in
// Kubernetes.
var provisionedClasses = map[string]bool{LocalStorageClass: true, "local-path": true}

// Errors of claim resolution; each is wrapped with the claim it is about.
var (
	// errClaimNotReady: the claim cannot be used yet (missing, unbound,
	// being bound, its volume not found); the pod waits.
	errClaimNotReady = errors.New("claim not ready")
	// errVolumeNodeConflict: the claim's volume lives on another node; the
	// scheduler should not have placed the pod here.
	errVolumeNodeConflict = errors.New("node(s) had volume node affinity conflict")
)

// volumeClient is what local volumes need of the cluster API; *client.Client
// is one. Called from pod workers' goroutines and the reclaim loop.
type volumeClient interface {
	Getter
	Create(ctx context.Context, obj k8sruntime.Object) error
	Update(ctx context.Context, obj k8sruntime.Object) error
	UpdateStatus(ctx context.Context, obj k8sruntime.Object) error
	Delete(ctx context.Context, obj k8sruntime.Object, opts *client.DeleteOptions) (bool, error)
	List(ctx context.Context, namespace string, list k8sruntime.Object, opts client.ListOptions) error
}

var _ volumeClient = (*client.Client)(nil)

// localVolumes provisions, binds, resolves and reclaims the node's local
// volumes.
type localVolumes struct {
	c    volumeClient
	node string
	dir  string // the volumes' parent: <data-dir>/volumes
	log  *slog.Logger
	// inUse says whether a pod of this node that has not finished, created
	// before createdBefore (zero: any time), still names the claim
	// namespace/name; its volume is not reclaimed until none does. Nil:
	// never.
	inUse func(namespace, claim string, createdBefore time.Time) bool
	// event, if set, records an event about a claim (as the provisioner's
	// ProvisioningSucceeded that kubectl describe pvc shows).
	event func(ctx context.Context, obj k8sruntime.Object, eventType, reason, message string) error

	mu sync.Mutex // one provisioning or reclaim at a time on this node
}

func newLocalVolumes(c volumeClient, node, dir string, log *slog.Logger, inUse func(namespace, claim string, createdBefore time.Time) bool) *localVolumes {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &localVolumes{c: c, node: node, dir: dir, log: log, inUse: inUse}
}

// resolveClaims returns, per persistentVolumeClaim volume of pod, the host
// directory to mount, provisioning and binding claims that are not bound
// yet. A claim that cannot be used yet is an error wrapping
// podworker.ErrVolumesNotReady (through the caller), so the pod waits in
// ContainerCreating.
func (v *localVolumes) resolveClaims(ctx context.Context, pod *corev1.Pod) (map[string]string, error) {
	var out map[string]string
	var nodeLabels map[string]string
	for _, vol := range pod.Spec.Volumes {
		if vol.PersistentVolumeClaim == nil {
			continue
		}
		p, err := v.claimPath(ctx, pod.Namespace, vol.PersistentVolumeClaim.ClaimName, &nodeLabels)
		if err != nil {
			return out, fmt.Errorf("volume %q: %w", vol.Name, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[vol.Name] = p
	}
	return out, nil
}

// claimPath is the directory of the volume claim ns/name is bound to.
func (v *localVolumes) claimPath(ctx context.Context, ns, name string, nodeLabels *map[string]string) (string, error) {
	claim := &corev1.PersistentVolumeClaim{}
	if err := v.c.Get(ctx, ns, name, claim); err != nil {
		if client.IsNotFound(err) {
			return "", fmt.Errorf("%w: persistentvolumeclaim %q not found", errClaimNotReady, name)
		}
		return "", err
	}
	if claim.DeletionTimestamp != nil {
		return "", fmt.Errorf("%w: persistentvolumeclaim %q is being deleted", errClaimNotReady, name)
	}
	var pv *corev1.PersistentVolume
	if claim.Spec.VolumeName == "" {
		var err error
		if claim, pv, err = v.bind(ctx, claim, nodeLabels); err != nil {
			return "", err
		}
	} else {
		pv = &corev1.PersistentVolume{}
		if err := v.c.Get(ctx, "", claim.Spec.VolumeName, pv); err != nil {
			if client.IsNotFound(err) {
				return "", fmt.Errorf("%w: persistentvolumeclaim %q is bound to persistentvolume %q, which does not exist",
					errClaimNotReady, name, claim.Spec.VolumeName)
			}
			return "", err
		}
	}
	if r := pv.Spec.ClaimRef; r == nil || r.Namespace != ns || r.Name != name || (r.UID != "" && r.UID != claim.UID) {
		return "", fmt.Errorf("%w: persistentvolumeclaim %q names persistentvolume %q, which is not bound to it",
			errClaimNotReady, name, pv.Name)
	}
	ok, err := v.onThisNode(ctx, pv, nodeLabels)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%w: persistentvolumeclaim %q is bound to persistentvolume %q, which is on %s, not on node %s",
			errVolumeNodeConflict, name, pv.Name, describeAffinity(pv), v.node)
	}
	dir := volumePath(pv)
	if dir == "" {
		return "", fmt.Errorf("%w: persistentvolume %q: only hostPath and local volumes can be mounted here", errClaimNotReady, pv.Name)
	}
	if claim.Status.Phase != corev1.ClaimBound || pv.Status.Phase != corev1.VolumeBound {
		if err := v.completeBinding(ctx, claim, pv); err != nil {
			return "", err
		}
	}
	if pv.Labels[LabelProvisionedBy] == v.node {
		// Ours: a directory lost (a wiped data dir) is made again, empty,
		// rather than leaving the pod waiting forever.
		if err := mkVolumeDir(dir); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// bind binds an unbound claim to a matching static volume on this node, or
// else to a volume it provisions. It returns the claim and volume as bound.
func (v *localVolumes) bind(ctx context.Context, claim *corev1.PersistentVolumeClaim, nodeLabels *map[string]string) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if m := claim.Spec.VolumeMode; m != nil && *m == corev1.PersistentVolumeBlock {
		return nil, nil, fmt.Errorf("%w: persistentvolumeclaim %q: volumeMode Block is not supported (only Filesystem)", errClaimNotReady, claim.Name)
	}
	pv, err := v.findStatic(ctx, claim, nodeLabels)
	if err != nil {
		return nil, nil, err
	}
	provisioned := pv == nil
	if provisioned {
		class := claimClass(claim)
		if claim.Spec.StorageClassName != nil && !provisionedClasses[class] {
			return nil, nil, fmt.Errorf("%w: persistentvolumeclaim %q: no persistentvolume of storage class %q matches it on node %s, and that class is not provisioned here (only %s)",
				errClaimNotReady, claim.Name, class, v.node, `"local" or none`)
		}
		if pv, err = v.provision(ctx, claim); err != nil {
			return nil, nil, err
		}
	}
	bound, err := v.bindClaim(ctx, claim, pv)
	if err == nil {
		v.log.Info("claim bound", "pvc", claim.Namespace+"/"+claim.Name, "pv", pv.Name, "provisioned", provisioned,
			"revision", bound.ResourceVersion)
		if provisioned && v.event != nil {
			ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := v.event(ectx, bound, corev1.EventTypeNormal, "ProvisioningSucceeded",
				fmt.Sprintf("Successfully provisioned volume %s on node %s", pv.Name, v.node)); err != nil {
				v.log.Warn("record event", "pvc", claim.Namespace+"/"+claim.Name, "reason", "ProvisioningSucceeded", "err", err)
			}
			cancel()
		}
		return bound, pv, nil
	}
	if !errors.Is(err, errLostClaim) {
		return nil, nil, err
	}
	// Someone else bound the claim (or it is gone): what was made or
	// taken for it is given back.
	if provisioned {
		v.deleteProvisioned(ctx, pv)
	} else {
		v.releaseStatic(ctx, pv, claim)
	}
	return nil, nil, fmt.Errorf("%w: persistentvolumeclaim %q: %w", errClaimNotReady, claim.Name, err)
}

// errLostClaim: the claim was bound to another volume, deleted or replaced
// while this node was binding it.
var errLostClaim = errors.New("claim was bound or deleted meanwhile by someone else")

// bindClaim sets claim.spec.volumeName with a compare-and-swap, re-reading
// the claim after each conflict.
func (v *localVolumes) bindClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	for attempt := 0; ; attempt++ {
		c := claim.DeepCopy()
		c.Spec.VolumeName = pv.Name
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[annBindCompleted] = "yes"
		c.Annotations[annBoundByController] = "yes"
		c.Annotations[annSelectedNode] = v.node
		err := v.c.Update(ctx, c)
		if err == nil {
			return c, v.completeBinding(ctx, c, pv)
		}
		if !client.IsConflict(err) || attempt >= 5 {
			return nil, err
		}
		fresh := &corev1.PersistentVolumeClaim{}
		if err := v.c.Get(ctx, claim.Namespace, claim.Name, fresh); err != nil {
			if client.IsNotFound(err) {
				return nil, errLostClaim
			}
			return nil, err
		}
		switch {
		case fresh.UID != claim.UID || fresh.DeletionTimestamp != nil:
			return nil, errLostClaim
		case fresh.Spec.VolumeName == pv.Name:
			return fresh, v.completeBinding(ctx, fresh, pv)
		case fresh.Spec.VolumeName != "":
			return nil, fmt.Errorf("%w (to persistentvolume %q)", errLostClaim, fresh.Spec.VolumeName)
		}
		claim = fresh
	}
}

// completeBinding writes the statuses of a claim bound to pv: claim Bound
// with the volume's capacity and access modes, volume Bound. Both writes
// are idempotent; a failed one is done again on the next pass.
func (v *localVolumes) completeBinding(ctx context.Context, claim *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) error {
	if claim.Status.Phase != corev1.ClaimBound {
		c := claim.DeepCopy()
		c.Status.Phase = corev1.ClaimBound
		c.Status.Capacity = pv.Spec.Capacity.DeepCopy()
		c.Status.AccessModes = append([]corev1.PersistentVolumeAccessMode(nil), pv.Spec.AccessModes...)
		if err := v.c.UpdateStatus(ctx, c); err != nil {
			return fmt.Errorf("persistentvolumeclaim %s/%s status: %w", claim.Namespace, claim.Name, err)
		}
		*claim = *c
	}
	if pv.Status.Phase != corev1.VolumeBound {
		p := pv.DeepCopy()
		p.Status.Phase = corev1.VolumeBound
		p.Status.Message, p.Status.Reason = "", ""
		if err := v.c.UpdateStatus(ctx, p); err != nil {
			return fmt.Errorf("persistentvolume %s status: %w", pv.Name, err)
		}
		*pv = *p
	}
	return nil
}

// provision creates (or finds, after a crash or a concurrent pass) the
// volume pvc-<claim uid> of this node for claim, and its directory.
func (v *localVolumes) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim) (*corev1.PersistentVolume, error) {
	name := "pvc-" + string(claim.UID)
	dir := filepath.Join(v.dir, name)
	pv := provisionedVolume(claim, v.node, name, dir)
	err := v.c.Create(ctx, pv)
	if client.IsAlreadyExists(err) {
		pv = &corev1.PersistentVolume{}
		if err = v.c.Get(ctx, "", name, pv); err == nil {
			if by := pv.Labels[LabelProvisionedBy]; by != v.node {
				return nil, fmt.Errorf("%w: persistentvolumeclaim %q is being provisioned by node %q", errClaimNotReady, claim.Name, by)
			}
			if r := pv.Spec.ClaimRef; r == nil || r.UID != claim.UID {
				return nil, fmt.Errorf("%w: persistentvolume %q exists and is not for persistentvolumeclaim %q", errClaimNotReady, name, claim.Name)
			}
		}
	} else if err == nil {
		v.log.Info("volume provisioned", "pvc", claim.Namespace+"/"+claim.Name, "pv", name, "path", dir,
			"capacity", pv.Spec.Capacity.Storage().String(), "revision", pv.ResourceVersion)
	}
	if err != nil {
		return nil, fmt.Errorf("provisioning a volume for persistentvolumeclaim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	if err := mkVolumeDir(dir); err != nil {
		return nil, err
	}
	return pv, nil
}

// provisionedVolume is the PersistentVolume node makes for claim: a hostPath
// directory pinned to the node, as big as the claim asks, deleted with it.
func provisionedVolume(claim *corev1.PersistentVolumeClaim, node, name, dir string) *corev1.PersistentVolume {
	class := claimClass(claim)
	if class == "" {
		class = LocalStorageClass
	}
	dirType := corev1.HostPathDirectoryOrCreate
	fs := corev1.PersistentVolumeFilesystem
	modes := claim.Spec.AccessModes
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{LabelProvisionedBy: node},
			Annotations: map[string]string{
				LabelProvisionedBy: node,
				annProvisionedBy:   LocalProvisioner,
			},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: claimRequest(claim)},
			AccessModes:                   append([]corev1.PersistentVolumeAccessMode(nil), modes...),
			StorageClassName:              class,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			VolumeMode:                    &fs,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &dirType},
			},
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumePending},
	}
}

// findStatic picks the smallest static volume that can serve claim on this
// node (and takes it: claimRef written with a compare-and-swap), or nil.
func (v *localVolumes) findStatic(ctx context.Context, claim *corev1.PersistentVolumeClaim, nodeLabels *map[string]string) (*corev1.PersistentVolume, error) {
	var list corev1.PersistentVolumeList
	if err := v.c.List(ctx, "", &list, client.ListOptions{}); err != nil {
		return nil, fmt.Errorf("listing persistentvolumes: %w", err)
	}
	var cands []*corev1.PersistentVolume
	for i := range list.Items {
		pv := &list.Items[i]
		if !staticMatches(pv, claim) {
			continue
		}
		ok, err := v.onThisNode(ctx, pv, nodeLabels)
		if err != nil {
			return nil, err
		}
		if ok {
			cands = append(cands, pv)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		ci, cj := cands[i].Spec.Capacity.Storage(), cands[j].Spec.Capacity.Storage()
		if c := ci.Cmp(*cj); c != 0 {
			return c < 0
		}
		return cands[i].Name < cands[j].Name
	})
	for _, pv := range cands {
		p := pv.DeepCopy()
		if p.Spec.ClaimRef != nil && p.Spec.ClaimRef.UID == claim.UID {
			return p, nil // taken on an earlier pass
		}
		p.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
			Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion}
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[annBoundByController] = "yes"
		err := v.c.Update(ctx, p)
		if err == nil {
			return p, nil
		}
		if !client.IsConflict(err) {
			return nil, fmt.Errorf("taking persistentvolume %s for persistentvolumeclaim %s/%s: %w", pv.Name, claim.Namespace, claim.Name, err)
		}
		// Someone else took or changed it: try the next; the next pass
		// sees this one afresh.
	}
	return nil, nil
}

// staticMatches: pv is a user's volume free for claim (or already taken
// for it) with the claim's class, volume mode, access modes, selector, and
// at least its request. Kubernetes' binder checks the same.
func staticMatches(pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) bool {
	if pv.DeletionTimestamp != nil || pv.Labels[LabelProvisionedBy] != "" || volumePath(pv) == "" {
		return false
	}
	if r := pv.Spec.ClaimRef; r != nil {
		if r.Namespace != claim.Namespace || r.Name != claim.Name || (r.UID != "" && r.UID != claim.UID) {
			return false
		}
	} else if pv.Status.Phase != corev1.VolumeAvailable && pv.Status.Phase != corev1.VolumePending && pv.Status.Phase != "" {
		return false // Released or Failed: a user must make it available again
	}
	if pv.Spec.StorageClassName != claimClass(claim) {
		return false
	}
	if volumeMode(pv.Spec.VolumeMode) != volumeMode(claim.Spec.VolumeMode) {
		return false
	}
	for _, m := range claim.Spec.AccessModes {
		found := false
		for _, have := range pv.Spec.AccessModes {
			found = found || have == m
		}
		if !found {
			return false
		}
	}
	if claim.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(claim.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pv.Labels)) {
			return false
		}
	}
	want := claimRequest(claim)
	return pv.Spec.Capacity.Storage().Cmp(want) >= 0
}

// releaseStatic gives a static volume taken for claim back (claimRef
// cleared), unless it has changed meanwhile.
func (v *localVolumes) releaseStatic(ctx context.Context, pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) {
	p := pv.DeepCopy()
	if p.Spec.ClaimRef == nil || p.Spec.ClaimRef.UID != claim.UID {
		return
	}
	p.Spec.ClaimRef = nil
	delete(p.Annotations, annBoundByController)
	if err := v.c.Update(ctx, p); err != nil && !client.IsNotFound(err) {
		v.log.Warn("releasing persistentvolume", "pv", pv.Name, "pvc", claim.Namespace+"/"+claim.Name, "err", err)
	}
}

// deleteProvisioned removes a volume this node made: its directory, then
// the object (UID precondition: a volume of the same name made since is
// never touched).
func (v *localVolumes) deleteProvisioned(ctx context.Context, pv *corev1.PersistentVolume) {
	if pv.Labels[LabelProvisionedBy] != v.node {
		return
	}
	dir := volumePath(pv)
	if rel, err := filepath.Rel(v.dir, dir); err != nil || rel == "." || strings.HasPrefix(rel, "..") || strings.Contains(rel, "/") {
		v.log.Error("not removing a volume directory outside the node's volumes dir", "pv", pv.Name, "path", dir, "dir", v.dir)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		v.log.Error("removing volume directory", "pv", pv.Name, "path", dir, "err", err)
		return
	}
	_, err := v.c.Delete(ctx, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: pv.Name}},
		&client.DeleteOptions{PreconditionUID: string(pv.UID)})
	if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		v.log.Error("deleting persistentvolume", "pv", pv.Name, "err", err)
		return
	}
	v.log.Info("volume deleted", "pv", pv.Name, "path", dir, "revision", pv.ResourceVersion)
}

// reclaim is one pass over the volumes this node provisioned: a volume
// whose claim is gone (deleted, or replaced by a new claim of the same
// name) and no pod of this node uses is deleted with its directory (policy
// Delete) or marked Released (Retain); one made for a claim that another
// volume got is deleted.
func (v *localVolumes) reclaim(ctx context.Context) error {
	var list corev1.PersistentVolumeList
	if err := v.c.List(ctx, "", &list, client.ListOptions{LabelSelector: LabelProvisionedBy + "=" + v.node}); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := range list.Items {
		pv := &list.Items[i]
		r := pv.Spec.ClaimRef
		if pv.Labels[LabelProvisionedBy] != v.node || r == nil || pv.DeletionTimestamp != nil {
			continue
		}
		claim := &corev1.PersistentVolumeClaim{}
		err := v.c.Get(ctx, r.Namespace, r.Name, claim)
		if err != nil && !client.IsNotFound(err) {
			return err
		}
		var replacedAt time.Time
		switch {
		case err != nil: // deleted
		case claim.UID != r.UID:
			// A new claim of the same name (a StatefulSet's, after its
			// pod was recreated): pods made since use that one.
			replacedAt = claim.CreationTimestamp.Time
		default:
			if claim.Spec.VolumeName != "" && claim.Spec.VolumeName != pv.Name {
				v.deleteProvisioned(ctx, pv) // made for a claim another volume got
			}
			continue
		}
		if v.inUse != nil && v.inUse(r.Namespace, r.Name, replacedAt) {
			continue // the pod stops first; its containers still have the directory
		}
		switch pv.Spec.PersistentVolumeReclaimPolicy {
		case corev1.PersistentVolumeReclaimDelete:
			v.deleteProvisioned(ctx, pv)
		default:
			if pv.Status.Phase != corev1.VolumeReleased {
				p := pv.DeepCopy()
				p.Status.Phase = corev1.VolumeReleased
				if err := v.c.UpdateStatus(ctx, p); err != nil && !client.IsNotFound(err) {
					v.log.Warn("marking persistentvolume Released", "pv", pv.Name, "err", err)
				}
			}
		}
	}
	return nil
}

// reclaimLoop runs reclaim every period until ctx ends.
func (v *localVolumes) reclaimLoop(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, period+10*time.Second)
		if err := v.reclaim(rctx); err != nil && ctx.Err() == nil {
			v.log.Warn("reclaiming local volumes", "err", err)
		}
		cancel()
	}
}

// onThisNode reports whether pv's required node affinity admits this node
// (no affinity: any node). The node's labels are read once per resolution.
func (v *localVolumes) onThisNode(ctx context.Context, pv *corev1.PersistentVolume, nodeLabels *map[string]string) (bool, error) {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return true, nil
	}
	if *nodeLabels == nil {
		n := &corev1.Node{}
		if err := v.c.Get(ctx, "", v.node, n); err != nil {
			return false, fmt.Errorf("reading node %s: %w", v.node, err)
		}
		*nodeLabels = n.Labels
		if *nodeLabels == nil {
			*nodeLabels = map[string]string{}
		}
	}
	return nodeSelectorMatches(pv.Spec.NodeAffinity.Required, v.node, *nodeLabels), nil
}

// nodeSelectorMatches: any term matches (an empty term matches nothing,
// as in Kubernetes); within a term every expression and field must hold.
func nodeSelectorMatches(sel *corev1.NodeSelector, name string, nodeLabels map[string]string) bool {
	for _, t := range sel.NodeSelectorTerms {
		if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
			continue
		}
		ok := true
		for _, r := range t.MatchExpressions {
			val, has := nodeLabels[r.Key]
			ok = ok && requirementHolds(r, val, has)
		}
		for _, r := range t.MatchFields {
			ok = ok && r.Key == "metadata.name" && requirementHolds(r, name, true)
		}
		if ok {
			return true
		}
	}
	return false
}

func requirementHolds(r corev1.NodeSelectorRequirement, val string, has bool) bool {
	in := func() bool {
		for _, v := range r.Values {
			if v == val {
				return true
			}
		}
		return false
	}
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return has && in()
	case corev1.NodeSelectorOpNotIn:
		return !has || !in()
	case corev1.NodeSelectorOpExists:
		return has
	case corev1.NodeSelectorOpDoesNotExist:
		return !has
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !has || len(r.Values) != 1 {
			return false
		}
		a, err1 := strconv.ParseInt(val, 10, 64)
		b, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return a > b
		}
		return a < b
	}
	return false
}

// describeAffinity names where pv lives for an error message: the
// hostnames it is pinned to when that is all it says.
func describeAffinity(pv *corev1.PersistentVolume) string {
	var hosts []string
	for _, t := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, r := range t.MatchExpressions {
			if r.Key == LabelHostname && r.Operator == corev1.NodeSelectorOpIn {
				hosts = append(hosts, r.Values...)
			}
		}
	}
	if len(hosts) == 0 {
		return "nodes matching its node affinity"
	}
	return "node " + strings.Join(hosts, ", ")
}

// volumePath is the host directory of a hostPath or local volume, "" for
// other sources.
func volumePath(pv *corev1.PersistentVolume) string {
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path
	}
	return ""
}

func claimClass(c *corev1.PersistentVolumeClaim) string {
	if c.Spec.StorageClassName == nil {
		return ""
	}
	return *c.Spec.StorageClassName
}

func claimRequest(c *corev1.PersistentVolumeClaim) resource.Quantity {
	if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		return q.DeepCopy()
	}
	return resource.Quantity{}
}

func volumeMode(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}

// mkVolumeDir makes a volume's directory writable by any user, as
// local-path does: the containers' users are not known in advance.
func mkVolumeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("volume directory: %w", err)
	}
	return os.Chmod(dir, 0o777)
}

// claimInUse reports whether a pod bound to this node, not finished and
// created before createdBefore (zero: any time), names claim namespace/name
// (the agent's localVolumes.inUse).
func (a *Agent) claimInUse(namespace, claim string, createdBefore time.Time) bool {
	if a.pods == nil {
		return true // not watching yet: assume so
	}
	for _, o := range a.pods.List(labels.Everything()) {
		p := o.(*corev1.Pod)
		if p.Namespace != namespace || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed ||
			(!createdBefore.IsZero() && !p.CreationTimestamp.Time.Before(createdBefore)) {
			continue
		}
		for _, vol := range p.Spec.Volumes {
			if vol.PersistentVolumeClaim != nil && vol.PersistentVolumeClaim.ClaimName == claim {
				return true
			}
		}
	}
	return false
}
