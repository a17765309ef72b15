package multinode

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
)

// TestPartitionStatefulSet: issue 6, "partition a node → no StatefulSet
// identity ever runs twice, and all workloads converge after heal". A
// StatefulSet db (3 replicas, one per node) runs; the host of db-1 is cut
// off the lab network (control plane and gossip unreachable) while its
// agent and containerd keep running. Its agent must stop db-1 once its
// Lease has expired (fencing) before the control plane lets the
// StatefulSet start db-1 elsewhere; a checker looks at the real processes
// of every host every 200 ms and fails the test the moment one ordinal
// runs on two hosts. After the heal the stale db-1 must stay gone and the
// cluster converge: db-0..2 Running once each, the node Ready, untainted.
func TestPartitionStatefulSet(t *testing.T) {
	requireHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := startCluster(t, ctx)

	// Each db container's main process carries an argument naming the run
	// and its pod (the pod's hostname is its name), so the checker can
	// tell the pods apart from /proc, on whichever host they run.
	marker := "skpt-" + c.lab.ID() + "-"
	chk := startIdentityChecker(ctx, c, marker)
	t.Cleanup(chk.stop) // before the cluster's cleanup (LIFO)

	// db-0 and db-1 go to node-b and node-c (node-a, which shares h1 with
	// the server, is cordoned: cutting h1 would cut the control plane
	// off); db-2 then goes to node-a, by the preferred anti-affinity.
	manifest := filepath.Join(c.dir, "db.yaml")
	if err := os.WriteFile(manifest, []byte(dbManifest(marker)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.setUnschedulable(ctx, "node-a", true)
	c.mustSkiff(ctx, "apply", "-f", manifest)
	c.waitPodRunning(ctx, "db-0", 3*time.Minute)
	db1 := c.waitPodRunning(ctx, "db-1", 3*time.Minute)
	c.setUnschedulable(ctx, "node-a", false)
	c.mustSkiff(ctx, "scale", "statefulset", "db", "--replicas=3")
	c.waitPodRunning(ctx, "db-2", 3*time.Minute)
	placed := c.waitDBConverged(ctx, chk, "", time.Minute)
	t.Logf("db placed: %s; the checker sees the same processes: %s", describePods(placed), chk.latest())
	if nodes := podNodes(placed); len(nodes) != 3 {
		t.Fatalf("db pods not spread over the 3 nodes (preferred pod anti-affinity, spreading): %s", describePods(placed))
	}
	var victim *agent
	for _, a := range c.agents[1:] {
		if a.name == db1.Spec.NodeName {
			victim = a
		}
	}
	if victim == nil {
		t.Fatalf("db-1 on %q: want node-b or node-c (node-a was cordoned)", db1.Spec.NodeName)
	}
	oldUID := db1.UID

	// The cut. The victim's agent, containerd and db-1 keep running.
	t0 := time.Now()
	if err := victim.host.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("cut %s (%s, %s) off at %s; db-1 uid %s runs there; node-loss detection: %s",
		victim.host.Name, victim.host.IP, victim.name, t0.UTC().Format("15:04:05.000"), oldUID, c.tuning)

	tl := &timeline{t0: t0}
	chk.setTimeline(tl)
	var replacement corev1.Pod
	err := pollUntil(ctx, 4*time.Minute, func() (bool, error) {
		chk.failIfDoubleRun(t)
		if !tl.has("node not Ready") {
			var n corev1.Node
			if err := c.client.Get(ctx, "", victim.name, &n); err == nil && nodeReady(&n) != corev1.ConditionTrue {
				tl.add("node not Ready", fmt.Sprintf("%s Ready=%s, taints %v", victim.name, nodeReady(&n), taintKeys(&n)))
			}
		}
		if !tl.has("fenced") {
			if at, ok := chk.goneSince("db-1", victim.name, t0); ok {
				tl.addAt(at, "fenced", "db-1's process gone from "+victim.name+" (checker)")
			}
		}
		var p corev1.Pod
		err := c.client.Get(ctx, "default", "db-1", &p)
		switch {
		case err != nil && !client.IsNotFound(err):
			return false, err
		case err == nil && p.UID == oldUID:
			if p.DeletionTimestamp != nil && !tl.has("evicted") {
				tl.add("evicted", "db-1 on "+victim.name+" marked for deletion (Terminating)")
			}
			return false, fmt.Errorf("db-1 is still the old pod on %s (deleting: %v)", p.Spec.NodeName, p.DeletionTimestamp != nil)
		}
		if !tl.has("force-deleted") {
			tl.add("force-deleted", "old db-1 "+string(oldUID)+" gone from the API")
		}
		if err != nil {
			return false, fmt.Errorf("no db-1 after the old one was deleted: %v", err)
		}
		if !tl.has("recreated") {
			tl.add("recreated", fmt.Sprintf("new db-1 %s, node %q", p.UID, p.Spec.NodeName))
		}
		if p.Spec.NodeName == victim.name {
			return false, fmt.Errorf("new db-1 scheduled to the cut-off node %s", victim.name)
		}
		if !podReady(&p) {
			return false, fmt.Errorf("new db-1 on %q: %s", p.Spec.NodeName, p.Status.Phase)
		}
		if !slices.Contains(chk.latestOf("db-1"), p.Spec.NodeName) {
			return false, fmt.Errorf("new db-1 Running on %s in the API, its process not seen there yet", p.Spec.NodeName)
		}
		tl.add("running elsewhere", "new db-1 Running and Ready on "+p.Spec.NodeName+", its process seen there")
		replacement = p
		return true, nil
	})
	chk.failIfDoubleRun(t)
	if err != nil {
		c.dumpState(ctx)
		t.Fatalf("db-1 not replaced on another node after the cut of %s: %v\ntimeline so far:\n%s", victim.name, err, tl)
	}
	if !tl.has("fenced") {
		t.Fatalf("the checker still sees db-1 on %s while the new db-1 runs on %s (the double run check did not fire: checker broken?)\n%s",
			victim.name, replacement.Spec.NodeName, tl)
	}
	replacedIn := time.Since(t0)
	t.Logf("db-1 Running on %s %v after the cut of %s", replacement.Spec.NodeName, replacedIn.Round(100*time.Millisecond), victim.name)

	// The heal: the stale db-1 must not come back on the victim.
	if err := victim.host.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	healedAt := time.Now()
	tl.add("heal", "link of "+victim.host.Name+" up")
	c.waitNodeClean(ctx, chk, victim.name, healedAt, 3*time.Minute)
	final := c.waitDBConverged(ctx, chk, victim.name, 3*time.Minute)
	tl.add("converged", describePods(final)+"; "+victim.name+" Ready, untainted, Lease renewed; processes "+chk.latest())
	// Converged stays converged: the stale pod comes back neither on the
	// agent's next full resync nor after it.
	hold := time.Now().Add(5 * time.Second)
	for time.Now().Before(hold) {
		chk.failIfDoubleRun(t)
		seen := chk.latestAll()
		for _, p := range final {
			if got := seen[p.Name]; len(got) != 1 || got[0] != p.Spec.NodeName {
				t.Fatalf("after convergence %s runs on %v, want only %s (processes %v)\n%s", p.Name, got, p.Spec.NodeName, seen, tl)
			}
		}
		if len(seen) != len(final) {
			t.Fatalf("after convergence the processes of %v run, want those of %s\n%s", seen, describePods(final), tl)
		}
		time.Sleep(200 * time.Millisecond) // a sampling period, to look again
	}
	chk.stop()
	chk.failIfDoubleRun(t)
	if err := chk.err(); err != nil {
		t.Fatal(err)
	}

	tl.fromLogs(c, victim)
	t.Logf("timeline (from the cut):\n%s", tl)
	fmt.Printf("FIGURE partition of %s with db-1 (StatefulSet, grace %ds, Lease 40s): db-1 Running on %s %v after the cut (fenced on the isolated node after %v), converged %v after the heal; %s; no ordinal ever ran on two hosts (%d samples of every host's processes, longest gap %v)\n",
		victim.name, dbGraceSeconds, replacement.Spec.NodeName, replacedIn.Round(100*time.Millisecond),
		tl.since("fenced"), tl.between("heal", "converged"), c.tuning, chk.samples(), chk.maxGap().Round(10*time.Millisecond))
}

// dbGraceSeconds is the db pods' termination grace: the control plane
// holds a fenced pod for it on top of 1.5 Lease durations.
const dbGraceSeconds = 3

// dbManifest is a headless Service and a StatefulSet db of 2 replicas
// (scaled to 3 later) of the busybox image, spread by a preferred pod
// anti-affinity (preferred, so that db-1 can move to a node that already
// runs another ordinal). The main process is `sh -c SCRIPT <marker><pod>`:
// its own command line names the pod.
func dbManifest(marker string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector:
    app: db
  ports:
    - port: 8080
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels:
      app: db
  template:
    metadata:
      labels:
        app: db
    spec:
      terminationGracePeriodSeconds: %d
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    app: db
      containers:
        - name: db
          image: skiff.local/busybox:latest
          command:
            - sh
            - -c
            - >-
              exec sh -c 'trap "exit 0" TERM; while :; do sleep 1; done' %s$(hostname)
`, dbGraceSeconds, marker)
}

func podNodes(pods []corev1.Pod) map[string]bool {
	m := map[string]bool{}
	for _, p := range pods {
		m[p.Spec.NodeName] = true
	}
	return m
}

func taintKeys(n *corev1.Node) []string {
	var out []string
	for _, t := range n.Spec.Taints {
		out = append(out, t.Key+":"+string(t.Effect))
	}
	return out
}

// waitNodeClean waits until node is Ready with none of the node lifecycle
// controller's taints, and its agent has renewed its Lease after healed
// (so it no longer holds itself fenced: its pods may run again).
func (c *cluster) waitNodeClean(ctx context.Context, chk *identityChecker, node string, healed time.Time, timeout time.Duration) {
	c.t.Helper()
	c.poll(ctx, timeout, node+" Ready and untainted after the heal", func() (bool, error) {
		chk.failIfDoubleRun(c.t)
		for _, a := range c.agents {
			if a.name == node && a.proc.exited() {
				c.t.Fatalf("agent %s exited (log %s)", a.name, a.logPath)
			}
		}
		var n corev1.Node
		if err := c.client.Get(ctx, "", node, &n); err != nil {
			return false, err
		}
		var l coordinationv1.Lease
		if err := c.client.Get(ctx, corev1.NamespaceNodeLease, node, &l); err != nil {
			return false, err
		}
		renewed := l.Spec.RenewTime != nil && l.Spec.RenewTime.After(healed)
		return nodeReady(&n) == corev1.ConditionTrue && len(n.Spec.Taints) == 0 && renewed,
			fmt.Errorf("Ready=%s, taints %v, Lease renewed since the heal: %v", nodeReady(&n), taintKeys(&n), renewed)
	})
}

// waitDBConverged waits until db-0, db-1 and db-2 exist once each, none
// being deleted, all Running and Ready, and the checker sees each one's
// process on exactly the node the API binds it to, and nowhere else; avoid
// (if not "") must run none. It returns the pods.
func (c *cluster) waitDBConverged(ctx context.Context, chk *identityChecker, avoid string, timeout time.Duration) []corev1.Pod {
	c.t.Helper()
	var pods []corev1.Pod
	c.poll(ctx, timeout, "db-0, db-1, db-2 Running once each, their processes where the API says", func() (bool, error) {
		chk.failIfDoubleRun(c.t)
		var err error
		if pods, err = c.pods(ctx, "app=db"); err != nil {
			return false, err
		}
		if len(pods) != 3 {
			return false, fmt.Errorf("%d db pods: %s", len(pods), describePods(pods))
		}
		seen := chk.latestAll()
		for i := range pods {
			p := &pods[i]
			if p.DeletionTimestamp != nil || !podReady(p) {
				return false, fmt.Errorf("not all Running and Ready: %s", describePods(pods))
			}
			if got := seen[p.Name]; len(got) != 1 || got[0] != p.Spec.NodeName {
				return false, fmt.Errorf("%s bound to %s, its process seen on %v", p.Name, p.Spec.NodeName, got)
			}
			if p.Spec.NodeName == avoid {
				return false, fmt.Errorf("%s on %s", p.Name, avoid)
			}
		}
		if len(seen) != 3 {
			return false, fmt.Errorf("processes of %v running, want db-0..2 only", seen)
		}
		return true, nil
	})
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return pods
}

// dumpState logs the pods and nodes as the API has them.
func (c *cluster) dumpState(ctx context.Context) {
	pods, _ := c.skiff(ctx, "get", "pods", "-o", "wide")
	nodes, _ := c.skiff(ctx, "get", "nodes")
	c.t.Logf("pods:\n%s\nnodes:\n%s", pods, nodes)
}

// identityChecker samples, every 200 ms, which db-N processes run on which
// host: every process of the machine whose command line carries the
// run's marker, attributed to a node by its cgroup (each agent has its
// own cgroup parent). It records every sample in which one ordinal runs on
// two nodes.
type identityChecker struct {
	marker  *regexp.Regexp
	parents map[string]string // "/<cgroup parent>/" → node
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	last    map[string][]string // pod → nodes, in the latest sample
	lastAt  time.Time
	n       int
	gap     time.Duration
	doubles []string
	scanErr error
	tl      *timeline
	logs    []string // server and agent logs, for the report
	// seen is, per pod and node, the last sample that saw the process.
	seen map[podNode]time.Time
}

type podNode struct{ pod, node string }

func startIdentityChecker(ctx context.Context, c *cluster, marker string) *identityChecker {
	ctx, cancel := context.WithCancel(ctx)
	chk := &identityChecker{
		marker:  regexp.MustCompile("^" + regexp.QuoteMeta(marker) + `(db-[0-9]+)$`),
		parents: map[string]string{},
		cancel:  cancel,
		done:    make(chan struct{}),
		seen:    map[podNode]time.Time{},
	}
	chk.logs = append(chk.logs, filepath.Join(c.logDir, "server.log"))
	for _, a := range c.agents {
		chk.parents["/"+a.cgroupParent+"/"] = a.name
		chk.logs = append(chk.logs, a.logPath)
	}
	go chk.run(ctx)
	return chk
}

func (chk *identityChecker) run(ctx context.Context) {
	defer close(chk.done)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		running, err := chk.scan()
		now := time.Now()
		chk.mu.Lock()
		if err != nil && chk.scanErr == nil {
			chk.scanErr = fmt.Errorf("identity checker: %w", err)
		}
		if !chk.lastAt.IsZero() {
			chk.gap = max(chk.gap, now.Sub(chk.lastAt))
		}
		chk.last, chk.lastAt = running, now
		chk.n++
		for pod, nodes := range running {
			for _, n := range nodes {
				chk.seen[podNode{pod, n}] = now
			}
			if len(nodes) > 1 {
				chk.doubles = append(chk.doubles, fmt.Sprintf("%s: %s runs on %v at once", now.UTC().Format("15:04:05.000"), pod, nodes))
			}
		}
		chk.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// scan reads every process's command line, and the cgroup of those that
// carry the marker.
func (chk *identityChecker) scan() (map[string][]string, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no process in /proc")
	}
	out := map[string][]string{}
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue // gone since the listing
		}
		pod := ""
		for _, arg := range strings.Split(string(b), "\x00") {
			if m := chk.marker.FindStringSubmatch(arg); m != nil {
				pod = m[1]
			}
		}
		if pod == "" {
			continue
		}
		node, err := chk.nodeOf(d + "/cgroup")
		if err != nil {
			if _, serr := os.Stat(d); serr != nil {
				continue // exited meanwhile
			}
			node = "unknown (pid " + filepath.Base(d) + ": " + err.Error() + ")"
		}
		if !slices.Contains(out[pod], node) {
			out[pod] = append(out[pod], node)
			slices.Sort(out[pod])
		}
	}
	return out, nil
}

// nodeOf finds the agent whose cgroup parent holds the process.
func (chk *identityChecker) nodeOf(cgroupFile string) (string, error) {
	f, err := os.Open(cgroupFile)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		for parent, node := range chk.parents {
			if strings.Contains(sc.Text(), parent) {
				return node, nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("in no agent's cgroup: %s", strings.Join(lines, " "))
}

func (chk *identityChecker) stop() {
	chk.cancel()
	<-chk.done
}

// failIfDoubleRun fails the test if any sample saw an ordinal on two
// hosts. Before it does, it watches up to 15 s more to tell how long the
// double run lasted, and it adds the timeline and what the logs say of
// the fence and of the pod.
func (chk *identityChecker) failIfDoubleRun(t *testing.T) {
	t.Helper()
	chk.mu.Lock()
	n := len(chk.doubles)
	chk.mu.Unlock()
	if n == 0 {
		return
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && chk.latestHasDouble(); {
		select {
		case <-chk.done:
			deadline = time.Time{}
		case <-time.After(200 * time.Millisecond): // the checker's next sample
		}
	}
	chk.mu.Lock()
	doubles := slices.Clone(chk.doubles)
	ongoing := ""
	if chk.lastHasDoubleLocked() {
		ongoing = " (still so at the last sample)"
	}
	tl := chk.tl
	chk.mu.Unlock()
	tlText := "(before the cut)"
	if tl != nil {
		tlText = tl.String()
	}
	t.Fatalf("a StatefulSet identity ran on two hosts at once in %d samples%s:\n  first %s\n  last  %s\ntimeline:\n%slog lines about the fence and db-1 (after the cut):\n%s",
		len(doubles), ongoing, doubles[0], doubles[len(doubles)-1], tlText, chk.logExcerpt())
}

func (chk *identityChecker) latestHasDouble() bool {
	chk.mu.Lock()
	defer chk.mu.Unlock()
	return chk.lastHasDoubleLocked()
}

func (chk *identityChecker) lastHasDoubleLocked() bool {
	for _, nodes := range chk.last {
		if len(nodes) > 1 {
			return true
		}
	}
	return false
}

// setTimeline gives the checker the partition's timeline, for its report.
func (chk *identityChecker) setTimeline(tl *timeline) {
	chk.mu.Lock()
	defer chk.mu.Unlock()
	chk.tl = tl
}

// logExcerpt is the lines of the server's and agents' logs, since the
// cut, about fencing, Lease renewal and db-1.
func (chk *identityChecker) logExcerpt() string {
	chk.mu.Lock()
	tl := chk.tl
	chk.mu.Unlock()
	var since time.Time
	if tl != nil {
		since = tl.t0
	}
	var out []string
	for _, path := range chk.logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, "fence") && !strings.Contains(l, "lease renewed") && !strings.Contains(l, "db-1") {
				continue
			}
			if m := logTimeRE.FindStringSubmatch(l); m != nil {
				if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && at.Before(since) {
					continue
				}
			}
			out = append(out, "  "+filepath.Base(path)+": "+l)
		}
	}
	return strings.Join(out, "\n")
}

func (chk *identityChecker) err() error {
	chk.mu.Lock()
	defer chk.mu.Unlock()
	return chk.scanErr
}

func (chk *identityChecker) latestAll() map[string][]string {
	chk.mu.Lock()
	defer chk.mu.Unlock()
	out := map[string][]string{}
	for k, v := range chk.last {
		out[k] = slices.Clone(v)
	}
	return out
}

func (chk *identityChecker) latestOf(pod string) []string {
	return chk.latestAll()[pod]
}

func (chk *identityChecker) latest() string {
	m := chk.latestAll()
	var s []string
	for pod, nodes := range m {
		s = append(s, pod+" on "+strings.Join(nodes, ","))
	}
	slices.Sort(s)
	return "[" + strings.Join(s, "; ") + "]"
}

// goneSince reports when pod's process was last seen on node, if it is
// not there any more and was seen there after since.
func (chk *identityChecker) goneSince(pod, node string, since time.Time) (time.Time, bool) {
	chk.mu.Lock()
	defer chk.mu.Unlock()
	if slices.Contains(chk.last[pod], node) {
		return time.Time{}, false
	}
	at, ok := chk.seen[podNode{pod, node}]
	if !ok || at.Before(since) {
		return since, ok
	}
	return at, true
}

func (chk *identityChecker) samples() int {
	chk.mu.Lock()
	defer chk.mu.Unlock()
	return chk.n
}

func (chk *identityChecker) maxGap() time.Duration {
	chk.mu.Lock()
	defer chk.mu.Unlock()
	return chk.gap
}

// timeline is the partition's events, from the cut.
type timeline struct {
	t0     time.Time
	mu     sync.Mutex
	events []tlEvent
}

type tlEvent struct {
	at         time.Time
	name, what string
}

func (tl *timeline) add(name, what string) { tl.addAt(time.Now(), name, what) }

func (tl *timeline) addAt(at time.Time, name, what string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, tlEvent{at, name, what})
	slices.SortStableFunc(tl.events, func(a, b tlEvent) int { return a.at.Compare(b.at) })
}

func (tl *timeline) find(name string) (time.Time, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, e := range tl.events {
		if e.name == name {
			return e.at, true
		}
	}
	return time.Time{}, false
}

func (tl *timeline) has(name string) bool { _, ok := tl.find(name); return ok }

func (tl *timeline) since(name string) time.Duration {
	at, ok := tl.find(name)
	if !ok {
		return -1
	}
	return at.Sub(tl.t0).Round(100 * time.Millisecond)
}

func (tl *timeline) between(from, to string) time.Duration {
	a, ok1 := tl.find(from)
	b, ok2 := tl.find(to)
	if !ok1 || !ok2 {
		return -1
	}
	return b.Sub(a).Round(100 * time.Millisecond)
}

func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "  %8s  %-28s %s\n", "+0s", "cut", tl.t0.UTC().Format("15:04:05.000"))
	for _, e := range tl.events {
		fmt.Fprintf(&b, "  %8s  %-28s %s\n", "+"+e.at.Sub(tl.t0).Round(100*time.Millisecond).String(), e.name, e.what)
	}
	return b.String()
}

// logTimeRE is the time of a slog text line.
var logTimeRE = regexp.MustCompile(`^time=(\S+)`)

// fromLogs adds the agent's own word on fencing and the controller's
// force deletion, from their logs, to the timeline.
func (tl *timeline) fromLogs(c *cluster, victim *agent) {
	find := func(path, what string, also ...string) {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
	lines:
		for sc.Scan() {
			l := sc.Text()
			if !strings.Contains(l, what) {
				continue
			}
			for _, a := range also {
				if !strings.Contains(l, a) {
					continue lines
				}
			}
			m := logTimeRE.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil || at.Before(tl.t0) {
				continue
			}
			tl.addAt(at, "log: "+what, filepath.Base(path))
			return
		}
	}
	find(victim.logPath, "lease not renewed for longer than its duration")
	find(victim.logPath, "lease renewed again")
	find(filepath.Join(c.logDir, "server.log"), "deleted fenced pod of an unreachable node", "default/db-1")
}
