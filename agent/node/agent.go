package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/images"
	"github.com/skiffhq/skiff/agent/podworker"
	"github.com/skiffhq/skiff/agent/runtime"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/netproxy"
)

// Agent is a running node agent.
type Agent struct {
	cfg            Config
	log            *slog.Logger
	daemon         *containerd.Daemon
	rt             *runtime.Runtime
	mgr            *podworker.Manager
	pods           *client.Informer
	recorder       *client.EventRecorder
	nodeIP         string
	nodeUID        types.UID
	podCIDR        string
	runtimeVersion string
	streamPort     int32  // of the log/exec endpoint, 0 without one
	certSHA256     string // of its serving certificate
	stopStreams    func()
	proxy          *netproxy.Proxier // nil without Config.Proxy
	dnsIP          string            // cluster DNS for pods' resolv.conf, "" without Config.DNS
	hostResolv     []byte
	ingressAddrs   []string      // where the Ingress router listens, nil without Config.Ingress
	volumes        *localVolumes // local persistent volumes (volumes.go)

	hb    heartbeatState // the Lease and gossip (lease.go, gossip.go)
	fence fenceState     // pods revoked by the control plane (lease.go)

	mu             sync.Mutex
	lastNodeStatus corev1.NodeStatus
	statuses       map[types.UID]*pendingStatus // written by the status writers
	inflight       map[types.UID]bool           // statuses being written now
	statusOrder    []types.UID
	events         chan pendingEvent

	kickSync   chan struct{}
	newPods    atomic.Bool           // the informer added a pod since the last sync
	copies     map[types.UID]podCopy // the workers' pods, by syncPods only
	kickStatus chan struct{}
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

// podCopy is the copy of a pod handed to the workers, at a resourceVersion.
type podCopy struct {
	resourceVersion string
	pod             *corev1.Pod
}

type pendingStatus struct {
	namespace, name string
	status          corev1.PodStatus
}

type pendingEvent struct {
	pod                        *corev1.Pod
	eventType, reason, message string
}

// Start checks the host, opens (or adopts) containerd, registers the Node,
// makes sure the pause image is present, adopts the pods already running,
// and starts watching the pods bound to the node. It returns once the pod
// informer has synced and the first sync has been handed to the workers.
func Start(ctx context.Context, cfg Config) (_ *Agent, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("node", cfg.Name)
	bin := cfg.ContainerdBinary
	if cfg.ContainerdSocket != "" {
		bin = "" // someone else's daemon: only runc and CNI are ours to check
	}
	if err := containerd.CheckHost(bin, cfg.CNIBinDir); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: log, nodeIP: cfg.NodeIP, statuses: map[types.UID]*pendingStatus{},
		inflight: map[types.UID]bool{},
		events:   make(chan pendingEvent, 1024), kickSync: make(chan struct{}, 1), kickStatus: make(chan struct{}, 1)}
	if a.nodeIP == "" {
		a.nodeIP = detectNodeIP()
	}
	defer func() {
		if err != nil {
			// Goroutines started on runCtx (informers, the ingress router
			// and its ports) stop before Start returns.
			if a.cancel != nil {
				a.cancel()
				a.wg.Wait()
			}
			a.closeResources()
		}
	}()

	dcfg := containerd.DefaultConfig(cfg.DataDir)
	dcfg.Socket = cfg.ContainerdSocket
	if cfg.ContainerdBinary != "" {
		dcfg.Binary = cfg.ContainerdBinary
	}
	start := time.Now()
	if a.daemon, err = containerd.Open(ctx, dcfg); err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	log.Info("containerd ready", "address", a.daemon.Address(), "pid", a.daemon.PID(), "adopted", a.daemon.Adopted(),
		"took", time.Since(start).Round(time.Millisecond))
	if v, err := a.daemon.Client().Version(ctx); err == nil {
		a.runtimeVersion = "containerd://" + v.Version
	}

	var serveStreams func()
	if len(cfg.ClusterCA) > 0 {
		if serveStreams, a.stopStreams, err = a.startStreams(); err != nil {
			return nil, err
		}
	} else {
		log.Warn("no cluster CA given: the log and exec endpoint is off (skiff logs/exec will not reach this node)")
	}
	node, err := a.register(ctx)
	if err != nil {
		return nil, err
	}
	a.nodeUID, a.podCIDR = node.UID, node.Spec.PodCIDR
	log.Info("node registered", "podCIDR", a.podCIDR, "ip", a.nodeIP)

	rcfg := runtime.DefaultConfig(cfg.DataDir, a.podCIDR)
	rcfg.Namespace = dcfg.Namespace
	rcfg.BridgeName, rcfg.CgroupParent = cfg.BridgeName, cfg.CgroupParent
	rcfg.CNIBinDir = cfg.CNIBinDir
	rcfg.LoggerBinary = cfg.LoggerBinary
	rcfg.NodeIP = a.nodeIP
	// No masquerading: Debian's bridge plugin (1.1.1) leaves its ipMasq
	// rules behind on CNI DEL here, and pods need only the node and each
	// other (no registry is reachable anyway).
	rcfg.IPMasq = false
	if err := a.writeState(); err != nil {
		return nil, err
	}
	if err := a.ensurePauseImage(ctx, rcfg.PauseImage); err != nil {
		return nil, err
	}
	if a.rt, err = runtime.New(ctx, a.daemon.Client(), rcfg); err != nil {
		return nil, err
	}
	a.recorder = client.NewEventRecorder(cfg.Client, "kubelet", cfg.Name)
	a.volumes = newLocalVolumes(cfg.Client, cfg.Name, filepath.Join(cfg.DataDir, "volumes"), log, a.claimInUse)
	a.volumes.event = a.recorder.Event
	a.mgr = podworker.New(a.rt, podworker.Config{
		NodeIP:     a.nodeIP,
		Resync:     time.Second,
		IdleResync: 10 * time.Second,
		Resolve: func(ctx context.Context, pod *corev1.Pod) (runtime.PodInput, error) {
			// Claims first: as the kubelet, volumes are mounted before
			// the containers' configuration is looked at.
			paths, verr := a.volumes.resolveClaims(ctx, pod)
			in, err := Resolve(ctx, cfg.Client, pod)
			in.ResolvConf = a.resolvConf(pod)
			in.VolumePaths = paths
			if verr != nil {
				err = fmt.Errorf("%w: MountVolume.SetUp failed for %w", podworker.ErrVolumesNotReady, verr)
			}
			return in, err
		},
		Images:      containerd.NodeImages{Daemon: a.daemon, Registries: containerd.Registries{Insecure: cfg.InsecureRegistries}},
		PullSecrets: PullSecrets(cfg.Client),
		OnStatus:    a.queueStatus,
		OnEvent:     a.queueEvent,
		OnRemoved:   func(*corev1.Pod) { a.kick() },
		Log:         log,
	})

	if err := a.heartbeat(ctx); err != nil {
		return nil, fmt.Errorf("first node status: %w", err)
	}
	a.pods, err = client.NewInformer(cfg.Client, "", &corev1.Pod{},
		client.ListOptions{FieldSelector: "spec.nodeName=" + cfg.Name}, 0)
	if err != nil {
		return nil, err
	}
	a.pods.AddHandler(client.Handler{
		OnAdd:    func(k8sruntime.Object) { a.newPods.Store(true); a.kick() },
		OnUpdate: func(_, _ k8sruntime.Object) { a.kick() },
		OnDelete: func(k8sruntime.Object) { a.kick() },
	})

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.goRun(func() {
		if err := a.pods.Run(runCtx); err != nil && runCtx.Err() == nil {
			log.Error("pod informer stopped", "err", err)
		}
	})
	// Before the first sync: pods get the cluster DNS in their resolv.conf.
	if err := a.startNetwork(ctx, runCtx); err != nil {
		return nil, err
	}
	if !a.pods.WaitForSync(ctx) {
		return nil, fmt.Errorf("pods of node %s: informer did not sync: %w", cfg.Name, ctx.Err())
	}
	// Only now may the first sync run: before the informer has synced,
	// an empty desired set would remove every running pod.
	a.syncPods(runCtx, true)
	if serveStreams != nil {
		a.goRun(serveStreams)
	}
	a.goRun(func() { a.syncLoop(runCtx) })
	a.goRun(func() { a.heartbeatLoop(runCtx) })
	if cfg.Gossip != nil {
		a.goRun(func() { a.runGossip(runCtx) })
	}
	for i := 0; i < cfg.StatusWriters; i++ {
		a.goRun(func() { a.statusWriter(runCtx) })
	}
	a.goRun(func() { a.eventWriter(runCtx) })
	a.goRun(func() { a.volumes.reclaimLoop(runCtx, 3*time.Second) })
	if cfg.ContainerdSocket == "" {
		a.goRun(func() {
			a.daemon.Supervise(runCtx, 2*time.Second, func(pid int, err error) {
				if err != nil {
					log.Error("containerd died and could not be restarted", "err", err)
					return
				}
				log.Warn("containerd died; restarted it", "pid", pid)
				a.kick()
			})
		})
	}
	log.Info("agent running")
	return a, nil
}

