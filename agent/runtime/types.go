package runtime

import (
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PodInput is what the agent hands the runtime to run a pod: the pod as the
// API stores it, plus what only the agent can resolve from the cluster.
type PodInput struct {
	Pod *corev1.Pod
	// Env is, per container name, the container's complete environment in
	// order, with configMapKeyRef, secretKeyRef and envFrom already resolved
	// by the caller (entries may keep fieldRef and resourceFieldRef: the
	// runtime resolves those, as only it knows the pod IP in time). A
	// container missing here gets its spec's env, which must then need no
	// cluster lookups.
	Env map[string][]corev1.EnvVar
	// VolumeFiles is, per volume name, the files of configMap, secret,
	// downwardAPI and projected volumes (relative path → content), resolved
	// by the caller. They are written into the pod dir and mounted read-only.
	VolumeFiles map[string]map[string][]byte
	// VolumePaths is, per persistentVolumeClaim volume name, the host
	// directory of the PersistentVolume its claim is bound to, resolved by
	// the caller. It is bind-mounted as it is (read-only when the volume
	// source says readOnly); the runtime never creates or removes it.
	VolumePaths map[string]string
	// ResolvConf, when not nil, is the pod's /etc/resolv.conf (the agent
	// renders it for the pod's dnsPolicy and the cluster DNS); nil copies
	// Config.ResolvConf (the host's file).
	ResolvConf []byte
}

// State is a container's coarse state.
type State string

// Container states.
const (
	StateCreated State = "Created" // task created, not started
	StateRunning State = "Running"
	StateExited  State = "Exited"
	StateUnknown State = "Unknown"
)

// PodStatus is the runtime's view of one pod, rebuilt from containerd.
type PodStatus struct {
	UID, Namespace, Name string
	IP                   string
	NetnsPath            string
	CgroupPath           string // relative to each hierarchy
	QOSClass             corev1.PodQOSClass
	SandboxID            string
	SandboxState         State
	CreatedAt            time.Time
	Containers           []ContainerStatus // init containers first, then in spec order as created
}

// Container returns the status of the named container, if any.
func (p *PodStatus) Container(name string) (ContainerStatus, bool) {
	for _, c := range p.Containers {
		if c.Name == name {
			return c, true
		}
	}
	return ContainerStatus{}, false
}

// ContainerStatus is one container's current instance.
type ContainerStatus struct {
	Name         string
	ID           string
	Image        string
	Init         bool
	State        State
	Pid          uint32
	ExitCode     int32
	Reason       string // when Exited: OOMKilled, Completed or Error
	OOMKilled    bool
	CreatedAt    time.Time
	StartedAt    time.Time
	FinishedAt   time.Time
	RestartCount int
	LogPath      string
	// LastTermination is the previous instance's end, if it restarted.
	LastTermination *Termination
}

// Termination is how an earlier instance ended.
type Termination struct {
	ExitCode   int32
	Reason     string
	StartedAt  time.Time
	FinishedAt time.Time
}

// EventKind says what happened to a container.
type EventKind string

// Event kinds.
const (
	EventExited EventKind = "Exited"
	EventOOM    EventKind = "OOM"
)

// Event is a task event from containerd, mapped to the pod. Events may be
// lost across containerd restarts; ListPods is always the truth.
type Event struct {
	Kind        EventKind
	PodUID      string
	Container   string // "" for the sandbox
	ContainerID string
	ExitCode    uint32
	Time        time.Time
}

// ExecOptions describe a command to run in a container.
type ExecOptions struct {
	Cmd    []string
	Stdin  io.Reader // nil: no stdin
	Stdout io.Writer
	Stderr io.Writer
	TTY    bool // one stream: output goes to Stdout
	// Resize, with TTY, delivers terminal size changes until closed.
	Resize <-chan TerminalSize
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// ContainerStats are cgroup statistics of one container.
type ContainerStats struct {
	Name             string
	CPUUsageNanos    uint64
	MemoryUsage      uint64
	MemoryWorkingSet uint64 // usage minus inactive file cache
	MemoryLimit      uint64
	Pids             uint64
	Time             time.Time
}
