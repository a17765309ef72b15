package main

import (
	"context"
	"fmt"
	"os"
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
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "/var/lib/skiff", "agent data dir whose private containerd to use (started if not running)")
	cmd.Flags().StringVar(&f.socket, "containerd-socket", "", "use this existing containerd socket instead of the private daemon")
}

func (f *nodeFlags) open(ctx context.Context) (*containerd.Daemon, error) {
	cfg := containerd.DefaultConfig(f.dataDir)
	cfg.Socket = f.socket
	return containerd.Open(ctx, cfg)
}

func newImageImportCmd() *cobra.Command {
	var nf nodeFlags
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Load OCI layout or `docker save` tarballs into this node's containerd",
		Long: `Load image tarballs (OCI image layout or docker save format) into the containerd
of the agent on this machine and unpack them. The private containerd keeps
running afterwards; the agent adopts it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			d, err := nf.open(ctx)
			if err != nil {
				return err
			}
			defer d.Close()
			for _, path := range args {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				names, err := d.ImportImage(ctx, f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				for _, n := range names {
					fmt.Fprintf(cmd.OutOrStdout(), "imported %s from %s\n", n, path)
				}
			}
			return nil
		},
	}
	nf.register(cmd)
	return cmd
}

func newImageListCmd() *cobra.Command {
	var nf nodeFlags
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the images on this node's containerd",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			d, err := nf.open(ctx)
			if err != nil {
				return err
			}
			defer d.Close()
			list, err := d.ListImages(ctx)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "IMAGE\tDIGEST\tSIZE\tUNPACKED")
			for _, img := range list {
				dg := img.Digest
				if len(dg) > 19 {
					dg = dg[:19]
				}
				fmt.Fprintf(w, "%s\t%s\t%.1f MB\t%v\n", img.Name, dg, float64(img.Size)/1e6, img.Unpacked)
			}
			return w.Flush()
		},
	}
	nf.register(cmd)
	return cmd
}

// newCRILoggerCmd is the logger the containerd shim runs for each container
// (see agent/crilog): `skiff cri-logger PATH`, with the container's output on
// fds 3 and 4. Not for people.
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