func (a *Agent) goRun(f func()) {
	a.wg.Add(1)
	go func() { defer a.wg.Done(); f() }()
}

// ensurePauseImage imports the busybox test image (the pause image) built
// from the host's busybox-static when containerd does not have it: the
// node needs no registry to run its sandboxes.
func (a *Agent) ensurePauseImage(ctx context.Context, ref string) error {
	ok, err := a.daemon.HasImage(ctx, ref)
	if err != nil || ok {
		return err
	}
	shell, _, err := images.TestImages(images.DefaultBusybox)
	if err != nil {
		return fmt.Errorf("pause image %s is missing and cannot be built: %w (apt-get install -y busybox-static)", ref, err)
	}
	var buf bytes.Buffer
	if err := images.WriteLayout(&buf, shell); err != nil {
		return err
	}
	if _, err := a.daemon.ImportImage(ctx, &buf); err != nil {
		return fmt.Errorf("importing pause image %s: %w", ref, err)
	}
	a.log.Info("pause image imported", "image", ref)
	return nil
}

// Runtime is the agent's pod runtime.
func (a *Agent) Runtime() *runtime.Runtime { return a.rt }

// Daemon is the agent's containerd.
func (a *Agent) Daemon() *containerd.Daemon { return a.daemon }

// PodCIDR is the node's pod range.
func (a *Agent) PodCIDR() string { return a.podCIDR }

