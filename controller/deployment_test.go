package controller

import (
	"errors"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func testDeployment(replicas int32, strategy appsv1.DeploymentStrategy) *appsv1.Deployment {
	deadline, history := int32(600), int32(10)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: webLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: webLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "web:1"}}},
			},
			Strategy:                strategy,
			ProgressDeadlineSeconds: &deadline,
			RevisionHistoryLimit:    &history,
		},
	}
}

func rolling(surge, unavailable int) appsv1.DeploymentStrategy {
	s, u := intstr.FromInt32(int32(surge)), intstr.FromInt32(int32(unavailable))
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &s, MaxUnavailable: &u}}
}

// sim runs the Deployment and ReplicaSet controllers over a fake cluster
// in lock step, with a fake kubelet that makes pods ready one step after
// they appear, and a clock advancing a second per step.
type sim struct {
	t       *testing.T
	f       *fakeCluster
	dc      *DeploymentController
	rsc     *ReplicaSetController
	kubelet bool
	seen    map[string]bool
}

func newSim(t *testing.T, d *appsv1.Deployment) *sim {
	f := newFake()
	f.add(d)
	s := &sim{t: t, f: f, kubelet: true, seen: map[string]bool{}}
	s.dc = NewDeploymentController(f.cache("Deployment"), f.cache("ReplicaSet"), f.cache("Pod"), f, nil)
	s.dc.now = func() time.Time { return f.now }
	s.rsc = newRSController(f)
	return s
}

func (s *sim) step() {
	s.t.Helper()
	ctx := ctxT(s.t)
	s.f.now = s.f.now.Add(time.Second)
	if _, err := s.dc.Reconcile(ctx, "default/web"); err != nil {
		s.t.Fatalf("deployment reconcile: %v", err)
	}
	for _, o := range s.f.cache("ReplicaSet").List(nil) {
		if _, err := s.rsc.Reconcile(ctx, "default/"+o.(*appsv1.ReplicaSet).Name); err != nil {
			s.t.Fatalf("replicaset reconcile: %v", err)
		}
	}
	if s.kubelet {
		for _, p := range s.f.pods() {
			if isReady(p) {
				continue
			}
			if !s.seen[p.Name] {
				s.seen[p.Name] = true
				continue
			}
			cp := p.DeepCopy()
			ready(s.f.now)(cp)
			if err := s.f.UpdateStatus(ctx, cp); err != nil {
				s.t.Fatalf("kubelet: %v", err)
			}
		}
	}
	for _, o := range s.f.cache("ReplicaSet").List(nil) {
		if _, err := s.rsc.Reconcile(ctx, "default/"+o.(*appsv1.ReplicaSet).Name); err != nil {
			s.t.Fatalf("replicaset reconcile: %v", err)
		}
	}
}

func (s *sim) deployment() *appsv1.Deployment {
	o, _ := s.f.cache("Deployment").Get("default/web")
	return o.(*appsv1.Deployment)
}

func (s *sim) replicaSets() []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, o := range s.f.cache("ReplicaSet").List(nil) {
		out = append(out, o.(*appsv1.ReplicaSet))
	}
	return out
}

// counts: active pods, ready active pods, and active pods per image.
func (s *sim) counts() (active, readyN int, byImage map[string]int) {
	byImage = map[string]int{}
	for _, p := range s.f.pods() {
		if !isActive(p) {
			continue
		}
		active++
		if isReady(p) {
			readyN++
		}
		byImage[p.Spec.Containers[0].Image]++
	}
	return
}

func (s *sim) complete(image string) bool {
	d := s.deployment()
	cond := condition(&d.Status, appsv1.DeploymentProgressing)
	_, _, byImage := s.counts()
	return d.Status.UpdatedReplicas == *d.Spec.Replicas && d.Status.AvailableReplicas == *d.Spec.Replicas &&
		d.Status.Replicas == *d.Spec.Replicas && cond != nil && cond.Reason == ReasonNewRSAvailable &&
		byImage[image] == int(*d.Spec.Replicas) && len(byImage) == 1
}

// runUntil steps until done, checking inv after every step.
func (s *sim) runUntil(what string, done func() bool, inv func() error) {
	s.t.Helper()
	for i := 0; i < 60; i++ {
		s.step()
		if inv != nil {
			if err := inv(); err != nil {
				s.t.Fatalf("step %d: %v", i, err)
			}
		}
		if done() {
			return
		}
	}
	d := s.deployment()
	s.t.Fatalf("not %s after 60 steps: status %+v", what, d.Status)
}

