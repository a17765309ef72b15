package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

// cluster is a test's API server and client, with helpers that play the
// agent (pod statuses, node heartbeats) by writing through the API.
type cluster struct {
	t   *testing.T
	c   *client.Client
	ctx context.Context
}

// startCluster starts an API server and, unless opts is nil, a Manager
// with opts; both stop with the test.
func startCluster(t *testing.T, opts *Options) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts etcd and an API server")
	}
	srv := apiservertest.Start(t, apiservertest.Store(t))
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	if opts != nil {
		o := *opts
		if o.Resync == 0 {
			o.Resync = 5 * time.Second
		}
		o.Logger = testLogger(t)
		done := make(chan error, 1)
		mctx, mcancel := context.WithCancel(ctx)
		go func() { done <- NewManager(c, o).Run(mctx) }()
		t.Cleanup(func() {
			mcancel()
			if err := <-done; err != context.Canceled {
				t.Errorf("manager Run = %v, want context.Canceled", err)
			}
		})
	}
	return &cluster{t: t, c: c, ctx: ctx}
}

func (k *cluster) create(obj runtime.Object) {
	k.t.Helper()
	if err := k.c.Create(k.ctx, obj); err != nil {
		k.t.Fatalf("create %s: %v", client.KeyOf(obj), err)
	}
}

// pods lists the pods of namespace default matching sel, by name.
func (k *cluster) pods(sel string) []corev1.Pod {
	k.t.Helper()
	var l corev1.PodList
	if err := k.c.List(k.ctx, "default", &l, client.ListOptions{LabelSelector: sel}); err != nil {
		k.t.Fatalf("list pods: %v", err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items
}

// livePods are the pods matching sel that are not being deleted.
func (k *cluster) livePods(sel string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range k.pods(sel) {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func names(pods []corev1.Pod) string {
	var n []string
	for _, p := range pods {
		n = append(n, p.Name)
	}
	return strings.Join(n, ",")
}

// setPodStatus plays the agent: it sets a pod's phase, and its Ready
// condition when ready is true.
func (k *cluster) setPodStatus(name string, phase corev1.PodPhase, ready bool) {
	k.t.Helper()
	err := client.RetryOnConflict(k.ctx, 10, func() error {
		var p corev1.Pod
		if err := k.c.Get(k.ctx, "default", name, &p); err != nil {
			return err
		}
		now := metav1.Now()
		p.Status.Phase = phase
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: now}}
		if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
			code := int32(0)
			if phase == corev1.PodFailed {
				code = 1
			}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, Image: p.Spec.Containers[0].Image,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: now}}}}
		}
		return k.c.UpdateStatus(k.ctx, &p)
	})
	if err != nil {
		k.t.Fatalf("set status of pod %s: %v", name, err)
	}
}

// autoReady plays the agent for pods matching sel until the test ends:
// every live pod not yet Running and Ready becomes so.
func (k *cluster) autoReady(sel string) {
	ctx, cancel := context.WithCancel(k.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			var l corev1.PodList
			if err := k.c.List(ctx, "default", &l, client.ListOptions{LabelSelector: sel}); err == nil {
				for i := range l.Items {
					p := &l.Items[i]
					if p.DeletionTimestamp != nil || isTerminal(p) || (p.Status.Phase == corev1.PodRunning && isReady(p)) {
						continue
					}
					p.Status.Phase = corev1.PodRunning
					p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
					_ = k.c.UpdateStatus(ctx, p)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	k.t.Cleanup(func() { cancel(); wg.Wait() })
}

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: app + ":1"}}},
	}
}

func ptrTo[T any](v T) *T { return &v }

func (k *cluster) getJob(name string) *batchv1.Job {
	k.t.Helper()
	var j batchv1.Job
	if err := k.c.Get(k.ctx, "default", name, &j); err != nil {
		k.t.Fatalf("get job %s: %v", name, err)
	}
	return &j
}

func jobConditionIs(j *batchv1.Job, t batchv1.JobConditionType, reason string) error {
	c := jobCondition(&j.Status, t)
	if c == nil || c.Status != corev1.ConditionTrue || (reason != "" && c.Reason != reason) {
		return fmt.Errorf("job %s: no %s=True (%s) condition: %+v", j.Name, t, reason, j.Status)
	}
	return nil
}

