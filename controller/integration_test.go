package controller

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

// testLogger logs to t with -v, else nowhere.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// eventually polls check until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, err)
}

// kubelet plays the node agent for pods nobody runs: a pod seen in one poll
// is made Running and Ready in the next. It also records the fewest ready
// pods of app=web seen once watching is on.
type kubelet struct {
	c        *client.Client
	mu       sync.Mutex
	seen     map[string]bool
	watching bool
	minReady int
	maxPods  int
	broken   string // pods of this image never get ready
}

func (k *kubelet) run(ctx context.Context) {
	for ctx.Err() == nil {
		k.poll(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (k *kubelet) poll(ctx context.Context) {
	var list corev1.PodList
	if err := k.c.List(ctx, "default", &list, client.ListOptions{LabelSelector: "app=web"}); err != nil {
		return
	}
	readyN, active := 0, 0
	for i := range list.Items {
		p := &list.Items[i]
		if !isActive(p) {
			continue
		}
		active++
		if isReady(p) {
			readyN++
			continue
		}
		k.mu.Lock()
		first := !k.seen[p.Name]
		k.seen[p.Name] = true
		k.mu.Unlock()
		if first || p.Spec.Containers[0].Image == k.broken {
			continue
		}
		p.Status.Phase = corev1.PodRunning
		now := metav1.Now()
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
		_ = k.c.UpdateStatus(ctx, p) // a conflict or a deleted pod: next poll
	}
	k.mu.Lock()
	if k.watching {
		k.minReady = min(k.minReady, readyN)
		k.maxPods = max(k.maxPods, active)
	}
	k.mu.Unlock()
}

func (k *kubelet) watch(on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.watching, k.minReady, k.maxPods = on, 1<<30, 0
}

func (k *kubelet) extremes() (minReady, maxPods int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.minReady, k.maxPods
}

func TestIntegrationDeploymentLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	mgrErr := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		mgrErr <- NewManager(c, Options{Resync: 5 * time.Second, Logger: testLogger(t)}).Run(ctx)
	}()
	k := &kubelet{c: c, seen: map[string]bool{}}
	go func() { defer wg.Done(); k.run(ctx) }()

	d := testDeployment(3, rolling(1, 0))
	d.Generation = 0
	if err := c.Create(ctx, d); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	get := func() *appsv1.Deployment {
		got := &appsv1.Deployment{}
		if err := c.Get(ctx, "default", "web", got); err != nil {
			t.Fatalf("get deployment: %v", err)
		}
		return got
	}
	listPods := func() []corev1.Pod {
		var l corev1.PodList
		if err := c.List(ctx, "default", &l, client.ListOptions{LabelSelector: "app=web"}); err != nil {
			t.Fatalf("list pods: %v", err)
		}
		return l.Items
	}
	listRS := func() []appsv1.ReplicaSet {
		var l appsv1.ReplicaSetList
		if err := c.List(ctx, "default", &l, client.ListOptions{}); err != nil {
			t.Fatalf("list replicasets: %v", err)
		}
		return l.Items
	}
	rolledOut := func(image string) func() error {
		return func() error {
			d := get()
			st := d.Status
			cond := condition(&st, appsv1.DeploymentProgressing)
			avail := condition(&st, appsv1.DeploymentAvailable)
			if st.ObservedGeneration != d.Generation || st.Replicas != 3 || st.UpdatedReplicas != 3 || st.AvailableReplicas != 3 ||
				cond == nil || cond.Reason != ReasonNewRSAvailable || avail == nil || avail.Status != corev1.ConditionTrue {
				return fmt.Errorf("status %+v", st)
			}
			n := 0
			for _, p := range listPods() {
				if p.Spec.Containers[0].Image != image {
					return fmt.Errorf("pod %s still runs %s", p.Name, p.Spec.Containers[0].Image)
				}
				n++
			}
			if n != 3 {
				return fmt.Errorf("%d pods, want 3", n)
			}
			return nil
		}
	}

	eventually(t, 60*time.Second, "deployment available", rolledOut("web:1"))
	rss := listRS()
	if len(rss) != 1 || !isControlledBy(&rss[0], get().UID) || rss[0].Annotations[RevisionAnnotation] != "1" {
		t.Fatalf("replicasets %d: %+v", len(rss), rss)
	}
	for _, p := range listPods() {
		if !isControlledBy(&p, rss[0].UID) {
			t.Errorf("pod %s not controlled by %s: %v", p.Name, rss[0].Name, p.OwnerReferences)
		}
	}

	k.watch(true)
	if err := client.RetryOnConflict(ctx, 5, func() error {
		d := get()
		d.Spec.Template.Spec.Containers[0].Image = "web:2"
		return c.Update(ctx, d)
	}); err != nil {
		t.Fatalf("update image: %v", err)
	}
	eventually(t, 60*time.Second, "rolled out to web:2", rolledOut("web:2"))
	minReady, maxPods := k.extremes()
	k.watch(false)
	if minReady < 3 {
		t.Errorf("ready pods fell to %d during the rollout; maxUnavailable 0 allows none fewer than 3", minReady)
	}
	if maxPods > 4 {
		t.Errorf("%d pods during the rollout; maxSurge 1 allows 4", maxPods)
	}
	if got := get().Annotations[RevisionAnnotation]; got != "2" {
		t.Errorf("deployment revision %q, want 2", got)
	}
	for _, rs := range listRS() {
		if rs.Spec.Template.Spec.Containers[0].Image == "web:1" && (rs.Spec.Replicas == nil || *rs.Spec.Replicas != 0) {
			t.Errorf("old replicaset %s not scaled to 0", rs.Name)
		}
	}

	eventually(t, 10*time.Second, "scaling events recorded", func() error {
		var evs corev1.EventList
		if err := c.List(ctx, "default", &evs, client.ListOptions{FieldSelector: "involvedObject.name=web"}); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == "ScalingReplicaSet" && e.InvolvedObject.Kind == "Deployment" {
				return nil
			}
		}
		return fmt.Errorf("no ScalingReplicaSet event among %d", len(evs.Items))
	})
	if _, err := c.Delete(ctx, get(), nil); err != nil {
		t.Fatalf("delete deployment: %v", err)
	}
	eventually(t, 60*time.Second, "replicasets and pods collected", func() error {
		if n, m := len(listRS()), len(listPods()); n+m > 0 {
			return fmt.Errorf("%d replicasets and %d pods left", n, m)
		}
		return nil
	})
	cancel()
	wg.Wait()
	if err := <-mgrErr; err != context.Canceled {
		t.Errorf("manager Run = %v, want context.Canceled", err)
	}
}

