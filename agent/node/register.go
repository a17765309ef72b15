package node

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/agent/runtime"
	"github.com/skiffhq/skiff/client"
)

// Well-known Node labels.
const (
	LabelHostname = "kubernetes.io/hostname"
	LabelOS       = "kubernetes.io/os"
	LabelArch     = "kubernetes.io/arch"
)

// Pressure thresholds, as the kubelet's default hard eviction thresholds.
const (
	memoryPressureBytes = 100 << 20 // memory.available < 100Mi
	diskPressureRatio   = 0.10      // nodefs.available < 10%
	pidPressureRatio    = 0.90      // more than 90% of pid_max in use
)

// detectNodeIP is the source address of the default route (no packet is
// sent), else the first non-loopback IPv4, else 127.0.0.1.
func detectNodeIP() string {
	if c, err := net.Dial("udp4", "192.0.2.1:9"); err == nil {
		defer c.Close()
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok && !a.IP.IsUnspecified() {
			return a.IP.String()
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// register creates or updates the agent's Node (labels, pod CIDR) and
// returns it once it has a pod CIDR; the status is written by the first
// heartbeat.
//
// The pod CIDR is --pod-cidr when given. Otherwise it is the one the Node
// already has (an agent restarting keeps its range), or, for a new Node,
// the one the control plane's node IPAM controller assigns: the agent
// registers the Node without one and waits for it (PodCIDRTimeout). The
// agent never picks a range itself, so agents registering at the same
// moment cannot take the same one.
func (a *Agent) register(ctx context.Context) (*corev1.Node, error) {
	c := a.cfg.Client
	// A re-registration (the Node was deleted under a running agent) asks
	// for the range the agent's bridge and pods already use.
	want := a.cfg.PodCIDR
	if want == "" {
		want = a.podCIDR
	}
	var node *corev1.Node
	err := client.RetryOnConflict(ctx, 10, func() error {
		node = &corev1.Node{}
		err := c.Get(ctx, "", a.cfg.Name, node)
		created := false
		if client.IsNotFound(err) {
			node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.Name}}
			created = true
		} else if err != nil {
			return err
		}
		if node.Labels == nil {
			node.Labels = map[string]string{}
		}
		for k, v := range a.cfg.Labels {
			node.Labels[k] = v
		}
		if a.certSHA256 != "" {
			if node.Annotations == nil {
				node.Annotations = map[string]string{}
			}
			node.Annotations[AnnotationAgentCert] = a.certSHA256
		} else {
			delete(node.Annotations, AnnotationAgentCert)
		}
		node.Labels[LabelHostname] = a.cfg.Name
		node.Labels[LabelOS] = goruntime.GOOS
		node.Labels[LabelArch] = goruntime.GOARCH
		if node.Spec.PodCIDR == "" {
			if want != "" {
				node.Spec.PodCIDR, node.Spec.PodCIDRs = want, []string{want}
			}
		} else if want != "" && want != node.Spec.PodCIDR {
			return fmt.Errorf("%w: pod CIDR %s, but node %s already has spec.podCIDR %s (immutable)",
				ErrInvalidConfig, want, a.cfg.Name, node.Spec.PodCIDR)
		}
		if created {
			return c.Create(ctx, node)
		}
		return c.Update(ctx, node)
	})
	if err != nil {
		return nil, fmt.Errorf("registering node %s: %w", a.cfg.Name, err)
	}
	if node.Spec.PodCIDR == "" {
		return a.waitForPodCIDR(ctx, node)
	}
	return node, nil
}

// podCIDRPoll is how often a Node waiting for its pod CIDR is read again.
const podCIDRPoll = 250 * time.Millisecond

// waitForPodCIDR polls the Node until the control plane has set its
// spec.podCIDR, for at most PodCIDRTimeout.
func (a *Agent) waitForPodCIDR(ctx context.Context, node *corev1.Node) (*corev1.Node, error) {
	a.log.Info("waiting for the control plane to assign this node a pod CIDR (skiff server --cluster-cidr)",
		"timeout", a.cfg.PodCIDRTimeout, "resourceVersion", node.ResourceVersion)
	deadline := time.NewTimer(a.cfg.PodCIDRTimeout)
	defer deadline.Stop()
	t := time.NewTicker(podCIDRPoll)
	defer t.Stop()
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("node %s: waiting for a pod CIDR: %w", a.cfg.Name, ctx.Err())
		case <-deadline.C:
			last := ""
			if lastErr != nil {
				last = fmt.Sprintf(" (last read failed: %v)", lastErr)
			}
			return nil, fmt.Errorf("%w: node %s still has no spec.podCIDR after %v%s; the leader's node IPAM controller assigns one from `skiff server --cluster-cidr` (see the server log, and `skiff describe node %s` for a CIDRAssignmentFailed event), or start this agent with --pod-cidr",
				ErrNoPodCIDR, a.cfg.Name, a.cfg.PodCIDRTimeout, last, a.cfg.Name)
		case <-t.C:
		}
		n := &corev1.Node{}
		if err := a.cfg.Client.Get(ctx, "", a.cfg.Name, n); err != nil {
			lastErr = err
			continue
		}
		lastErr = nil
		if n.Spec.PodCIDR != "" {
			a.log.Info("pod CIDR assigned by the control plane", "podCIDR", n.Spec.PodCIDR,
				"resourceVersion", n.ResourceVersion)
			return n, nil
		}
	}
}

