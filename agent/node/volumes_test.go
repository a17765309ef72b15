package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
)

// fakeVolumeAPI is an in-memory API for claims, volumes and nodes with the
// server's compare-and-swap rules: Update with a stale resourceVersion is a
// Conflict, UpdateStatus writes only status, Create of an existing name is
// AlreadyExists. It records every write.
type fakeVolumeAPI struct {
	mu     sync.Mutex
	rv     int
	uid    int
	objs   map[string]k8sruntime.Object // kind/namespace/name
	writes []string
	// beforeUpdate, if set, runs (unlocked) before each Update: a test's
	// way to lose a race.
	beforeUpdate func(obj k8sruntime.Object)
}

func newFakeVolumeAPI() *fakeVolumeAPI { return &fakeVolumeAPI{objs: map[string]k8sruntime.Object{}} }

func fakeKey(obj k8sruntime.Object, ns, name string) string {
	return fmt.Sprintf("%T/%s/%s", obj, ns, name)
}

func fakeGR(obj k8sruntime.Object) schema.GroupResource {
	return schema.GroupResource{Resource: strings.ToLower(fmt.Sprintf("%T", obj))}
}

func (f *fakeVolumeAPI) put(obj k8sruntime.Object) {
	m, _ := metaOf(obj)
	f.rv++
	m.SetResourceVersion(strconv.Itoa(f.rv))
	f.objs[fakeKey(obj, m.GetNamespace(), m.GetName())] = obj.DeepCopyObject()
}

func metaOf(obj k8sruntime.Object) (metav1.Object, bool) {
	m, ok := obj.(metav1.Object)
	return m, ok
}

// add stores obj as a test fixture (uid filled in).
func (f *fakeVolumeAPI) add(obj k8sruntime.Object) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, _ := metaOf(obj)
	if m.GetUID() == "" {
		f.uid++
		m.SetUID(types.UID(fmt.Sprintf("uid-%d", f.uid)))
	}
	f.put(obj)
}

func copyInto(dst, src k8sruntime.Object) {
	switch d := dst.(type) {
	case *corev1.PersistentVolumeClaim:
		*d = *src.DeepCopyObject().(*corev1.PersistentVolumeClaim)
	case *corev1.PersistentVolume:
		*d = *src.DeepCopyObject().(*corev1.PersistentVolume)
	case *corev1.Node:
		*d = *src.DeepCopyObject().(*corev1.Node)
	default:
		panic(fmt.Sprintf("fake: %T", dst))
	}
}

func (f *fakeVolumeAPI) Get(_ context.Context, ns, name string, obj k8sruntime.Object) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objs[fakeKey(obj, ns, name)]
	if !ok {
		return client.NewNotFound(fakeGR(obj), name)
	}
	copyInto(obj, o)
	return nil
}

func (f *fakeVolumeAPI) Create(_ context.Context, obj k8sruntime.Object) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, _ := metaOf(obj)
	if _, ok := f.objs[fakeKey(obj, m.GetNamespace(), m.GetName())]; ok {
		return client.NewAlreadyExists(fakeGR(obj), m.GetName())
	}
	f.uid++
	m.SetUID(types.UID(fmt.Sprintf("uid-%d", f.uid)))
	f.put(obj)
	f.writes = append(f.writes, "create "+m.GetName())
	return nil
}

