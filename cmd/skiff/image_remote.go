package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// The cluster-wide image commands: the CLI sends each tarball to every
// chosen node's agent through the API server (PodStreamService.ImportImage)
// and asks each node for its images (ListImages).

// imageChunkSize is the size of the pieces a tarball travels in: well
// under gRPC's 4 MiB message limit, large enough that per-message costs
// do not matter.
const imageChunkSize = 1 << 20

// importProgressEvery is how often a node still receiving a file gets a
// progress line.
var importProgressEvery = 2 * time.Second

// imageFile is a tarball to import, checked before anything is sent.
type imageFile struct {
	path string
	size int64
}

// checkImageFile makes sure path is a regular file that starts like an
// uncompressed tar archive, the only shape containerd's importer reads,
// so that a wrong file is refused here, naming it, rather than on every
// node.
func checkImageFile(path string) (imageFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return imageFile{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return imageFile{}, err
	}
	if st.IsDir() {
		return imageFile{}, fmt.Errorf("%s is a directory: give a tarball (an OCI image layout packed with tar, or the output of `docker save`)", path)
	}
	if !st.Mode().IsRegular() {
		return imageFile{}, fmt.Errorf("%s is not a regular file", path)
	}
	head := make([]byte, 1024)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return imageFile{}, fmt.Errorf("%s: %w", path, err)
	}
	head = head[:n]
	switch {
	case n == 0:
		return imageFile{}, fmt.Errorf("%s is empty: want an image tarball (OCI image layout or `docker save`)", path)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return imageFile{}, fmt.Errorf("%s is gzip-compressed: decompress it first (gunzip -k %s), the importer reads plain tar", path, path)
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return imageFile{}, fmt.Errorf("%s is zstd-compressed: decompress it first (zstd -d %s), the importer reads plain tar", path, path)
	}
	if _, err := tar.NewReader(bytes.NewReader(head)).Next(); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return imageFile{}, fmt.Errorf("%s is not a tar archive (%v): want an OCI image layout or `docker save` tarball", path, err)
	}
	return imageFile{path: path, size: st.Size()}, nil
}

// nodeIsReady reports whether the Node's Ready condition is True.
func nodeIsReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// chooseNodes picks the nodes an image command goes to: the ones named
// with --node (each must exist; Ready or not, the user asked for it), or
// else every Ready node. skipped are the registered nodes left out for not
// being Ready.
func chooseNodes(nodes []corev1.Node, want []string) (chosen, skipped []string, err error) {
	byName := map[string]*corev1.Node{}
	var all []string
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
		all = append(all, nodes[i].Name)
	}
	sort.Strings(all)
	if len(want) > 0 {
		seen := map[string]bool{}
		for _, w := range want {
			if w == "" {
				return nil, nil, errors.New("--node: empty node name")
			}
			if byName[w] == nil {
				known := strings.Join(all, ", ")
				if known == "" {
					known = "none registered"
				}
				return nil, nil, fmt.Errorf("--node %s: node %q not found (nodes: %s)", w, w, known)
			}
			if !seen[w] {
				seen[w] = true
				chosen = append(chosen, w)
			}
		}
		sort.Strings(chosen)
		return chosen, nil, nil
	}
	for _, name := range all {
		if nodeIsReady(byName[name]) {
			chosen = append(chosen, name)
		} else {
			skipped = append(skipped, name)
		}
	}
	if len(chosen) == 0 {
		if len(all) == 0 {
			return nil, nil, errors.New("no nodes: no agent has registered (start one with skiff agent or skiff up)")
		}
		return nil, skipped, fmt.Errorf("no Ready node (not Ready: %s); name one with --node to try anyway", strings.Join(skipped, ", "))
	}
	return chosen, skipped, nil
}

