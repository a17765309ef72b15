package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
)

// revisionAnnotation is where the deployment controller numbers the
// ReplicaSets of a Deployment, as Kubernetes'.
const revisionAnnotation = "deployment.kubernetes.io/revision"

func newRolloutCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "Follow and manage the rollout of a deployment"}
	cmd.AddCommand(newRolloutStatusCmd(), newRolloutHistoryCmd(), newRolloutUndoCmd(), newRolloutRestartCmd(),
		newRolloutPauseCmd(true), newRolloutPauseCmd(false))
	return cmd
}

// deploymentArg resolves "deploy/NAME", "deployment NAME" or "NAME".
func deploymentArg(args []string) (string, error) {
	switch len(args) {
	case 1:
		if kind, name, ok := cutSlash(args[0]); ok {
			if kind != "deploy" && kind != "deployment" && kind != "deployments" && kind != "deployment.apps" {
				return "", fmt.Errorf("rollout supports deployments, not %q", kind)
			}
			return name, nil
		}
		return "", errors.New("give deployment/NAME")
	case 2:
		if k := args[0]; k != "deploy" && k != "deployment" && k != "deployments" {
			return "", fmt.Errorf("rollout supports deployments, not %q", k)
		}
		return args[1], nil
	}
	return "", errors.New("give deployment/NAME")
}

// rolloutState says where a deployment's rollout is, in kubectl's words.
func rolloutState(d *appsv1.Deployment) (msg string, done bool) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		return "Waiting for deployment spec update to be observed...", false
	case st.UpdatedReplicas < want:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", d.Name, st.UpdatedReplicas, want), false
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", d.Name, st.Replicas-st.UpdatedReplicas), false
	case st.AvailableReplicas < st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", d.Name, st.AvailableReplicas, st.UpdatedReplicas), false
	}
	return fmt.Sprintf("deployment %q successfully rolled out", d.Name), true
}

func newRolloutStatusCmd() *cobra.Command {
	var (
		cf      cliFlags
		timeout time.Duration
		watch   bool
	)
	cmd := &cobra.Command{
		Use:   "status deployment/NAME",
		Short: "Wait until a deployment's rollout is done",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args)
			if err != nil {
				return err
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
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			last := ""
			for {
				d := &appsv1.Deployment{}
				if err := c.Get(ctx, "", name, d); err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("timed out waiting for the rollout of deployment %q", name)
					}
					return cliError(err)
				}
				msg, done := rolloutState(d)
				if msg != last {
					fmt.Fprintln(cmd.OutOrStdout(), msg)
					last = msg
				}
				if done || !watch {
					if !done {
						return fmt.Errorf("deployment %q has not finished rolling out", name)
					}
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("timed out waiting for the rollout of deployment %q", name)
				case <-time.After(500 * time.Millisecond):
				}
			}
		},
	}
	cf.register(cmd, false)
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: wait forever)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", true, "wait until the rollout is done")
	return cmd
}

