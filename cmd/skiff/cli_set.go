package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func newSetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "set", Short: "Change a field of objects (the images of their containers)"}
	cmd.AddCommand(newSetImageCmd())
	return cmd
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
			w, ok := newWorkload(kind)
			if !ok {
				return fmt.Errorf("set image changes pods and the pod templates of deployments, replica sets, stateful sets, daemon sets, jobs and replication controllers, not a %s", kind)
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := cf.request(cmd.Context())
			defer cancel()
			err = updateObject(ctx, c, name, func() runtime.Object {
				w, _ = newWorkload(kind)
				return w.obj
			}, func(runtime.Object) error {
				if err := applyImages(w.podSpec(), images); err != nil {
					return fmt.Errorf("%s/%s: %w; nothing changed", w.kind, name, err)
				}
				return nil
			})
			if err != nil {
				return cliError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s/%s image updated\n", w.kind, name)
			return nil
		},
	}
	cf.register(cmd, false)
	return cmd
}

func init() { rootCmd.AddCommand(newSetCmd()) }