func (s *sim) setImage(image string) {
	d := s.deployment().DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := s.f.Update(ctxT(s.t), d); err != nil {
		s.t.Fatal(err)
	}
}

func TestDeploymentRollingUpdate(t *testing.T) {
	for _, tc := range []struct{ surge, unavailable int }{{1, 0}, {0, 1}, {2, 1}, {1, 1}} {
		t.Run(fmt.Sprintf("surge=%d,unavailable=%d", tc.surge, tc.unavailable), func(t *testing.T) {
			s := newSim(t, testDeployment(3, rolling(tc.surge, tc.unavailable)))
			s.runUntil("available", func() bool { return s.complete("web:1") }, nil)
			rss := s.replicaSets()
			if len(rss) != 1 {
				t.Fatalf("%d replicasets, want 1", len(rss))
			}
			hash := TemplateHash(&s.deployment().Spec.Template, nil)
			if rs := rss[0]; rs.Name != "web-"+hash || rs.Labels[PodTemplateHashLabel] != hash ||
				rs.Spec.Selector.MatchLabels[PodTemplateHashLabel] != hash || rs.Annotations[RevisionAnnotation] != "1" {
				t.Errorf("replicaset %s labels %v selector %v annotations %v", rs.Name, rs.Labels, rs.Spec.Selector, rs.Annotations)
			}
			if d := s.deployment(); d.Annotations[RevisionAnnotation] != "1" ||
				condition(&d.Status, appsv1.DeploymentAvailable).Status != corev1.ConditionTrue {
				t.Errorf("deployment annotations %v status %+v", d.Annotations, d.Status)
			}

			s.setImage("web:2")
			s.runUntil("rolled out", func() bool { return s.complete("web:2") }, func() error {
				active, readyN, _ := s.counts()
				if readyN < 3-tc.unavailable {
					return fmt.Errorf("%d ready pods, below 3 - maxUnavailable %d", readyN, tc.unavailable)
				}
				if active > 3+tc.surge {
					return fmt.Errorf("%d pods, above 3 + maxSurge %d", active, tc.surge)
				}
				return nil
			})
			d := s.deployment()
			if d.Annotations[RevisionAnnotation] != "2" {
				t.Errorf("revision %q, want 2", d.Annotations[RevisionAnnotation])
			}
			if st := d.Status; st.Replicas != 3 || st.UpdatedReplicas != 3 || st.ReadyReplicas != 3 || st.AvailableReplicas != 3 || st.UnavailableReplicas != 0 || st.ObservedGeneration != d.Generation {
				t.Errorf("status %+v", st)
			}
			for _, rs := range s.replicaSets() {
				if rs.Spec.Template.Spec.Containers[0].Image == "web:1" && *rs.Spec.Replicas != 0 {
					t.Errorf("old replicaset %s at %d replicas", rs.Name, *rs.Spec.Replicas)
				}
			}
		})
	}
}

func TestDeploymentRecreate(t *testing.T) {
	s := newSim(t, testDeployment(3, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}))
	s.runUntil("available", func() bool { return s.complete("web:1") }, nil)
	s.setImage("web:2")
	s.runUntil("recreated", func() bool { return s.complete("web:2") }, func() error {
		if _, _, by := s.counts(); by["web:1"] > 0 && by["web:2"] > 0 {
			return fmt.Errorf("old and new pods together: %v", by)
		}
		return nil
	})
}

func TestDeploymentProgressDeadline(t *testing.T) {
	d := testDeployment(2, rolling(1, 0))
	deadline := int32(10)
	d.Spec.ProgressDeadlineSeconds = &deadline
	s := newSim(t, d)
	s.runUntil("available", func() bool { return s.complete("web:1") }, nil)
	s.kubelet = false // the new image never gets ready
	s.setImage("web:bad")
	exceeded := func() bool {
		c := condition(&s.deployment().Status, appsv1.DeploymentProgressing)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == ReasonProgressDeadlineExceeded
	}
	start := s.f.now
	s.runUntil("past its deadline", exceeded, nil)
	if took := s.f.now.Sub(start); took < 10*time.Second {
		t.Errorf("deadline exceeded after %v, want >= 10s", took)
	}
	// The old pods stay: maxUnavailable 0.
	if _, readyN, _ := s.counts(); readyN != 2 {
		t.Errorf("%d ready pods, want the 2 old ones", readyN)
	}
	// Progress again (pods get ready) clears it.
	s.kubelet = true
	s.runUntil("rolled out", func() bool { return s.complete("web:bad") }, nil)
}

