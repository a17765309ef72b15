package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Labels on containerd containers: the durable record of the runtime's view.
const (
	LabelPodUID       = "io.skiff.pod.uid"
	LabelPodNamespace = "io.skiff.pod.namespace"
	LabelPodName      = "io.skiff.pod.name"
	LabelRole         = "io.skiff.role" // sandbox | init | container
	LabelContainer    = "io.skiff.container.name"
	LabelNetns        = "io.skiff.netns"
	// LabelUTSNS and LabelIPCNS: the pod's pinned UTS and IPC namespaces
	// (sandboxes without a pause process; see RunSandbox).
	LabelUTSNS        = "io.skiff.ns.uts"
	LabelIPCNS        = "io.skiff.ns.ipc"
	LabelPodIP        = "io.skiff.pod.ip"
	LabelQOS          = "io.skiff.qos"
	LabelCgroup       = "io.skiff.cgroup"
	LabelRestartCount = "io.skiff.restart-count"
	LabelLogPath      = "io.skiff.log-path"
	LabelLogMode      = "io.skiff.log-mode" // "agent": the agent copies the log (logcopy.go)
	LabelImage        = "io.skiff.image"    // as the pod spec wrote it
	LabelStartedAt    = "io.skiff.started-at"
	LabelOOMKilled    = "io.skiff.oom-killed" // the cgroup counted a kill
	LabelOOMEvent     = "io.skiff.oom-event"  // a /tasks/oom event was seen
	// The previous instance's termination, carried to its replacement.
	LabelLastExitCode   = "io.skiff.last.exit-code"
	LabelLastReason     = "io.skiff.last.reason"
	LabelLastStartedAt  = "io.skiff.last.started-at"
	LabelLastFinishedAt = "io.skiff.last.finished-at"

	roleSandbox   = "sandbox"
	roleInit      = "init"
	roleContainer = "container"

	// shimGroupAnnotation makes runc's shim v2 serve every container of a pod
	// from one shim process.
	shimGroupAnnotation = "io.containerd.runc.v2.group"
)

// podKey is a short stable name for a pod derived from its UID, used in
// containerd IDs and netns names.
func podKey(uid string) string {
	s := sha256.Sum256([]byte(uid))
	return hex.EncodeToString(s[:6])
}

func sandboxID(uid string) string { return sandboxIDOfKey(podKey(uid)) }

// sandboxIDOfKey is sandboxID from the pod key (what a netns name holds).
func sandboxIDOfKey(key string) string { return key + "-pause" }

func containerID(uid, name string, restart int) string {
	s := sha256.Sum256([]byte(name))
	short := name
	if len(short) > 24 {
		short = short[:24]
	}
	return fmt.Sprintf("%s-%s-%s-%d", podKey(uid), short, hex.EncodeToString(s[:3]), restart)
}

func (r *Runtime) podDir(uid string) string { return filepath.Join(r.cfg.DataDir, "pods", uid) }

func (r *Runtime) netnsPath(uid string) string {
	return filepath.Join(r.cfg.NetnsDir, r.cfg.BridgeName+"-"+podKey(uid))
}

// podNSPath is where the pod's UTS or IPC namespace is pinned.
func (r *Runtime) podNSPath(uid, ns string) string { return filepath.Join(r.podDir(uid), "ns", ns) }

func (r *Runtime) podCgroup(uid string) string {
	return "/" + filepath.Join(r.cfg.CgroupParent, "pod"+uid)
}

// LogPath is where the log of a container's restart-th instance is written
// (Kubernetes' layout: one file per restart).
func (r *Runtime) LogPath(uid, name string, restart int) string {
	return filepath.Join(r.podDir(uid), "logs", name, strconv.Itoa(restart)+".log")
}

func podLabels(pod *corev1.Pod) map[string]string {
	return map[string]string{
		LabelPodUID:       string(pod.UID),
		LabelPodNamespace: pod.Namespace,
		LabelPodName:      pod.Name,
	}
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
