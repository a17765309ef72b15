package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/node"
	"github.com/skiffhq/skiff/agent/runtime"
	"github.com/skiffhq/skiff/client"
)

// TestStatefulSetLocalVolume (real containerd, whole control plane): a
// StatefulSet's volumeClaimTemplate gets a local volume on the node; the
// data its pod writes survives the pod's deletion; the claim and volume
// read as kubectl users expect; the claim outlives scaling to 0, and
// deleting it removes the volume and its directory. Then a pod whose claim
// only a static volume can serve waits in ContainerCreating until one is
// created, and runs on it read-only; a pod placed by hand on a node its
// claim's volume is not on does not start, with a FailedMount event saying
// so.
func TestStatefulSetLocalVolume(t *testing.T) {
	e := newControlPlaneEnv(t)
	a := e.startAgent("n1")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	lbl := map[string]string{"app": "vol"}
	one := int32(1)
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    &one,
			ServiceName: "web",
			Selector:    &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: int64Ptr(1),
					Containers: []corev1.Container{{
						Name: "main", Image: "busybox",
						// The first pod writes its uid; later ones keep the file.
						Command: []string{"sh", "-c", `test -f /data/hello || echo "written by $POD_UID" > /data/hello; exec sleep 3600`},
						Env: []corev1.EnvVar{{Name: "POD_UID", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}}},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceStorage: resource.MustParse("64Mi")}},
				},
			}},
		},
	}
	start := time.Now()
	if err := e.c.Create(ctx, set); err != nil {
		t.Fatal(err)
	}
	first := e.waitPod("default", "web-0", 60*time.Second, "Running with its volume", running)
	t.Logf("web-0 Running %v after the StatefulSet was created", time.Since(start).Round(time.Millisecond))
	want := "written by " + string(first.UID) + "\n"
	if got := execOut(t, a.Runtime(), string(first.UID), "main", "cat", "/data/hello"); got != want {
		t.Fatalf("/data/hello in web-0 = %q, want %q", got, want)
	}

	// kubectl get pvc,pv: Bound, capacity, access modes, class, claim.
	claim := &corev1.PersistentVolumeClaim{}
	if err := e.c.Get(ctx, "default", "data-web-0", claim); err != nil {
		t.Fatal(err)
	}
	pvName := "pvc-" + string(claim.UID)
	pv := &corev1.PersistentVolume{}
	if err := e.c.Get(ctx, "", pvName, pv); err != nil {
		t.Fatalf("volume %s of the claim: %v", pvName, err)
	}
	dir := filepath.Join(e.dir, "volumes", pvName)
	checks := []struct {
		what      string
		got, want any
	}{
		{"pvc STATUS", claim.Status.Phase, corev1.ClaimBound},
		{"pvc VOLUME", claim.Spec.VolumeName, pvName},
		{"pvc CAPACITY", claim.Status.Capacity.Storage().String(), "64Mi"},
		{"pvc ACCESS MODES", fmt.Sprint(claim.Status.AccessModes), "[ReadWriteOnce]"},
		{"pv STATUS", pv.Status.Phase, corev1.VolumeBound},
		{"pv CAPACITY", pv.Spec.Capacity.Storage().String(), "64Mi"},
		{"pv ACCESS MODES", fmt.Sprint(pv.Spec.AccessModes), "[ReadWriteOnce]"},
		{"pv RECLAIM POLICY", pv.Spec.PersistentVolumeReclaimPolicy, corev1.PersistentVolumeReclaimDelete},
		{"pv CLAIM", pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name, "default/data-web-0"},
		{"pv STORAGECLASS", pv.Spec.StorageClassName, node.LocalStorageClass},
		{"pv path", pv.Spec.HostPath.Path, dir},
		{"pv provisioned-by", pv.Annotations[node.LabelProvisionedBy], "n1"},
		{"pv node affinity", fmt.Sprint(pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values), "[n1]"},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	nodetest.Poll(t, 10*time.Second, "ProvisioningSucceeded event on the claim", func() (bool, error) {
		var evs corev1.EventList
		if err := e.c.List(context.Background(), "default", &evs, client.ListOptions{}); err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Kind == "PersistentVolumeClaim" && ev.InvolvedObject.Name == "data-web-0" &&
				ev.Reason == "ProvisioningSucceeded" && strings.Contains(ev.Message, pvName) {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events, none ProvisioningSucceeded for data-web-0", len(evs.Items))
	})
	if b, err := os.ReadFile(filepath.Join(dir, "hello")); err != nil || string(b) != want {
		t.Errorf("host file %s: %q %v, want %q", filepath.Join(dir, "hello"), b, err, want)
	}

	// The pod is deleted; the controller recreates web-0, which finds the
	// file its predecessor wrote.
	if _, err := e.c.Delete(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	second := e.waitPod("default", "web-0", 60*time.Second, "recreated and Running", func(p *corev1.Pod) bool {
		return p.UID != first.UID && running(p)
	})
	if got := execOut(t, a.Runtime(), string(second.UID), "main", "cat", "/data/hello"); got != want {
		t.Fatalf("/data/hello in the recreated web-0 = %q, want its predecessor's %q", got, want)
	}
	var pvs corev1.PersistentVolumeList
	if err := e.c.List(ctx, "", &pvs, client.ListOptions{}); err != nil || len(pvs.Items) != 1 {
		t.Fatalf("volumes after the pod's recreation: %d (%v), want the one", len(pvs.Items), err)
	}

	// Scale to 0: the pod goes, the claim (and volume) stay.
	nodetest.Poll(t, 20*time.Second, "statefulset scaled to 0", func() (bool, error) {
		cur := &appsv1.StatefulSet{}
		if err := e.c.Get(context.Background(), "default", "web", cur); err != nil {
			return false, err
		}
		zero := int32(0)
		cur.Spec.Replicas = &zero
		return e.c.Update(context.Background(), cur) == nil, fmt.Errorf("update conflicted")
	})
	nodetest.Poll(t, 60*time.Second, "web-0 gone", func() (bool, error) {
		err := e.c.Get(context.Background(), "default", "web-0", &corev1.Pod{})
		return client.IsNotFound(err), fmt.Errorf("web-0 still there (%v)", err)
	})
	if err := e.c.Get(ctx, "default", "data-web-0", &corev1.PersistentVolumeClaim{}); err != nil {
		t.Fatalf("claim after scaling to 0: %v, want kept", err)
	}
	if err := e.c.Get(ctx, "", pvName, &corev1.PersistentVolume{}); err != nil {
		t.Fatalf("volume after scaling to 0: %v, want kept", err)
	}

	// Deleting the claim removes the volume and its directory.
	deleted := time.Now()
	if _, err := e.c.Delete(ctx, claim, nil); err != nil {
		t.Fatal(err)
	}
	nodetest.Poll(t, 30*time.Second, "volume and directory removed", func() (bool, error) {
		err := e.c.Get(context.Background(), "", pvName, &corev1.PersistentVolume{})
		if !client.IsNotFound(err) {
			return false, fmt.Errorf("volume %s still there (%v)", pvName, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			return false, fmt.Errorf("directory %s still there (%v)", dir, err)
		}
		return true, nil
	})
	t.Logf("volume reclaimed %v after its claim was deleted", time.Since(deleted).Round(time.Millisecond))

	// A claim only a static volume can serve (storageClassName ""): the
	// pod waits, with a message, until such a volume exists.
	empty := ""
	static := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "static", Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &empty,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if err := e.c.Create(ctx, static); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "default"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: int64Ptr(1),
			Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sleep", "3600"},
				VolumeMounts: []corev1.VolumeMount{{Name: "v", MountPath: "/v"}}}},
			Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: "static", ReadOnly: true}}}},
		},
	}
	if err := e.c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	e.waitPod("default", "reader", 30*time.Second, "waits in ContainerCreating for a volume", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return p.Spec.NodeName == "n1" && len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "ContainerCreating" &&
			strings.Contains(cs[0].State.Waiting.Message, `storage class ""`)
	})
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "seed"), []byte("static"), 0o644); err != nil {
		t.Fatal(err)
	}
	spv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "static-n1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: hostDir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: node.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}}}}},
		},
	}
	if err := e.c.Create(ctx, spv); err != nil {
		t.Fatal(err)
	}
	reader := e.waitPod("default", "reader", 30*time.Second, "Running on the static volume", running)
	if got := execOut(t, a.Runtime(), string(reader.UID), "main", "cat", "/v/seed"); got != "static" {
		t.Errorf("/v/seed = %q, want the static volume's file", got)
	}
	// readOnly in the pod's volume source: the mount refuses writes.
	if out, code := execCode(t, a, string(reader.UID), "touch", "/v/new"); code == 0 {
		t.Errorf("touch on a readOnly claim succeeded (%q)", out)
	}
	if err := e.c.Get(ctx, "default", "static", static); err != nil || static.Spec.VolumeName != "static-n1" || static.Status.Phase != corev1.ClaimBound {
		t.Errorf("static claim: volumeName %q phase %s (%v), want static-n1 Bound", static.Spec.VolumeName, static.Status.Phase, err)
	}
	if _, err := e.c.Delete(ctx, pod, nil); err != nil {
		t.Fatal(err)
	}
	nodetest.Poll(t, 60*time.Second, "reader gone", func() (bool, error) {
		err := e.c.Get(context.Background(), "default", "reader", &corev1.Pod{})
		return client.IsNotFound(err), fmt.Errorf("reader still there (%v)", err)
	})

	// A claim bound to a volume of another node, for a pod put on n1 by
	// hand (past the scheduler): the pod does not start, and says why.
	far := spv.DeepCopy()
	far.ObjectMeta = metav1.ObjectMeta{Name: "far"}
	far.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values = []string{"n9"}
	far.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "far"}
	if err := e.c.Create(ctx, far); err != nil {
		t.Fatal(err)
	}
	farClaim := static.DeepCopy()
	farClaim.ObjectMeta = metav1.ObjectMeta{Name: "far", Namespace: "default"}
	farClaim.Spec.VolumeName = "far"
	farClaim.Status = corev1.PersistentVolumeClaimStatus{}
	if err := e.c.Create(ctx, farClaim); err != nil {
		t.Fatal(err)
	}
	misplaced := pod.DeepCopy()
	misplaced.ObjectMeta = metav1.ObjectMeta{Name: "misplaced", Namespace: "default"}
	misplaced.Spec.NodeName = "n1"
	misplaced.Spec.Volumes[0].PersistentVolumeClaim.ClaimName = "far"
	if err := e.c.Create(ctx, misplaced); err != nil {
		t.Fatal(err)
	}
	const conflict = `node(s) had volume node affinity conflict: persistentvolumeclaim "far" is bound to persistentvolume "far", which is on node n9, not on node n1`
	e.waitPod("default", "misplaced", 30*time.Second, "held in ContainerCreating by the conflict", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "ContainerCreating" &&
			strings.Contains(cs[0].State.Waiting.Message, conflict)
	})
	nodetest.Poll(t, 10*time.Second, "FailedMount event naming the conflict", func() (bool, error) {
		var evs corev1.EventList
		if err := e.c.List(context.Background(), "default", &evs, client.ListOptions{}); err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Name == "misplaced" && ev.Reason == "FailedMount" && ev.Type == corev1.EventTypeWarning &&
				strings.Contains(ev.Message, conflict) {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events, no FailedMount with %q", len(evs.Items), conflict)
	})
	if err := e.c.Get(ctx, "default", "far", farClaim); err != nil || farClaim.Status.Phase == corev1.ClaimBound {
		t.Errorf("claim far: phase %s (%v): the agent of another node must not complete its binding", farClaim.Status.Phase, err)
	}
	if _, err := e.c.Delete(ctx, misplaced, nil); err != nil {
		t.Fatal(err)
	}
	nodetest.Poll(t, 60*time.Second, "misplaced gone", func() (bool, error) {
		err := e.c.Get(context.Background(), "default", "misplaced", &corev1.Pod{})
		return client.IsNotFound(err), fmt.Errorf("misplaced still there (%v)", err)
	})
}

// execCode runs cmd in the pod's main container and returns its output
// and exit code.
func execCode(t *testing.T, a *node.Agent, uid string, cmd ...string) (string, int) {
	t.Helper()
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, err := a.Runtime().Exec(ctx, uid, "main", runtime.ExecOptions{Cmd: cmd, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	return out.String(), code
}
