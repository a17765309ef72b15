package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
)

func TestFirstFree(t *testing.T) {
	pp := netip.MustParsePrefix
	for _, tc := range []struct {
		cluster string
		mask    int
		used    []netip.Prefix
		want    string // "" : none free
	}{
		{"10.244.0.0/16", 24, nil, "10.244.0.0/24"},
		{"10.244.0.0/16", 24, []netip.Prefix{pp("10.244.0.0/24"), pp("10.244.1.7/32")}, "10.244.2.0/24"},
		{"10.0.254.0/23", 24, []netip.Prefix{pp("10.0.254.0/24")}, "10.0.255.0/24"},
		{"10.0.255.0/24", 24, []netip.Prefix{pp("10.0.0.0/8")}, ""},
		{"10.1.0.0/16", 26, []netip.Prefix{pp("10.1.0.0/26"), pp("10.1.0.128/26")}, "10.1.0.64/26"},
		{"10.2.0.0/16", 20, []netip.Prefix{pp("10.2.3.0/24")}, "10.2.16.0/20"},
		{"10.3.0.0/24", 24, []netip.Prefix{pp("192.168.0.0/24")}, "10.3.0.0/24"},
	} {
		got, ok := firstFree(pp(tc.cluster), tc.mask, tc.used)
		if (tc.want == "" && ok) || (tc.want != "" && got.String() != tc.want) {
			t.Errorf("firstFree(%s, /%d, %v) = %v, %v; want %q", tc.cluster, tc.mask, tc.used, got, ok, tc.want)
		}
	}
}

func TestNodeIPAMOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts NodeIPAMOptions
		want string // "" : valid
	}{
		{NodeIPAMOptions{}, ""},
		{NodeIPAMOptions{ClusterCIDR: "10.0.0.0/8", NodeCIDRMaskSize: 24}, ""},
		{NodeIPAMOptions{ClusterCIDR: "10.244.0.0/16", NodeCIDRMaskSize: 16}, ""},
		{NodeIPAMOptions{ClusterCIDR: "10.244.0.0"}, "--cluster-cidr \"10.244.0.0\": want an IPv4 CIDR"},
		{NodeIPAMOptions{ClusterCIDR: "fd00::/48"}, "want an IPv4 CIDR"},
		{NodeIPAMOptions{ClusterCIDR: "10.244.1.0/16"}, "host bits set (did you mean 10.244.0.0/16?)"},
		{NodeIPAMOptions{NodeCIDRMaskSize: 8}, "--node-cidr-mask-size 8 must be between the --cluster-cidr's /16 and 30"},
		{NodeIPAMOptions{NodeCIDRMaskSize: 31}, "between the --cluster-cidr's /16 and 30"},
		{NodeIPAMOptions{ClusterCIDR: "10.0.0.0/8", NodeCIDRMaskSize: 25}, "more than 16 bits longer"},
	} {
		err := tc.opts.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.opts, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidNodeIPAM)):
			t.Errorf("%+v: error %v, want ErrInvalidNodeIPAM containing %q", tc.opts, err, tc.want)
		}
	}
}

// recordedEvents is an EventRecorder keeping what it is told.
type recordedEvents struct {
	mu  sync.Mutex
	evs []string // "node reason"
}

func (r *recordedEvents) Event(obj runtime.Object, _, reason, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, client.KeyOf(obj)+" "+reason)
}

func (r *recordedEvents) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.evs {
		if e == s {
			return true
		}
	}
	return false
}

func bareNode(name, cidr string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if cidr != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
	}
	return n
}

// fakeNodes is the fake cluster with a Get that knows Nodes.
type fakeNodes struct{ *fakeCluster }

func (f fakeNodes) Get(ctx context.Context, ns, name string, obj runtime.Object) error {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return f.fakeCluster.Get(ctx, ns, name, obj)
	}
	o, found := f.cache("Node").Get(name)
	if !found {
		return client.NewNotFound(schema.GroupResource{Resource: "nodes"}, name)
	}
	*n = *o.(*corev1.Node).DeepCopy()
	return nil
}

func podCIDROf(t *testing.T, f *fakeCluster, name string) string {
	t.Helper()
	n := &corev1.Node{}
	if err := (fakeNodes{f}).Get(context.Background(), "", name, n); err != nil {
		t.Fatal(err)
	}
	return n.Spec.PodCIDR
}

