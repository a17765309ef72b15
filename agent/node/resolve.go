package node

import (
	"context"
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/agent/podworker"
	"github.com/skiffhq/skiff/agent/runtime"
	"github.com/skiffhq/skiff/client"
)

// Getter reads one object; *client.Client is one. Resolution needs no
// more, which keeps it testable without a cluster.
type Getter interface {
	Get(ctx context.Context, namespace, name string, obj k8sruntime.Object) error
}

// lookups reads each configMap and secret once per resolution.
type lookups struct {
	ctx     context.Context
	g       Getter
	ns      string
	cms     map[string]*corev1.ConfigMap
	secrets map[string]*corev1.Secret
}

// configMap returns the named configMap, nil when it does not exist and
// optional, or an error saying it is missing.
func (l *lookups) configMap(name string, optional *bool) (*corev1.ConfigMap, error) {
	cm, ok := l.cms[name]
	if !ok {
		cm = &corev1.ConfigMap{}
		if err := l.g.Get(l.ctx, l.ns, name, cm); err != nil {
			if !client.IsNotFound(err) {
				return nil, err
			}
			cm = nil
		}
		l.cms[name] = cm
	}
	if cm == nil && (optional == nil || !*optional) {
		return nil, fmt.Errorf("configmap %q not found", name)
	}
	return cm, nil
}

func (l *lookups) secret(name string, optional *bool) (*corev1.Secret, error) {
	s, ok := l.secrets[name]
	if !ok {
		s = &corev1.Secret{}
		if err := l.g.Get(l.ctx, l.ns, name, s); err != nil {
			if !client.IsNotFound(err) {
				return nil, err
			}
			s = nil
		}
		l.secrets[name] = s
	}
	if s == nil && (optional == nil || !*optional) {
		return nil, fmt.Errorf("secret %q not found", name)
	}
	return s, nil
}

// secretData is a secret's data, stringData folded in (the API may keep it
// unmerged).
func secretData(s *corev1.Secret) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range s.Data {
		out[k] = v
	}
	for k, v := range s.StringData {
		out[k] = []byte(v)
	}
	return out
}

// Resolve builds the runtime input of pod: each container's environment
// with configMap and secret references and envFrom resolved (fieldRef and
// resourceFieldRef stay for the runtime), and the files of configMap,
// secret, downwardAPI and projected volumes. A missing non-optional
// configMap, secret or key is an error (the worker shows it as
// CreateContainerConfigError and tries again on its next pass).
func Resolve(ctx context.Context, g Getter, pod *corev1.Pod) (runtime.PodInput, error) {
	in := runtime.PodInput{Pod: pod, Env: map[string][]corev1.EnvVar{}, VolumeFiles: map[string]map[string][]byte{}}
	l := &lookups{ctx: ctx, g: g, ns: pod.Namespace, cms: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, v := range pod.Spec.Volumes {
		files, err := volumeFiles(l, pod, v)
		if err != nil {
			return in, fmt.Errorf("%w: MountVolume.SetUp failed for volume %q: %w", podworker.ErrVolumesNotReady, v.Name, err)
		}
		if files != nil {
			in.VolumeFiles[v.Name] = files
		}
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			env, err := containerEnv(l, &list[i])
			if err != nil {
				return in, fmt.Errorf("container %s: %w", list[i].Name, err)
			}
			in.Env[list[i].Name] = env
		}
	}
	return in, nil
}