// NodeIP is the node's address.
func (a *Agent) NodeIP() string { return a.nodeIP }

// Close stops the agent: workers, watches, writers. Pods and the private
// containerd keep running; a new agent on the same data dir adopts them.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		if a.stopStreams != nil {
			a.stopStreams()
			a.stopStreams = nil
		}
		if a.cancel != nil {
			a.cancel()
		}
		if a.mgr != nil {
			a.mgr.Close()
		}
		a.wg.Wait()
		a.closeResources()
	})
	return nil
}

func (a *Agent) closeResources() {
	if a.stopStreams != nil {
		a.stopStreams()
		a.stopStreams = nil
	}
	if a.rt != nil {
		_ = a.rt.Close()
	}
	if a.daemon != nil {
		_ = a.daemon.Close()
	}
}

func (a *Agent) kick() {
	select {
	case a.kickSync <- struct{}{}:
	default:
	}
}

// syncLoop hands the desired pods to the workers on every change and every
// Resync.
//
// A change is handed over at once when none was in the last syncSpacing,
// and a new pod always is; within a burst (a hundred pods starting: each
// of their status writes comes back through the informer as a change) the
// other changes are gathered and handed over together every syncSpacing.
// Every sync hands the manager every pod of the node, so syncing on each
// event of a burst costs O(pods) per event.
func (a *Agent) syncLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Resync)
	defer t.Stop()
	var last time.Time
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			full = true
		case <-a.kickSync:
			// A new pod is never held back: its start is the latency
			// that counts.
			if wait := syncSpacing - time.Since(last); wait > 0 && !a.newPods.Load() {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				// Kicks of the wait are covered: syncPods reads the
				// informer after them.
				select {
				case <-a.kickSync:
				default:
				}
			}
		}
		last = time.Now()
		a.newPods.Store(false) // this sync's List sees them
		a.syncPods(ctx, full)
	}
}