// startManager runs a Manager for the test and returns once started; the
// manager stops (and is waited for) at the end of the test.
func startManager(t *testing.T, c *client.Client) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	done := make(chan error, 1)
	go func() { done <- NewManager(c, Options{Resync: 5 * time.Second, Logger: testLogger(t)}).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("manager Run = %v, want context.Canceled", err)
		}
	})
	return ctx
}

func TestIntegrationAdoptionScaleAndPropagation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := startManager(t, c)

	pods := func() []corev1.Pod {
		var l corev1.PodList
		if err := c.List(ctx, "default", &l, client.ListOptions{LabelSelector: "app=web"}); err != nil {
			t.Fatalf("list pods: %v", err)
		}
		return l.Items
	}
	ownedBy := func(uid string, want int) func() error {
		return func() error {
			n := 0
			for _, p := range pods() {
				if p.DeletionTimestamp != nil {
					continue
				}
				if ref := controllerOf(&p); ref != nil && string(ref.UID) == uid {
					n++
				} else if uid != "" {
					return fmt.Errorf("pod %s owned by %v", p.Name, p.OwnerReferences)
				} else if ref == nil {
					n++
				}
			}
			if n != want {
				return fmt.Errorf("%d pods, want %d", n, want)
			}
			return nil
		}
	}

	stray := testPod("stray")
	stray.Status = corev1.PodStatus{}
	if err := c.Create(ctx, stray); err != nil {
		t.Fatalf("create stray pod: %v", err)
	}
	rs := testRS("web", 2)
	rs.UID, rs.Generation = "", 0
	rs.Spec.Template.Labels = webLabels
	if err := c.Create(ctx, rs); err != nil {
		t.Fatalf("create replicaset: %v", err)
	}
	eventually(t, 30*time.Second, "stray adopted and one pod created", ownedBy(string(rs.UID), 2))

	if err := client.RetryOnConflict(ctx, 5, func() error {
		if err := c.Get(ctx, "default", "web", rs); err != nil {
			return err
		}
		one := int32(1)
		rs.Spec.Replicas = &one
		return c.Update(ctx, rs)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "scaled down to 1", ownedBy(string(rs.UID), 1))
	eventually(t, 30*time.Second, "status of 1 replica", func() error {
		got := &appsv1.ReplicaSet{}
		if err := c.Get(ctx, "default", "web", got); err != nil {
			return err
		}
		if got.Status.Replicas != 1 || got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("status %+v at generation %d", got.Status, got.Generation)
		}
		return nil
	})

	// Orphan: the ReplicaSet goes, its pod stays, without the reference.
	if _, err := c.Delete(ctx, rs, &client.DeleteOptions{Propagation: "Orphan"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "replicaset gone", func() error {
		if err := c.Get(ctx, "default", "web", &appsv1.ReplicaSet{}); !client.IsNotFound(err) {
			return fmt.Errorf("get: %v", err)
		}
		return nil
	})
	eventually(t, 30*time.Second, "pod orphaned", ownedBy("", 1))

	// A ReplicationController adopts it; Foreground deletion removes the
	// pods before the controller itself.
	two := int32(2)
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "legacy"},
		Spec: corev1.ReplicationControllerSpec{Replicas: &two, Selector: webLabels, Template: &corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: webLabels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}},
	}
	if err := c.Create(ctx, rc); err != nil {
		t.Fatalf("create rc: %v", err)
	}
	eventually(t, 30*time.Second, "rc adopted and scaled", ownedBy(string(rc.UID), 2))
	if _, err := c.Delete(ctx, rc, &client.DeleteOptions{Propagation: "Foreground"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "rc and its pods gone", func() error {
		if n := len(pods()); n != 0 {
			return fmt.Errorf("%d pods left", n)
		}
		if err := c.Get(ctx, "default", "legacy", &corev1.ReplicationController{}); !client.IsNotFound(err) {
			return fmt.Errorf("rc get: %v", err)
		}
		return nil
	})
}

