// Command skiff is Skiff's one binary: the store and control-plane server, the
// node agent, the all-in-one `up`, the fault-injection rig and the
// kubectl-shaped CLI. Each subcommand lives in its own file and registers
// itself on the root command.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

var rootCmd = &cobra.Command{
	Use:           "skiff",
	Short:         "Skiff: a small container orchestrator that speaks Kubernetes and etcd",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