// TestNodeIPAMReconcile: with a cache that does not show its own writes
// yet, the controller still never hands out a range twice; a new instance
// (a new leader) continues from the Nodes; explicit ranges are kept and an
// overlapping one is reported; a full range is reported.
func TestNodeIPAMReconcile(t *testing.T) {
	ctx := ctxT(t)
	f := newFake()
	f.add(bareNode("explicit", "10.9.0.0/24"), bareNode("outside", "192.168.5.0/24"), bareNode("n1", ""), bareNode("n2", ""))
	stale := snapshotOf(f.cache("Node"))
	opts := NodeIPAMOptions{ClusterCIDR: "10.9.0.0/22", NodeCIDRMaskSize: 24}
	ic, err := NewNodeIPAMController(stale, fakeNodes{f}, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2", "n1"} { // n1 twice: idempotent
		if _, err := ic.Reconcile(ctx, n); err != nil {
			t.Fatalf("reconcile %s: %v", n, err)
		}
	}
	if got, want := podCIDROf(t, f, "n1")+" "+podCIDROf(t, f, "n2"), "10.9.1.0/24 10.9.2.0/24"; got != want {
		t.Fatalf("n1, n2 pod CIDRs with a stale cache = %s, want %s", got, want)
	}
	n := &corev1.Node{}
	_ = fakeNodes{f}.Get(ctx, "", "n2", n)
	if len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
		t.Errorf("n2 spec.podCIDRs = %v, want [%s]", n.Spec.PodCIDRs, n.Spec.PodCIDR)
	}

	// A new instance on a fresh cache: existing ranges stay, n3 gets the
	// last /24, n4 finds the range full.
	ev := &recordedEvents{}
	f.add(bareNode("n3", ""), bareNode("n4", ""))
	ic2, _ := NewNodeIPAMController(f.cache("Node"), fakeNodes{f}, opts, nil)
	ic2.events = ev
	for _, n := range []string{"explicit", "outside", "n1", "n2", "n3", "n4"} {
		res, err := ic2.Reconcile(ctx, n)
		if err != nil {
			t.Fatalf("reconcile %s: %v", n, err)
		}
		if n == "n4" && res.RequeueAfter <= 0 {
			t.Errorf("n4 without a range: not requeued (%+v)", res)
		}
	}
	for name, want := range map[string]string{"explicit": "10.9.0.0/24", "outside": "192.168.5.0/24", "n1": "10.9.1.0/24",
		"n2": "10.9.2.0/24", "n3": "10.9.3.0/24", "n4": ""} {
		if got := podCIDROf(t, f, name); got != want {
			t.Errorf("%s pod CIDR = %q, want %q", name, got, want)
		}
	}
	if !ev.has("n4 " + ReasonCIDRAssignmentFailed) {
		t.Errorf("no CIDRAssignmentFailed event for n4: %v", ev.evs)
	}
	if len(ev.evs) != 1 {
		t.Errorf("events %v, want only n4's", ev.evs)
	}

	// An explicit range overlapping an earlier Node's: reported, kept.
	late := bareNode("late", "10.9.3.128/25")
	late.CreationTimestamp = metav1.NewTime(f.now.Add(time.Hour))
	f.add(late)
	if _, err := ic2.Reconcile(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	if !ev.has("late " + ReasonCIDRNotAvailable) {
		t.Errorf("no CIDRNotAvailable event for late: %v", ev.evs)
	}
	if ev.has("n3 " + ReasonCIDRNotAvailable) {
		t.Errorf("n3, the first holder, was reported: %v", ev.evs)
	}
	if got := podCIDROf(t, f, "late"); got != "10.9.3.128/25" {
		t.Errorf("late's own pod CIDR changed to %q", got)
	}
}

// ipamRun is a node IPAM controller running against an API server, as
// Manager.Run would run it.
type ipamRun struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queue  *client.Queue[string]
}