func (f *fakeVolumeAPI) Update(_ context.Context, obj k8sruntime.Object) error {
	if f.beforeUpdate != nil {
		f.beforeUpdate(obj)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m, _ := metaOf(obj)
	key := fakeKey(obj, m.GetNamespace(), m.GetName())
	old, ok := f.objs[key]
	if !ok {
		return client.NewNotFound(fakeGR(obj), m.GetName())
	}
	om, _ := metaOf(old)
	if m.GetResourceVersion() != om.GetResourceVersion() {
		return client.NewConflict(fakeGR(obj), m.GetName(), "the object has been modified")
	}
	// Update keeps the stored status (a status subresource).
	switch o := obj.(type) {
	case *corev1.PersistentVolumeClaim:
		o.Status = *old.(*corev1.PersistentVolumeClaim).Status.DeepCopy()
	case *corev1.PersistentVolume:
		o.Status = *old.(*corev1.PersistentVolume).Status.DeepCopy()
	}
	f.put(obj)
	f.writes = append(f.writes, "update "+m.GetName())
	return nil
}

func (f *fakeVolumeAPI) UpdateStatus(_ context.Context, obj k8sruntime.Object) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, _ := metaOf(obj)
	key := fakeKey(obj, m.GetNamespace(), m.GetName())
	old, ok := f.objs[key]
	if !ok {
		return client.NewNotFound(fakeGR(obj), m.GetName())
	}
	stored := old.DeepCopyObject()
	switch o := obj.(type) {
	case *corev1.PersistentVolumeClaim:
		stored.(*corev1.PersistentVolumeClaim).Status = *o.Status.DeepCopy()
	case *corev1.PersistentVolume:
		stored.(*corev1.PersistentVolume).Status = *o.Status.DeepCopy()
	}
	f.put(stored)
	copyInto(obj, f.objs[key])
	f.writes = append(f.writes, "status "+m.GetName())
	return nil
}

func (f *fakeVolumeAPI) Delete(_ context.Context, obj k8sruntime.Object, opts *client.DeleteOptions) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, _ := metaOf(obj)
	key := fakeKey(obj, m.GetNamespace(), m.GetName())
	old, ok := f.objs[key]
	if !ok {
		return false, client.NewNotFound(fakeGR(obj), m.GetName())
	}
	om, _ := metaOf(old)
	if opts != nil && opts.PreconditionUID != "" && opts.PreconditionUID != string(om.GetUID()) {
		return false, client.NewConflict(fakeGR(obj), m.GetName(), "uid precondition")
	}
	delete(f.objs, key)
	f.writes = append(f.writes, "delete "+m.GetName())
	return false, nil
}

func (f *fakeVolumeAPI) List(_ context.Context, _ string, list k8sruntime.Object, opts client.ListOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sel, err := labels.Parse(opts.LabelSelector)
	if err != nil {
		return err
	}
	l, ok := list.(*corev1.PersistentVolumeList)
	if !ok {
		return fmt.Errorf("fake: list %T", list)
	}
	l.Items = nil
	for _, o := range f.objs {
		if pv, ok := o.(*corev1.PersistentVolume); ok && sel.Matches(labels.Set(pv.Labels)) {
			l.Items = append(l.Items, *pv.DeepCopy())
		}
	}
	return nil
}

func (f *fakeVolumeAPI) claim(t *testing.T, ns, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	c := &corev1.PersistentVolumeClaim{}
	if err := f.Get(context.Background(), ns, name, c); err != nil {
		t.Fatalf("claim %s/%s: %v", ns, name, err)
	}
	return c
}

func (f *fakeVolumeAPI) volume(name string) (*corev1.PersistentVolume, bool) {
	pv := &corev1.PersistentVolume{}
	return pv, f.Get(context.Background(), "", name, pv) == nil
}

func (f *fakeVolumeAPI) volumeNames() []string {
	var l corev1.PersistentVolumeList
	_ = f.List(context.Background(), "", &l, client.ListOptions{})
	var out []string
	for _, pv := range l.Items {
		out = append(out, pv.Name)
	}
	return out
}

func testClaim(name, class, size string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: modes,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	if class != "<nil>" {
		c.Spec.StorageClassName = &class
	}
	return c
}

func testNode(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelHostname: name, "disk": "ssd"}}}
}

func podWithClaims(claims ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0"}}
	for i, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: fmt.Sprintf("v%d", i), VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	return p
}