// syncSpacing is the least time between two syncs started by changes.
const syncSpacing = 100 * time.Millisecond

// syncPods is one level-triggered step: the pods bound to this node, as
// the informer has them, become the workers' desired set; pods being
// deleted whose containers are gone are deleted for good. full also scans
// containerd for pods nobody asks for (at Resync, not on every change: it
// lists every container).
func (a *Agent) syncPods(ctx context.Context, full bool) {
	objs := a.pods.List(labels.Everything())
	fenced := a.Fenced()
	desired := make([]*corev1.Pod, 0, len(objs))
	copies := make(map[types.UID]podCopy, len(objs))
	for _, o := range objs {
		p := o.(*corev1.Pod)
		if p.Spec.NodeName != a.cfg.Name {
			continue
		}
		if !a.mayRun(p, fenced) {
			continue // fenced or revoked: stopped like a deleted pod (lease.go)
		}
		// The workers get their own copy (never the informer's object),
		// made again only when the pod changed.
		c, ok := a.copies[p.UID]
		if !ok || c.resourceVersion != p.ResourceVersion {
			c = podCopy{resourceVersion: p.ResourceVersion, pod: p.DeepCopy()}
		}
		copies[p.UID] = c
		desired = append(desired, c.pod)
	}
	a.copies = copies
	if full {
		if err := a.mgr.Sync(ctx, desired); err != nil && ctx.Err() == nil {
			a.log.Error("sync pods", "err", err)
		}
		a.reassertStatuses(desired)
	} else {
		a.mgr.Update(desired)
	}
	for _, p := range desired {
		if p.DeletionTimestamp == nil || a.mgr.Active(p.UID) {
			continue
		}
		if _, err := a.rt.PodStatus(ctx, string(p.UID)); !errors.Is(err, runtime.ErrPodNotFound) {
			continue // still on the node (the next sync removes it)
		}
		a.finishDeletion(ctx, p)
	}
}

// reassertStatuses queues the workers' status of every pod whose stored
// status differs from it (someone else wrote it, e.g. the node lifecycle
// controller while the agent was unreachable, or a write was lost), as the
// kubelet's status manager does. Compared as JSON, as the API stores it
// (times to the second).
func (a *Agent) reassertStatuses(pods []*corev1.Pod) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		want, ok := a.mgr.Status(p.UID)
		if !ok {
			continue
		}
		w, err1 := json.Marshal(want)
		g, err2 := json.Marshal(p.Status)
		if err1 == nil && err2 == nil && !bytes.Equal(w, g) {
			a.queueStatus(p, want)
		}
	}
}

// finishDeletion deletes a pod whose containers are gone from the node,
// with grace 0 and its UID as precondition (a new pod of the same name is
// never touched).
func (a *Agent) finishDeletion(ctx context.Context, p *corev1.Pod) {
	zero := int64(0)
	_, err := a.cfg.Client.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}},
		&client.DeleteOptions{GracePeriodSeconds: &zero, PreconditionUID: string(p.UID)})
	switch {
	case err == nil:
		a.log.Info("pod deleted", "pod", p.Namespace+"/"+p.Name)
	case client.IsNotFound(err) || client.IsConflict(err):
	default:
		a.log.Error("finish pod deletion", "pod", p.Namespace+"/"+p.Name, "err", err)
	}
	a.mu.Lock()
	delete(a.statuses, p.UID)
	a.mu.Unlock()
}

