package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// topFlags are the flags top nodes and top pods share.
type topFlags struct {
	cf        cliFlags
	sortBy    string
	noHeaders bool
	window    time.Duration
}

func (f *topFlags) register(cmd *cobra.Command, allNamespaces bool) {
	f.cf.register(cmd, allNamespaces)
	fl := cmd.Flags()
	fl.StringVar(&f.sortBy, "sort-by", "", "sort by cpu or memory (default: by name)")
	fl.BoolVar(&f.noHeaders, "no-headers", false, "do not print the header line")
	fl.DurationVar(&f.window, "window", time.Second, "CPU sampling window (1ms to 10s)")
}

func (f *topFlags) validate() error {
	switch f.sortBy {
	case "", "cpu", "memory":
	default:
		return fmt.Errorf("--sort-by %q: give cpu or memory", f.sortBy)
	}
	if f.window < time.Millisecond || f.window > 10*time.Second {
		return fmt.Errorf("--window %v: must be between 1ms and 10s", f.window)
	}
	return nil
}

func newTopCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show CPU and memory use of nodes or pods",
		Long: `Show the CPU (millicores, averaged over a short sampling window) and memory
(working set) of nodes or pods, read from their cgroups by the agents and
gathered by the API server.`,
	}
	cmd.AddCommand(newTopNodesCmd(), newTopPodsCmd())
	return cmd
}

func newTopNodesCmd() *cobra.Command {
	var tf topFlags
	cmd := &cobra.Command{
		Use:     "nodes [NAME]",
		Aliases: []string{"node", "no"},
		Short:   "Show CPU and memory use of nodes, and their share of allocatable",
		Example: `  skiff top nodes
  skiff top node n1`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := tf.validate(); err != nil {
				return err
			}
			c, err := tf.cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := tf.cf.request(cmd.Context())
			defer cancel()
			var nodes []corev1.Node
			if len(args) == 1 {
				n := corev1.Node{}
				if err := c.Get(ctx, "", args[0], &n); err != nil {
					return cliError(err)
				}
				nodes = append(nodes, n)
			} else {
				var list corev1.NodeList
				if err := c.List(ctx, "", &list, client.ListOptions{}); err != nil {
					return cliError(err)
				}
				nodes = list.Items
			}
			req := &skiffv1.TopRequest{Nodes: true, WindowMs: int32(tf.window / time.Millisecond)}
			if len(args) == 1 {
				req.Node = args[0]
			}
			resp, err := c.PodStreams().Top(ctx, req)
			if err != nil {
				return cliError(client.FromError(err))
			}
			for _, w := range resp.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			if len(nodes) == 0 {
				return errors.New("no nodes: no agent has registered")
			}
			return writeTopNodes(cmd.OutOrStdout(), nodes, resp.Nodes, tf.sortBy, tf.noHeaders)
		},
	}
	tf.register(cmd, false)
	return cmd
}

func newTopPodsCmd() *cobra.Command {
	var (
		tf         topFlags
		containers bool
		selector   string
	)
	cmd := &cobra.Command{
		Use:     "pods [NAME]",
		Aliases: []string{"pod", "po"},
		Short:   "Show CPU and memory use of pods (or of their containers)",
		Example: `  skiff top pods
  skiff top pods -A --sort-by memory
  skiff top pod web-7d9f --containers`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := tf.validate(); err != nil {
				return err
			}
			if len(args) == 1 && tf.cf.allNamespaces {
				return errors.New("a pod NAME and --all-namespaces do not go together")
			}
			c, err := tf.cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := tf.cf.request(cmd.Context())
			defer cancel()
			req := &skiffv1.TopRequest{Namespace: c.Namespace, WindowMs: int32(tf.window / time.Millisecond)}
			if tf.cf.allNamespaces {
				req.Namespace = ""
			}
			if len(args) == 1 {
				req.Pod = args[0]
				// A missing pod is NotFound, not an empty table.
				if err := c.Get(ctx, req.Namespace, req.Pod, &corev1.Pod{}); err != nil {
					return cliError(err)
				}
			}
			var keep map[string]bool
			if selector != "" {
				var list corev1.PodList
				if err := c.List(ctx, req.Namespace, &list, client.ListOptions{LabelSelector: selector}); err != nil {
					return cliError(err)
				}
				keep = map[string]bool{}
				for _, p := range list.Items {
					keep[p.Namespace+"/"+p.Name] = true
				}
			}
			resp, err := c.PodStreams().Top(ctx, req)
			if err != nil {
				return cliError(client.FromError(err))
			}
			for _, w := range resp.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			pods := resp.Pods
			if keep != nil {
				pods = nil
				for _, p := range resp.Pods {
					if keep[p.Namespace+"/"+p.Name] {
						pods = append(pods, p)
					}
				}
			}
			if len(pods) == 0 {
				if len(args) == 1 {
					return fmt.Errorf("no metrics for pod %s/%s: it has no running containers", req.Namespace, args[0])
				}
				where := "namespace " + req.Namespace
				if req.Namespace == "" {
					where = "any namespace"
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "No resources found in %s.\n", where)
				return nil
			}
			return writeTopPods(cmd.OutOrStdout(), pods, tf.cf.allNamespaces, containers, tf.sortBy, tf.noHeaders)
		},
	}
	tf.register(cmd, true)
	cmd.Flags().BoolVar(&containers, "containers", false, "one line per container")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector of the pods to show")
	return cmd
}