func startNodeIPAM(t *testing.T, c *client.Client, opts NodeIPAMOptions, retry time.Duration) *ipamRun {
	t.Helper()
	nodes, err := client.NewInformer(c, "", &corev1.Node{}, client.ListOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	if log == nil {
		log = discardLogger()
	}
	ic, err := NewNodeIPAMController(nodes, c, opts, log)
	if err != nil {
		t.Fatal(err)
	}
	ic.Retry = retry
	rec := NewRecorder(c, "skiff-controller-manager", log)
	ic.events = rec
	l := newLoop(ic, log)
	ic.register(l.queue, nodes)
	ctx, cancel := context.WithCancel(context.Background())
	r := &ipamRun{cancel: cancel, queue: l.queue}
	r.wg.Add(2)
	go func() { defer r.wg.Done(); _ = nodes.Run(ctx) }()
	go func() { defer r.wg.Done(); rec.Run(ctx) }()
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	if !nodes.WaitForSync(sctx) {
		r.stop()
		t.Fatal("node cache did not sync")
	}
	l.start(ctx, 2, &r.wg)
	t.Cleanup(r.stop)
	return r
}

func (r *ipamRun) stop() {
	r.cancel()
	r.queue.ShutDown()
	r.wg.Wait()
}

// nodeCIDRsNow reads every Node's spec.podCIDR (uncached).
func nodeCIDRsNow(ctx context.Context, c *client.Client) (map[string]string, error) {
	var list corev1.NodeList
	if err := c.List(ctx, "", &list, client.ListOptions{}); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range list.Items {
		if len(n.Spec.PodCIDRs) != 1 && n.Spec.PodCIDR != "" || len(n.Spec.PodCIDRs) == 1 && n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
			return nil, fmt.Errorf("node %s: spec.podCIDR %q but spec.podCIDRs %v", n.Name, n.Spec.PodCIDR, n.Spec.PodCIDRs)
		}
		out[n.Name] = n.Spec.PodCIDR
	}
	return out, nil
}

// waitCIDR polls until Node name's pod CIDR is want and returns all.
func waitCIDR(t *testing.T, ctx context.Context, c *client.Client, name, want string) map[string]string {
	t.Helper()
	var all map[string]string
	eventually(t, 20*time.Second, "node "+name+" pod CIDR "+want, func() error {
		var err error
		if all, err = nodeCIDRsNow(ctx, c); err != nil {
			return err
		}
		if all[name] != want {
			return fmt.Errorf("pod CIDR %q", all[name])
		}
		return nil
	})
	return all
}

// waitEvent polls until an event with reason about Node name exists.
func waitEvent(t *testing.T, ctx context.Context, c *client.Client, name, reason string) corev1.Event {
	t.Helper()
	var found corev1.Event
	eventually(t, 20*time.Second, "event "+reason+" about node "+name, func() error {
		var list corev1.EventList
		if err := c.List(ctx, metav1.NamespaceDefault, &list, client.ListOptions{}); err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == name && e.Reason == reason {
				found = e
				return nil
			}
			seen = append(seen, e.InvolvedObject.Name+" "+e.Reason)
		}
		return fmt.Errorf("events: %v", seen)
	})
	return found
}

