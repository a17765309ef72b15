package main

import (
	"fmt"

	"github.com/spf13/cobra"

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
	cmd.AddCommand(build)
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