// containerEnv is envFrom (sources in order, keys sorted, invalid names
// skipped as the kubelet does) then env; a later name replaces the value
// of an earlier one in its place.
func containerEnv(l *lookups, c *corev1.Container) ([]corev1.EnvVar, error) {
	var out []corev1.EnvVar
	index := map[string]int{}
	set := func(e corev1.EnvVar) {
		if i, ok := index[e.Name]; ok {
			out[i] = e
			return
		}
		index[e.Name] = len(out)
		out = append(out, e)
	}
	for _, src := range c.EnvFrom {
		var data map[string]string
		switch {
		case src.ConfigMapRef != nil:
			cm, err := l.configMap(src.ConfigMapRef.Name, src.ConfigMapRef.Optional)
			if err != nil {
				return nil, err
			}
			if cm != nil {
				data = cm.Data
			}
		case src.SecretRef != nil:
			s, err := l.secret(src.SecretRef.Name, src.SecretRef.Optional)
			if err != nil {
				return nil, err
			}
			if s != nil {
				data = map[string]string{}
				for k, v := range secretData(s) {
					data[k] = string(v)
				}
			}
		}
		for _, k := range sortedKeys(data) {
			name := src.Prefix + k
			if len(validation.IsEnvVarName(name)) > 0 {
				continue
			}
			set(corev1.EnvVar{Name: name, Value: data[k]})
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e)
			continue
		}
		switch {
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			cm, err := l.configMap(r.Name, r.Optional)
			if err != nil {
				return nil, err
			}
			if cm == nil {
				continue
			}
			v, ok := cm.Data[r.Key]
			if !ok {
				if r.Optional != nil && *r.Optional {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", r.Key, l.ns, r.Name)
			}
			set(corev1.EnvVar{Name: e.Name, Value: v})
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			s, err := l.secret(r.Name, r.Optional)
			if err != nil {
				return nil, err
			}
			if s == nil {
				continue
			}
			v, ok := secretData(s)[r.Key]
			if !ok {
				if r.Optional != nil && *r.Optional {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %s in Secret %s/%s", r.Key, l.ns, r.Name)
			}
			set(corev1.EnvVar{Name: e.Name, Value: string(v)})
		default:
			set(e) // fieldRef, resourceFieldRef: the runtime's
		}
	}
	return out, nil
}

// volumeFiles returns the files of a volume the agent fills, nil for other
// volume types.
func volumeFiles(l *lookups, pod *corev1.Pod, v corev1.Volume) (map[string][]byte, error) {
	switch {
	case v.ConfigMap != nil:
		files := map[string][]byte{}
		return files, addConfigMap(l, files, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional)
	case v.Secret != nil:
		files := map[string][]byte{}
		return files, addSecret(l, files, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional)
	case v.DownwardAPI != nil:
		files := map[string][]byte{}
		return files, addDownward(files, pod, v.DownwardAPI.Items)
	case v.Projected != nil:
		files := map[string][]byte{}
		for i, src := range v.Projected.Sources {
			var err error
			switch {
			case src.ConfigMap != nil:
				err = addConfigMap(l, files, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional)
			case src.Secret != nil:
				err = addSecret(l, files, src.Secret.Name, src.Secret.Items, src.Secret.Optional)
			case src.DownwardAPI != nil:
				err = addDownward(files, pod, src.DownwardAPI.Items)
			default:
				err = fmt.Errorf("%w: projected source %d (only configMap, secret and downwardAPI)", runtime.ErrUnsupported, i)
			}
			if err != nil {
				return nil, err
			}
		}
		return files, nil
	}
	return nil, nil
}

func cleanPath(p string) (string, error) {
	c := path.Clean(p)
	if p == "" || path.IsAbs(p) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: volume item path %q must be relative and stay inside the volume", runtime.ErrInvalidInput, p)
	}
	return c, nil
}

// addItems writes data's keys (all, or the items' keys to their paths).
func addItems(files map[string][]byte, data map[string][]byte, items []corev1.KeyToPath, optional *bool, what string) error {
	if len(items) == 0 {
		for k, v := range data {
			files[k] = v
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return fmt.Errorf("%s has no key %q", what, it.Key)
		}
		p, err := cleanPath(it.Path)
		if err != nil {
			return err
		}
		files[p] = v
	}
	return nil
}

func addConfigMap(l *lookups, files map[string][]byte, name string, items []corev1.KeyToPath, optional *bool) error {
	cm, err := l.configMap(name, optional)
	if err != nil || cm == nil {
		return err
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return addItems(files, data, items, optional, fmt.Sprintf("configmap %q", name))
}

func addSecret(l *lookups, files map[string][]byte, name string, items []corev1.KeyToPath, optional *bool) error {
	s, err := l.secret(name, optional)
	if err != nil || s == nil {
		return err
	}
	return addItems(files, secretData(s), items, optional, fmt.Sprintf("secret %q", name))
}

// addDownward writes downward API files: labels and annotations as sorted
// key="value" lines (values quoted as Go strings, as the kubelet does),
// name, namespace and uid as their values.
func addDownward(files map[string][]byte, pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile) error {
	for _, it := range items {
		p, err := cleanPath(it.Path)
		if err != nil {
			return err
		}
		if it.FieldRef == nil {
			return fmt.Errorf("%w: downwardAPI item %s: only fieldRef (resourceFieldRef is not supported in volumes)",
				runtime.ErrUnsupported, it.Path)
		}
		var v string
		switch it.FieldRef.FieldPath {
		case "metadata.labels":
			v = formatMap(pod.Labels)
		case "metadata.annotations":
			v = formatMap(pod.Annotations)
		case "metadata.name":
			v = pod.Name
		case "metadata.namespace":
			v = pod.Namespace
		case "metadata.uid":
			v = string(pod.UID)
		default:
			fp := it.FieldRef.FieldPath
			found := false
			for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
				if rest, ok := strings.CutPrefix(fp, prefix+"['"); ok && strings.HasSuffix(rest, "']") {
					v, found = m[strings.TrimSuffix(rest, "']")], true
				}
			}
			if !found {
				return fmt.Errorf("%w: downwardAPI fieldRef %q", runtime.ErrUnsupported, fp)
			}
		}
		files[p] = []byte(v)
	}
	return nil
}

func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}