func newIPAMServer(t *testing.T) (*client.Client, context.Context) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a store and an API server")
	}
	srv := apiservertest.Start(t, apiservertest.StartSkiffStore(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return srv.Client(), ctx
}

// TestIntegrationNodeIPAMConcurrent: 20 Nodes created at once against a
// running controller all get distinct ranges, the lowest free ones, around
// Nodes that brought their own; a new controller instance keeps them and
// continues; a deleted Node's range is handed out again.
func TestIntegrationNodeIPAMConcurrent(t *testing.T) {
	c, ctx := newIPAMServer(t)
	for _, n := range []*corev1.Node{bareNode("own-inside", "10.244.3.0/24"), bareNode("own-outside", "192.168.77.0/24")} {
		if err := c.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	opts := NodeIPAMOptions{} // the defaults: 10.244.0.0/16, /24
	run := startNodeIPAM(t, c, opts, time.Second)

	const count = 20
	var wg sync.WaitGroup
	errs := make(chan error, count)
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Create(ctx, bareNode(fmt.Sprintf("n%02d", i), "")); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
	var all map[string]string
	eventually(t, 30*time.Second, "every node has a pod CIDR", func() error {
		var err error
		if all, err = nodeCIDRsNow(ctx, c); err != nil {
			return err
		}
		var missing []string
		for n, cidr := range all {
			if cidr == "" {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("without: %v", missing)
		}
		return nil
	})
	// Exactly the 20 lowest /24s other than own-inside's 10.244.3.0/24.
	want := map[string]bool{}
	for i := 0; len(want) < count; i++ {
		if i != 3 {
			want[fmt.Sprintf("10.244.%d.0/24", i)] = true
		}
	}
	holder := map[string]string{}
	for n, cidr := range all {
		if other, dup := holder[cidr]; dup {
			t.Errorf("%s and %s both have pod CIDR %s", other, n, cidr)
		}
		holder[cidr] = n
		if strings.HasPrefix(n, "n") && !want[cidr] {
			t.Errorf("%s got %s, not one of the 20 lowest free /24s", n, cidr)
		}
	}
	if all["own-inside"] != "10.244.3.0/24" || all["own-outside"] != "192.168.77.0/24" {
		t.Errorf("explicit pod CIDRs changed: own-inside %s, own-outside %s", all["own-inside"], all["own-outside"])
	}

	// A new instance (a new leader): the allocations stand, the next Node
	// gets the next range.
	run.stop()
	startNodeIPAM(t, c, opts, time.Second)
	if err := c.Create(ctx, bareNode("after-restart", "")); err != nil {
		t.Fatal(err)
	}
	after := waitCIDR(t, ctx, c, "after-restart", "10.244.21.0/24")
	for n, cidr := range all {
		if after[n] != cidr {
			t.Errorf("after the restart %s has %s, had %s", n, after[n], cidr)
		}
	}

	// Deleting a Node frees its range: the lowest free one again.
	victim := holder["10.244.5.0/24"]
	if _, err := c.Delete(ctx, bareNode(victim, ""), nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "node "+victim+" gone", func() error {
		err := c.Get(ctx, "", victim, &corev1.Node{})
		if client.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get: %v", err)
	})
	if err := c.Create(ctx, bareNode("replacement", "")); err != nil {
		t.Fatal(err)
	}
	waitCIDR(t, ctx, c, "replacement", "10.244.5.0/24")
}

// TestIntegrationNodeIPAMOverlapAndExhaustion: an explicit range that
// overlaps an earlier Node's is reported (CIDRNotAvailable) and left; a
// Node finding the range full is reported (CIDRAssignmentFailed) and gets
// a range as soon as a Node is deleted.
func TestIntegrationNodeIPAMOverlapAndExhaustion(t *testing.T) {
	c, ctx := newIPAMServer(t)
	// 10.9.0.0/23 holds two /24s.
	startNodeIPAM(t, c, NodeIPAMOptions{ClusterCIDR: "10.9.0.0/23", NodeCIDRMaskSize: 24}, time.Hour)
	for _, n := range []*corev1.Node{bareNode("a-first", "10.9.0.0/24"), bareNode("b-overlap", "10.9.0.128/25")} {
		if err := c.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	e := waitEvent(t, ctx, c, "b-overlap", ReasonCIDRNotAvailable)
	if e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, "a-first") {
		t.Errorf("CIDRNotAvailable event: type %s, message %q; want Warning naming a-first", e.Type, e.Message)
	}
	if err := c.Create(ctx, bareNode("c", "")); err != nil {
		t.Fatal(err)
	}
	waitCIDR(t, ctx, c, "c", "10.9.1.0/24")
	if err := c.Create(ctx, bareNode("d", "")); err != nil {
		t.Fatal(err)
	}
	e = waitEvent(t, ctx, c, "d", ReasonCIDRAssignmentFailed)
	if e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, "10.9.0.0/23") {
		t.Errorf("CIDRAssignmentFailed event: type %s, message %q; want Warning naming the cluster CIDR", e.Type, e.Message)
	}
	all, err := nodeCIDRsNow(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if all["d"] != "" || all["b-overlap"] != "10.9.0.128/25" || all["a-first"] != "10.9.0.0/24" {
		t.Errorf("pod CIDRs %v: want d without, a-first and b-overlap as created", all)
	}
	for _, ev := range []string{"a-first", "c"} {
		var list corev1.EventList
		if err := c.List(ctx, metav1.NamespaceDefault, &list, client.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, e := range list.Items {
			if e.InvolvedObject.Name == ev && e.Type == corev1.EventTypeWarning {
				t.Errorf("unexpected warning about %s: %s %s", ev, e.Reason, e.Message)
			}
		}
	}
	// Retry is an hour: only the deletion can give d a range in time.
	if _, err := c.Delete(ctx, bareNode("c", ""), nil); err != nil {
		t.Fatal(err)
	}
	waitCIDR(t, ctx, c, "d", "10.9.1.0/24")
}
