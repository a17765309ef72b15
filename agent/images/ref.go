// Package images builds Skiff's test images without a registry and
// normalises image references the way Docker and containerd do.
//
// The test images are OCI image layouts written as tar archives from the
// host's busybox-static binary: one layer, one config, one manifest, and an
// index.json whose manifest descriptors carry the io.containerd.image.name
// annotation, so containerd's Import registers them under full references.
package images

import (
	"fmt"

	"github.com/distribution/reference"
)

// Normalize turns a reference as users write it in manifests into the full
// form containerd stores: "nginx" → "docker.io/library/nginx:latest",
// "skiff.local/httpd" → "skiff.local/httpd:latest". A digest reference keeps
// its digest and gets no tag.
func Normalize(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	return reference.TagNameOnly(named).String(), nil
}
