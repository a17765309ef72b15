package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

func newSetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "set", Short: "Change a field of objects (the images of their containers)"}
	cmd.AddCommand(newSetImageCmd())
	return cmd
}

// podSpecHolder is an object kind that set image changes: the object, how
// kubectl names its kind, and its pod spec.
type podSpecHolder struct {
	obj     runtime.Object
	kind    string // deployment.apps, pod, ...
	podSpec func() *corev1.PodSpec
}

// holderOf returns an empty object of kind (as splitTarget names kinds).
func holderOf(kind string) (podSpecHolder, error) {
	switch kind {
	case "pod":
		p := &corev1.Pod{}
		return podSpecHolder{p, "pod", func() *corev1.PodSpec { return &p.Spec }}, nil
	case "deployment":
		d := &appsv1.Deployment{}
		return podSpecHolder{d, "deployment.apps", func() *corev1.PodSpec { return &d.Spec.Template.Spec }}, nil
	case "replicaset":
		r := &appsv1.ReplicaSet{}
		return podSpecHolder{r, "replicaset.apps", func() *corev1.PodSpec { return &r.Spec.Template.Spec }}, nil
	case "statefulset":
		s := &appsv1.StatefulSet{}
		return podSpecHolder{s, "statefulset.apps", func() *corev1.PodSpec { return &s.Spec.Template.Spec }}, nil
	case "daemonset":
		d := &appsv1.DaemonSet{}
		return podSpecHolder{d, "daemonset.apps", func() *corev1.PodSpec { return &d.Spec.Template.Spec }}, nil
	case "job":
		j := &batchv1.Job{}
		return podSpecHolder{j, "job.batch", func() *corev1.PodSpec { return &j.Spec.Template.Spec }}, nil
	case "replicationcontroller":
		r := &corev1.ReplicationController{}
		return podSpecHolder{r, "replicationcontroller", func() *corev1.PodSpec {
			if r.Spec.Template == nil {
				r.Spec.Template = &corev1.PodTemplateSpec{}
			}
			return &r.Spec.Template.Spec
		}}, nil
	}
	return podSpecHolder{}, fmt.Errorf("set image changes pods and the pod templates of deployments, replica sets, stateful sets, daemon sets, jobs and replication controllers, not a %s", kind)
}

// setImages parses set image's arguments: TYPE/NAME or TYPE NAME, then
// CONTAINER=IMAGE pairs ("*" for every container).
func setImages(args []string) (kind, name string, images map[string]string, err error) {
	var target []string
	images = map[string]string{}
	for _, a := range args {
		c, img, ok := strings.Cut(a, "=")
		if !ok {
			if len(images) > 0 {
				return "", "", nil, fmt.Errorf("%q: the objects come before the CONTAINER=IMAGE pairs", a)
			}
			target = append(target, a)
			continue
		}
		if c == "" || img == "" {
			return "", "", nil, fmt.Errorf("%q: want CONTAINER=IMAGE", a)
		}
		images[c] = img
	}
	switch len(target) {
	case 1:
		kind, name, err = splitTarget(target[0])
		if err == nil && !strings.Contains(target[0], "/") {
			err = fmt.Errorf("%q: give TYPE/NAME or TYPE NAME (deployment/web)", target[0])
		}
	case 2:
		kind, name, err = splitTarget(target[0] + "/" + target[1])
	default:
		err = errors.New("give one object: TYPE/NAME or TYPE NAME (deployment/web)")
	}
	if err != nil {
		return "", "", nil, err
	}
	if len(images) == 0 {
		return "", "", nil, errors.New("give at least one CONTAINER=IMAGE (or *=IMAGE for every container)")
	}
	return kind, name, images, nil
}

// applyImages sets the images of spec's containers (init containers too);
// every named container must exist.
func applyImages(spec *corev1.PodSpec, images map[string]string) error {
	found := map[string]bool{}
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range list {
			if img, ok := images[list[i].Name]; ok {
				list[i].Image = img
				found[list[i].Name] = true
			} else if img, ok := images["*"]; ok {
				list[i].Image = img
			}
		}
	}
	for c := range images {
		if c != "*" && !found[c] {
			return fmt.Errorf("unable to find container named %q", c)
		}
	}
	return nil
}

func newSetImageCmd() *cobra.Command {
	var cf cliFlags
	cmd := &cobra.Command{
		Use:   "image (TYPE/NAME | TYPE NAME) CONTAINER=IMAGE [CONTAINER=IMAGE...]",
		Short: "Change the images of containers (a rollout, for a deployment)",
		Long: `Change the image of the named containers (init containers too; * for all) of a
pod or of a workload's pod template. On a deployment this starts a rolling
update: follow it with 'skiff rollout status'. Nothing changes if a named
container does not exist.`,
		Example: `  skiff set image deployment/web httpd=skiff.local/httpd:v2
  skiff set image deploy web '*=busybox:1.36'`,
		Args: cobra.ArbitraryArgs, // setImages says what is missing
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, images, err := setImages(args)
			if err != nil {
				return err
			}
			if _, err := holderOf(kind); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := cf.request(cmd.Context())
			defer cancel()
			var (
				h       podSpecHolder
				specErr error
			)
			err = client.RetryOnConflict(ctx, 5, func() error {
				h, _ = holderOf(kind)
				if err := c.Get(ctx, "", name, h.obj); err != nil {
					return err
				}
				if specErr = applyImages(h.podSpec(), images); specErr != nil {
					return nil // nothing to write
				}
				return c.Update(ctx, h.obj)
			})
			if err != nil {
				return cliError(err)
			}
			if specErr != nil {
				return fmt.Errorf("%s/%s: %w; nothing changed", h.kind, name, specErr)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s/%s image updated\n", h.kind, name)
			return nil
		},
	}
	cf.register(cmd, false)
	return cmd
}

func init() { rootCmd.AddCommand(newSetCmd()) }
