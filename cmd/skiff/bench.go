package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/jepsen/bench"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks (figures side by side with a reference, never pass/fail)",
	}
	cmd.AddCommand(newBenchStoreCmd())
	return cmd
}

func newBenchStoreCmd() *cobra.Command {
	var (
		duration  time.Duration
		workloads string
		targets   string
		skiffBin  string
		etcdBin   string
		members   int
		quiet     bool
		skiffArgs string
	)
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Compare a 3-member Skiff store with a 3-member etcd under the same client load",
		Long: `Starts a Skiff cluster (this binary's "server", as child processes) and an etcd
cluster (Debian's etcd-server) on loopback with temporary data dirs, runs each
workload on one cluster and then the other (the idle one only heartbeats) with
the etcd Go client, and prints one table: ops/s, p50 and p99 latency, the CPU
seconds the members used during the step, and the Skiff/etcd throughput ratio.
Members are stopped and their directories removed at the end and on Ctrl-C.

Workloads (--workloads takes names or prefixes, comma separated):
  put-1 put-16 put-64 put-256            256-byte puts over 10k keys, N concurrent clients
  range-linearizable-64                  single-key reads, read-index path
  range-serializable-64                  single-key reads served locally
  txn-cas-64                             compare-on-mod-revision-and-put, 64 clients
  watch-fanout-100 watch-fanout-1000     one writer at 50 puts/s, N watchers of that key;
                                         ops/s = events delivered, latency = put to delivery`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ws, err := bench.Select(workloads)
			if err != nil {
				return err
			}
			if skiffBin == "" {
				if skiffBin, err = os.Executable(); err != nil {
					return err
				}
			}
			var ts []string
			for _, t := range strings.Split(targets, ",") {
				t = strings.TrimSpace(t)
				if t != "skiff" && t != "etcd" {
					return fmt.Errorf("--targets: %q is neither skiff nor etcd", t)
				}
				ts = append(ts, t)
			}
			for _, t := range ts {
				if t == "etcd" {
					if _, err := os.Stat(etcdBin); err != nil {
						return fmt.Errorf("etcd binary %s: %w (install Debian's etcd-server, or --targets skiff)", etcdBin, err)
					}
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			errw := cmd.ErrOrStderr()
			logf := func(format string, args ...any) {
				if !quiet {
					fmt.Fprintf(errw, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
				}
			}
			logf("bench store: %d workloads x %v on %s, %d CPUs", len(ws), duration, strings.Join(ts, " and "), runtime.NumCPU())
			rep, err := bench.Compare(ctx, bench.Options{
				SkiffBinary: skiffBin, SkiffArgs: strings.Fields(skiffArgs), EtcdBinary: etcdBin, Members: members,
				Duration: duration, Workloads: ws, Targets: ts, Log: logf,
			})
			out := cmd.OutOrStdout()
			if rep != nil && len(rep.Results) > 0 {
				fmt.Fprintf(out, "\n%d-member clusters on loopback, %v per step, %d CPUs, %s\n\n", members, duration, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
				rep.WriteTable(out)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", 5*time.Second, "how long each workload runs on each cluster")
	f.StringVar(&workloads, "workloads", "all", "workloads to run: names or prefixes, comma separated (e.g. put,watch-fanout-100)")
	f.StringVar(&targets, "targets", "skiff,etcd", "clusters to run, in order: skiff, etcd or both")
	f.StringVar(&skiffBin, "skiff-binary", "", "skiff binary whose server subcommand runs the members (default: this binary)")
	f.StringVar(&etcdBin, "etcd-binary", "/usr/bin/etcd", "etcd binary for the reference cluster")
	f.IntVar(&members, "members", 3, "members per cluster")
	f.StringVar(&skiffArgs, "skiff-args", "", `extra "skiff server" flags for the Skiff members, space separated (e.g. "--log-store wal")`)
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the table")
	return cmd
}

func init() {
	rootCmd.AddCommand(newBenchCmd())
}
