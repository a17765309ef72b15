package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                        "docker.io/library/nginx:latest",
		"busybox:1.36":                 "docker.io/library/busybox:1.36",
		"library/nginx":                "docker.io/library/nginx:latest",
		"skiff.local/httpd":            "skiff.local/httpd:latest",
		"localhost:5000/app:v1":        "localhost:5000/app:v1",
		"docker.io/library/nginx:1.25": "docker.io/library/nginx:1.25",
	} {
		got, err := Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Normalize("Nginx"); err == nil {
		t.Error("Normalize accepted an invalid reference")
	}
}

// TestLayoutIsConsistent reads a written layout back: every blob matches
// its digest, diff_ids are the digests of the uncompressed layers, and the
// index names the image under every alias.
func TestLayoutIsConsistent(t *testing.T) {
	img := Image{
		Names:  []string{"example", "skiff.local/example:v1"},
		Config: ocispec.ImageConfig{Cmd: []string{"sh"}},
		Layers: []Layer{{{Path: "bin", Mode: 0o755 | 1<<31}, {Path: "bin/hello", Mode: 0o755, Data: []byte("hi")}}},
	}
	var buf bytes.Buffer
	if err := WriteLayout(&buf, img); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	_ = WriteLayout(&again, img)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two writes of the same image differ: the build is not reproducible")
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	blob := func(d digest.Digest) []byte {
		b, ok := files["blobs/sha256/"+d.Encoded()]
		if !ok {
			t.Fatalf("blob %s missing", d)
		}
		if digest.FromBytes(b) != d {
			t.Fatalf("blob %s has digest %s", d, digest.FromBytes(b))
		}
		return b
	}
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range idx.Manifests {
		names = append(names, m.Annotations[AnnotationImageName])
	}
	if len(names) != 2 || names[0] != "docker.io/library/example:latest" || names[1] != "skiff.local/example:v1" {
		t.Errorf("index names %v", names)
	}
	var man ocispec.Manifest
	_ = json.Unmarshal(blob(idx.Manifests[0].Digest), &man)
	var cfg ocispec.Image
	_ = json.Unmarshal(blob(man.Config.Digest), &cfg)
	zr, err := gzip.NewReader(bytes.NewReader(blob(man.Layers[0].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	if cfg.RootFS.DiffIDs[0] != digest.FromBytes(raw) {
		t.Errorf("diff_id %s, want sha256 of the uncompressed layer %s", cfg.RootFS.DiffIDs[0], digest.FromBytes(raw))
	}
}

func TestTestImages(t *testing.T) {
	if _, err := os.Stat(DefaultBusybox); err != nil {
		t.Skip("needs /bin/busybox (apt-get install -y busybox-static)")
	}
	shell, httpd, err := TestImages(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	has := func(l Layer, p string) bool {
		for _, f := range l {
			if f.Path == p {
				return true
			}
		}
		return false
	}
	for _, p := range []string{"bin/busybox", "bin/sh", "bin/httpd", "bin/nc", "etc/passwd"} {
		if !has(shell.Layers[0], p) {
			t.Errorf("shell image lacks %s", p)
		}
	}
	if !has(httpd.Layers[1], "etc/skiff/httpd.sh") || httpd.Config.Entrypoint[1] != "/etc/skiff/httpd.sh" {
		t.Errorf("httpd image entrypoint: %v", httpd.Config.Entrypoint)
	}
}
