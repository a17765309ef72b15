package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// writeTar writes a small tar archive to path.
func writeTar(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckImageFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	writeTar(t, good, map[string]string{"index.json": "{}"})
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gz := write("img.tar.gz", []byte{0x1f, 0x8b, 8, 0, 0, 0})
	zst := write("img.tar.zst", []byte{0x28, 0xb5, 0x2f, 0xfd, 1})
	empty := write("empty.tar", nil)
	text := write("notes.txt", bytes.Repeat([]byte("not a tar at all\n"), 100))

	f, err := checkImageFile(good)
	if st, _ := os.Stat(good); err != nil || f.size != st.Size() || f.path != good {
		t.Errorf("good tar: got %+v, %v", f, err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.tar"), "no such file"},
		{dir, "is a directory: give a tarball"},
		{gz, "is gzip-compressed: decompress it first (gunzip -k"},
		{zst, "is zstd-compressed"},
		{empty, "is empty"},
		{text, "notes.txt is not a tar archive"},
	} {
		_, err := checkImageFile(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.path, err, tc.want)
		}
	}
}

func testNode(name string, ready corev1.ConditionStatus) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
	}
	return n
}

func TestChooseNodes(t *testing.T) {
	nodes := []corev1.Node{testNode("n3", corev1.ConditionTrue), testNode("n1", corev1.ConditionTrue),
		testNode("n2", corev1.ConditionFalse), testNode("n4", "")}
	for _, tc := range []struct {
		name          string
		nodes         []corev1.Node
		want          []string
		chosen, skips string
		err           string
	}{
		{name: "every Ready node, sorted", nodes: nodes, chosen: "n1,n3", skips: "n2,n4"},
		{name: "named, Ready or not", nodes: nodes, want: []string{"n2", "n1", "n2"}, chosen: "n1,n2"},
		{name: "unknown", nodes: nodes, want: []string{"n1", "nope"}, err: `--node nope: node "nope" not found (nodes: n1, n2, n3, n4)`},
		{name: "unknown, none registered", want: []string{"x"}, err: `node "x" not found (nodes: none registered)`},
		{name: "empty name", nodes: nodes, want: []string{""}, err: "--node: empty node name"},
		{name: "none registered", err: "no nodes: no agent has registered"},
		{name: "none Ready", nodes: []corev1.Node{testNode("n2", corev1.ConditionUnknown)}, err: "no Ready node (not Ready: n2); name one with --node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chosen, skipped, err := chooseNodes(tc.nodes, tc.want)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want error %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(chosen, ","); got != tc.chosen {
				t.Errorf("chosen %q, want %q", got, tc.chosen)
			}
			if got := strings.Join(skipped, ","); got != tc.skips {
				t.Errorf("skipped %q, want %q", got, tc.skips)
			}
		})
	}
}