func newTestVolumes(t *testing.T, f *fakeVolumeAPI, node string) *localVolumes {
	f.add(testNode(node))
	return newLocalVolumes(f, node, filepath.Join(t.TempDir(), "volumes"), nil, nil)
}

func staticPV(name, class, size, node string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:      modes,
			StorageClassName: class,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				Local: &corev1.LocalVolumeSource{Path: "/srv/" + name}},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	if node != "" {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}
	}
	return pv
}

// TestProvisionAndBind: an unbound claim of a pod on this node gets a
// directory and a volume as kubectl users expect, and the claim is bound;
// a second resolution changes nothing.
func TestProvisionAndBind(t *testing.T) {
	f := newFakeVolumeAPI()
	v := newTestVolumes(t, f, "n1")
	f.add(testClaim("data-web-0", "<nil>", "1Gi", corev1.ReadWriteOnce))
	ctx := context.Background()
	var events []string
	v.event = func(_ context.Context, obj k8sruntime.Object, eventType, reason, message string) error {
		m, _ := metaOf(obj)
		events = append(events, fmt.Sprintf("%s/%s %s %s: %s", m.GetNamespace(), m.GetName(), eventType, reason, message))
		return nil
	}

	paths, err := v.resolveClaims(ctx, podWithClaims("data-web-0"))
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	claim := f.claim(t, "default", "data-web-0")
	want := filepath.Join(v.dir, "pvc-"+string(claim.UID))
	if paths["v0"] != want || len(paths) != 1 {
		t.Fatalf("paths = %v, want v0 → %s only", paths, want)
	}
	if st, err := os.Stat(want); err != nil || !st.IsDir() || st.Mode().Perm() != 0o777 {
		t.Fatalf("volume directory %s: %v %v", want, st, err)
	}
	pv, ok := f.volume("pvc-" + string(claim.UID))
	if !ok {
		t.Fatalf("no volume pvc-%s; volumes %v", claim.UID, f.volumeNames())
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"claim volumeName", claim.Spec.VolumeName, pv.Name},
		{"claim phase", claim.Status.Phase, corev1.ClaimBound},
		{"claim capacity", claim.Status.Capacity.Storage().String(), "1Gi"},
		{"claim accessModes", fmt.Sprint(claim.Status.AccessModes), "[ReadWriteOnce]"},
		{"claim selected-node", claim.Annotations[annSelectedNode], "n1"},
		{"pv phase", pv.Status.Phase, corev1.VolumeBound},
		{"pv capacity", pv.Spec.Capacity.Storage().String(), "1Gi"},
		{"pv accessModes", fmt.Sprint(pv.Spec.AccessModes), "[ReadWriteOnce]"},
		{"pv class", pv.Spec.StorageClassName, LocalStorageClass},
		{"pv reclaim", pv.Spec.PersistentVolumeReclaimPolicy, corev1.PersistentVolumeReclaimDelete},
		{"pv path", pv.Spec.HostPath.Path, want},
		{"pv claimRef", pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name + "/" + string(pv.Spec.ClaimRef.UID), "default/data-web-0/" + string(claim.UID)},
		{"pv provisioned-by label", pv.Labels[LabelProvisionedBy], "n1"},
		{"pv provisioned-by annotation", pv.Annotations[LabelProvisionedBy], "n1"},
		{"pv node affinity admits n1", nodeSelectorMatches(pv.Spec.NodeAffinity.Required, "n1", map[string]string{LabelHostname: "n1"}), true},
		{"pv node affinity admits n2", nodeSelectorMatches(pv.Spec.NodeAffinity.Required, "n2", map[string]string{LabelHostname: "n2"}), false},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}

	if wantEv := "default/data-web-0 Normal ProvisioningSucceeded: Successfully provisioned volume " + pv.Name + " on node n1"; len(events) != 1 || events[0] != wantEv {
		t.Errorf("events = %q, want [%q]", events, wantEv)
	}

	before := len(f.writes)
	if paths2, err := v.resolveClaims(ctx, podWithClaims("data-web-0")); err != nil || paths2["v0"] != want {
		t.Fatalf("second resolve: %v %v", paths2, err)
	}
	if extra := f.writes[before:]; len(extra) != 0 || len(events) != 1 {
		t.Errorf("second resolution of a bound claim wrote %v and events %q, want nothing new", extra, events)
	}
}