func TestIntegrationJob(t *testing.T) {
	k := startCluster(t, &Options{JobBackoff: 20 * time.Millisecond})

	// completions 3, parallelism 2: two at a time, a failure retried.
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "work"},
		Spec: batchv1.JobSpec{Completions: ptrTo(int32(3)), Parallelism: ptrTo(int32(2)), BackoffLimit: ptrTo(int32(2)),
			Template: podTemplate("work")}}
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	k.create(job)
	sel := "batch.kubernetes.io/job-name=work"
	active := func(n int) func() error {
		return func() error {
			var live []corev1.Pod
			for _, p := range k.livePods(sel) {
				if !isTerminal(&p) {
					live = append(live, p)
				}
			}
			if len(live) != n {
				return fmt.Errorf("%d active pods (%s), want %d", len(live), names(live), n)
			}
			return nil
		}
	}
	eventually(t, 20*time.Second, "two pods running in parallel", active(2))
	first := k.livePods(sel)
	k.setPodStatus(first[0].Name, corev1.PodFailed, false)
	eventually(t, 20*time.Second, "failed pod replaced", func() error {
		if err := active(2)(); err != nil {
			return err
		}
		if j := k.getJob("work"); j.Status.Failed != 1 || j.Status.Active != 2 {
			return fmt.Errorf("status %+v, want failed 1 active 2", j.Status)
		}
		return nil
	})
	for done := 0; done < 3; done++ {
		var p corev1.Pod
		eventually(t, 20*time.Second, "a pod to finish", func() error {
			for _, q := range k.livePods(sel) {
				if !isTerminal(&q) {
					p = q
					return nil
				}
			}
			return fmt.Errorf("no active pod")
		})
		k.setPodStatus(p.Name, corev1.PodSucceeded, false)
		if done == 0 {
			// One success, one running, one more to start: 2 active again,
			// never more than completions left.
			eventually(t, 20*time.Second, "parallelism refilled", active(2))
		}
	}
	eventually(t, 20*time.Second, "job complete", func() error {
		j := k.getJob("work")
		if err := jobConditionIs(j, batchv1.JobComplete, ""); err != nil {
			return err
		}
		if j.Status.Succeeded != 3 || j.Status.Failed != 1 || j.Status.Active != 0 || j.Status.CompletionTime == nil {
			return fmt.Errorf("status %+v", j.Status)
		}
		return nil
	})

	// backoffLimit 1: the second failure fails the Job.
	job = &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "flaky"},
		Spec: batchv1.JobSpec{BackoffLimit: ptrTo(int32(1)), Template: podTemplate("flaky")}}
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	k.create(job)
	sel = "batch.kubernetes.io/job-name=flaky"
	for i := 0; i < 2; i++ {
		var p corev1.Pod
		eventually(t, 20*time.Second, "a flaky pod", func() error {
			for _, q := range k.livePods(sel) {
				if !isTerminal(&q) {
					p = q
					return nil
				}
			}
			return fmt.Errorf("no active pod among %s", names(k.pods(sel)))
		})
		k.setPodStatus(p.Name, corev1.PodFailed, false)
	}
	eventually(t, 20*time.Second, "job failed on backoff limit", func() error {
		j := k.getJob("flaky")
		if err := jobConditionIs(j, batchv1.JobFailed, ReasonBackoffLimitExceeded); err != nil {
			return err
		}
		if j.Status.Failed != 2 || j.Status.Active != 0 {
			return fmt.Errorf("status %+v, want failed 2 active 0", j.Status)
		}
		return active(0)()
	})

	// activeDeadlineSeconds: running pods are deleted when it passes; then
	// ttlSecondsAfterFinished 0 deletes the Job and its pods.
	job = &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "slow"},
		Spec: batchv1.JobSpec{ActiveDeadlineSeconds: ptrTo(int64(1)), TTLSecondsAfterFinished: ptrTo(int32(1)), Template: podTemplate("slow")}}
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	k.create(job)
	sel = "batch.kubernetes.io/job-name=slow"
	eventually(t, 20*time.Second, "slow pod created", active(1))
	eventually(t, 20*time.Second, "job failed on deadline", func() error {
		var j batchv1.Job
		if err := k.c.Get(k.ctx, "default", "slow", &j); err != nil {
			return err
		}
		if err := jobConditionIs(&j, batchv1.JobFailed, ReasonDeadlineExceeded); err != nil {
			return err
		}
		return active(0)()
	})
	eventually(t, 20*time.Second, "finished job deleted after its ttl", func() error {
		var j batchv1.Job
		if err := k.c.Get(k.ctx, "default", "slow", &j); !client.IsNotFound(err) {
			return fmt.Errorf("get job: %v", err)
		}
		if n := len(k.pods(sel)); n != 0 {
			return fmt.Errorf("%d pods left", n)
		}
		return nil
	})
}

