package main

// cordon, uncordon and drain, as kubectl's.
//
// Drain deletes pods through the API (Skiff serves no Eviction subresource,
// so PodDisruptionBudgets are not consulted) with each pod's grace period or
// --grace-period. A bound pod deleted with a grace period is only marked
// (deletionTimestamp) until the node's agent has stopped it and confirms with
// a grace-0 delete; drain waits for that, as kubectl waits. On a node whose
// agent is gone nothing confirms: drain then waits until --timeout, and
// --grace-period=0 removes the pods from the API at once instead (their
// containers, if the node comes back, are cleaned up by its agent).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
)

// mirrorPodAnnotation marks the API copy of a static pod: drain leaves it
// (deleting it would not stop the pod), as kubectl does.
const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// nodeSelection is the NODE argument or -l of cordon, uncordon and drain.
type nodeSelection struct {
	selector string
	dryRun   string
}

func (s *nodeSelection) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&s.selector, "selector", "l", "", "label selector of the nodes (instead of NODE)")
	cmd.Flags().StringVar(&s.dryRun, "dry-run", "none", "client: only print what would be done")
	cmd.Flags().Lookup("dry-run").NoOptDefVal = "client"
}

func (s *nodeSelection) isDryRun() (bool, error) {
	switch s.dryRun {
	case "none", "", "false":
		return false, nil
	case "client", "true":
		return true, nil
	}
	return false, fmt.Errorf("--dry-run=%s: want none or client (server-side dry run is not supported by this verb)", s.dryRun)
}

// nodes resolves the arguments to nodes, in name order.
func (s *nodeSelection) nodes(ctx context.Context, c *client.Client, args []string) ([]*corev1.Node, error) {
	switch {
	case len(args) > 0 && s.selector != "":
		return nil, errors.New("give either NODE or --selector, not both")
	case len(args) == 0 && s.selector == "":
		return nil, errors.New("resource(s) were provided, but no name was specified: give NODE or --selector")
	}
	var out []*corev1.Node
	if s.selector != "" {
		var list corev1.NodeList
		if err := c.List(ctx, "", &list, client.ListOptions{LabelSelector: s.selector}); err != nil {
			return nil, cliError(err)
		}
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no nodes match the selector %q", s.selector)
		}
	}
	for _, name := range args {
		name = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(name, "node/"), "nodes/"), "no/")
		n := &corev1.Node{}
		if err := c.Get(ctx, "", name, n); err != nil {
			return nil, cliError(err)
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// setUnschedulable cordons or uncordons one node; it reports whether the
// node changed.
func setUnschedulable(ctx context.Context, c *client.Client, node *corev1.Node, want, dryRun bool) (bool, error) {
	if node.Spec.Unschedulable == want {
		return false, nil
	}
	if dryRun {
		return true, nil
	}
	changed := false
	err := client.RetryOnConflict(ctx, 5, func() error {
		n := &corev1.Node{}
		if err := c.Get(ctx, "", node.Name, n); err != nil {
			return err
		}
		if n.Spec.Unschedulable == want {
			return nil
		}
		n.Spec.Unschedulable = want
		if err := c.Update(ctx, n); err != nil {
			return err
		}
		changed = true
		return nil
	})
	return changed, err
}

func newCordonCmd(cordon bool) *cobra.Command {
	var (
		cf  cliFlags
		sel nodeSelection
	)
	verb, done := "cordon", "cordoned"
	short := "Mark nodes unschedulable: new pods are not placed on them"
	if !cordon {
		verb, done = "uncordon", "uncordoned"
		short = "Mark nodes schedulable again"
	}
	cmd := &cobra.Command{
		Use:     verb + " (NODE | -l SELECTOR)",
		Short:   short,
		Example: "  skiff " + verb + " n1\n  skiff " + verb + " -l zone=a",
		RunE: func(cmd *cobra.Command, args []string) error {
			dry, err := sel.isDryRun()
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := cf.request(cmd.Context())
			defer cancel()
			nodes, err := sel.nodes(ctx, c, args)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				changed, err := setUnschedulable(ctx, c, n, cordon, dry)
				if err != nil {
					return cliError(err)
				}
				msg := "node/" + n.Name + " "
				if !changed {
					msg += "already "
				}
				msg += done
				if dry && changed {
					msg += " (dry run)"
				}
				fmt.Fprintln(cmd.OutOrStdout(), msg)
			}
			return nil
		},
	}
	cf.register(cmd, false)
	sel.register(cmd)
	return cmd
}

