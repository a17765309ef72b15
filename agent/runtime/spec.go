package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	client "github.com/containerd/containerd"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// validatePod rejects, loudly, what this runtime does not do.
func validatePod(pod *corev1.Pod) error {
	if pod == nil || pod.UID == "" || pod.Name == "" || pod.Namespace == "" {
		return fmt.Errorf("%w: pod needs metadata.uid, name and namespace", ErrInvalidInput)
	}
	s := &pod.Spec
	switch {
	case s.HostNetwork:
		return fmt.Errorf("%w: pod %s/%s: spec.hostNetwork", ErrUnsupported, pod.Namespace, pod.Name)
	case s.HostPID:
		return fmt.Errorf("%w: pod %s/%s: spec.hostPID", ErrUnsupported, pod.Namespace, pod.Name)
	case s.HostIPC:
		return fmt.Errorf("%w: pod %s/%s: spec.hostIPC", ErrUnsupported, pod.Namespace, pod.Name)
	}
	for i, c := range append(append([]corev1.Container{}, s.InitContainers...), s.Containers...) {
		for j, p := range c.Ports {
			if p.HostPort != 0 {
				return fmt.Errorf("%w: pod %s/%s: containers[%d].ports[%d].hostPort (%s)", ErrUnsupported,
					pod.Namespace, pod.Name, i, j, c.Name)
			}
		}
	}
	for i, v := range s.Volumes {
		switch {
		case v.EmptyDir != nil, v.HostPath != nil, v.ConfigMap != nil, v.Secret != nil,
			v.DownwardAPI != nil, v.Projected != nil, v.PersistentVolumeClaim != nil:
		default:
			return fmt.Errorf("%w: pod %s/%s: spec.volumes[%d] (%s): only emptyDir, hostPath, configMap, secret, downwardAPI, projected and persistentVolumeClaim are supported",
				ErrUnsupported, pod.Namespace, pod.Name, i, v.Name)
		}
	}
	return nil
}

func findContainer(pod *corev1.Pod, name string) (*corev1.Container, bool, error) {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i], true, nil
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i], false, nil
		}
	}
	return nil, false, fmt.Errorf("%w: pod %s/%s has no container %q", ErrContainerNotFound, pod.Namespace, pod.Name, name)
}

// podFields are the pod-local values fieldRef env entries can name.
type podFields struct {
	podIP, hostIP string
}

// containerEnv is the container's environment as KEY=VALUE, in order.
// fieldRef and resourceFieldRef entries are resolved here (they need only
// the pod and its sandbox); configMap and secret references must come
// resolved from the caller in PodInput.Env.
func containerEnv(in PodInput, c *corev1.Container, f podFields) ([]string, error) {
	vars, resolved := in.Env[c.Name]
	if !resolved {
		vars = c.Env
		if len(c.EnvFrom) > 0 {
			return nil, fmt.Errorf("%w: container %s uses envFrom, which the caller must resolve (PodInput.Env)",
				ErrInvalidInput, c.Name)
		}
	}
	values := map[string]string{}
	out := make([]string, 0, len(vars))
	for _, e := range vars {
		v := expandVars(e.Value, values)
		if e.ValueFrom != nil {
			var err error
			switch {
			case e.ValueFrom.FieldRef != nil:
				v, err = fieldValue(in.Pod, e.ValueFrom.FieldRef.FieldPath, f)
			case e.ValueFrom.ResourceFieldRef != nil:
				v, err = resourceValue(in.Pod, c, e.ValueFrom.ResourceFieldRef)
			default:
				err = fmt.Errorf("%w: configMapKeyRef and secretKeyRef must be resolved by the caller (PodInput.Env)", ErrInvalidInput)
			}
			if err != nil {
				return nil, fmt.Errorf("container %s env %s: %w", c.Name, e.Name, err)
			}
		}
		values[e.Name] = v
		out = append(out, e.Name+"="+v)
	}
	return out, nil
}

// fieldValue resolves the downward API fields a container env can name.
func fieldValue(pod *corev1.Pod, path string, f podFields) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return f.podIP, nil
	case "status.hostIP", "status.hostIPs":
		return f.hostIP, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if rest, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(rest, "']") {
			return m[strings.TrimSuffix(rest, "']")], nil
		}
	}
	return "", fmt.Errorf("%w: fieldRef %q", ErrUnsupported, path)
}

// resourceValue resolves a resourceFieldRef as the kubelet does: the value
// divided by the divisor, rounded up; an unset limit reads as node
// allocatable, which the runtime does not know, so it is refused.
func resourceValue(pod *corev1.Pod, c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	if ref.ContainerName != "" && ref.ContainerName != c.Name {
		found := false
		for _, o := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
			if o.Name == ref.ContainerName {
				c, found = &o, true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("%w: resourceFieldRef names no container %q", ErrInvalidInput, ref.ContainerName)
		}
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("%w: resourceFieldRef %q", ErrUnsupported, ref.Resource)
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok && kind == "requests" {
		q, ok = c.Resources.Limits[corev1.ResourceName(name)]
	}
	if !ok {
		return "", fmt.Errorf("%w: resourceFieldRef %q is not set on the container (node allocatable is not known here)",
			ErrUnsupported, ref.Resource)
	}
	div := ref.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	if name == string(corev1.ResourceCPU) {
		m, d := q.MilliValue(), div.MilliValue()
		return strconv.FormatInt((m+d-1)/d, 10), nil
	}
	v, d := q.Value(), div.Value()
	return strconv.FormatInt((v+d-1)/d, 10), nil
}

// expandVars does Kubernetes' $(VAR) expansion: $(NAME) becomes the value
// of NAME when defined and stays as written otherwise; $$ is a literal $.
func expandVars(s string, values map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := values[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// processArgs applies Kubernetes' rules: command replaces the image's
// entrypoint (and drops its cmd); args replace the image's cmd.
func processArgs(ctx context.Context, img client.Image, c *corev1.Container, env []string) ([]string, error) {
	spec, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", img.Name(), err)
	}
	values := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		values[k] = v
	}
	expand := func(in []string) []string {
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = expandVars(s, values)
		}
		return out
	}
	var args []string
	switch {
	case len(c.Command) > 0:
		args = append(expand(c.Command), expand(c.Args)...)
	case len(c.Args) > 0:
		args = append(append([]string{}, spec.Config.Entrypoint...), expand(c.Args)...)
	default:
		args = append(append([]string{}, spec.Config.Entrypoint...), spec.Config.Cmd...)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: container %s: no command, and image %s has no entrypoint or cmd",
			ErrInvalidInput, c.Name, img.Name())
	}
	return args, nil
}

