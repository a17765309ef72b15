package node

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/agent/podworker"
	"github.com/skiffhq/skiff/client"
)

// fakeGetter serves configMaps and secrets from maps and counts reads.
type fakeGetter struct {
	cms     map[string]*corev1.ConfigMap
	secrets map[string]*corev1.Secret
	reads   int
}

func (f *fakeGetter) Get(_ context.Context, ns, name string, obj k8sruntime.Object) error {
	f.reads++
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		if cm, ok := f.cms[ns+"/"+name]; ok {
			*o = *cm.DeepCopy()
			return nil
		}
		return client.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
	case *corev1.Secret:
		if s, ok := f.secrets[ns+"/"+name]; ok {
			*o = *s.DeepCopy()
			return nil
		}
		return client.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
	}
	return errors.New("unexpected kind")
}

func ref(name string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: name} }

func yes() *bool { b := true; return &b }

func TestResolve(t *testing.T) {
	g := &fakeGetter{
		cms: map[string]*corev1.ConfigMap{"ns/cm": {Data: map[string]string{"b": "2", "a": "1", "1bad": "x"},
			BinaryData: map[string][]byte{"bin": {0, 1}}}},
		secrets: map[string]*corev1.Secret{"ns/s": {Data: map[string][]byte{"pw": []byte("hunter2")}}},
	}
	fieldRef := &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1", Labels: map[string]string{"z": "1", "a": `q"`}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Env: []corev1.EnvVar{{Name: "X", Value: "1"}}}},
			Containers: []corev1.Container{{
				Name: "c",
				EnvFrom: []corev1.EnvFromSource{
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("cm")}},
					{Prefix: "S_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("s")}},
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("none"), Optional: yes()}},
				},
				Env: []corev1.EnvVar{
					{Name: "a", Value: "override"},
					{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("s"), Key: "pw"}}},
					{Name: "IP", ValueFrom: fieldRef},
					{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
						LocalObjectReference: ref("cm"), Key: "missing", Optional: yes()}}},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: ref("cm"), Items: []corev1.KeyToPath{{Key: "a", Path: "sub/a.txt"}}}}},
				{Name: "all", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("cm")}}},
				{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
					{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				}}}},
				{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{Secret: &corev1.SecretProjection{LocalObjectReference: ref("s")}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
				}}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
	in, err := Resolve(context.Background(), g, pod)
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.EnvVar{{Name: "a", Value: "override"}, {Name: "b", Value: "2"}, {Name: "S_pw", Value: "hunter2"},
		{Name: "PW", Value: "hunter2"}, {Name: "IP", ValueFrom: fieldRef}}
	if got := in.Env["c"]; !reflect.DeepEqual(got, want) {
		t.Errorf("env of c:\n got %+v\nwant %+v", got, want)
	}
	if got := in.Env["init"]; len(got) != 1 || got[0].Value != "1" {
		t.Errorf("env of init = %+v", got)
	}
	files := map[string]map[string]string{}
	for v, fs := range in.VolumeFiles {
		files[v] = map[string]string{}
		for p, b := range fs {
			files[v][p] = string(b)
		}
	}
	wantFiles := map[string]map[string]string{
		"cfg":  {"sub/a.txt": "1"},
		"all":  {"a": "1", "b": "2", "1bad": "x", "bin": "\x00\x01"},
		"info": {"labels": "a=\"q\\\"\"\nz=\"1\"", "name": "p"},
		"proj": {"pw": "hunter2", "ns": "ns"},
	}
	if !reflect.DeepEqual(files, wantFiles) {
		t.Errorf("volume files:\n got %q\nwant %q", files, wantFiles)
	}
	if g.reads != 3 {
		t.Errorf("%d reads, want 3 (cm, s, none: each once per resolution)", g.reads)
	}
}

func TestResolveErrors(t *testing.T) {
	g := &fakeGetter{cms: map[string]*corev1.ConfigMap{"ns/cm": {Data: map[string]string{"a": "1"}}}}
	for _, tc := range []struct {
		name       string
		spec       corev1.PodSpec
		want       string
		volumeWait bool
	}{
		{name: "missing configMap in env", want: `configmap "nope" not found`, spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("nope")}}}}}}},
		{name: "missing key", want: "couldn't find key b in ConfigMap ns/cm", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
			Env: []corev1.EnvVar{{Name: "B", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: ref("cm"), Key: "b"}}}}}}}},
		{name: "missing secret volume", want: `secret "s" not found`, volumeWait: true, spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}}}}},
		{name: "item path escapes", want: "stay inside the volume", volumeWait: true, spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: ref("cm"), Items: []corev1.KeyToPath{{Key: "a", Path: "../x"}}}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Spec: tc.spec}
			_, err := Resolve(context.Background(), g, pod)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if got := errors.Is(err, podworker.ErrVolumesNotReady); got != tc.volumeWait {
				t.Errorf("errors.Is(err, ErrVolumesNotReady) = %v, want %v", got, tc.volumeWait)
			}
		})
	}
}
