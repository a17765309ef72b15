package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/images"
	"github.com/skiffhq/skiff/agent/node"
	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// imageCLI runs `skiff image ...` (the real command tree) against the
// test API server.
func imageCLI(ctx context.Context, cfg string, out, errOut io.Writer, args ...string) error {
	root := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newImageCmd())
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetArgs(append(args, "--kubeconfig", cfg))
	return root.ExecuteContext(ctx)
}

// waitNodeReady waits until the Node reports Ready.
func (e *nodeEnv) waitNodeReady(t *testing.T, name string) {
	t.Helper()
	poll(t, 60*time.Second, "node "+name+" Ready", func() (bool, error) {
		n := &corev1.Node{}
		if err := e.c.Get(context.Background(), "", name, n); err != nil {
			return false, err
		}
		return nodeIsReady(n), fmt.Errorf("conditions %v", n.Status.Conditions)
	})
}

// TestImageImportE2E: a pod waits on an image the node does not have, and
// its status says how to import it; `skiff image import` sends the
// tarball (several 1 MiB pieces) through the API server to the agent; the
// image is listed on the node and the pod runs from it. Then the refusals:
// an unknown --node, a tar that holds no image, and callers without
// credentials.
func TestImageImportE2E(t *testing.T) {
	e := newNodeEnv(t)
	e.waitNodeReady(t, "n1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// An image no node has: the busybox layer plus 3 MiB of random bytes,
	// so the tarball travels in several pieces and the pod can check that
	// every byte arrived.
	const ref = "skiff.test/imported:e2e"
	base, err := images.BusyboxLayer(images.DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 3<<20)
	_, _ = rand.Read(blob)
	img := images.Image{Names: []string{ref}, Layers: []images.Layer{base, {
		{Path: "data", Mode: os.ModeDir | 0o755},
		{Path: "data/blob", Mode: 0o644, Data: blob},
	}}}
	img.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	tarball := filepath.Join(t.TempDir(), "imported.tar")
	var buf bytes.Buffer
	if err := images.WriteLayout(&buf, img); err != nil {
		t.Fatal(err)
	}
	if buf.Len() <= 3*imageChunkSize {
		t.Fatalf("test tarball is %d bytes: want more than 3 pieces", buf.Len())
	}
	if err := os.WriteFile(tarball, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	// The pod first: the image is missing, so it waits with a message that
	// says how to import it.
	never := corev1.RestartPolicyNever
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "imported", Namespace: "default"},
		// No scheduler runs here: the pod is bound to n1 directly.
		Spec: corev1.PodSpec{NodeName: "n1", RestartPolicy: never, TerminationGracePeriodSeconds: new(int64), Containers: []corev1.Container{{
			Name: "main", Image: ref, ImagePullPolicy: corev1.PullIfNotPresent,
			// Fails (and with restartPolicy Never stays failed) unless the
			// whole blob arrived.
			Command: []string{"sh", "-c", fmt.Sprintf(`test "$(wc -c < /data/blob)" -eq %d && exec sleep 3600`, len(blob))},
		}}},
	}
	if err := e.c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	poll(t, 60*time.Second, "pod waiting on the missing image with an import hint", func() (bool, error) {
		p := &corev1.Pod{}
		if err := e.c.Get(ctx, "default", "imported", p); err != nil {
			return false, err
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && w.Reason == "ErrImagePull" {
				return strings.Contains(w.Message, "skiff image import"), fmt.Errorf("message %q", w.Message)
			}
		}
		return false, fmt.Errorf("container statuses %+v", p.Status.ContainerStatuses)
	})

	// Import through the API server.
	var out, errOut bytes.Buffer
	if err := imageCLI(ctx, e.srv.ConfigPath, &out, &errOut, "image", "import", tarball); err != nil {
		t.Fatalf("image import: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	t.Logf("skiff image import:\n%s", out.String())
	for _, want := range []string{
		"n1: sending imported.tar",
		"n1: loaded " + ref + " from imported.tar (" + humanSize(int64(buf.Len())) + " in ",
		"imported 1 file onto 1 node(s): n1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("image import output lacks %q:\n%s", want, out.String())
		}
	}

	// image ls shows it on n1, with its digest and size.
	out.Reset()
	errOut.Reset()
	if err := imageCLI(ctx, e.srv.ConfigPath, &out, &errOut, "image", "ls"); err != nil {
		t.Fatalf("image ls: %v\n%s", err, errOut.String())
	}
	t.Logf("skiff image ls:\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NODE IMAGE DIGEST SIZE" {
		t.Errorf("image ls header %q", lines[0])
	}
	found := false
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == 4 && f[0] == "n1" && f[1] == ref {
			found = true
			if len(f[2]) != 12 || !strings.HasSuffix(f[3], "MB") {
				t.Errorf("image ls row %q: want a 12-digit digest and a size in MB", l)
			}
		}
	}
	if !found {
		t.Errorf("image ls does not show %s on n1:\n%s", ref, out.String())
	}
	// The seeded test images are there too, and --node n1 gives the same.
	if !strings.Contains(out.String(), images.BusyboxImage) {
		t.Errorf("image ls lacks %s:\n%s", images.BusyboxImage, out.String())
	}
	var nodeOut bytes.Buffer
	if err := imageCLI(ctx, e.srv.ConfigPath, &nodeOut, io.Discard, "image", "ls", "--node", "n1"); err != nil || nodeOut.String() != out.String() {
		t.Errorf("image ls --node n1: err %v, output differs:\n%s\nvs\n%s", err, nodeOut.String(), out.String())
	}

	// The waiting pod starts from the imported image by itself (after its
	// pull back-off, 10s at first).
	e.waitReady(t, "imported")

	t.Run("docker save format", func(t *testing.T) {
		const dref = "skiff.test/docker-save:v1"
		path := filepath.Join(t.TempDir(), "saved.tar")
		writeDockerSave(t, path, dref)
		var o, eo bytes.Buffer
		if err := imageCLI(ctx, e.srv.ConfigPath, &o, &eo, "image", "import", "--node", "n1", path); err != nil {
			t.Fatalf("import docker save tarball: %v\n%s%s", err, o.String(), eo.String())
		}
		if !strings.Contains(o.String(), "n1: loaded "+dref+" from saved.tar") {
			t.Errorf("import output:\n%s", o.String())
		}
		o.Reset()
		if err := imageCLI(ctx, e.srv.ConfigPath, &o, io.Discard, "image", "ls", "--no-headers"); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^n1 +` + regexp.QuoteMeta(dref) + ` +[0-9a-f]{12} +\S+$`).MatchString(o.String()) {
			t.Errorf("image ls does not show %s:\n%s", dref, o.String())
		}
	})

	t.Run("large file is streamed", func(t *testing.T) {
		if testing.Short() {
			t.Skip("writes and imports a 128 MiB image")
		}
		// CLI, API server and agent all run in this process: if any hop
		// held the whole file, the heap would grow by its size. Garbage
		// is kept small (GC at +10%) so that what is measured is what
		// is held.
		const size = 128 << 20
		const lref = "skiff.test/large:v1"
		path := filepath.Join(t.TempDir(), "large.tar")
		writeLargeImage(t, path, lref, size)
		defer debug.SetGCPercent(debug.SetGCPercent(10))
		goruntime.GC()
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		base, peak := ms.HeapInuse, ms.HeapInuse
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					var m goruntime.MemStats
					goruntime.ReadMemStats(&m)
					peak = max(peak, m.HeapInuse)
				}
			}
		}()
		var o, eo bytes.Buffer
		start := time.Now()
		err := imageCLI(ctx, e.srv.ConfigPath, &o, &eo, "image", "import", "--node", "n1", path)
		close(stop)
		<-sampled
		if err != nil {
			t.Fatalf("import of %d MiB: %v\n%s%s", size>>20, err, o.String(), eo.String())
		}
		grew := int64(peak) - int64(base)
		t.Logf("imported %d MiB in %v; heap grew by at most %.1f MiB\n%s", size>>20, time.Since(start).Round(time.Millisecond), float64(grew)/(1<<20), o.String())
		if grew > size/2 {
			t.Errorf("heap grew by %d MiB while importing a %d MiB file: some hop holds the file", grew>>20, size>>20)
		}
		if !strings.Contains(o.String(), "n1: loaded "+lref+" from large.tar") {
			t.Errorf("import output:\n%s", o.String())
		}
	})

	// Refusals.
	t.Run("unknown node", func(t *testing.T) {
		var o, eo bytes.Buffer
		err := imageCLI(ctx, e.srv.ConfigPath, &o, &eo, "image", "import", "--node", "nope", tarball)
		if err == nil || !strings.Contains(err.Error(), `node "nope" not found (nodes: n1)`) {
			t.Errorf("import --node nope: got %v, want node \"nope\" not found naming n1", err)
		}
		if o.Len() != 0 {
			t.Errorf("import --node nope sent something:\n%s", o.String())
		}
		err = imageCLI(ctx, e.srv.ConfigPath, io.Discard, io.Discard, "image", "ls", "--node", "nope")
		if err == nil || !strings.Contains(err.Error(), `node "nope" not found`) {
			t.Errorf("ls --node nope: got %v", err)
		}
		// Straight to the API, past the CLI's check.
		s, err := e.c.PodStreams().ImportImage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Send(&skiffv1.ImportImageRequest{Node: "nope"})
		if _, err := s.CloseAndRecv(); !client.IsNotFound(err) {
			t.Errorf("API import to node nope: got %v, want NotFound", err)
		}
	})

	t.Run("not an image", func(t *testing.T) {
		// A valid tar holding no image: the CLI's check passes it, the
		// agent refuses it naming the node, and the command fails.
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		_ = tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 5})
		_, _ = tw.Write([]byte("hello"))
		_ = tw.Close()
		bad := filepath.Join(t.TempDir(), "hello.tar")
		if err := os.WriteFile(bad, tb.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		var o, eo bytes.Buffer
		err := imageCLI(ctx, e.srv.ConfigPath, &o, &eo, "image", "import", bad)
		t.Logf("import of a tar without an image: %v\nstdout:\n%s\nstderr:\n%s", err, o.String(), eo.String())
		if err == nil || !strings.Contains(err.Error(), "image import failed on 1 node(s): n1 (hello.tar:") {
			t.Errorf("import of a non-image tar: got %v\nstdout:\n%s\nstderr:\n%s", err, o.String(), eo.String())
		}
		if !strings.Contains(eo.String(), "n1: hello.tar failed: ") || !strings.Contains(o.String(), "imported 1 file onto 0 of 1 node(s)") {
			t.Errorf("failure not reported per node and in the summary:\nstdout:\n%s\nstderr:\n%s", o.String(), eo.String())
		}
		// The agent is fine afterwards.
		if err := imageCLI(ctx, e.srv.ConfigPath, io.Discard, io.Discard, "image", "ls"); err != nil {
			t.Errorf("image ls after a failed import: %v", err)
		}
	})

	t.Run("a node that fails", func(t *testing.T) {
		// n2 says it is Ready but its agent's port is closed: n1 still
		// gets the image, n2 is named, and the command fails.
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := lis.Addr().(*net.TCPAddr).Port
		lis.Close()
		n2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2",
			Annotations: map[string]string{node.AnnotationAgentCert: strings.Repeat("ab", 32)}}}
		if err := e.c.Create(ctx, n2); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = e.c.Delete(context.Background(), n2, nil) }()
		n2.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
		n2.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(dead)
		n2.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		if err := e.c.UpdateStatus(ctx, n2); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "two.tar")
		writeDockerSave(t, path, "skiff.test/two-nodes:v1")
		var o, eo bytes.Buffer
		err = imageCLI(ctx, e.srv.ConfigPath, &o, &eo, "image", "import", path)
		t.Logf("import onto n1 and an unreachable n2: %v\nstdout:\n%s\nstderr:\n%s", err, o.String(), eo.String())
		if err == nil || !strings.Contains(err.Error(), "image import failed on 1 node(s): n2 (two.tar: Error from server (ServiceUnavailable): cannot reach the agent of node n2") {
			t.Errorf("import with n2 down: got %v", err)
		}
		if !strings.Contains(o.String(), "n1: loaded skiff.test/two-nodes:v1 from two.tar") ||
			!strings.Contains(o.String(), "imported 1 file onto 1 of 2 node(s): n1") {
			t.Errorf("n1 did not get the image, or the summary is wrong:\n%s", o.String())
		}
		// ls shows n1's images and names n2.
		o.Reset()
		eo.Reset()
		err = imageCLI(ctx, e.srv.ConfigPath, &o, &eo, "image", "ls")
		if err == nil || !strings.Contains(err.Error(), "could not list the images of 1 of 2 node(s)") ||
			!strings.Contains(eo.String(), "cannot reach the agent of node n2") || !strings.Contains(o.String(), "skiff.test/two-nodes:v1") {
			t.Errorf("ls with n2 down: %v\nstdout:\n%s\nstderr:\n%s", err, o.String(), eo.String())
		}
	})

	t.Run("unauthenticated", func(t *testing.T) {
		cfg, err := client.LoadConfig(e.srv.ConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		cl, _, _, err := cfg.Resolve("")
		if err != nil {
			t.Fatal(err)
		}
		for name, user := range map[string]client.AuthInfo{
			"no credentials": {},
			"wrong token":    {Token: "not-the-token-not-the-token-not-the-token"},
		} {
			c, err := client.Dial(cl, user)
			if err != nil {
				t.Fatal(err)
			}
			s, err := c.PodStreams().ImportImage(ctx)
			if err == nil {
				_ = s.Send(&skiffv1.ImportImageRequest{Node: "n1", Data: buf.Bytes()[:1024]})
				_, err = s.CloseAndRecv()
			}
			if client.FromError(err).Code.String() != "Unauthenticated" {
				t.Errorf("%s: import got %v, want Unauthenticated", name, err)
			}
			_, err = c.PodStreams().ListImages(ctx, &skiffv1.ListImagesRequest{Node: "n1"})
			if client.FromError(err).Code.String() != "Unauthenticated" {
				t.Errorf("%s: list got %v, want Unauthenticated", name, err)
			}
			c.Close()
		}
		// The CLI with a config without credentials says so.
		for i := range cfg.Users {
			cfg.Users[i].User = client.AuthInfo{}
		}
		anon := filepath.Join(t.TempDir(), "config")
		if err := cfg.Save(anon); err != nil {
			t.Fatal(err)
		}
		err = imageCLI(ctx, anon, io.Discard, io.Discard, "image", "import", tarball)
		if err == nil || !strings.Contains(err.Error(), "Unauthorized") {
			t.Errorf("CLI without credentials: got %v, want Unauthorized", err)
		}
	})
}

// writeDockerSave writes a one-layer image in the layout `docker save`
// writes (manifest.json, the config as <digest>.json, <id>/layer.tar).
func writeDockerSave(t *testing.T, path, ref string) {
	t.Helper()
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	_ = lw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
	_, _ = lw.Write([]byte("hello\n"))
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	layerSum := sha256.Sum256(layer.Bytes())
	layerHex := hex.EncodeToString(layerSum[:])
	config, err := json.Marshal(map[string]any{
		"architecture": goruntime.GOARCH, "os": "linux",
		"config": map[string]any{"Cmd": []string{"/hello.txt"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerHex}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgSum := sha256.Sum256(config)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{ref}, "Layers": []string{layerHex + "/layer.tar"}}})
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		data []byte
	}{
		{layerHex + "/VERSION", []byte("1.0")},
		{layerHex + "/layer.tar", layer.Bytes()},
		{cfgName, config},
		{"manifest.json", manifest},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestImageImportLocal: the node-local mode scripts/up.sh uses
// (`image import --data-dir DIR`, no API server) still loads into that
// data dir's private containerd, and `image ls --data-dir` lists it.
func TestImageImportLocal(t *testing.T) {
	requireNode(t)
	dir, err := os.MkdirTemp("", "skl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer func() {
		// The command leaves the private daemon running for the agent.
		if d, err := containerd.Open(ctx, containerd.DefaultConfig(dir)); err == nil {
			_ = d.Stop(ctx)
		}
	}()
	path := filepath.Join(t.TempDir(), "local.tar")
	writeDockerSave(t, path, "skiff.test/local:v1")
	var out, errOut bytes.Buffer
	// No --kubeconfig is needed: nothing talks to an API server.
	root := &cobra.Command{Use: "skiff", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newImageCmd())
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"image", "import", "--data-dir", dir, path})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("local import: %v\n%s", err, errOut.String())
	}
	if got, want := out.String(), "imported skiff.test/local:v1 from "+path+"\n"; got != want {
		t.Errorf("local import printed %q, want %q", got, want)
	}
	out.Reset()
	root.SetArgs([]string{"image", "ls", "--local", "--data-dir", dir})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("local ls: %v", err)
	}
	if !regexp.MustCompile(`(?m)^skiff.test/local:v1 +sha256:[0-9a-f]{12} +[0-9.]+ MB +true$`).MatchString(out.String()) {
		t.Errorf("local ls:\n%s", out.String())
	}
}

// writeLargeImage writes a `docker save` tarball whose one layer holds a
// file of size pseudo-random bytes, gzip-wrapped without compression (so
// containerd stores it as is), without holding it in memory.
func writeLargeImage(t *testing.T, path, ref string, size int64) {
	t.Helper()
	dir := t.TempDir()
	layerPath := filepath.Join(dir, "layer.tar.gz")
	lf, err := os.Create(layerPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	zw, _ := gzip.NewWriterLevel(lf, gzip.NoCompression)
	diff := sha256.New()
	lw := tar.NewWriter(io.MultiWriter(zw, diff))
	if err := lw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(lw, mrand.NewChaCha8([32]byte{1}), size); err != nil {
		t.Fatal(err)
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	diffID := "sha256:" + hex.EncodeToString(diff.Sum(nil))
	config, _ := json.Marshal(map[string]any{
		"architecture": goruntime.GOARCH, "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	cfgSum := sha256.Sum256(config)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{ref}, "Layers": []string{"l/layer.tar"}}})

	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	st, err := lf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lf.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: "l/layer.tar", Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(tw, lf); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		name string
		data []byte
	}{{cfgName, config}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}
