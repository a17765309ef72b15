package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// mutateObject reads the object, lets mutate change its JSON document and
// writes it back with a compare on the version read, retrying on conflict.
func mutateObject(ctx context.Context, c *client.Client, ref *skiffv1.ResourceRef, mutate func(doc map[string]any) error) error {
	return client.RetryOnConflict(ctx, 5, func() error {
		resp, err := c.Raw().Get(ctx, &skiffv1.GetRequest{Ref: ref})
		if err != nil {
			return err
		}
		var doc map[string]any
		if err := json.Unmarshal(resp.Object, &doc); err != nil {
			return err
		}
		if err := mutate(doc); err != nil {
			return err
		}
		data, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = c.Raw().Update(ctx, &skiffv1.UpdateRequest{Ref: ref, Object: data})
		return err
	})
}

func child(doc map[string]any, key string) map[string]any {
	m, ok := doc[key].(map[string]any)
	if !ok {
		m = map[string]any{}
		doc[key] = m
	}
	return m
}

func newScaleCmd() *cobra.Command {
	var (
		cf       cliFlags
		replicas int32
	)
	cmd := &cobra.Command{
		Use:     "scale (KIND NAME | KIND/NAME) --replicas=N",
		Short:   "Set the replicas of a Deployment, ReplicaSet, StatefulSet or ReplicationController",
		Example: "  skiff scale deploy/web --replicas=3",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("replicas") || replicas < 0 {
				return errors.New("--replicas=N (N >= 0) is required")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := cf.request(cmd.Context())
			defer cancel()
			ts, err := namedTargets(ctx, c, args)
			if err != nil {
				return err
			}
			return runAll(ts, cmd.OutOrStdout(), cmd.ErrOrStderr(), func(t target) (string, error) {
				switch t.ref.Resource {
				case "deployments", "replicasets", "statefulsets", "replicationcontrollers":
				default:
					return "", fmt.Errorf("%s cannot be scaled", t.ref.Resource)
				}
				err := mutateObject(ctx, c, t.ref, func(doc map[string]any) error {
					child(doc, "spec")["replicas"] = replicas
					return nil
				})
				return t.display + " scaled", err
			})
		},
	}
	cf.register(cmd, false)
	cmd.Flags().Int32Var(&replicas, "replicas", 0, "the new number of replicas")
	return cmd
}

// metaMapCmd builds label and annotate: KEY=VALUE sets, KEY- removes.
func metaMapCmd(use, field, done string) *cobra.Command {
	var (
		cf        cliFlags
		overwrite bool
	)
	cmd := &cobra.Command{
		Use:   use + " (KIND NAME | KIND/NAME) KEY=VALUE... KEY-...",
		Short: "Set or remove " + field + " of an object",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var objArgs []string
			set, remove := map[string]string{}, []string{}
			for _, a := range args {
				switch {
				case strings.Contains(a, "="):
					k, v, _ := strings.Cut(a, "=")
					if field == "labels" {
						if errs := validation.IsQualifiedName(k); len(errs) > 0 {
							return fmt.Errorf("invalid label key %q: %s", k, strings.Join(errs, "; "))
						}
						if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
							return fmt.Errorf("invalid label value %q: %s", v, strings.Join(errs, "; "))
						}
					}
					set[k] = v
				case strings.HasSuffix(a, "-") && len(objArgs) > 0:
					remove = append(remove, strings.TrimSuffix(a, "-"))
				default:
					objArgs = append(objArgs, a)
				}
			}
			if len(set)+len(remove) == 0 {
				return fmt.Errorf("give at least one KEY=VALUE or KEY- to change %s", field)
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := cf.request(cmd.Context())
			defer cancel()
			ts, err := namedTargets(ctx, c, objArgs)
			if err != nil {
				return err
			}
			return runAll(ts, cmd.OutOrStdout(), cmd.ErrOrStderr(), func(t target) (string, error) {
				err := mutateObject(ctx, c, t.ref, func(doc map[string]any) error {
					m := child(child(doc, "metadata"), field)
					for k, v := range set {
						if old, ok := m[k]; ok && old != v && !overwrite {
							return fmt.Errorf("'%s' already has a value (%v), and --overwrite is false", k, old)
						}
						m[k] = v
					}
					for _, k := range remove {
						delete(m, k)
					}
					return nil
				})
				return t.display + " " + done, err
			})
		},
	}
	cf.register(cmd, false)
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace existing values")
	return cmd
}