// nodeStatus measures the node now. prev supplies the conditions'
// lastTransitionTime when their status did not change.
func (a *Agent) nodeStatus(ctx context.Context, prev corev1.NodeStatus) (corev1.NodeStatus, error) {
	capacity, err := runtime.NodeCapacity(a.cfg.DataDir, a.cfg.MaxPods)
	if err != nil {
		return corev1.NodeStatus{}, err
	}
	host, _ := os.Hostname()
	s := corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Phase:       corev1.NodeRunning,
		DaemonEndpoints: corev1.NodeDaemonEndpoints{
			KubeletEndpoint: corev1.DaemonEndpoint{Port: a.streamPort},
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.nodeIP},
			{Type: corev1.NodeHostName, Address: host},
		},
		NodeInfo: corev1.NodeSystemInfo{
			OperatingSystem:         goruntime.GOOS,
			Architecture:            goruntime.GOARCH,
			KernelVersion:           kernelVersion(),
			OSImage:                 osImage(),
			ContainerRuntimeVersion: a.runtimeVersion,
			KubeletVersion:          a.cfg.Version,
			MachineID:               readTrim("/etc/machine-id"),
			BootID:                  readTrim("/proc/sys/kernel/random/boot_id"),
		},
	}
	if imgs, err := a.daemon.ListImages(ctx); err == nil {
		byDigest := map[string]*corev1.ContainerImage{}
		var order []string
		for _, im := range imgs {
			ci := byDigest[im.Digest]
			if ci == nil {
				ci = &corev1.ContainerImage{SizeBytes: im.Size}
				byDigest[im.Digest] = ci
				order = append(order, im.Digest)
			}
			ci.Names = append(ci.Names, im.Name)
		}
		for _, d := range order {
			s.Images = append(s.Images, *byDigest[d])
		}
	}
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, on bool, reasonOn, msgOn, reasonOff, msgOff string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: reasonOff, Message: msgOff,
			LastHeartbeatTime: now, LastTransitionTime: now}
		if on {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, reasonOn, msgOn
		}
		for _, p := range prev.Conditions {
			if p.Type == t && p.Status == c.Status {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		return c
	}
	memAvail, memErr := memAvailable()
	memPressure := memErr == nil && memAvail < memoryPressureBytes
	var st unix.Statfs_t
	diskPressure := unix.Statfs(a.cfg.DataDir, &st) == nil && st.Blocks > 0 &&
		float64(st.Bavail)/float64(st.Blocks) < diskPressureRatio
	pidPressure := pidsInUseRatio() > pidPressureRatio
	s.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, memPressure, "KubeletHasInsufficientMemory", "node has less than 100Mi memory available",
			"KubeletHasSufficientMemory", "node has sufficient memory available"),
		cond(corev1.NodeDiskPressure, diskPressure, "KubeletHasDiskPressure", "data dir filesystem has less than 10% free",
			"KubeletHasNoDiskPressure", "node has no disk pressure"),
		cond(corev1.NodePIDPressure, pidPressure, "KubeletHasInsufficientPID", "more than 90% of pid_max in use",
			"KubeletHasSufficientPID", "node has sufficient PID available"),
		cond(corev1.NodeReady, true, "KubeletReady", "skiff agent is posting ready status", "", ""),
	}
	return s, nil
}

// heartbeat writes the Node status (unconditionally: the agent owns it).
func (a *Agent) heartbeat(ctx context.Context) error {
	a.mu.Lock()
	prev := a.lastNodeStatus
	a.mu.Unlock()
	s, err := a.nodeStatus(ctx, prev)
	if err != nil {
		return err
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.Name, UID: a.nodeUID}, Status: s}
	if err := a.cfg.Client.UpdateStatus(ctx, n); err != nil {
		if client.IsNotFound(err) || client.IsConflict(err) {
			// Deleted (and maybe re-created by someone): register again.
			node, rerr := a.register(ctx)
			if rerr != nil {
				return rerr
			}
			a.nodeUID = node.UID
		}
		return err
	}
	a.mu.Lock()
	a.lastNodeStatus = s
	a.mu.Unlock()
	return nil
}

func memAvailable() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/meminfo has no MemAvailable")
}

// pidsInUseRatio is the number of processes over pid_max.
func pidsInUseRatio() float64 {
	max, err := strconv.Atoi(readTrim("/proc/sys/kernel/pid_max"))
	if err != nil || max <= 0 {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if c := e.Name()[0]; c >= '0' && c <= '9' {
			n++
		}
	}
	return float64(n) / float64(max)
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func osImage() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return goruntime.GOOS
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return goruntime.GOOS
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
