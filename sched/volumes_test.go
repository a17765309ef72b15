package sched

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLocalVolumeLifecycle follows a StatefulSet claim through the local
// volumes the node agents provision (agent/node/volumes.go): while the
// claim is unbound the pod may go anywhere (the agent of the chosen node
// provisions, WaitForFirstConsumer); once it is bound to a volume pinned to
// a node by kubernetes.io/hostname, the recreated pod goes only there; and
// with that node gone it fits nowhere, with Kubernetes' reason.
func TestLocalVolumeLifecycle(t *testing.T) {
	snap, s := cluster(t, []*corev1.Node{mkNode("n1"), mkNode("n2"), mkNode("n3")}, nil)
	pod := mkPod("web-0", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-web-0"}}}}
	})
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-web-0", Namespace: pod.Namespace, UID: "c1"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	snap.SetPersistentVolumeClaim(claim)

	steps := []struct {
		name    string
		change  func()
		want    []string
		wantErr string
	}{
		{"unbound claim: any node", func() {}, []string{"n1", "n2", "n3"}, ""},
		{"bound to a volume on n2: only n2", func() {
			dirType := corev1.HostPathDirectoryOrCreate
			snap.SetPersistentVolume(&corev1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: "pvc-c1", Labels: map[string]string{"skiff.dev/provisioned-by": "n2"}},
				Spec: corev1.PersistentVolumeSpec{
					Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
					PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/skiff/volumes/pvc-c1", Type: &dirType}},
					ClaimRef:               &corev1.ObjectReference{Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID},
					NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}}}}}},
				},
			})
			bound := claim.DeepCopy()
			bound.Spec.VolumeName = "pvc-c1"
			snap.SetPersistentVolumeClaim(bound)
		}, []string{"n2"}, ""},
		{"its node gone: fits nowhere", func() { snap.RemoveNode("n2") }, nil,
			"0/2 nodes are available: 2 node(s) had volume node affinity conflict."},
		{"claim deleted: any node again", func() {
			snap.RemovePersistentVolumeClaim(claim.Namespace, claim.Name)
		}, []string{"n1", "n3"}, ""},
	}
	for _, st := range steps {
		st.change()
		got, _, err := s.filterAll(pod)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("%s: feasible = %v, want %v", st.name, got, st.want)
		}
		res, err := s.Schedule(pod)
		switch {
		case st.wantErr != "":
			if err == nil || fitError(t, err).Error() != st.wantErr {
				t.Errorf("%s: Schedule = %+v, %v; want error %q", st.name, res, err, st.wantErr)
			}
		case err != nil:
			t.Errorf("%s: Schedule: %v", st.name, err)
		case !slices.Contains(st.want, res.Node):
			t.Errorf("%s: scheduled to %s, want one of %v", st.name, res.Node, st.want)
		}
	}
}