// replicaSetsOf lists the ReplicaSets a deployment owns, by revision.
func replicaSetsOf(ctx context.Context, c *client.Client, d *appsv1.Deployment) ([]appsv1.ReplicaSet, error) {
	list := &appsv1.ReplicaSetList{}
	if err := c.List(ctx, d.Namespace, list, client.ListOptions{}); err != nil {
		return nil, err
	}
	var out []appsv1.ReplicaSet
	for _, rs := range list.Items {
		for _, ref := range rs.OwnerReferences {
			if ref.UID == d.UID {
				out = append(out, rs)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return revisionOf(&out[i]) < revisionOf(&out[j]) })
	return out, nil
}

func revisionOf(rs *appsv1.ReplicaSet) int64 {
	n, _ := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
	return n
}

func newRolloutHistoryCmd() *cobra.Command {
	return deploymentCmd("history", "List the revisions of a deployment",
		func(ctx context.Context, cmd *cobra.Command, c *client.Client, name string) error {
			d := &appsv1.Deployment{}
			if err := c.Get(ctx, "", name, d); err != nil {
				return cliError(err)
			}
			rss, err := replicaSetsOf(ctx, c, d)
			if err != nil {
				return cliError(err)
			}
			return printHistory(cmd.OutOrStdout(), d, rss)
		})
}

func printHistory(out io.Writer, d *appsv1.Deployment, rss []appsv1.ReplicaSet) error {
	fmt.Fprintf(out, "deployment.apps/%s\n", d.Name)
	w := newTabWriter(out)
	fmt.Fprintln(w, "REVISION\tCHANGE-CAUSE")
	for _, rs := range rss {
		cause := rs.Annotations["kubernetes.io/change-cause"]
		fmt.Fprintf(w, "%d\t%s\n", revisionOf(&rs), orNone(cause))
	}
	return w.Flush()
}

func newRolloutUndoCmd() *cobra.Command {
	var toRevision int64
	cmd := deploymentCmd("undo", "Roll a deployment back to its previous (or a given) revision",
		func(ctx context.Context, cmd *cobra.Command, c *client.Client, name string) error {
			err := updateObject(ctx, c, name, newDeployment, func(d *appsv1.Deployment) error {
				rss, err := replicaSetsOf(ctx, c, d)
				if err != nil {
					return err
				}
				if len(rss) == 0 {
					return fmt.Errorf("no rollout history found for deployment %q", name)
				}
				var target *appsv1.ReplicaSet
				current := revisionOf(&rss[len(rss)-1])
				for i := len(rss) - 1; i >= 0; i-- {
					r := revisionOf(&rss[i])
					if (toRevision == 0 && r < current) || (toRevision != 0 && r == toRevision) {
						target = &rss[i]
						break
					}
				}
				if target == nil {
					if toRevision != 0 {
						return fmt.Errorf("unable to find the specified revision %d", toRevision)
					}
					return fmt.Errorf("no previous revision of deployment %q to roll back to", name)
				}
				tmpl := target.Spec.Template.DeepCopy()
				delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
				d.Spec.Template = *tmpl
				return nil
			})
			if err != nil {
				return cliError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployment.apps/%s rolled back\n", name)
			return nil
		})
	cmd.Use = "undo deployment/NAME [--to-revision=N]"
	cmd.Flags().Int64Var(&toRevision, "to-revision", 0, "revision to roll back to (0: the previous one)")
	return cmd
}

func newRolloutRestartCmd() *cobra.Command {
	return deploymentCmd("restart", "Restart a deployment's pods by a rollout",
		func(ctx context.Context, cmd *cobra.Command, c *client.Client, name string) error {
			err := updateObject(ctx, c, name, newDeployment, func(d *appsv1.Deployment) error {
				if d.Spec.Template.Annotations == nil {
					d.Spec.Template.Annotations = map[string]string{}
				}
				d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = metav1.Now().Format(time.RFC3339)
				return nil
			})
			if err != nil {
				return cliError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployment.apps/%s restarted\n", name)
			return nil
		})
}

// newRolloutPauseCmd is rollout pause (pause true) or rollout resume: a
// paused deployment keeps its pods as they are while its template changes,
// and rolls them out at resume.
func newRolloutPauseCmd(pause bool) *cobra.Command {
	verb, done, short := "resume", "resumed", "Resume a paused deployment: roll out what changed while it was paused"
	if pause {
		verb, done, short = "pause", "paused", "Pause a deployment's rollouts: template changes wait until resume"
	}
	return deploymentCmd(verb, short, func(ctx context.Context, cmd *cobra.Command, c *client.Client, name string) error {
		err := updateObject(ctx, c, name, newDeployment, func(d *appsv1.Deployment) error {
			switch {
			case d.Spec.Paused && pause:
				return fmt.Errorf("deployment.apps/%s is already paused", name)
			case !d.Spec.Paused && !pause:
				return fmt.Errorf("deployment.apps/%s is not paused", name)
			}
			d.Spec.Paused = pause
			return nil
		})
		if err != nil {
			return cliError(err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "deployment.apps/%s %s\n", name, done)
		return nil
	})
}

// deploymentCmd is a rollout subcommand on deployment/NAME (or deployment
// NAME): run gets the request's context, a client and the name.
func deploymentCmd(verb, short string, run func(ctx context.Context, cmd *cobra.Command, c *client.Client, name string) error) *cobra.Command {
	var cf cliFlags
	cmd := &cobra.Command{
		Use:   verb + " deployment/NAME",
		Short: short,
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args)
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
			return run(ctx, cmd, c, name)
		},
	}
	cf.register(cmd, false)
	return cmd
}

func newDeployment() *appsv1.Deployment { return &appsv1.Deployment{} }

func init() { rootCmd.AddCommand(newRolloutCmd()) }
