package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/agent/containerd"
	"github.com/skiffhq/skiff/agent/crilog"
	"github.com/skiffhq/skiff/agent/images"
)

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage node images (build the test images, import tarballs, list)",
	}
	var out, busybox string
	build := &cobra.Command{
		Use:   "build-test",
		Short: "Write the busybox-static based test images as OCI layout tarballs",
		Long: fmt.Sprintf(`Write two OCI image layout tarballs built from the host's busybox-static:
  %s  %s (alias %s): busybox with a symlink per applet, CMD sh
  %s  %s (alias %s): busybox httpd on port %d ($PORT), page shows hostname and pod IP`,
			images.BusyboxFile, images.BusyboxImage, images.BusyboxAlias,
			images.HTTPDFile, images.HTTPDImage, images.NginxAlias, images.HTTPDPort),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			paths, err := images.BuildTestImages(out, busybox)
			if err != nil {
				return err
			}
			for _, p := range paths {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			return nil
		},
	}
	build.Flags().StringVar(&out, "out", ".", "directory to write the tarballs to")
	build.Flags().StringVar(&busybox, "busybox", images.DefaultBusybox, "busybox-static binary to build from")
	cmd.AddCommand(build, newImageImportCmd(), newImageListCmd())
	return cmd
}

// nodeFlags choose the node's containerd for the image commands that work
// directly on a node (before, or instead of, going through the agent).
type nodeFlags struct {
	dataDir, socket string
}

func (f *nodeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "/var/lib/skiff", "with --local (implied): agent data dir whose private containerd to use (started if not running)")
	cmd.Flags().StringVar(&f.socket, "containerd-socket", "", "with --local (implied): use this existing containerd socket instead of the private daemon")
}

func (f *nodeFlags) open(ctx context.Context) (*containerd.Daemon, error) {
	cfg := containerd.DefaultConfig(f.dataDir)
	cfg.Socket = f.socket
	return containerd.Open(ctx, cfg)
}

// localFlags are --local and the flags that pick this machine's
// containerd for it. --data-dir and --containerd-socket imply --local, so
// scripts written for the node-local command keep working.
type localFlags struct {
	local bool
	nf    nodeFlags
}

func (f *localFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.local, "local", false, "work on the containerd of this machine's agent directly, without the API server")
	f.nf.register(cmd)
	_ = cmd.Flags().MarkHidden("namespace") // images belong to nodes, not namespaces
}

// isLocal says whether the command works on this machine's containerd,
// and refuses --node with it.
func (f *localFlags) isLocal(cmd *cobra.Command, nodes []string) (bool, error) {
	local := f.local || cmd.Flags().Changed("data-dir") || cmd.Flags().Changed("containerd-socket")
	if local && len(nodes) > 0 {
		return false, errors.New("--node goes through the API server to the node's agent; it cannot be combined with --local, --data-dir or --containerd-socket")
	}
	return local, nil
}

