package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/agent/internal/nodetest"
	"github.com/skiffhq/skiff/agent/runtime"
)

// TestInitContainersVolumesAndInput: init containers run in order before
// the app container; resolved env and configMap files reach the container;
// hostPath is shared with the host; exec gets stdin; missing images and
// unsupported fields are refused with typed errors.
func TestInitContainersVolumesAndInput(t *testing.T) {
	e := setup(t)
	rt := e.rt
	hostDir := nodetest.TempDir(t)
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	pod := newPod("init",
		corev1.Container{
			Name: "app", Image: "busybox",
			Command:      []string{"sh", "-c", "cat /work/order; cat /config/app.conf; echo $FROM_CM; sleep 3600"},
			Env:          []corev1.EnvVar{{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k"}}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}, {Name: "cfg", MountPath: "/config"}, {Name: "host", MountPath: "/host"}},
		})
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "first", Image: "busybox", Command: []string{"sh", "-c", "echo first >> /work/order"},
			VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}},
		{Name: "second", Image: "busybox", Command: []string{"sh", "-c", "echo second >> /work/order"},
			VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}},
	}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(hostDir, "shared"), Type: &dirOrCreate}}},
	}
	in := runtime.PodInput{
		Pod:         pod,
		Env:         map[string][]corev1.EnvVar{"app": {{Name: "FROM_CM", Value: "resolved-value"}}},
		VolumeFiles: map[string]map[string][]byte{"cfg": {"app.conf": []byte("setting=1\n")}},
	}

	// The spec's valueFrom is not resolved by the runtime itself.
	if _, err := rt.RunPod(ctx(t, 60*time.Second), runtime.PodInput{Pod: pod, VolumeFiles: in.VolumeFiles}); !errors.Is(err, runtime.ErrInvalidInput) {
		t.Fatalf("RunPod with unresolved valueFrom: %v, want ErrInvalidInput", err)
	}
	if err := rt.RemovePod(ctx(t, 30*time.Second), string(pod.UID), 0); err != nil {
		t.Fatal(err)
	}

	st, err := rt.RunPod(ctx(t, 60*time.Second), in)
	if err != nil {
		t.Fatalf("RunPod: %v", err)
	}
	if len(st.Containers) != 3 || !st.Containers[0].Init || st.Containers[2].Name != "app" {
		t.Fatalf("containers: %+v", st.Containers)
	}
	for _, c := range st.Containers[:2] {
		if c.State != runtime.StateExited || c.Reason != "Completed" {
			t.Errorf("init container %s: %+v, want Exited Completed", c.Name, c)
		}
	}
	// RunPod again changes nothing: no init container runs twice.
	again, err := rt.RunPod(ctx(t, 60*time.Second), in)
	if err != nil {
		t.Fatalf("second RunPod: %v", err)
	}
	for i, c := range again.Containers {
		if c.ID != st.Containers[i].ID || c.RestartCount != 0 {
			t.Errorf("second RunPod changed %s: %+v, was %+v", c.Name, c, st.Containers[i])
		}
	}
	app, _ := st.Container("app")
	nodetest.Poll(t, 10*time.Second, "app log shows init order, configMap file and resolved env", func() (bool, error) {
		b, err := os.ReadFile(app.LogPath)
		return bytes.Contains(b, []byte("stdout F first\n")) && bytes.Contains(b, []byte("stdout F second\n")) &&
			bytes.Contains(b, []byte("stdout F setting=1\n")) && bytes.Contains(b, []byte("stdout F resolved-value\n")), err
	})
	// configMap volumes are read-only.
	if _, code := exec(t, rt, string(pod.UID), "app", "sh", "-c", "echo x > /config/new"); code == 0 {
		t.Error("a configMap volume is writable")
	}
	// hostPath: written inside, visible on the host.
	var out bytes.Buffer
	code, err := rt.Exec(ctx(t, 20*time.Second), string(pod.UID), "app", runtime.ExecOptions{
		Cmd: []string{"sh", "-c", "cat > /host/from-pod; cat /host/from-pod"}, Stdin: strings.NewReader("via stdin\n"), Stdout: &out,
	})
	if err != nil || code != 0 || out.String() != "via stdin\n" {
		t.Fatalf("exec with stdin: %d %v %q", code, err, out.String())
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "shared", "from-pod")); err != nil || string(b) != "via stdin\n" {
		t.Errorf("hostPath file on the host: %q %v", b, err)
	}

	// A terminal exec gets a pty.
	var ttyOut bytes.Buffer
	code, err = rt.Exec(ctx(t, 20*time.Second), string(pod.UID), "app", runtime.ExecOptions{Cmd: []string{"tty"}, TTY: true, Stdout: &ttyOut})
	if err != nil || code != 0 || !strings.Contains(ttyOut.String(), "/dev/pts/") {
		t.Errorf("exec with TTY: %d %v %q", code, err, ttyOut.String())
	}

	// Cancelling an exec, at any step of it, kills its process.
	for _, d := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond, 500 * time.Millisecond} {
		cctx, cancel := context.WithTimeout(context.Background(), d)
		start := time.Now()
		if _, err := rt.Exec(cctx, string(pod.UID), "app", runtime.ExecOptions{Cmd: []string{"sleep", "300"}}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("exec cancelled after %v: %v, want DeadlineExceeded", d, err)
		}
		cancel()
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("exec cancelled after %v returned after %v", d, took)
		}
		if out, _ := exec(t, rt, string(pod.UID), "app", "sh", "-c", "ps -o args | grep '^sleep 300' || true"); strings.TrimSpace(out) != "" {
			t.Errorf("exec cancelled after %v: its process still runs: %q", d, out)
		}
	}
	if out, _ := exec(t, rt, string(pod.UID), "app", "sh", "-c", "ps -o args | grep '^sleep 300' || true"); strings.TrimSpace(out) != "" {
		t.Errorf("cancelled exec's process still runs: pids %q", out)
	}

	// A pod whose image is not on the node.
	bad := newPod("noimage", corev1.Container{Name: "c", Image: "example.com/nothing:1"})
	if _, err := rt.RunPod(ctx(t, 60*time.Second), runtime.PodInput{Pod: bad}); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Errorf("missing image: %v, want ErrImageNotFound", err)
	} else {
		t.Logf("missing image error: %v", err)
	}
	if err := rt.RemovePod(ctx(t, 30*time.Second), string(bad.UID), 0); err != nil {
		t.Error(err)
	}
	hostNet := newPod("hostnet", corev1.Container{Name: "c", Image: "busybox"})
	hostNet.Spec.HostNetwork = true
	if _, err := rt.RunPod(ctx(t, 10*time.Second), runtime.PodInput{Pod: hostNet}); !errors.Is(err, runtime.ErrUnsupported) {
		t.Errorf("hostNetwork: %v, want ErrUnsupported", err)
	}
}
