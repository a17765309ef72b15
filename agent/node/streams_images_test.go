package node

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/containerd/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// An import that fails says on which node, with which file, and whose
// problem it is.
func TestImportError(t *testing.T) {
	hint := "(want an uncompressed OCI image layout or `docker save` tarball)"
	for _, tc := range []struct {
		err  error
		code codes.Code
		hint bool
	}{
		{errors.New("unrecognized image format"), codes.InvalidArgument, true},
		{fmt.Errorf("import image: %w", tar.ErrHeader), codes.InvalidArgument, true},
		{fmt.Errorf("failed to ingest \"blobs/sha256/ab\": %w", io.ErrUnexpectedEOF), codes.InvalidArgument, true},
		{errors.New(`image config "x.json" not found`), codes.InvalidArgument, true},
		{fmt.Errorf("failed to open writer: %w", errdefs.ErrUnavailable), codes.Unavailable, false},
		{errors.New("write /var/lib/skiff/containerd: no space left on device"), codes.Internal, false},
	} {
		st, _ := status.FromError(importError("n1", "app.tar", tc.err))
		if st.Code() != tc.code || !strings.HasPrefix(st.Message(), "node n1: app.tar: ") || strings.Contains(st.Message(), hint) != tc.hint {
			t.Errorf("importError(%v) = %s %q; want %s, naming node and file, hint %v", tc.err, st.Code(), st.Message(), tc.code, tc.hint)
		}
	}
}