// TestProvisionLostRace: the claim is bound to another volume while this
// node binds it: the volume it made is deleted with its directory, the pod
// waits, and the next pass uses the winner's volume. Never two volumes for
// one claim.
func TestProvisionLostRace(t *testing.T) {
	f := newFakeVolumeAPI()
	v := newTestVolumes(t, f, "n1")
	f.add(testClaim("data", "<nil>", "1Gi", corev1.ReadWriteOnce))
	winner := staticPV("winner", "", "1Gi", "n1", corev1.ReadWriteOnce)
	winner.Spec.StorageClassName = "other" // not a static match for the claim
	f.add(winner)
	claimUID := f.claim(t, "default", "data").UID
	winner.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "data", UID: claimUID}
	f.add(winner)
	raced := false
	f.beforeUpdate = func(obj k8sruntime.Object) {
		c, ok := obj.(*corev1.PersistentVolumeClaim)
		if !ok || raced {
			return
		}
		raced = true
		other := f.claim(t, c.Namespace, c.Name)
		other.Spec.VolumeName = "winner"
		f.mu.Lock()
		f.put(other)
		f.mu.Unlock()
	}
	ctx := context.Background()
	_, err := v.resolveClaims(ctx, podWithClaims("data"))
	if !errors.Is(err, errClaimNotReady) || !errors.Is(err, errLostClaim) {
		t.Fatalf("resolve during a lost race: err = %v, want errClaimNotReady wrapping errLostClaim", err)
	}
	mine := "pvc-" + string(claimUID)
	if _, ok := f.volume(mine); ok {
		t.Errorf("volume %s made for a claim someone else bound was not deleted; volumes %v", mine, f.volumeNames())
	}
	if _, err := os.Stat(filepath.Join(v.dir, mine)); !os.IsNotExist(err) {
		t.Errorf("directory of the deleted volume still there: %v", err)
	}
	paths, err := v.resolveClaims(ctx, podWithClaims("data"))
	if err != nil || paths["v0"] != "/srv/winner" {
		t.Fatalf("next pass: paths %v, err %v; want the winner's /srv/winner", paths, err)
	}
	if got := f.volumeNames(); len(got) != 1 {
		t.Errorf("volumes = %v, want only the winner", got)
	}
}

// TestProvisionConcurrentPods: two pods of the node resolving one claim at
// once make one volume.
func TestProvisionConcurrentPods(t *testing.T) {
	f := newFakeVolumeAPI()
	v := newTestVolumes(t, f, "n1")
	f.add(testClaim("shared", "local", "2Gi", corev1.ReadWriteOnce))
	var wg sync.WaitGroup
	got := make([]string, 4)
	errs := make([]error, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := v.resolveClaims(context.Background(), podWithClaims("shared"))
			got[i], errs[i] = p["v0"], err
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != got[0] {
			t.Errorf("resolution %d: %q %v, want %q", i, got[i], errs[i], got[0])
		}
	}
	if names := f.volumeNames(); len(names) != 1 {
		t.Errorf("volumes = %v, want one", names)
	}
}