func TestSendChunks(t *testing.T) {
	for _, n := range []int{0, 1, 999, 1000, 1001, 3000, 3500} {
		data := make([]byte, n)
		_, _ = rand.Read(data)
		var got []byte
		var sizes []int
		total, err := sendChunks(bytes.NewReader(data), 1000, func(b []byte) error {
			sizes = append(sizes, len(b))
			got = append(got, b...)
			return nil
		})
		if err != nil || total != int64(n) || !bytes.Equal(got, data) {
			t.Errorf("%d bytes: total %d, err %v, equal %v", n, total, err, bytes.Equal(got, data))
		}
		for i, s := range sizes {
			if s > 1000 || (i < len(sizes)-1 && s != 1000) || s == 0 {
				t.Errorf("%d bytes: piece sizes %v: want full 1000-byte pieces, then the rest", n, sizes)
			}
		}
		if want := (n + 999) / 1000; len(sizes) != want {
			t.Errorf("%d bytes: %d pieces, want %d", n, len(sizes), want)
		}
	}
	// A send error stops the reading and is returned as is.
	boom := errors.New("boom")
	calls := 0
	_, err := sendChunks(bytes.NewReader(make([]byte, 5000)), 1000, func([]byte) error {
		calls++
		if calls == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls != 2 {
		t.Errorf("send error: got %v after %d calls", err, calls)
	}
	// A read error is returned too.
	_, err = sendChunks(io.MultiReader(bytes.NewReader(make([]byte, 10)), errReader{}), 1000, func([]byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error: got %v", err)
	}
	if _, err := sendChunks(bytes.NewReader(nil), 0, nil); err == nil {
		t.Error("chunk size 0 accepted")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// fakeImageNodes is a PodStreamService that stands for the API server and
// its agents: node "good" keeps what it receives, node "down" answers as an
// unreachable agent does, node "slow" takes its time.
type fakeImageNodes struct {
	skiffv1.UnimplementedPodStreamServiceServer
	mu       sync.Mutex
	received map[string][]byte
	maxPiece int
}

func (f *fakeImageNodes) ImportImage(s skiffv1.PodStreamService_ImportImageServer) error {
	first, err := s.Recv()
	if err != nil {
		return err
	}
	node := first.Node
	if node == "down" {
		return status.Error(codes.Unavailable, "cannot reach the agent of node down: connection error: connection refused")
	}
	var got []byte
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.maxPiece = max(f.maxPiece, len(m.Data))
		f.mu.Unlock()
		got = append(got, m.Data...)
	}
	f.mu.Lock()
	f.received[node+"/"+first.Source] = got
	f.mu.Unlock()
	return s.SendAndClose(&skiffv1.ImportImageResponse{Node: node, Images: []string{"docker.io/library/" + first.Source}, Bytes: int64(len(got))})
}

func (f *fakeImageNodes) ListImages(_ context.Context, req *skiffv1.ListImagesRequest) (*skiffv1.ListImagesResponse, error) {
	if req.Node == "down" {
		return nil, status.Error(codes.Unavailable, "cannot reach the agent of node down: connection refused")
	}
	return &skiffv1.ListImagesResponse{Images: []*skiffv1.NodeImage{
		{Node: req.Node, Name: "skiff.local/httpd:latest", Digest: "sha256:0123456789abcdef0123", SizeBytes: 1234567},
		{Node: req.Node, Name: "docker.io/library/busybox:latest", Digest: "sha256:fedcba9876543210", SizeBytes: 999},
	}}, nil
}

func fakeStreams(t *testing.T) (*fakeImageNodes, skiffv1.PodStreamServiceClient) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	fake := &fakeImageNodes{received: map[string][]byte{}}
	skiffv1.RegisterPodStreamServiceServer(gs, fake)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return fake, skiffv1.NewPodStreamServiceClient(conn)
}

// TestImportEverywhere: every file reaches every good node intact in
// pieces of at most 1 MiB; a node that fails is named on stderr and in the
// error, and does not keep the others from getting the images.
func TestImportEverywhere(t *testing.T) {
	fake, ps := fakeStreams(t)
	dir := t.TempDir()
	a := filepath.Join(dir, "a.tar")
	big := make([]byte, 2*imageChunkSize+12345)
	_, _ = rand.Read(big)
	writeTar(t, a, map[string]string{"blob": string(big)})
	b := filepath.Join(dir, "b.tar")
	writeTar(t, b, map[string]string{"index.json": "{}"})
	var files []imageFile
	for _, p := range []string{a, b} {
		f, err := checkImageFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	old := importProgressEvery
	importProgressEvery = 0 // a progress line after every piece
	defer func() { importProgressEvery = old }()

	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results := importEverywhere(ctx, ps, []string{"down", "good", "good2"}, files, &lineWriter{w: &out}, &lineWriter{w: &errOut})
	for _, node := range []string{"good", "good2"} {
		for _, p := range []string{a, b} {
			want, _ := os.ReadFile(p)
			if got := fake.received[node+"/"+filepath.Base(p)]; !bytes.Equal(got, want) {
				t.Errorf("%s got %d bytes of %s, want %d identical", node, len(got), filepath.Base(p), len(want))
			}
		}
	}
	if fake.maxPiece != imageChunkSize {
		t.Errorf("largest piece %d bytes, want %d", fake.maxPiece, imageChunkSize)
	}
	for _, want := range []string{
		"good: sending a.tar (2.11MB)",
		"good: a.tar 1.05MB of 2.11MB (49%)",
		"good: loaded docker.io/library/a.tar from a.tar (2.11MB in ",
		"good2: loaded docker.io/library/b.tar from b.tar",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "down: a.tar failed: Error from server (ServiceUnavailable): cannot reach the agent of node down") {
		t.Errorf("stderr does not name the failed node:\n%s", errOut.String())
	}
	line, err := importSummary(results, len(files))
	if line != "imported 2 files onto 2 of 3 node(s): good, good2" {
		t.Errorf("summary %q", line)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "image import failed on 1 node(s): down (a.tar: Error from server (ServiceUnavailable): cannot reach the agent of node down") {
		t.Errorf("error %v: want it to name node down", err)
	}

	// All well: no error.
	results = importEverywhere(ctx, ps, []string{"good"}, files[1:], &lineWriter{w: io.Discard}, &lineWriter{w: io.Discard})
	if line, err := importSummary(results, 1); err != nil || line != "imported 1 file onto 1 node(s): good" {
		t.Errorf("summary %q, %v", line, err)
	}
}

func TestListImagesEverywhere(t *testing.T) {
	_, ps := fakeStreams(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	imgs, failed := listImagesEverywhere(ctx, ps, []string{"n2", "down", "n1"})
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), "cannot reach the agent of node down") {
		t.Errorf("failed %v: want node down named", failed)
	}
	var out bytes.Buffer
	if err := writeNodeImages(&out, imgs, false); err != nil {
		t.Fatal(err)
	}
	want := `NODE   IMAGE                              DIGEST         SIZE
n1     docker.io/library/busybox:latest   fedcba987654   999B
n1     skiff.local/httpd:latest           0123456789ab   1.23MB
n2     docker.io/library/busybox:latest   fedcba987654   999B
n2     skiff.local/httpd:latest           0123456789ab   1.23MB
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 999: "999B", 1000: "1kB", 1234: "1.23kB", 45_600_000: "45.6MB", 2_500_000_000: "2.5GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[string]string{"sha256:0123456789abcdef": "0123456789ab", "short": "short", "sha256:abc": "abc"} {
		if got := shortDigest(d); got != want {
			t.Errorf("shortDigest(%q) = %q, want %q", d, got, want)
		}
	}
}

// TestImageLocalFlags: --data-dir and --containerd-socket keep the old
// node-local command working (scripts/up.sh uses it); --node cannot go
// with them. Checked on the parsed command, before anything runs.
func TestImageLocalFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		local bool
		err   string
	}{
		{args: nil},
		{args: []string{"--node", "n1,n2"}},
		{args: []string{"--local"}, local: true},
		{args: []string{"--data-dir", "/tmp/x"}, local: true},
		{args: []string{"--containerd-socket", "/run/c.sock"}, local: true},
		{args: []string{"--local", "--node", "n1"}, err: "cannot be combined with --local"},
		{args: []string{"--data-dir", "/tmp/x", "--node", "n1"}, err: "cannot be combined"},
	} {
		for _, mk := range []func() *cobra.Command{newImageImportCmd, newImageListCmd} {
			cmd := mk()
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			nodes, _ := cmd.Flags().GetStringSlice("node")
			var lf localFlags
			lf.local, _ = cmd.Flags().GetBool("local")
			local, err := lf.isLocal(cmd, nodes)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("%s %v: got %v, want %q", cmd.Name(), tc.args, err, tc.err)
				}
				continue
			}
			if err != nil || local != tc.local {
				t.Errorf("%s %v: local %v, %v; want %v", cmd.Name(), tc.args, local, err, tc.local)
			}
		}
	}
	// A bad file is refused before any connection is tried.
	cmd := newImageImportCmd()
	cmd.SetArgs([]string{"--kubeconfig", "/nonexistent/config", filepath.Join(t.TempDir(), "nope.tar")})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "nope.tar: no such file") {
		t.Errorf("missing file: got %v", err)
	}
}

// TestCLIErrorNamesNode: an Unavailable the API server sends for a node's
// agent keeps its message; one from the client's own connection still
// says the server cannot be reached.
func TestCLIErrorNamesNode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.Unavailable, "cannot reach the agent of node n1: connection error: desc = dial tcp 10.0.0.2:10250: connect: connection refused"),
			"Error from server (ServiceUnavailable): cannot reach the agent of node n1: connection error"},
		{client.NewUnavailable("node n2 publishes no log/exec endpoint (its agent runs without the cluster CA)"),
			"Error from server (ServiceUnavailable): node n2 publishes no log/exec endpoint"},
		{status.Error(codes.DeadlineExceeded, "node n3: context deadline exceeded"),
			"Error from server (Timeout): node n3: context deadline exceeded"},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:6443: connect: connection refused"`),
			"unable to reach the server: connection error"},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp: lookup node-1.example: no such host"`),
			"unable to reach the server: connection error"},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), "unable to reach the server: context deadline exceeded"},
	} {
		got := cliError(tc.err)
		if !strings.HasPrefix(got.Error(), tc.want) {
			t.Errorf("cliError(%v) = %q, want prefix %q", tc.err, got, tc.want)
		}
	}
	if cliError(nil) != nil {
		t.Error("cliError(nil) is not nil")
	}
}