func newImageImportCmd() *cobra.Command {
	var (
		cf      cliFlags
		lf      localFlags
		nodes   []string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Load OCI layout or `docker save` tarballs onto every node (or --node)",
		Long: `Load image tarballs (OCI image layout or docker save format, uncompressed) into
the containerd of every Ready node, or of the nodes named with --node. Each file
streams through the API server to the nodes' agents in 1 MiB pieces (nodes in
parallel), with a progress line per node and a summary at the end. A node that
fails is named and the command exits non-zero; the other nodes still get the
images.

With --local (implied by --data-dir or --containerd-socket) the files go
straight into the containerd of the agent on this machine instead, without the
API server; the private containerd keeps running afterwards and the agent
adopts it.`,
		Example: `  skiff image import skiff-busybox.tar skiff-httpd.tar
  skiff image import --node n2 app.tar
  docker save myapp:1.0 -o myapp.tar && skiff image import myapp.tar
  skiff image import --local --data-dir /var/lib/skiff skiff-busybox.tar`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			local, err := lf.isLocal(cmd, nodes)
			if err != nil {
				return err
			}
			files := make([]imageFile, 0, len(args))
			for _, path := range args {
				f, err := checkImageFile(path)
				if err != nil {
					return err
				}
				files = append(files, f)
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout %v: must be positive", timeout)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if local {
				return importLocal(ctx, &lf.nf, files, cmd.OutOrStdout())
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			lctx, lcancel := cf.request(ctx)
			all, err := listNodes(lctx, c)
			lcancel()
			if err != nil {
				return err
			}
			chosen, skipped, err := chooseNodes(all, nodes)
			if err != nil {
				return err
			}
			out := &lineWriter{w: cmd.OutOrStdout()}
			errOut := &lineWriter{w: cmd.ErrOrStderr()}
			for _, n := range skipped {
				errOut.printf("%s: skipped, not Ready (name it with --node to try anyway)", n)
			}
			results := importEverywhere(ctx, c.PodStreams(), chosen, files, out, errOut)
			line, err := importSummary(results, len(files))
			out.printf("%s", line)
			return err
		},
	}
	cf.register(cmd, false)
	lf.register(cmd)
	cmd.Flags().StringSliceVar(&nodes, "node", nil, "import onto these nodes only (repeat or comma-separate; default every Ready node)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "time limit of the whole import")
	return cmd
}

// importLocal loads the files into this machine's containerd.
func importLocal(ctx context.Context, nf *nodeFlags, files []imageFile, out io.Writer) error {
	d, err := nf.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	for _, file := range files {
		f, err := os.Open(file.path)
		if err != nil {
			return err
		}
		names, err := d.ImportImage(ctx, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", file.path, err)
		}
		for _, n := range names {
			fmt.Fprintf(out, "imported %s from %s\n", n, file.path)
		}
	}
	return nil
}

func newImageListCmd() *cobra.Command {
	var (
		cf        cliFlags
		lf        localFlags
		nodes     []string
		noHeaders bool
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the images of every node (or --node)",
		Long: `List the images in the containerd of every Ready node (or of the nodes named
with --node), asked through the API server: NODE IMAGE DIGEST SIZE, as crictl
images shows them (DIGEST is the start of the manifest digest, SIZE the stored,
compressed size). A node that cannot answer is named on stderr and the command
exits non-zero after printing the others.

With --local (implied by --data-dir or --containerd-socket) it lists the
containerd of the agent on this machine directly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			local, err := lf.isLocal(cmd, nodes)
			if err != nil {
				return err
			}
			if local {
				ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
				defer cancel()
				return listLocal(ctx, &lf.nf, cmd.OutOrStdout())
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := cf.request(cmd.Context())
			defer cancel()
			all, err := listNodes(ctx, c)
			if err != nil {
				return err
			}
			chosen, skipped, err := chooseNodes(all, nodes)
			if err != nil {
				return err
			}
			for _, n := range skipped {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: skipped, not Ready (name it with --node to try anyway)\n", n)
			}
			imgs, failed := listImagesEverywhere(ctx, c.PodStreams(), chosen)
			for _, err := range failed {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
			}
			if err := writeNodeImages(cmd.OutOrStdout(), imgs, noHeaders); err != nil {
				return err
			}
			if len(failed) > 0 {
				return fmt.Errorf("could not list the images of %d of %d node(s)", len(failed), len(chosen))
			}
			return nil
		},
	}
	cf.register(cmd, false)
	lf.register(cmd)
	cmd.Flags().StringSliceVar(&nodes, "node", nil, "list these nodes only (repeat or comma-separate; default every Ready node)")
	cmd.Flags().BoolVar(&noHeaders, "no-headers", false, "do not print the header line")
	return cmd
}

// listLocal prints the images of this machine's containerd.
func listLocal(ctx context.Context, nf *nodeFlags, out io.Writer) error {
	d, err := nf.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	list, err := d.ListImages(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "IMAGE\tDIGEST\tSIZE\tUNPACKED")
	for _, img := range list {
		dg := img.Digest
		if len(dg) > 19 {
			dg = dg[:19]
		}
		fmt.Fprintf(w, "%s\t%s\t%.1f MB\t%v\n", img.Name, dg, float64(img.Size)/1e6, img.Unpacked)
	}
	return w.Flush()
}

// newCRILoggerCmd is the logger the containerd shim runs for each container
// started by agents before the log copies (see agent/crilog and
// runtime.Config.LoggerBinary): `skiff cri-logger PATH`, with the
// container's output on fds 3 and 4. Those containers keep using it after
// an upgrade. Not for people.
func newCRILoggerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    crilog.Arg + " PATH",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		Run:    func(_ *cobra.Command, args []string) { crilog.Main(args[0]) },
	}
}

func init() {
	rootCmd.AddCommand(newImageCmd())
	rootCmd.AddCommand(newCRILoggerCmd())
}