func TestIntegrationStatefulSet(t *testing.T) {
	k := startCluster(t, &Options{})
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptrTo(int32(3)), ServiceName: "web",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: podTemplate("web")}}
	k.create(set)
	podsAre := func(want string) func() error {
		return func() error {
			if got := names(k.livePods("app=web")); got != want {
				return fmt.Errorf("pods %q, want %q", got, want)
			}
			return nil
		}
	}
	eventually(t, 20*time.Second, "web-0 created", podsAre("web-0"))
	p0 := k.livePods("app=web")[0]
	if p0.Spec.Hostname != "web-0" || p0.Spec.Subdomain != "web" || p0.Labels[StatefulSetPodNameLabel] != "web-0" || p0.Labels[PodIndexLabel] != "0" {
		t.Errorf("web-0 identity: hostname %q subdomain %q labels %v", p0.Spec.Hostname, p0.Spec.Subdomain, p0.Labels)
	}
	k.setPodStatus("web-0", corev1.PodRunning, true)
	eventually(t, 20*time.Second, "web-1 after web-0 ready", podsAre("web-0,web-1"))
	k.setPodStatus("web-1", corev1.PodRunning, false) // running, not ready: web-2 must wait
	k.setPodStatus("web-0", corev1.PodRunning, true)  // a write that wakes the controller
	eventually(t, 20*time.Second, "status counts web-1 unready", func() error {
		var s appsv1.StatefulSet
		if err := k.c.Get(k.ctx, "default", "web", &s); err != nil {
			return err
		}
		if s.Status.Replicas != 2 || s.Status.ReadyReplicas != 1 {
			return fmt.Errorf("status %+v", s.Status)
		}
		return nil
	})
	if err := podsAre("web-0,web-1")(); err != nil {
		t.Fatalf("OrderedReady created a pod after an unready one: %v", err)
	}
	k.setPodStatus("web-1", corev1.PodRunning, true)
	eventually(t, 20*time.Second, "web-2 after web-1 ready", podsAre("web-0,web-1,web-2"))
	k.setPodStatus("web-2", corev1.PodRunning, true)

	// A failed pod comes back under its name, with a new uid.
	old := k.livePods("app=web")[1]
	k.setPodStatus("web-1", corev1.PodFailed, false)
	eventually(t, 20*time.Second, "web-1 recreated", func() error {
		for _, p := range k.livePods("app=web") {
			if p.Name == "web-1" && p.UID != old.UID {
				return nil
			}
		}
		return fmt.Errorf("no new web-1 among %s", names(k.pods("app=web")))
	})
	k.setPodStatus("web-1", corev1.PodRunning, true)

	// Scale down: the highest ordinal goes first, one at a time.
	seen := map[string]bool{}
	if err := client.RetryOnConflict(k.ctx, 5, func() error {
		var s appsv1.StatefulSet
		if err := k.c.Get(k.ctx, "default", "web", &s); err != nil {
			return err
		}
		s.Spec.Replicas = ptrTo(int32(1))
		return k.c.Update(k.ctx, &s)
	}); err != nil {
		t.Fatalf("scale down: %v", err)
	}
	eventually(t, 20*time.Second, "scaled down to web-0", func() error {
		got := names(k.livePods("app=web"))
		seen[got] = true
		return podsAre("web-0")()
	})
	if seen["web-0,web-2"] {
		t.Errorf("web-1 went before web-2: saw %v", seen)
	}

	// Parallel: every pod at once, ready or not.
	par := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "par"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptrTo(int32(3)), ServiceName: "par", PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "par"}}, Template: podTemplate("par")}}
	par.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}}
	k.create(par)
	eventually(t, 20*time.Second, "parallel pods", func() error {
		if got := names(k.livePods("app=par")); got != "par-0,par-1,par-2" {
			return fmt.Errorf("pods %q", got)
		}
		return nil
	})
	for _, p := range k.livePods("app=par") {
		var claim string
		for _, v := range p.Spec.Volumes {
			if v.Name == "data" && v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim.ClaimName
			}
		}
		if want := "data-" + p.Name; claim != want {
			t.Errorf("pod %s mounts claim %q, want %q", p.Name, claim, want)
			continue
		}
		var pvc corev1.PersistentVolumeClaim
		if err := k.c.Get(k.ctx, "default", claim, &pvc); err != nil {
			t.Errorf("claim %s: %v", claim, err)
		}
	}

	// Rolling update: every pod replaced, from the highest ordinal down.
	k.autoReady("app=par")
	if err := client.RetryOnConflict(k.ctx, 5, func() error {
		var s appsv1.StatefulSet
		if err := k.c.Get(k.ctx, "default", "par", &s); err != nil {
			return err
		}
		s.Spec.Template.Spec.Containers[0].Image = "par:2"
		return k.c.Update(k.ctx, &s)
	}); err != nil {
		t.Fatalf("update image: %v", err)
	}
	eventually(t, 30*time.Second, "rolled out par:2", func() error {
		var s appsv1.StatefulSet
		if err := k.c.Get(k.ctx, "default", "par", &s); err != nil {
			return err
		}
		for _, p := range k.livePods("app=par") {
			if p.Spec.Containers[0].Image != "par:2" || !isReady(&p) {
				return fmt.Errorf("pod %s runs %s, ready %v", p.Name, p.Spec.Containers[0].Image, isReady(&p))
			}
		}
		if s.Status.UpdatedReplicas != 3 || s.Status.ReadyReplicas != 3 || s.Status.CurrentRevision != s.Status.UpdateRevision {
			return fmt.Errorf("status %+v", s.Status)
		}
		return nil
	})
}