// heartbeatLoop renews the node's Lease every HeartbeatInterval (the
// first at once) and writes its status when due (lease.go).
func (a *Agent) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, a.cfg.HeartbeatInterval)
		if err := a.heartbeatTick(hctx); err != nil && ctx.Err() == nil {
			a.log.Error("node heartbeat", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// queueStatus is the workers' OnStatus: it keeps the latest status of each
// pod for the writers and never blocks.
func (a *Agent) queueStatus(pod *corev1.Pod, s corev1.PodStatus) {
	a.mu.Lock()
	if _, ok := a.statuses[pod.UID]; !ok {
		a.statusOrder = append(a.statusOrder, pod.UID)
	}
	a.statuses[pod.UID] = &pendingStatus{namespace: pod.Namespace, name: pod.Name, status: s}
	a.mu.Unlock()
	select {
	case a.kickStatus <- struct{}{}:
	default:
	}
}

// nextStatus takes the oldest pending status; more says others wait.
func (a *Agent) nextStatus() (uid types.UID, ps *pendingStatus, more, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.statusOrder) > 0 {
		uid = a.statusOrder[0]
		a.statusOrder = a.statusOrder[1:]
		if a.inflight[uid] {
			continue // its writer queues it again when done
		}
		if ps, ok = a.statuses[uid]; ok {
			delete(a.statuses, uid)
			a.inflight[uid] = true
			return uid, ps, len(a.statusOrder) > 0, true
		}
	}
	return "", nil, false, false
}

// statusWriter writes pod statuses. The write is unconditional (no
// resourceVersion; the agent owns pod status) with the pod's UID as
// precondition. A failed write is queued again unless a newer status came.
func (a *Agent) statusWriter(ctx context.Context) {
	for {
		uid, ps, more, ok := a.nextStatus()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-a.kickStatus:
			}
			continue
		}
		if more { // wake another writer for the rest
			select {
			case a.kickStatus <- struct{}{}:
			default:
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ps.namespace, Name: ps.name, UID: uid}, Status: ps.status}
		err := a.cfg.Client.UpdateStatus(wctx, p)
		cancel()
		failed := err != nil && !client.IsNotFound(err) && !client.IsConflict(err) && ctx.Err() == nil
		a.mu.Lock()
		delete(a.inflight, uid)
		_, newer := a.statuses[uid]
		if failed && !newer {
			a.statuses[uid] = ps
		}
		if failed || newer {
			a.statusOrder = append(a.statusOrder, uid)
		}
		a.mu.Unlock()
		if newer {
			select {
			case a.kickStatus <- struct{}{}:
			default:
			}
		}
		if failed {
			a.log.Error("write pod status", "pod", ps.namespace+"/"+ps.name, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			select {
			case a.kickStatus <- struct{}{}:
			default:
			}
		}
	}
}

// queueEvent is the workers' OnEvent; events are hints, so a full queue
// drops them rather than block a worker.
func (a *Agent) queueEvent(pod *corev1.Pod, eventType, reason, message string) {
	select {
	case a.events <- pendingEvent{pod: pod, eventType: eventType, reason: reason, message: message}:
	default:
		a.log.Warn("event queue full; dropping event", "pod", pod.Namespace+"/"+pod.Name, "reason", reason)
	}
}

func (a *Agent) eventWriter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-a.events:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := a.recorder.Event(wctx, ev.pod, ev.eventType, ev.reason, ev.message); err != nil && ctx.Err() == nil {
				a.log.Warn("record event", "pod", ev.pod.Namespace+"/"+ev.pod.Name, "reason", ev.reason, "err", err)
			}
			cancel()
		}
	}
}

// stateFile records, in the data dir, what Teardown needs to find the
// node's network and cgroups again. Nothing else reads it: pods are found
// from containerd's labels.
const stateFile = "node.json"

type nodeState struct {
	Name         string `json:"name"`
	PodCIDR      string `json:"podCIDR"`
	BridgeName   string `json:"bridgeName"`
	CgroupParent string `json:"cgroupParent"`
	Socket       string `json:"containerdSocket,omitempty"`
	// Proxy: the service proxy's iptables chains and pod routes are ours
	// to remove.
	Proxy bool `json:"proxy,omitempty"`
}