// TestClaimResolutionWaits: the cases where the pod must wait, each with a
// message naming the claim and why.
func TestClaimResolutionWaits(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(f *fakeVolumeAPI)
		claim   string
		wantErr error
		wantMsg string
	}{
		{"claim missing", func(*fakeVolumeAPI) {}, "absent", errClaimNotReady, `persistentvolumeclaim "absent" not found`},
		{"explicitly no class, no static volume", func(f *fakeVolumeAPI) {
			f.add(testClaim("c", "", "1Gi", corev1.ReadWriteOnce))
		}, "c", errClaimNotReady, `storage class "" matches it on node n1, and that class is not provisioned here`},
		{"unknown class", func(f *fakeVolumeAPI) {
			f.add(testClaim("c", "ebs", "1Gi", corev1.ReadWriteOnce))
		}, "c", errClaimNotReady, `storage class "ebs"`},
		{"block mode", func(f *fakeVolumeAPI) {
			c := testClaim("c", "local", "1Gi", corev1.ReadWriteOnce)
			block := corev1.PersistentVolumeBlock
			c.Spec.VolumeMode = &block
			f.add(c)
		}, "c", errClaimNotReady, "volumeMode Block is not supported"},
		{"bound to a volume on another node", func(f *fakeVolumeAPI) {
			c := testClaim("c", "local", "1Gi", corev1.ReadWriteOnce)
			f.add(c)
			pv := staticPV("far", "local", "1Gi", "n2", corev1.ReadWriteOnce)
			pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "c", UID: c.UID}
			f.add(pv)
			c.Spec.VolumeName = "far"
			f.add(c)
		}, "c", errVolumeNodeConflict, `is bound to persistentvolume "far", which is on node n2, not on node n1`},
		{"bound to a missing volume", func(f *fakeVolumeAPI) {
			c := testClaim("c", "local", "1Gi", corev1.ReadWriteOnce)
			c.Spec.VolumeName = "gone"
			f.add(c)
		}, "c", errClaimNotReady, `persistentvolume "gone", which does not exist`},
		{"being deleted", func(f *fakeVolumeAPI) {
			c := testClaim("c", "local", "1Gi", corev1.ReadWriteOnce)
			now := metav1.Now()
			c.DeletionTimestamp = &now
			f.add(c)
		}, "c", errClaimNotReady, "is being deleted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeVolumeAPI()
			v := newTestVolumes(t, f, "n1")
			tc.setup(f)
			_, err := v.resolveClaims(context.Background(), podWithClaims(tc.claim))
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want %v with %q", err, tc.wantErr, tc.wantMsg)
			}
			if names := f.volumeNames(); len(names) > 1 || (len(names) == 1 && names[0] != "far") {
				t.Errorf("volumes made while waiting: %v", names)
			}
		})
	}
}

// TestBindStatic: a user's volume that fits (class, modes, size, node,
// selector) is taken instead of provisioning; the smallest that fits wins.
func TestBindStatic(t *testing.T) {
	f := newFakeVolumeAPI()
	v := newTestVolumes(t, f, "n1")
	f.add(staticPV("big", "manual", "10Gi", "n1", corev1.ReadWriteOnce))
	f.add(staticPV("fits", "manual", "2Gi", "n1", corev1.ReadWriteOnce, corev1.ReadOnlyMany))
	f.add(staticPV("small", "manual", "1Mi", "n1", corev1.ReadWriteOnce))
	f.add(staticPV("elsewhere", "manual", "2Gi", "n2", corev1.ReadWriteOnce))
	f.add(staticPV("wrong-class", "fast", "2Gi", "n1", corev1.ReadWriteOnce))
	f.add(staticPV("wrong-mode", "manual", "2Gi", "n1", corev1.ReadWriteMany))
	taken := staticPV("taken", "manual", "2Gi", "n1", corev1.ReadWriteOnce)
	taken.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "someone-else", UID: "x"}
	f.add(taken)
	f.add(testClaim("c", "manual", "1Gi", corev1.ReadWriteOnce))

	paths, err := v.resolveClaims(context.Background(), podWithClaims("c"))
	if err != nil || paths["v0"] != "/srv/fits" {
		t.Fatalf("paths %v, err %v; want /srv/fits", paths, err)
	}
	claim := f.claim(t, "default", "c")
	pv, _ := f.volume("fits")
	if claim.Spec.VolumeName != "fits" || claim.Status.Phase != corev1.ClaimBound || claim.Status.Capacity.Storage().String() != "2Gi" {
		t.Errorf("claim: volumeName %q phase %s capacity %v", claim.Spec.VolumeName, claim.Status.Phase, claim.Status.Capacity)
	}
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != claim.UID || pv.Status.Phase != corev1.VolumeBound {
		t.Errorf("volume fits: claimRef %v phase %s", pv.Spec.ClaimRef, pv.Status.Phase)
	}
	if len(f.volumeNames()) != 7 {
		t.Errorf("volumes = %v: a static match must not provision", f.volumeNames())
	}
}