// drainOptions are drain's flags.
type drainOptions struct {
	force             bool
	ignoreDaemonSets  bool
	deleteEmptyDir    bool
	gracePeriod       int64
	timeout           time.Duration
	podSelector       string
	pollInterval      time.Duration
	progressInterval  time.Duration
	skipWaitForDelete time.Duration
}

// podsToDrain sorts the pods of a node into those drain deletes, the ones it
// leaves with a warning, and the refusals that stop it.
type podsToDrain struct {
	delete   []corev1.Pod
	warnings []string // "ignoring DaemonSet-managed Pods: default/x"
	errors   []string // "cannot delete ...: default/x"
}

func controllerOf(p *corev1.Pod) *metav1.OwnerReference {
	return metav1.GetControllerOf(p)
}

func podFinished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func hasEmptyDir(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			return true
		}
	}
	return false
}

// classifyPods applies kubectl's drain filters, in kubectl's order: mirror
// pods are skipped silently; DaemonSet pods need --ignore-daemonsets (and
// are then left running, as their controller would recreate them);
// pods without a controller need --force; pods with emptyDir need
// --delete-emptydir-data. Finished pods pass the last two checks: nothing
// of theirs is lost.
func classifyPods(pods []corev1.Pod, o *drainOptions) podsToDrain {
	var out podsToDrain
	var dsErr, dsWarn, bareErr, bareWarn, localErr, localWarn []string
	for _, p := range pods {
		name := p.Namespace + "/" + p.Name
		if _, ok := p.Annotations[mirrorPodAnnotation]; ok {
			continue
		}
		if o.skipWaitForDelete > 0 && p.DeletionTimestamp != nil &&
			time.Since(p.DeletionTimestamp.Time) > o.skipWaitForDelete {
			continue
		}
		ctrl := controllerOf(&p)
		if ctrl != nil && ctrl.Kind == "DaemonSet" {
			if o.ignoreDaemonSets {
				dsWarn = append(dsWarn, name)
			} else {
				dsErr = append(dsErr, name)
			}
			continue
		}
		blocked := false
		if ctrl == nil && !podFinished(&p) {
			if o.force {
				bareWarn = append(bareWarn, name)
			} else {
				bareErr = append(bareErr, name)
				blocked = true
			}
		}
		if hasEmptyDir(&p) && !podFinished(&p) {
			if o.deleteEmptyDir {
				localWarn = append(localWarn, name)
			} else {
				localErr = append(localErr, name)
				blocked = true
			}
		}
		if !blocked {
			out.delete = append(out.delete, p)
		}
	}
	add := func(list *[]string, what string, names []string) {
		if len(names) > 0 {
			*list = append(*list, what+": "+strings.Join(names, ", "))
		}
	}
	add(&out.errors, "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)", dsErr)
	add(&out.errors, "cannot delete Pods that declare no controller (use --force to override)", bareErr)
	add(&out.errors, "cannot delete Pods with local storage (use --delete-emptydir-data to override)", localErr)
	add(&out.warnings, "ignoring DaemonSet-managed Pods", dsWarn)
	add(&out.warnings, "deleting Pods that declare no controller", bareWarn)
	add(&out.warnings, "deleting Pods with local storage", localWarn)
	return out
}