// cpuString and memString print quantities as kubectl top does:
// millicores, and whole mebibytes.
func cpuString(m int64) string   { return fmt.Sprintf("%dm", m) }
func memString(b int64) string   { return fmt.Sprintf("%dMi", b/(1<<20)) }
func percent(v, of int64) string { return fmt.Sprintf("%d%%", v*100/of) }

// writeTopNodes prints one line per node; a node without figures (its
// agent did not answer) shows <unknown>, as kubectl does.
func writeTopNodes(w io.Writer, nodes []corev1.Node, usage []*skiffv1.NodeUsage, sortBy string, noHeaders bool) error {
	byName := map[string]*skiffv1.NodeUsage{}
	for _, u := range usage {
		byName[u.Name] = u
	}
	type row struct {
		name     string
		u        *skiffv1.NodeUsage
		cpuAlloc int64 // millicores
		memAlloc int64 // bytes
	}
	rows := make([]row, 0, len(nodes))
	for _, n := range nodes {
		r := row{name: n.Name, u: byName[n.Name]}
		if q, ok := n.Status.Allocatable[corev1.ResourceCPU]; ok {
			r.cpuAlloc = q.MilliValue()
		}
		if q, ok := n.Status.Allocatable[corev1.ResourceMemory]; ok {
			r.memAlloc = q.Value()
		}
		rows = append(rows, r)
	}
	key := func(r row) int64 {
		if r.u == nil {
			return -1
		}
		if sortBy == "cpu" {
			return r.u.CpuMillicores
		}
		return r.u.MemoryWorkingSetBytes
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if sortBy != "" && key(rows[i]) != key(rows[j]) {
			return key(rows[i]) > key(rows[j])
		}
		return rows[i].name < rows[j].name
	})
	tw := newTabWriter(w)
	if !noHeaders {
		fmt.Fprintln(tw, "NAME\tCPU(cores)\tCPU%\tMEMORY(bytes)\tMEMORY%")
	}
	for _, r := range rows {
		if r.u == nil {
			fmt.Fprintf(tw, "%s\t<unknown>\t<unknown>\t<unknown>\t<unknown>\n", r.name)
			continue
		}
		cpuPct, memPct := "<unknown>", "<unknown>"
		if r.cpuAlloc > 0 {
			cpuPct = percent(r.u.CpuMillicores, r.cpuAlloc)
		}
		if r.memAlloc > 0 {
			memPct = percent(r.u.MemoryWorkingSetBytes, r.memAlloc)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.name, cpuString(r.u.CpuMillicores), cpuPct, memString(r.u.MemoryWorkingSetBytes), memPct)
	}
	return tw.Flush()
}

// writeTopPods prints one line per pod (its containers summed), or per
// container with --containers.
func writeTopPods(w io.Writer, pods []*skiffv1.PodUsage, allNamespaces, containers bool, sortBy string, noHeaders bool) error {
	type row struct {
		ns, pod, ctr string
		cpu, mem     int64
	}
	var rows []row
	for _, p := range pods {
		if containers {
			for _, c := range p.Containers {
				rows = append(rows, row{p.Namespace, p.Name, c.Name, c.CpuMillicores, c.MemoryWorkingSetBytes})
			}
			continue
		}
		r := row{ns: p.Namespace, pod: p.Name}
		for _, c := range p.Containers {
			r.cpu += c.CpuMillicores
			r.mem += c.MemoryWorkingSetBytes
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		switch {
		case sortBy == "cpu" && a.cpu != b.cpu:
			return a.cpu > b.cpu
		case sortBy == "memory" && a.mem != b.mem:
			return a.mem > b.mem
		case a.ns != b.ns:
			return a.ns < b.ns
		case a.pod != b.pod:
			return a.pod < b.pod
		}
		return a.ctr < b.ctr
	})
	var head []string
	if allNamespaces {
		head = append(head, "NAMESPACE")
	}
	if containers {
		head = append(head, "POD", "NAME")
	} else {
		head = append(head, "NAME")
	}
	head = append(head, "CPU(cores)", "MEMORY(bytes)")
	tw := newTabWriter(w)
	if !noHeaders {
		fmt.Fprintln(tw, strings.Join(head, "\t"))
	}
	for _, r := range rows {
		var cols []string
		if allNamespaces {
			cols = append(cols, r.ns)
		}
		cols = append(cols, r.pod)
		if containers {
			cols = append(cols, r.ctr)
		}
		cols = append(cols, cpuString(r.cpu), memString(r.mem))
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	return tw.Flush()
}

func init() { rootCmd.AddCommand(newTopCmd()) }