// TestReclaim: a provisioned volume whose claim is deleted goes (object
// and directory) once no pod of the node uses the claim; Retain marks it
// Released; other nodes' and users' volumes are not touched.
func TestReclaim(t *testing.T) {
	f := newFakeVolumeAPI()
	v := newTestVolumes(t, f, "n1")
	used := true
	var usedBefore time.Time
	v.inUse = func(ns, claim string, before time.Time) bool {
		usedBefore = before
		return used && ns == "default" && claim == "a"
	}
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		f.add(testClaim(n, "<nil>", "1Gi", corev1.ReadWriteOnce))
	}
	pa, err := v.resolveClaims(ctx, podWithClaims("a"))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := v.resolveClaims(ctx, podWithClaims("b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pa["v0"], "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	claimB := f.claim(t, "default", "b")
	pvB := claimB.Spec.VolumeName
	retained, _ := f.volume(pvB)
	retained.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	f.add(retained)
	// Another node's volume for a deleted claim, and a user's.
	other := staticPV("theirs", "local", "1Gi", "n2", corev1.ReadWriteOnce)
	other.Labels = map[string]string{LabelProvisionedBy: "n2"}
	other.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "gone", UID: "u"}
	f.add(other)
	user := staticPV("users", "", "1Gi", "n1", corev1.ReadWriteOnce)
	user.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "gone", UID: "u"}
	f.add(user)

	// Nothing is reclaimed while the claims exist.
	if err := v.reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.volumeNames()); n != 4 {
		t.Fatalf("volumes after a reclaim with every claim present: %v", f.volumeNames())
	}
	claimA := f.claim(t, "default", "a")
	for _, c := range []*corev1.PersistentVolumeClaim{claimA, claimB} {
		if _, err := f.Delete(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.volume(claimA.Spec.VolumeName); !ok {
		t.Fatalf("volume of claim a deleted while a pod of the node still uses the claim")
	}
	if !usedBefore.IsZero() {
		t.Errorf("a deleted claim asked for pods created before %v, want any pod", usedBefore)
	}
	used = false
	if err := v.reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.volume(claimA.Spec.VolumeName); ok {
		t.Errorf("volume %s of deleted claim a (policy Delete) still exists", claimA.Spec.VolumeName)
	}
	if _, err := os.Stat(pa["v0"]); !os.IsNotExist(err) {
		t.Errorf("directory %s of deleted volume: %v, want gone", pa["v0"], err)
	}
	if pv, ok := f.volume(pvB); !ok || pv.Status.Phase != corev1.VolumeReleased {
		t.Errorf("Retain volume %s: exists %v phase %s, want kept and Released", pvB, ok, pv.Status.Phase)
	}
	if _, err := os.Stat(pb["v0"]); err != nil {
		t.Errorf("directory of the retained volume: %v", err)
	}
	for _, n := range []string{"theirs", "users"} {
		if _, ok := f.volume(n); !ok {
			t.Errorf("volume %s (not provisioned by n1) was deleted", n)
		}
	}
}

func TestNodeSelectorMatches(t *testing.T) {
	lbls := map[string]string{LabelHostname: "n1", "disk": "ssd", "cores": "8"}
	req := func(key string, op corev1.NodeSelectorOperator, vals ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: vals}
	}
	term := func(rs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: rs}
	}
	cases := []struct {
		name  string
		terms []corev1.NodeSelectorTerm
		want  bool
	}{
		{"hostname in", []corev1.NodeSelectorTerm{term(req(LabelHostname, corev1.NodeSelectorOpIn, "n1"))}, true},
		{"hostname other", []corev1.NodeSelectorTerm{term(req(LabelHostname, corev1.NodeSelectorOpIn, "n2"))}, false},
		{"terms are ORed", []corev1.NodeSelectorTerm{term(req(LabelHostname, corev1.NodeSelectorOpIn, "n2")), term(req("disk", corev1.NodeSelectorOpExists))}, true},
		{"expressions are ANDed", []corev1.NodeSelectorTerm{term(req("disk", corev1.NodeSelectorOpIn, "ssd"), req("gpu", corev1.NodeSelectorOpExists))}, false},
		{"not in, absent key", []corev1.NodeSelectorTerm{term(req("zone", corev1.NodeSelectorOpNotIn, "a"))}, true},
		{"does not exist", []corev1.NodeSelectorTerm{term(req("disk", corev1.NodeSelectorOpDoesNotExist))}, false},
		{"gt", []corev1.NodeSelectorTerm{term(req("cores", corev1.NodeSelectorOpGt, "4"))}, true},
		{"lt", []corev1.NodeSelectorTerm{term(req("cores", corev1.NodeSelectorOpLt, "4"))}, false},
		{"match field name", []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpIn, "n1")}}}, true},
		{"empty term matches nothing", []corev1.NodeSelectorTerm{{}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodeSelectorMatches(&corev1.NodeSelector{NodeSelectorTerms: tc.terms}, "n1", lbls); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReclaimReplacedClaim: a claim deleted and created again under the
// same name (a StatefulSet's) gets a new volume; the old one goes once the
// pods made before the new claim are gone, whatever pods made since do.
func TestReclaimReplacedClaim(t *testing.T) {
	f := newFakeVolumeAPI()
	v := newTestVolumes(t, f, "n1")
	ctx := context.Background()
	f.add(testClaim("data", "<nil>", "1Gi", corev1.ReadWriteOnce))
	old, err := v.resolveClaims(ctx, podWithClaims("data"))
	if err != nil {
		t.Fatal(err)
	}
	oldClaim := f.claim(t, "default", "data")
	if _, err := f.Delete(ctx, oldClaim, nil); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	replacement := testClaim("data", "<nil>", "1Gi", corev1.ReadWriteOnce)
	replacement.CreationTimestamp = metav1.NewTime(created)
	f.add(replacement)
	cur, err := v.resolveClaims(ctx, podWithClaims("data"))
	if err != nil {
		t.Fatal(err)
	}
	if cur["v0"] == old["v0"] {
		t.Fatalf("the new claim got the old volume's directory %s", old["v0"])
	}
	oldPodRunning := true
	var asked time.Time
	v.inUse = func(ns, claim string, before time.Time) bool {
		asked = before
		return oldPodRunning && before.Equal(created)
	}
	if err := v.reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	if !asked.Equal(created) {
		t.Errorf("reclaim asked about pods created before %v, want before the new claim (%v)", asked, created)
	}
	if _, err := os.Stat(old["v0"]); err != nil {
		t.Fatalf("old volume removed while a pod made before the new claim runs: %v", err)
	}
	oldPodRunning = false
	if err := v.reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.volume(oldClaim.Spec.VolumeName); ok {
		t.Errorf("old volume %s kept after its pods were gone", oldClaim.Spec.VolumeName)
	}
	if _, err := os.Stat(old["v0"]); !os.IsNotExist(err) {
		t.Errorf("old directory: %v, want gone", err)
	}
	if _, err := os.Stat(cur["v0"]); err != nil {
		t.Errorf("the new claim's directory: %v", err)
	}
}
