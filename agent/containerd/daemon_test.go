package containerd_test

import (
	"context"
	"testing"
	"time"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/images"
	"github.com/skiffhq/skiff/agent/internal/nodetest"
)

func TestDaemonImportAndAdopt(t *testing.T) {
	nodetest.RequireNode(t)
	d, dir := nodetest.StartDaemon(t)
	nodetest.ImportTestImages(t, d)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := d.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{images.BusyboxImage: false, images.BusyboxAlias: false, images.HTTPDImage: false, images.NginxAlias: false}
	for _, img := range list {
		if _, ok := want[img.Name]; ok {
			want[img.Name] = true
			if !img.Unpacked {
				t.Errorf("%s is not unpacked for %s", img.Name, containerd.Snapshotter)
			}
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("image %s missing after import; got %+v", name, list)
		}
	}

	// A second Open on the same data dir adopts the running daemon.
	d2, err := containerd.Open(ctx, containerd.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if !d2.Adopted() || d2.PID() != d.PID() {
		t.Fatalf("second Open: adopted=%v pid=%d, want adoption of pid %d", d2.Adopted(), d2.PID(), d.PID())
	}
	if ok, err := d2.HasImage(ctx, images.NginxAlias); !ok || err != nil {
		t.Fatalf("adopted daemon lacks %s: %v", images.NginxAlias, err)
	}
}