// A rollout to an image that never gets ready stops at maxUnavailable and
// reports Progressing=False ProgressDeadlineExceeded after the deadline;
// pausing keeps the Deployment from rolling the next template.
func TestIntegrationProgressDeadlineAndPause(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx := startManager(t, c)
	k := &kubelet{c: c, seen: map[string]bool{}, broken: "web:bad"}
	kctx, kcancel := context.WithCancel(ctx)
	kdone := make(chan struct{})
	go func() { defer close(kdone); k.run(kctx) }()
	t.Cleanup(func() { kcancel(); <-kdone })

	d := testDeployment(2, rolling(1, 0))
	d.Generation = 0
	deadline := int32(2)
	d.Spec.ProgressDeadlineSeconds = &deadline
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	get := func() *appsv1.Deployment {
		got := &appsv1.Deployment{}
		if err := c.Get(ctx, "default", "web", got); err != nil {
			t.Fatalf("get deployment: %v", err)
		}
		return got
	}
	progressing := func(reason string) func() error {
		return func() error {
			st := get().Status
			if cond := condition(&st, appsv1.DeploymentProgressing); cond == nil || cond.Reason != reason {
				return fmt.Errorf("progressing %+v, want reason %s", cond, reason)
			}
			return nil
		}
	}
	eventually(t, 30*time.Second, "available", progressing(ReasonNewRSAvailable))
	update := func(change func(*appsv1.Deployment)) {
		t.Helper()
		if err := client.RetryOnConflict(ctx, 5, func() error {
			d := get()
			change(d)
			return c.Update(ctx, d)
		}); err != nil {
			t.Fatal(err)
		}
	}
	update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:bad" })
	// Under load the deadline may pass before the stuck pod shows in the
	// status; progress then resets it, and it passes again 2s later.
	eventually(t, 30*time.Second, "deadline exceeded with the new pod stuck", func() error {
		if err := progressing(ReasonProgressDeadlineExceeded)(); err != nil {
			return err
		}
		st := get().Status
		if cond := condition(&st, appsv1.DeploymentProgressing); cond.Status != corev1.ConditionFalse {
			return fmt.Errorf("progressing %+v, want False", cond)
		}
		if st.AvailableReplicas != 2 || st.UpdatedReplicas != 1 {
			return fmt.Errorf("status %+v: want the 2 old pods available and 1 new one stuck", st)
		}
		return nil
	})

	update(func(d *appsv1.Deployment) {
		d.Spec.Paused = true
		d.Spec.Template.Spec.Containers[0].Image = "web:3"
	})
	eventually(t, 30*time.Second, "paused", progressing(ReasonPaused))
	var rsl appsv1.ReplicaSetList
	if err := c.List(ctx, "default", &rsl, client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(rsl.Items) != 2 {
		t.Errorf("%d replicasets while paused, want 2 (no web:3)", len(rsl.Items))
	}
	update(func(d *appsv1.Deployment) { d.Spec.Paused = false })
	eventually(t, 30*time.Second, "resumed and rolled out", progressing(ReasonNewRSAvailable))
}