// How often drain checks whether deleted pods are gone, and how often it
// prints the ones still there (variables for tests).
var (
	drainPollInterval     = time.Second
	drainProgressInterval = 10 * time.Second
)

func newDrainCmd() *cobra.Command {
	var (
		cf  cliFlags
		sel nodeSelection
		o   = drainOptions{pollInterval: drainPollInterval, progressInterval: drainProgressInterval}
	)
	cmd := &cobra.Command{
		Use:   "drain (NODE | -l SELECTOR)",
		Short: "Cordon nodes and delete their pods, for maintenance",
		Long: `Drain cordons each node, then deletes its pods and waits until they are gone.

It refuses, listing them, when the node has pods managed by a DaemonSet
(--ignore-daemonsets leaves them running), pods that no controller would
recreate (--force deletes them), or pods with emptyDir data
(--delete-emptydir-data deletes them). Mirror (static) pods are skipped.

Pods are deleted with their own grace period, or --grace-period. A graceful
delete ends when the node's agent has stopped the pod; on a node whose agent
is gone that never happens, so drain waits (until --timeout, forever by
default, as kubectl). --grace-period=0 removes such pods from the API at once.
Skiff has no Eviction API: PodDisruptionBudgets are not consulted.`,
		Example: `  skiff drain n1 --ignore-daemonsets
  skiff drain n1 --force --delete-emptydir-data --grace-period=0 --timeout=2m
  skiff drain -l zone=a --pod-selector app=web --dry-run=client`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dry, err := sel.isDryRun()
			if err != nil {
				return err
			}
			if o.podSelector != "" {
				if _, err := labels.Parse(o.podSelector); err != nil {
					return fmt.Errorf("--pod-selector %q: %v", o.podSelector, err)
				}
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			rctx, cancel := cf.request(ctx)
			nodes, err := sel.nodes(rctx, c, args)
			cancel()
			if err != nil {
				return err
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var failed []string
			var lastErr error
			for _, n := range nodes {
				if err := drainNode(ctx, c, &cf, n, &o, dry, out, errOut); err != nil {
					fmt.Fprintf(errOut, "error: unable to drain node %q due to error: %v, continuing command...\n", n.Name, err)
					failed = append(failed, n.Name)
					lastErr = err
				}
			}
			if len(failed) > 0 {
				fmt.Fprintln(errOut, "There are pending nodes to be drained:")
				for _, n := range failed {
					fmt.Fprintln(errOut, " "+n)
				}
				return lastErr
			}
			return nil
		},
	}
	cf.register(cmd, false)
	sel.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.force, "force", false, "also delete pods that no controller manages (they are not recreated)")
	f.BoolVar(&o.ignoreDaemonSets, "ignore-daemonsets", false, "leave DaemonSet-managed pods running instead of refusing")
	f.BoolVar(&o.deleteEmptyDir, "delete-emptydir-data", false, "also delete pods with emptyDir volumes (their data is lost)")
	f.Int64Var(&o.gracePeriod, "grace-period", -1, "seconds each pod has to stop; -1 uses the pod's own, 0 deletes at once")
	f.DurationVar(&o.timeout, "timeout", 0, "give up after this long (0: wait forever)")
	f.StringVar(&o.podSelector, "pod-selector", "", "label selector: drain only the pods it matches")
	f.DurationVar(&o.skipWaitForDelete, "skip-wait-for-delete-timeout", 0,
		"skip pods whose deletionTimestamp is older than this (0: never skip)")
	return cmd
}