// sendChunks reads r to its end in pieces of at most size bytes and hands
// each to send. The buffer is reused: send must be done with it when it
// returns (gRPC's Send has serialised the message by then).
func sendChunks(r io.Reader, size int, send func([]byte) error) (int64, error) {
	if size <= 0 {
		return 0, fmt.Errorf("chunk size %d: must be positive", size)
	}
	buf := make([]byte, size)
	var total int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if serr := send(buf[:n]); serr != nil {
				return total, serr
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// importToNode streams one file to one node through the API server.
// progress is called with the bytes sent so far after each piece.
func importToNode(ctx context.Context, ps skiffv1.PodStreamServiceClient, node string, file imageFile, progress func(sent int64)) (*skiffv1.ImportImageResponse, error) {
	f, err := os.Open(file.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the call if we stop half-way
	stream, err := ps.ImportImage(ctx)
	if err != nil {
		return nil, err
	}
	// closed reads the reason the far side ended the call early: Send
	// returns io.EOF then, and the status comes with the reply.
	closed := func(err error) error {
		if errors.Is(err, io.EOF) {
			if _, rerr := stream.CloseAndRecv(); rerr != nil {
				return rerr
			}
		}
		return err
	}
	if err := stream.Send(&skiffv1.ImportImageRequest{Node: node, Source: filepath.Base(file.path)}); err != nil {
		return nil, closed(err)
	}
	var sent int64
	_, err = sendChunks(f, imageChunkSize, func(b []byte) error {
		if err := stream.Send(&skiffv1.ImportImageRequest{Data: b}); err != nil {
			return closed(err)
		}
		sent += int64(len(b))
		if progress != nil {
			progress(sent)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return stream.CloseAndRecv()
}

// importResult is what happened on one node.
type importResult struct {
	node   string
	images []string
	err    error
	file   string // the file that failed
}

// lineWriter serialises the lines of the nodes' goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

// importEverywhere sends every file to every node, the nodes in parallel
// and the files of one node in order. A node stops at its first failure
// (the others go on); the results come sorted by node.
func importEverywhere(ctx context.Context, ps skiffv1.PodStreamServiceClient, nodes []string, files []imageFile, out, errOut *lineWriter) []importResult {
	results := make([]importResult, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := importResult{node: node}
			defer func() { results[i] = res }()
			for _, file := range files {
				name := filepath.Base(file.path)
				out.printf("%s: sending %s (%s)", node, name, humanSize(file.size))
				start := time.Now()
				last := start
				resp, err := importToNode(ctx, ps, node, file, func(sent int64) {
					if now := time.Now(); now.Sub(last) >= importProgressEvery {
						last = now
						out.printf("%s: %s %s of %s (%d%%)", node, name, humanSize(sent), humanSize(file.size), sent*100/max(file.size, 1))
					}
				})
				if err != nil {
					res.err, res.file = cliError(err), file.path
					errOut.printf("%s: %s failed: %v", node, name, res.err)
					return
				}
				res.images = append(res.images, resp.Images...)
				out.printf("%s: loaded %s from %s (%s in %s)", node, strings.Join(resp.Images, ", "), name,
					humanSize(resp.Bytes), time.Since(start).Round(10*time.Millisecond))
			}
		}()
	}
	wg.Wait()
	return results
}

// importSummary is the last line of an import, and the error that makes
// the command exit non-zero when a node failed.
func importSummary(results []importResult, files int) (string, error) {
	var ok, failed []string
	for _, r := range results {
		if r.err != nil {
			failed = append(failed, r.node)
		} else {
			ok = append(ok, r.node)
		}
	}
	what := fmt.Sprintf("%d file", files)
	if files != 1 {
		what += "s"
	}
	if len(failed) == 0 {
		return fmt.Sprintf("imported %s onto %d node(s): %s", what, len(ok), strings.Join(ok, ", ")), nil
	}
	var why []string
	for _, r := range results {
		if r.err != nil {
			why = append(why, fmt.Sprintf("%s (%s: %v)", r.node, filepath.Base(r.file), r.err))
		}
	}
	line := fmt.Sprintf("imported %s onto %d of %d node(s)", what, len(ok), len(results))
	if len(ok) > 0 {
		line += ": " + strings.Join(ok, ", ")
	}
	return line, fmt.Errorf("image import failed on %d node(s): %s", len(failed), strings.Join(why, "; "))
}

// listNodes reads the registered nodes.
func listNodes(ctx context.Context, c *client.Client) ([]corev1.Node, error) {
	var list corev1.NodeList
	if err := c.List(ctx, "", &list, client.ListOptions{}); err != nil {
		return nil, cliError(err)
	}
	return list.Items, nil
}

// listImagesEverywhere asks the nodes in parallel. Nodes that fail are
// returned apart, with an error naming them.
func listImagesEverywhere(ctx context.Context, ps skiffv1.PodStreamServiceClient, nodes []string) ([]*skiffv1.NodeImage, []error) {
	per := make([][]*skiffv1.NodeImage, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := ps.ListImages(ctx, &skiffv1.ListImagesRequest{Node: node})
			if err != nil {
				errs[i] = cliError(err)
				return
			}
			for _, img := range resp.Images {
				if img.Node == "" {
					img.Node = node
				}
			}
			per[i] = resp.Images
		}()
	}
	wg.Wait()
	var all []*skiffv1.NodeImage
	var failed []error
	for i := range nodes {
		all = append(all, per[i]...)
		if errs[i] != nil {
			failed = append(failed, errs[i])
		}
	}
	return all, failed
}

// shortDigest is the first 12 hex digits of a digest, as crictl shows an
// image ID.
func shortDigest(d string) string {
	_, hex, ok := strings.Cut(d, ":")
	if !ok {
		hex = d
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

// humanSize prints a byte count as crictl does (decimal units, 3
// significant digits).
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}

// writeNodeImages prints NODE IMAGE DIGEST SIZE, sorted by node then image.
func writeNodeImages(w io.Writer, imgs []*skiffv1.NodeImage, noHeaders bool) error {
	sort.SliceStable(imgs, func(i, j int) bool {
		if imgs[i].Node != imgs[j].Node {
			return imgs[i].Node < imgs[j].Node
		}
		return imgs[i].Name < imgs[j].Name
	})
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	if !noHeaders {
		fmt.Fprintln(tw, "NODE\tIMAGE\tDIGEST\tSIZE")
	}
	for _, img := range imgs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", img.Node, img.Name, shortDigest(img.Digest), humanSize(img.SizeBytes))
	}
	return tw.Flush()
}