func (a *Agent) writeState() error {
	b, err := json.MarshalIndent(nodeState{Name: a.cfg.Name, PodCIDR: a.podCIDR, BridgeName: a.cfg.BridgeName,
		CgroupParent: a.cfg.CgroupParent, Socket: a.cfg.ContainerdSocket, Proxy: a.cfg.Proxy}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(a.cfg.DataDir, stateFile), append(b, '\n'), 0o644)
}

// Teardown removes what agents made under dataDir from this host: every
// pod (containers, cgroups, netns, CNI allocations), the bridge, the pod
// cgroup parent, the service proxy's iptables chains and the routes to
// other nodes' pods (when the agent ran the proxy), and stops the private
// containerd; then unmounts anything
// still mounted under dataDir. Images and logs stay in dataDir. The agent
// must not be running.
//
// It leaves nothing: the pods are removed in passes within a budget that
// grows with their number (runtime.TeardownBudget; ctx can only shorten
// it), then the netns and cgroups of any pod not finished are swept and the
// shims of the private containerd killed. The error lists what is still on
// the host.
func Teardown(ctx context.Context, dataDir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return unmountUnder(dataDir)
	} else if err != nil {
		return err
	}
	var st nodeState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("%s: %w", stateFile, err)
	}
	dcfg := containerd.DefaultConfig(dataDir)
	dcfg.Socket = st.Socket
	d, err := containerd.Open(ctx, dcfg)
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	var errs []error
	rcfg := runtime.DefaultConfig(dataDir, st.PodCIDR)
	rcfg.Namespace = dcfg.Namespace
	rcfg.BridgeName, rcfg.CgroupParent = st.BridgeName, st.CgroupParent
	rt, err := runtime.New(ctx, d.Client(), rcfg)
	if err != nil {
		errs = append(errs, err)
	} else {
		// The runtime's Teardown removes the pods a few at a time, in
		// passes, within a budget that grows with their number, then
		// sweeps the netns and cgroups of any it could not finish.
		start := time.Now()
		if err := rt.Teardown(ctx); err != nil {
			errs = append(errs, err)
		}
		log.Info("pods removed", "took", time.Since(start).Round(time.Millisecond))
		_ = rt.Close()
	}
	address := d.Address()
	if st.Socket == "" {
		log.Info("stopping containerd", "pid", d.PID())
		if err := d.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
		// A pod whose task could not be deleted keeps its shim, which
		// outlives the daemon: the shims of our private daemon (its socket
		// is on their command line) go too.
		if pids := shimsOf(address); len(pids) > 0 {
			log.Warn("killing shims left by pods that could not be removed", "pids", pids)
			for _, pid := range pids {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	} else {
		_ = d.Close()
	}
	if err := teardownNetwork(ctx, st); err != nil {
		errs = append(errs, err)
	} else if st.Proxy {
		log.Info("removed the service proxy's iptables chains and the pod routes")
	}
	if err := unmountUnder(dataDir); err != nil {
		errs = append(errs, err)
	}
	if st.Socket == "" {
		if pids := waitNoShims(address, 5*time.Second); len(pids) > 0 {
			errs = append(errs, fmt.Errorf("shims of %s still running: pids %v", address, pids))
		}
	}
	return errors.Join(errs...)
}

// shimsOf lists the containerd shims serving the daemon at address (it is
// on their command line, "-address <socket>").
func shimsOf(address string) []int {
	if address == "" {
		return nil
	}
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-address" && args[i+1] == address {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// waitNoShims waits up to timeout for the shims of address to be gone and
// returns those still there.
func waitNoShims(address string, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		pids := shimsOf(address)
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	if !filepath.IsAbs(dir) || dir == "/" {
		return fmt.Errorf("%w: refusing to unmount under %q", ErrInvalidConfig, dir)
	}
	dir += "/"
	var points []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4]+"/", dir) {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