func newRunCmd() *cobra.Command {
	var (
		cf      cliFlags
		image   string
		port    int32
		labels  string
		env     []string
		restart string
		dryRun  string
		output  string
		command bool
	)
	cmd := &cobra.Command{
		Use:   "run NAME --image=IMAGE [--port=P] [--env=K=V] [-- ARGS...]",
		Short: "Create a pod running one container",
		Example: `  skiff run web --image=nginx --port=80
  skiff run web --image=nginx --dry-run=client -o yaml > pod.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if image == "" {
				return errors.New("--image is required")
			}
			lbl := map[string]string{"run": name}
			if labels != "" {
				lbl = map[string]string{}
				for _, kv := range strings.Split(labels, ",") {
					k, v, ok := strings.Cut(kv, "=")
					if !ok {
						return fmt.Errorf("--labels: %q is not KEY=VALUE", kv)
					}
					lbl[k] = v
				}
			}
			ctr := corev1.Container{Name: name, Image: image}
			if port > 0 {
				ctr.Ports = []corev1.ContainerPort{{ContainerPort: port}}
			}
			for _, e := range env {
				k, v, _ := strings.Cut(e, "=")
				ctr.Env = append(ctr.Env, corev1.EnvVar{Name: k, Value: v})
			}
			if rest := args[1:]; len(rest) > 0 {
				if command {
					ctr.Command = rest
				} else {
					ctr.Args = rest
				}
			}
			pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{ctr}, RestartPolicy: corev1.RestartPolicy(restart),
					DNSPolicy: corev1.DNSClusterFirst}}
			if cf.namespace != "" {
				pod.Namespace = cf.namespace
			}
			switch dryRun {
			case "none", "":
			case "client":
				if output == "" {
					fmt.Fprintf(cmd.OutOrStdout(), "pod/%s created (dry run)\n", name)
					return nil
				}
				if output != "yaml" && output != "json" {
					return fmt.Errorf("-o %s: want yaml or json", output)
				}
				data, err := api.Encode(pod, output)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(data)
				return err
			default:
				return fmt.Errorf("--dry-run=%s: want none or client", dryRun)
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := cf.request(cmd.Context())
			defer cancel()
			if err := c.Create(ctx, pod); err != nil {
				return cliError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pod/%s created\n", name)
			return nil
		},
	}
	cf.register(cmd, false)
	f := cmd.Flags()
	f.StringVar(&image, "image", "", "container image")
	f.Int32Var(&port, "port", 0, "container port to expose")
	f.StringVarP(&labels, "labels", "l", "", "labels (default run=NAME)")
	f.StringArrayVar(&env, "env", nil, "environment variable K=V (repeatable)")
	f.StringVar(&restart, "restart", "Always", "restart policy: Always, OnFailure or Never")
	f.StringVar(&dryRun, "dry-run", "none", "client: print or describe the pod without creating it")
	f.Lookup("dry-run").NoOptDefVal = "client"
	f.StringVarP(&output, "output", "o", "", "with --dry-run=client: yaml or json")
	f.BoolVar(&command, "command", false, "the arguments after -- are the command, not its args")
	return cmd
}

func init() {
	rootCmd.AddCommand(newScaleCmd(), metaMapCmd("label", "labels", "labeled"), metaMapCmd("annotate", "annotations", "annotated"), newRunCmd())
}
