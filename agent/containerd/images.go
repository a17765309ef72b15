package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	client "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images/archive"
)

// Snapshotter is the snapshotter images are unpacked into and containers
// run on. overlayfs works on the target machines; "native" copies the whole
// rootfs per container.
const Snapshotter = "overlayfs"

// ImageInfo is one image as the node sees it.
type ImageInfo struct {
	Name     string // full reference, e.g. docker.io/library/nginx:latest
	Digest   string // manifest (or index) digest
	Size     int64  // bytes of content (compressed)
	Unpacked bool   // ready for containers on Snapshotter
}

// ImportImage loads an OCI image layout or `docker save` tarball and unpacks
// every image in it for Snapshotter. It returns the full references loaded.
func (d *Daemon) ImportImage(ctx context.Context, r io.Reader) ([]string, error) {
	ctx = d.nsContext(ctx)
	imgs, err := d.client.Import(ctx, r,
		client.WithAllPlatforms(false),
		client.WithImportCompression(),
		client.WithDigestRef(archive.DigestTranslator("import")),
		client.WithSkipDigestRef(func(name string) bool { return name != "" }),
	)
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	var names []string
	for _, meta := range imgs {
		img := client.NewImageWithPlatform(d.client, meta, platformMatcher())
		if err := img.Unpack(ctx, Snapshotter); err != nil {
			return names, fmt.Errorf("unpack %s: %w", meta.Name, err)
		}
		names = append(names, meta.Name)
	}
	sort.Strings(names)
	return names, nil
}

// ListImages lists the images in Skiff's namespace, sorted by name.
func (d *Daemon) ListImages(ctx context.Context) ([]ImageInfo, error) {
	ctx = d.nsContext(ctx)
	imgs, err := d.client.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ImageInfo, 0, len(imgs))
	for _, img := range imgs {
		info := ImageInfo{Name: img.Name(), Digest: img.Target().Digest.String()}
		if size, err := img.Size(ctx); err == nil {
			info.Size = size
		}
		if ok, err := img.IsUnpacked(ctx, Snapshotter); err == nil {
			info.Unpacked = ok
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// HasImage reports whether ref (already normalised) is present.
func (d *Daemon) HasImage(ctx context.Context, ref string) (bool, error) {
	_, err := d.client.GetImage(d.nsContext(ctx), ref)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// ErrImagePull: the image could not be pulled from its registry.
var ErrImagePull = errors.New("image pull failed")

// PullImage pulls ref (already normalised) from its registry and unpacks
// it. With no registry reachable it fails with ErrImagePull; the message
// says how to import the image instead.
func (d *Daemon) PullImage(ctx context.Context, ref string) error {
	_, err := d.client.Pull(d.nsContext(ctx), ref,
		client.WithPullUnpack,
		client.WithPullSnapshotter(Snapshotter),
		client.WithPlatformMatcher(platformMatcher()),
	)
	if err != nil {
		return fmt.Errorf("%w: %s: %v (no registry? load it with `skiff image import FILE`)", ErrImagePull, ref, err)
	}
	return nil
}