// podFileMounts are the per-pod /etc files every container of the pod shares.
func (r *Runtime) podFileMounts(uid string) []specs.Mount {
	dir := r.podDir(uid)
	var out []specs.Mount
	for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
		out = append(out, specs.Mount{
			Destination: "/etc/" + f, Type: "bind", Source: filepath.Join(dir, f),
			Options: []string{"rbind", "rprivate", "rw"},
		})
	}
	return out
}

// volumeMounts turns the container's volumeMounts into bind mounts of the
// prepared volume directories.
func (r *Runtime) volumeMounts(in PodInput, c *corev1.Container) ([]specs.Mount, error) {
	pod := in.Pod
	vols := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	var out []specs.Mount
	for i, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok {
			return nil, fmt.Errorf("%w: container %s volumeMounts[%d]: no volume %q in the pod", ErrInvalidInput, c.Name, i, m.Name)
		}
		src := r.volumeSource(in, v)
		readOnly := m.ReadOnly || v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil ||
			(v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ReadOnly)
		if m.SubPath != "" {
			if filepath.IsAbs(m.SubPath) || strings.Contains(m.SubPath, "..") {
				return nil, fmt.Errorf("%w: container %s volumeMounts[%d].subPath %q must be a relative path with no \"..\" element", ErrInvalidInput, c.Name, i, m.SubPath)
			}
			src = filepath.Join(src, m.SubPath)
			if _, err := os.Stat(src); os.IsNotExist(err) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, err
				}
			}
		}
		opts := []string{"rbind", "rprivate", "rw"}
		if readOnly {
			opts[2] = "ro"
		}
		out = append(out, specs.Mount{Destination: m.MountPath, Type: "bind", Source: src, Options: opts})
	}
	return out, nil
}

func (r *Runtime) volumeSource(in PodInput, v *corev1.Volume) string {
	switch {
	case v.HostPath != nil:
		return v.HostPath.Path
	case v.PersistentVolumeClaim != nil:
		return in.VolumePaths[v.Name]
	}
	return filepath.Join(r.podDir(string(in.Pod.UID)), "volumes", v.Name)
}

// containerSpecOpts builds the OCI spec of an app or init container.
func (r *Runtime) containerSpecOpts(ctx context.Context, in PodInput, c *corev1.Container, img client.Image,
	id, utsNS, ipcNS, netns, podIP string) ([]oci.SpecOpts, error) {
	pod := in.Pod
	env, err := containerEnv(in, c, podFields{podIP: podIP, hostIP: r.cfg.NodeIP})
	if err != nil {
		return nil, err
	}
	args, err := processArgs(ctx, img, c, env)
	if err != nil {
		return nil, err
	}
	mounts, err := r.volumeMounts(in, c)
	if err != nil {
		return nil, err
	}
	res := resourcesOf(c)
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithEnv(env),
		oci.WithProcessArgs(args...),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns}),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.IPCNamespace, Path: ipcNS}),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UTSNamespace, Path: utsNS}),
		oci.WithCgroup(r.podCgroup(string(pod.UID)) + "/" + id),
		oci.WithCPUShares(res.CPUShares),
		oci.WithMounts(append(r.podFileMounts(string(pod.UID)), mounts...)),
		oci.WithAnnotations(map[string]string{shimGroupAnnotation: sandboxID(string(pod.UID))}),
	}
	if c.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(c.WorkingDir))
	}
	if res.MemoryLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(res.MemoryLimit)))
	}
	if res.CPUQuota > 0 {
		opts = append(opts, oci.WithCPUCFS(res.CPUQuota, res.CPUPeriod))
	}
	if r.cfg.PidsLimit > 0 {
		opts = append(opts, oci.WithPidsLimit(r.cfg.PidsLimit))
	}
	if sc := effectiveSecurity(pod, c); sc.uid != nil {
		if sc.gid != nil {
			opts = append(opts, oci.WithUIDGID(uint32(*sc.uid), uint32(*sc.gid)))
		} else {
			opts = append(opts, oci.WithUserID(uint32(*sc.uid)))
		}
	}
	return opts, nil
}

type userIDs struct{ uid, gid *int64 }

// effectiveSecurity merges the pod's and the container's runAsUser/Group;
// the container's wins.
func effectiveSecurity(pod *corev1.Pod, c *corev1.Container) userIDs {
	var u userIDs
	if psc := pod.Spec.SecurityContext; psc != nil {
		u.uid, u.gid = psc.RunAsUser, psc.RunAsGroup
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			u.uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			u.gid = sc.RunAsGroup
		}
	}
	return u
}
