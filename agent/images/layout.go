package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // registers the digest algorithm go-digest uses
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AnnotationImageName is the index annotation containerd's importer reads
// as the image's full reference.
const AnnotationImageName = "io.containerd.image.name"

// epoch is the modification time of every entry and the image creation time,
// so the same inputs give the same digests on every build.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// File is one entry of a layer. Mode carries the type bits: fs.ModeDir for a
// directory, fs.ModeSymlink for a symlink (Link is its target), none for a
// regular file (Data is its content).
type File struct {
	Path string // relative to the root, without a leading slash
	Mode fs.FileMode
	Data []byte
	Link string
}

// Layer is an ordered list of entries; parents must come before children.
type Layer []File

// Image is one image to write: its layers, its runtime config and the full
// references it is known by.
type Image struct {
	Names  []string
	Config ocispec.ImageConfig
	Layers []Layer
}

// WriteLayout writes imgs as one OCI image layout in tar form to w. Blobs
// shared by several images (a common base layer) are written once. Every
// name becomes its own index entry carrying AnnotationImageName.
func WriteLayout(w io.Writer, imgs ...Image) error {
	blobs := map[digest.Digest][]byte{}
	var order []digest.Digest
	add := func(data []byte) digest.Digest {
		d := digest.FromBytes(data)
		if _, ok := blobs[d]; !ok {
			blobs[d] = data
			order = append(order, d)
		}
		return d
	}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
	}
	platform := &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	for _, img := range imgs {
		if len(img.Names) == 0 {
			return fmt.Errorf("image without a name")
		}
		var layerDescs []ocispec.Descriptor
		var diffIDs []digest.Digest
		for i, l := range img.Layers {
			raw, err := tarLayer(l)
			if err != nil {
				return fmt.Errorf("image %s layer %d: %w", img.Names[0], i, err)
			}
			gz, err := gzipBytes(raw)
			if err != nil {
				return err
			}
			// diff_ids name the uncompressed tar; the manifest names the blob.
			diffIDs = append(diffIDs, digest.FromBytes(raw))
			layerDescs = append(layerDescs, ocispec.Descriptor{
				MediaType: ocispec.MediaTypeImageLayerGzip,
				Digest:    add(gz),
				Size:      int64(len(gz)),
			})
		}
		created := epoch
		cfg := ocispec.Image{
			Created:  &created,
			Platform: *platform,
			Config:   img.Config,
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		}
		cfgBytes, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		manifest := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{
				MediaType: ocispec.MediaTypeImageConfig,
				Digest:    add(cfgBytes),
				Size:      int64(len(cfgBytes)),
			},
			Layers: layerDescs,
		}
		mBytes, err := json.Marshal(manifest)
		if err != nil {
			return err
		}
		md := add(mBytes)
		for _, name := range img.Names {
			full, err := Normalize(name)
			if err != nil {
				return err
			}
			tag := full[strings.LastIndex(full, ":")+1:]
			index.Manifests = append(index.Manifests, ocispec.Descriptor{
				MediaType: ocispec.MediaTypeImageManifest,
				Digest:    md,
				Size:      int64(len(mBytes)),
				Platform:  platform,
				Annotations: map[string]string{
					AnnotationImageName:       full,
					ocispec.AnnotationRefName: tag,
				},
			})
		}
	}
	idxBytes, err := json.Marshal(index)
	if err != nil {
		return err
	}
	layoutBytes, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	entries := []File{
		{Path: ocispec.ImageLayoutFile, Mode: 0o644, Data: layoutBytes},
		{Path: "index.json", Mode: 0o644, Data: idxBytes},
		{Path: "blobs", Mode: fs.ModeDir | 0o755},
		{Path: "blobs/sha256", Mode: fs.ModeDir | 0o755},
	}
	for _, d := range order {
		entries = append(entries, File{Path: "blobs/sha256/" + d.Encoded(), Mode: 0o644, Data: blobs[d]})
	}
	for _, f := range entries {
		if err := writeEntry(tw, f); err != nil {
			return err
		}
	}
	return tw.Close()
}

func tarLayer(l Layer) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range l {
		if err := writeEntry(tw, f); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeEntry(tw *tar.Writer, f File) error {
	name := strings.TrimPrefix(path.Clean(f.Path), "/")
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(f.Mode.Perm()),
		ModTime: epoch,
		Format:  tar.FormatPAX,
	}
	// tar carries the sticky bit as the octal 01000 of the header mode.
	if f.Mode&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	switch {
	case f.Mode.IsDir():
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case f.Mode&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = f.Link
	default:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = int64(len(f.Data))
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar %s: %w", name, err)
	}
	if hdr.Typeflag == tar.TypeReg {
		if _, err := tw.Write(f.Data); err != nil {
			return fmt.Errorf("tar %s: %w", name, err)
		}
	}
	return nil
}

func gzipBytes(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf) // the header carries no name and a zero time
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