// drainNode cordons a node, deletes its pods and waits for them to go.
func drainNode(ctx context.Context, c *client.Client, cf *cliFlags, node *corev1.Node, o *drainOptions, dry bool, out, errOut io.Writer) error {
	suffix := ""
	if dry {
		suffix = " (dry run)"
	}
	rctx, cancel := cf.request(ctx)
	changed, err := setUnschedulable(rctx, c, node, true, dry)
	cancel()
	if err != nil {
		return cliError(err)
	}
	if changed {
		fmt.Fprintf(out, "node/%s cordoned%s\n", node.Name, suffix)
	} else {
		fmt.Fprintf(out, "node/%s already cordoned\n", node.Name)
	}

	if o.timeout > 0 {
		var cancelAll context.CancelFunc
		ctx, cancelAll = context.WithTimeout(ctx, o.timeout)
		defer cancelAll()
	}
	var list corev1.PodList
	rctx, cancel = cf.request(ctx)
	err = c.List(rctx, "", &list, client.ListOptions{FieldSelector: "spec.nodeName=" + node.Name, LabelSelector: o.podSelector})
	cancel()
	if err != nil {
		return cliError(err)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := &list.Items[i], &list.Items[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	sorted := classifyPods(list.Items, o)
	if len(sorted.errors) > 0 {
		return errors.New(strings.Join(sorted.errors, "; "))
	}
	for _, w := range sorted.warnings {
		fmt.Fprintln(errOut, "Warning: "+w)
	}

	for i := range sorted.delete {
		p := &sorted.delete[i]
		fmt.Fprintf(out, "evicting pod %s/%s%s\n", p.Namespace, p.Name, suffix)
		if dry {
			continue
		}
		deleteOpts := &client.DeleteOptions{PreconditionUID: string(p.UID)}
		if o.gracePeriod >= 0 {
			g := o.gracePeriod
			deleteOpts.GracePeriodSeconds = &g
		}
		rctx, cancel := cf.request(ctx)
		_, err := c.Delete(rctx, p.DeepCopy(), deleteOpts)
		cancel()
		if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
			return fmt.Errorf("deleting pod %s/%s: %w", p.Namespace, p.Name, cliError(err))
		}
	}
	if !dry {
		if err := waitPodsGone(ctx, c, cf, sorted.delete, o, out, errOut); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "node/%s drained%s\n", node.Name, suffix)
	return nil
}

// waitPodsGone polls until every pod is gone (NotFound, or replaced by a
// pod of the same name with another UID), printing "pod/x evicted" as each
// goes and, every progressInterval, the ones still there.
func waitPodsGone(ctx context.Context, c *client.Client, cf *cliFlags, pods []corev1.Pod, o *drainOptions, out, errOut io.Writer) error {
	pending := make([]corev1.Pod, len(pods))
	copy(pending, pods)
	start := time.Now()
	lastProgress := start
	for {
		var still []corev1.Pod
		for i := range pending {
			p := &pending[i]
			got := &corev1.Pod{}
			rctx, cancel := cf.request(ctx)
			err := c.Get(rctx, p.Namespace, p.Name, got)
			cancel()
			switch {
			case client.IsNotFound(err) || err == nil && got.UID != p.UID:
				fmt.Fprintf(out, "pod/%s evicted\n", p.Name)
			case err != nil && ctx.Err() == nil:
				return fmt.Errorf("checking pod %s/%s: %w", p.Namespace, p.Name, cliError(err))
			default:
				still = append(still, *p)
			}
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		names := make([]string, len(pending))
		for i := range pending {
			names[i] = pending[i].Namespace + "/" + pending[i].Name
		}
		if ctx.Err() != nil {
			return fmt.Errorf("error when waiting for pods to terminate (%s): global timeout reached: %v",
				strings.Join(names, ", "), o.timeout)
		}
		if time.Since(lastProgress) >= o.progressInterval {
			lastProgress = time.Now()
			fmt.Fprintf(errOut, "waiting for %d pod(s) to terminate (%s so far): %s\n",
				len(pending), time.Since(start).Round(time.Second), strings.Join(names, ", "))
		}
		select {
		case <-ctx.Done():
		case <-time.After(o.pollInterval):
		}
	}
}

func init() {
	rootCmd.AddCommand(newCordonCmd(true), newCordonCmd(false), newDrainCmd())
}