func TestDeploymentPaused(t *testing.T) {
	s := newSim(t, testDeployment(2, rolling(1, 0)))
	s.runUntil("available", func() bool { return s.complete("web:1") }, nil)
	d := s.deployment().DeepCopy()
	d.Spec.Paused = true
	d.Spec.Template.Spec.Containers[0].Image = "web:2"
	three := int32(3)
	d.Spec.Replicas = &three // scaling still applies while paused
	if err := s.f.Update(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		s.step()
	}
	if n := len(s.replicaSets()); n != 1 {
		t.Errorf("paused deployment has %d replicasets, want 1", n)
	}
	if c := condition(&s.deployment().Status, appsv1.DeploymentProgressing); c.Reason != ReasonPaused {
		t.Errorf("progressing %+v, want %s", c, ReasonPaused)
	}
	if _, _, by := s.counts(); by["web:1"] != 3 || len(by) != 1 {
		t.Errorf("pods by image %v, want 3 of web:1 (scaled, not rolled)", by)
	}
	d = s.deployment().DeepCopy()
	d.Spec.Paused = false
	if err := s.f.Update(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	s.runUntil("resumed", func() bool { return s.complete("web:2") }, nil)
}

func TestDeploymentHistoryLimitAndRollback(t *testing.T) {
	d := testDeployment(1, rolling(1, 0))
	one := int32(1)
	d.Spec.RevisionHistoryLimit = &one
	s := newSim(t, d)
	for _, img := range []string{"web:1", "web:2", "web:3"} {
		s.setImage(img)
		s.runUntil("rolled out to "+img, func() bool { return s.complete(img) }, nil)
	}
	s.step() // cleanup happens after the old ReplicaSet's status shows 0
	rss := s.replicaSets()
	if len(rss) != 2 {
		t.Fatalf("%d replicasets, want 2 (current + 1 of history)", len(rss))
	}
	// Rollback: the template of revision 2 again reuses its ReplicaSet as revision 4.
	s.setImage("web:2")
	s.runUntil("rolled back", func() bool { return s.complete("web:2") }, nil)
	for _, rs := range s.replicaSets() {
		if rs.Spec.Template.Spec.Containers[0].Image == "web:2" && rs.Annotations[RevisionAnnotation] != "4" {
			t.Errorf("rolled-back replicaset revision %q, want 4", rs.Annotations[RevisionAnnotation])
		}
	}
	if got := s.deployment().Annotations[RevisionAnnotation]; got != "4" {
		t.Errorf("deployment revision %q, want 4", got)
	}
}

func TestDeploymentAdoptsOrphanReplicaSet(t *testing.T) {
	d := testDeployment(1, rolling(1, 0))
	s := newSim(t, d)
	dd := s.deployment()
	hash := TemplateHash(&dd.Spec.Template, nil)
	rs := testRS("web-"+hash, 1)
	rs.UID = ""
	rs.Labels = map[string]string{"app": "web", PodTemplateHashLabel: hash}
	rs.Spec.Template = *dd.Spec.Template.DeepCopy()
	rs.Spec.Template.Labels = map[string]string{"app": "web", PodTemplateHashLabel: hash}
	s.f.add(rs)
	s.runUntil("available", func() bool { return s.complete("web:1") }, nil)
	rss := s.replicaSets()
	if len(rss) != 1 || !isControlledBy(rss[0], dd.UID) {
		t.Fatalf("replicasets %d, controller %v: want the orphan adopted", len(rss), controllerOf(rss[0]))
	}
}

// A ReplicaSet whose stored template differs from the Deployment's only by
// what the server filled in is still the new one: no second ReplicaSet.
func TestDeploymentNewRSByHashName(t *testing.T) {
	s := newSim(t, testDeployment(2, rolling(1, 0)))
	s.step()
	rss := s.replicaSets()
	if len(rss) != 1 {
		t.Fatalf("%d replicasets, want 1", len(rss))
	}
	rs := rss[0].DeepCopy()
	rs.Spec.Template.Spec.DNSPolicy = corev1.DNSClusterFirst // "defaulted" by a server
	if err := s.f.Update(ctxT(t), rs); err != nil {
		t.Fatal(err)
	}
	s.runUntil("available", func() bool { return s.complete("web:1") }, nil)
	if n := len(s.replicaSets()); n != 1 {
		t.Fatalf("%d replicasets, want 1", n)
	}
}

func TestDeploymentAutoRollback(t *testing.T) {
	d := testDeployment(2, rolling(1, 0))
	deadline := int32(5)
	d.Spec.ProgressDeadlineSeconds = &deadline
	d.Annotations = map[string]string{AutoRollbackAnnotation: "true"}
	s := newSim(t, d)
	s.runUntil("available", func() bool { return s.complete("web:1") }, nil)
	s.kubelet = false
	s.setImage("web:bad")
	s.runUntil("rolled back", func() bool { return s.deployment().Spec.Template.Spec.Containers[0].Image == "web:1" }, nil)
	s.kubelet = true
	s.runUntil("back on web:1", func() bool { return s.complete("web:1") }, nil)
	got := s.deployment()
	if got.Annotations[RolledBackAnnotation] != "2" || got.Annotations[RevisionAnnotation] != "3" {
		t.Errorf("annotations %v: want rolled back from 2, now at revision 3", got.Annotations)
	}
	for _, rs := range s.replicaSets() {
		if rs.Spec.Template.Spec.Containers[0].Image == "web:bad" && *rs.Spec.Replicas != 0 {
			t.Errorf("failed replicaset %s still at %d", rs.Name, *rs.Spec.Replicas)
		}
	}
}

func TestRolloutHistoryAndUndo(t *testing.T) {
	s := newSim(t, testDeployment(1, rolling(1, 0)))
	for _, img := range []string{"web:1", "web:2", "web:3"} {
		s.setImage(img)
		s.runUntil("rolled out to "+img, func() bool { return s.complete(img) }, nil)
	}
	rss := s.replicaSets()
	hist := History(s.deployment(), rss)
	if len(hist) != 3 || hist[0].Number != 1 || hist[2].Number != 3 {
		t.Fatalf("history %+v, want revisions 1..3", hist)
	}
	tmpl, err := RollbackTemplate(s.deployment(), rss, 0)
	if err != nil || tmpl.Spec.Containers[0].Image != "web:2" || tmpl.Labels[PodTemplateHashLabel] != "" {
		t.Fatalf("undo template %+v, %v: want web:2 without the hash label", tmpl, err)
	}
	if _, err := RollbackTemplate(s.deployment(), rss, 9); !errors.Is(err, ErrNoRevision) {
		t.Fatalf("undo to a missing revision: %v, want ErrNoRevision", err)
	}
	tmpl, err = RollbackTemplate(s.deployment(), rss, 1)
	if err != nil {
		t.Fatal(err)
	}
	d := s.deployment().DeepCopy()
	d.Spec.Template = *tmpl
	if err := s.f.Update(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	s.runUntil("undone to web:1", func() bool { return s.complete("web:1") }, nil)
	if n := len(s.replicaSets()); n != 3 {
		t.Errorf("%d replicasets after undo, want 3 (the old one reused)", n)
	}
	if got := s.deployment().Annotations[RevisionAnnotation]; got != "4" {
		t.Errorf("revision after undo %q, want 4", got)
	}
}

func TestRolloutStatus(t *testing.T) {
	three := int32(3)
	mk := func(gen, observed int64, st appsv1.DeploymentStatus) *appsv1.Deployment {
		st.ObservedGeneration = observed
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: gen}, Spec: appsv1.DeploymentSpec{Replicas: &three}, Status: st}
	}
	tests := []struct {
		name    string
		d       *appsv1.Deployment
		want    string
		done    bool
		wantErr error
	}{
		{"not observed", mk(2, 1, appsv1.DeploymentStatus{}), "Waiting for deployment spec update to be observed...", false, nil},
		{"updating", mk(1, 1, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1}), `Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...`, false, nil},
		{"old pending", mk(1, 1, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 3}), `Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...`, false, nil},
		{"availability", mk(1, 1, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2}), `Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...`, false, nil},
		{"done", mk(1, 1, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}), `deployment "web" successfully rolled out`, true, nil},
		{"failed", mk(1, 1, appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: ReasonProgressDeadlineExceeded}}}), "", false, ErrProgressDeadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, done, err := RolloutStatus(tt.d)
			if msg != tt.want || done != tt.done || !errors.Is(err, tt.wantErr) {
				t.Errorf("got (%q, %v, %v), want (%q, %v, %v)", msg, done, err, tt.want, tt.done, tt.wantErr)
			}
		})
	}
}
