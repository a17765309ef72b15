package runtime

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func rr(req, lim map[string]string) corev1.ResourceRequirements {
	conv := func(m map[string]string) corev1.ResourceList {
		if m == nil {
			return nil
		}
		l := corev1.ResourceList{}
		for k, v := range m {
			l[corev1.ResourceName(k)] = resource.MustParse(v)
		}
		return l
	}
	return corev1.ResourceRequirements{Requests: conv(req), Limits: conv(lim)}
}

func podOf(rs ...corev1.ResourceRequirements) *corev1.Pod {
	p := &corev1.Pod{}
	for _, r := range rs {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Resources: r})
	}
	return p
}

func TestQOSClass(t *testing.T) {
	both := map[string]string{"cpu": "500m", "memory": "64Mi"}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want corev1.PodQOSClass
	}{
		{"nothing", podOf(rr(nil, nil)), corev1.PodQOSBestEffort},
		{"limits only (requests default to limits)", podOf(rr(nil, both)), corev1.PodQOSGuaranteed},
		{"requests equal limits", podOf(rr(both, both)), corev1.PodQOSGuaranteed},
		{"request below limit", podOf(rr(map[string]string{"cpu": "100m", "memory": "64Mi"}, both)), corev1.PodQOSBurstable},
		{"cpu limit only", podOf(rr(nil, map[string]string{"cpu": "1"})), corev1.PodQOSBurstable},
		{"one guaranteed, one best effort", podOf(rr(nil, both), rr(nil, nil)), corev1.PodQOSBurstable},
		{"requests only", podOf(rr(map[string]string{"memory": "1Gi"}, nil)), corev1.PodQOSBurstable},
		{"other resources do not count", podOf(rr(map[string]string{"ephemeral-storage": "1Gi"}, nil)), corev1.PodQOSBestEffort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := QOSClass(tc.pod); got != tc.want {
				t.Errorf("QOSClass = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCPUConversions(t *testing.T) {
	for _, tc := range []struct {
		milli  int64
		shares uint64
		quota  int64
	}{
		{0, 2, 0}, {1, 2, 1000}, {100, 102, 10000}, {250, 256, 25000}, {1000, 1024, 100000}, {2500, 2560, 250000},
	} {
		if got := sharesFromMilli(tc.milli); got != tc.shares {
			t.Errorf("shares(%dm) = %d, want %d", tc.milli, got, tc.shares)
		}
		if got := quotaFromMilli(tc.milli); got != tc.quota {
			t.Errorf("quota(%dm) = %d, want %d", tc.milli, got, tc.quota)
		}
	}
}

func TestPodResources(t *testing.T) {
	a := rr(map[string]string{"cpu": "100m"}, map[string]string{"cpu": "500m", "memory": "64Mi"})
	b := rr(nil, map[string]string{"cpu": "250m", "memory": "32Mi"})
	got := podResources(podOf(a, b))
	if got.MemoryLimit != 96<<20 || got.CPUQuota != 75000 || got.CPUShares != sharesFromMilli(350) {
		t.Errorf("pod of two limited containers: %+v", got)
	}
	got = podResources(podOf(a, rr(nil, nil)))
	if got.MemoryLimit != 0 || got.CPUQuota != 0 || got.CPUShares != sharesFromMilli(100) {
		t.Errorf("an unlimited container must leave the pod unlimited: %+v", got)
	}
	p := podOf(b)
	p.Spec.InitContainers = []corev1.Container{{Resources: rr(nil, map[string]string{"cpu": "2", "memory": "1Gi"})}}
	got = podResources(p)
	if got.MemoryLimit != 1<<30 || got.CPUQuota != 200000 {
		t.Errorf("a larger init container sets the pod's limits: %+v", got)
	}
}

func TestExpandVars(t *testing.T) {
	vals := map[string]string{"A": "x", "B": "y"}
	for in, want := range map[string]string{
		"plain":      "plain",
		"$(A)-$(B)":  "x-y",
		"$(C)":       "$(C)",
		"$$(A)":      "$(A)",
		"cost $5":    "cost $5",
		"open $(A":   "open $(A",
		"$(A)$(A)$$": "xx$",
	} {
		if got := expandVars(in, vals); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig("/var/lib/skiff", "10.244.1.0/24")
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"relative data dir":  func(c *Config) { c.DataDir = "data" },
		"long bridge name":   func(c *Config) { c.BridgeName = "a-very-long-bridge" },
		"bad cidr":           func(c *Config) { c.PodCIDR = "10.244.1.0" },
		"tiny cidr":          func(c *Config) { c.PodCIDR = "10.244.1.0/30" },
		"absolute cg parent": func(c *Config) { c.CgroupParent = "/skiff" },
	} {
		c := ok
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}

func TestNodeCapacity(t *testing.T) {
	c, err := NodeCapacity(t.TempDir(), 110)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		if q := c[name]; q.Sign() <= 0 {
			t.Errorf("%s = %s, want > 0", name, q.String())
		}
	}
	if q := c[corev1.ResourcePods]; q.Value() != 110 {
		t.Errorf("pods = %s", q.String())
	}
}

func TestDownwardEnv(t *testing.T) {
	pod := podOf(rr(map[string]string{"cpu": "250m"}, map[string]string{"cpu": "500m", "memory": "64Mi"}))
	pod.Name, pod.Namespace, pod.UID = "web", "prod", "u1"
	pod.Labels = map[string]string{"app": "web"}
	pod.Spec.NodeName = "node-1"
	c := &pod.Spec.Containers[0]
	c.Name = "c"
	field := func(p string) corev1.EnvVar {
		return corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: p}}}
	}
	res := func(r, div string) corev1.EnvVar {
		sel := &corev1.ResourceFieldSelector{Resource: r}
		if div != "" {
			sel.Divisor = resource.MustParse(div)
		}
		return corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: sel}}
	}
	for _, tc := range []struct {
		env  corev1.EnvVar
		want string
	}{
		{field("metadata.name"), "web"}, {field("metadata.namespace"), "prod"}, {field("spec.nodeName"), "node-1"},
		{field("status.podIP"), "10.0.0.7"}, {field("status.hostIP"), "192.168.1.2"}, {field("metadata.labels['app']"), "web"},
		{res("limits.memory", "1Mi"), "64"}, {res("limits.cpu", "1m"), "500"}, {res("requests.cpu", ""), "1"},
	} {
		c.Env = []corev1.EnvVar{tc.env}
		got, err := containerEnv(PodInput{Pod: pod}, c, podFields{podIP: "10.0.0.7", hostIP: "192.168.1.2"})
		if err != nil || len(got) != 1 || got[0] != "X="+tc.want {
			t.Errorf("%+v: got %v %v, want X=%s", tc.env.ValueFrom, got, err, tc.want)
		}
	}
	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}}
	if _, err := containerEnv(PodInput{Pod: pod}, c, podFields{}); err == nil {
		t.Error("an unresolved secretKeyRef was accepted")
	}
}

func TestKubeStatus(t *testing.T) {
	cs := ContainerStatus{Name: "web", ID: "abc", Image: "nginx", State: StateExited, ExitCode: 137, Reason: "OOMKilled",
		RestartCount: 2, LastTermination: &Termination{ExitCode: 1, Reason: "Error"}}
	ks := cs.KubeStatus()
	if ks.State.Terminated == nil || ks.State.Terminated.Reason != "OOMKilled" || ks.State.Terminated.ExitCode != 137 ||
		ks.RestartCount != 2 || ks.ContainerID != "containerd://abc" || ks.LastTerminationState.Terminated.Reason != "Error" || ks.Ready {
		t.Errorf("KubeStatus: %+v", ks)
	}
	cs.State = StateRunning
	if ks := cs.KubeStatus(); ks.State.Running == nil || !*ks.Started {
		t.Errorf("running: %+v", ks)
	}
}