func (k *cluster) createNode(name string, lbl map[string]string, taints ...corev1.Taint) {
	k.t.Helper()
	now := metav1.Now()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl}, Spec: corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}}}}
	k.create(n)
}

func TestIntegrationDaemonSet(t *testing.T) {
	k := startCluster(t, &Options{})
	k.createNode("n1", map[string]string{"disk": "ssd"})
	k.createNode("n2", nil)
	k.createNode("n3", nil, corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule})
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "agentd"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agentd"}}, Template: podTemplate("agentd")}}
	ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptrTo(intstr.FromInt32(1))}}
	k.create(ds)
	onNodes := func(sel, want string) func() error {
		return func() error {
			var nodes []string
			for _, p := range k.livePods(sel) {
				nodes = append(nodes, p.Spec.NodeName)
			}
			sort.Strings(nodes)
			if got := strings.Join(nodes, ","); got != want {
				return fmt.Errorf("pods on nodes %q, want %q", got, want)
			}
			return nil
		}
	}
	eventually(t, 20*time.Second, "one pod per untainted node", onNodes("app=agentd", "n1,n2"))

	sel := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ssd"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ssd"}}, Template: podTemplate("ssd")}}
	sel.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	sel.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
	k.create(sel)
	eventually(t, 20*time.Second, "nodeSelector honoured", onNodes("app=ssd", "n1"))

	// Nodes come and go; labels change.
	k.createNode("n4", map[string]string{"disk": "ssd"})
	eventually(t, 20*time.Second, "pods follow a new node", func() error {
		if err := onNodes("app=agentd", "n1,n2,n4")(); err != nil {
			return err
		}
		return onNodes("app=ssd", "n1,n4")()
	})
	if _, err := k.c.Delete(k.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, nil); err != nil {
		t.Fatalf("delete node n2: %v", err)
	}
	eventually(t, 20*time.Second, "pod of a deleted node removed", onNodes("app=agentd", "n1,n4"))

	k.autoReady("app=agentd")
	eventually(t, 20*time.Second, "status", func() error {
		var d appsv1.DaemonSet
		if err := k.c.Get(k.ctx, "default", "agentd", &d); err != nil {
			return err
		}
		if s := d.Status; s.DesiredNumberScheduled != 2 || s.CurrentNumberScheduled != 2 || s.NumberReady != 2 || s.NumberAvailable != 2 || s.UpdatedNumberScheduled != 2 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})

	// Rolling update with maxUnavailable 1: never two nodes without an
	// available pod at once.
	var mu sync.Mutex
	worst := 0
	ctx, stop := context.WithCancel(k.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			var l corev1.PodList
			if err := k.c.List(ctx, "default", &l, client.ListOptions{LabelSelector: "app=agentd"}); err == nil {
				up := map[string]bool{}
				for i := range l.Items {
					if p := &l.Items[i]; p.DeletionTimestamp == nil && isReady(p) {
						up[p.Spec.NodeName] = true
					}
				}
				mu.Lock()
				worst = max(worst, 2-len(up))
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	if err := client.RetryOnConflict(k.ctx, 5, func() error {
		var d appsv1.DaemonSet
		if err := k.c.Get(k.ctx, "default", "agentd", &d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = "agentd:2"
		return k.c.Update(k.ctx, &d)
	}); err != nil {
		t.Fatalf("update image: %v", err)
	}
	eventually(t, 30*time.Second, "rolled out agentd:2", func() error {
		if err := onNodes("app=agentd", "n1,n4")(); err != nil {
			return err
		}
		for _, p := range k.livePods("app=agentd") {
			if p.Spec.Containers[0].Image != "agentd:2" || !isReady(&p) {
				return fmt.Errorf("pod %s on %s runs %s", p.Name, p.Spec.NodeName, p.Spec.Containers[0].Image)
			}
		}
		return nil
	})
	stop()
	wg.Wait()
	if worst > 1 {
		t.Errorf("%d nodes lacked a ready pod at once during the update; maxUnavailable is 1", worst)
	}
}

// informer runs an informer of example's kind for the test.
func (k *cluster) informer(example runtime.Object) *client.Informer {
	k.t.Helper()
	i, err := client.NewInformer(k.c, metav1.NamespaceAll, example, client.ListOptions{}, 0)
	if err != nil {
		k.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(k.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = i.Run(ctx) }()
	k.t.Cleanup(func() { cancel(); <-done })
	if !i.WaitForSync(ctx) {
		k.t.Fatal("informer did not sync")
	}
	return i
}

// TestIntegrationCronJob drives the CronJob controller by hand with a fake
// clock, over real informers and API server.
func TestIntegrationCronJob(t *testing.T) {
	k := startCluster(t, nil)
	cjs, jobs := k.informer(&batchv1.CronJob{}), k.informer(&batchv1.Job{})
	c := NewCronJobController(cjs, jobs, k.c, testLogger(t))
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tick"},
		Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", ConcurrencyPolicy: batchv1.ForbidConcurrent,
			SuccessfulJobsHistoryLimit: ptrTo(int32(1)), FailedJobsHistoryLimit: ptrTo(int32(1)),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podTemplate("tick")}}}}
	cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	k.create(cj)
	created := cj.CreationTimestamp.Time.UTC()
	slot := created.Truncate(5 * time.Minute).Add(5 * time.Minute) // the first run after creation
	var clock time.Time
	c.now = func() time.Time { return clock }

	// synced waits until the caches show what the API has, then reconciles.
	reconcile := func(at time.Time) {
		t.Helper()
		clock = at
		eventually(t, 10*time.Second, "caches in sync", func() error {
			var jl batchv1.JobList
			if err := k.c.List(k.ctx, "default", &jl, client.ListOptions{}); err != nil {
				return err
			}
			var cur batchv1.CronJob
			if err := k.c.Get(k.ctx, "default", "tick", &cur); err != nil {
				return err
			}
			if o, ok := cjs.Get("default/tick"); !ok || o.(*batchv1.CronJob).ResourceVersion != cur.ResourceVersion {
				return fmt.Errorf("cronjob cache behind")
			}
			if n := len(jobs.List(nil)); n != len(jl.Items) {
				return fmt.Errorf("job cache has %d, API %d", n, len(jl.Items))
			}
			for _, j := range jl.Items {
				if o, ok := jobs.Get(client.KeyOf(&j)); !ok || o.(*batchv1.Job).ResourceVersion != j.ResourceVersion {
					return fmt.Errorf("job %s behind in cache", j.Name)
				}
			}
			return nil
		})
		if _, err := c.Reconcile(k.ctx, "default/tick"); err != nil {
			t.Fatalf("reconcile at %v: %v", at, err)
		}
	}
	jobNames := func() string {
		var jl batchv1.JobList
		if err := k.c.List(k.ctx, "default", &jl, client.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, j := range jl.Items {
			if j.DeletionTimestamp == nil {
				n = append(n, j.Name)
			}
		}
		sort.Strings(n)
		return strings.Join(n, ",")
	}
	name := func(at time.Time) string { return fmt.Sprintf("tick-%d", at.Unix()/60) }
	finish := func(job string, typ batchv1.JobConditionType) {
		t.Helper()
		err := client.RetryOnConflict(k.ctx, 5, func() error {
			j := k.getJob(job)
			now := metav1.NewTime(clock)
			j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, LastTransitionTime: now})
			if typ == batchv1.JobComplete {
				j.Status.CompletionTime = &now
			}
			return k.c.UpdateStatus(k.ctx, j)
		})
		if err != nil {
			t.Fatalf("finish job %s: %v", job, err)
		}
	}
	want := func(what, names string) {
		t.Helper()
		if got := jobNames(); got != names {
			t.Fatalf("%s: jobs %q, want %q", what, got, names)
		}
	}

	reconcile(slot.Add(-time.Second))
	want("before the first run", "")
	reconcile(slot.Add(10 * time.Second))
	want("first run", name(slot))
	j := k.getJob(name(slot))
	if j.Annotations[CronJobScheduledTimestampAnnotation] != slot.Format(time.RFC3339) || !isControlledBy(j, cj.UID) {
		t.Errorf("job annotations %v owners %v", j.Annotations, j.OwnerReferences)
	}
	reconcile(slot.Add(20 * time.Second))
	want("same slot again", name(slot))

	// Forbid: the next slot passes while the first job runs; it starts
	// once that job is done, the slot still being the latest due.
	slot2 := slot.Add(5 * time.Minute)
	reconcile(slot2.Add(time.Second))
	want("forbid while running", name(slot))
	finish(name(slot), batchv1.JobComplete)
	reconcile(slot2.Add(2 * time.Second))
	want("forbid after finish", name(slot)+","+name(slot2))
	var st batchv1.CronJob
	if err := k.c.Get(k.ctx, "default", "tick", &st); err != nil {
		t.Fatal(err)
	}
	if st.Status.LastScheduleTime == nil || !st.Status.LastScheduleTime.Time.Equal(slot2) || len(st.Status.Active) != 1 ||
		st.Status.LastSuccessfulTime == nil {
		t.Errorf("status %+v", st.Status)
	}

	// History limit 1: the older successful job goes when the next ends.
	finish(name(slot2), batchv1.JobComplete)
	reconcile(slot2.Add(3 * time.Second))
	want("successful history trimmed", name(slot2))

	// Replace: a running job is deleted for the next run.
	if err := client.RetryOnConflict(k.ctx, 5, func() error {
		if err := k.c.Get(k.ctx, "default", "tick", &st); err != nil {
			return err
		}
		st.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent
		return k.c.Update(k.ctx, &st)
	}); err != nil {
		t.Fatal(err)
	}
	slot3, slot4 := slot2.Add(5*time.Minute), slot2.Add(10*time.Minute)
	reconcile(slot3.Add(time.Second))
	want("third run", name(slot2)+","+name(slot3))
	reconcile(slot4.Add(time.Second))
	want("replace", name(slot2)+","+name(slot4))

	// Missed runs beyond startingDeadlineSeconds do not start; suspend
	// starts nothing.
	if err := client.RetryOnConflict(k.ctx, 5, func() error {
		if err := k.c.Get(k.ctx, "default", "tick", &st); err != nil {
			return err
		}
		st.Spec.StartingDeadlineSeconds = ptrTo(int64(30))
		st.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
		return k.c.Update(k.ctx, &st)
	}); err != nil {
		t.Fatal(err)
	}
	slot5 := slot4.Add(5 * time.Minute)
	reconcile(slot5.Add(time.Minute))
	want("missed the starting deadline", name(slot2)+","+name(slot4))
	if err := client.RetryOnConflict(k.ctx, 5, func() error {
		if err := k.c.Get(k.ctx, "default", "tick", &st); err != nil {
			return err
		}
		st.Spec.Suspend = ptrTo(true)
		return k.c.Update(k.ctx, &st)
	}); err != nil {
		t.Fatal(err)
	}
	slot6 := slot5.Add(5 * time.Minute)
	reconcile(slot6.Add(time.Second))
	want("suspended", name(slot2)+","+name(slot4))
}
