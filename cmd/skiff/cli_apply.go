package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// manifestCmd builds apply, create and replace: decode every manifest
// first (one bad document applies nothing), then send each object.
func manifestCmd(use, short, verb string, send func(ctx context.Context, c *client.Client, t target) (string, error)) *cobra.Command {
	var (
		cf cliFlags
		ff fileFlags
	)
	cmd := &cobra.Command{
		Use:   use + " -f FILENAME",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			objs, err := decodeManifests(&ff, cmd.InOrStdin())
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ts, err := targets(objs, cf.namespace, c.Namespace)
			if err != nil {
				return err
			}
			return runAll(ts, cmd.OutOrStdout(), cmd.ErrOrStderr(), func(t target) (string, error) {
				ctx, cancel := cf.request(cmd.Context())
				defer cancel()
				return send(ctx, c, t)
			})
		},
	}
	cf.register(cmd, false)
	ff.register(cmd, verb)
	return cmd
}

func newApplyCmd() *cobra.Command {
	return manifestCmd("apply", "Create or update objects from manifests (kubectl apply: three-way merge)", "apply",
		func(ctx context.Context, c *client.Client, t target) (string, error) {
			resp, err := c.Raw().Apply(ctx, &skiffv1.ApplyRequest{Ref: t.ref, Object: t.data})
			if err != nil {
				return "", err
			}
			switch {
			case resp.Created:
				return t.display + " created", nil
			case resp.Unchanged:
				return t.display + " unchanged", nil
			}
			return t.display + " configured", nil
		})
}

func newCreateCmd() *cobra.Command {
	cmd := manifestCmd("create", "Create objects from manifests, or a namespace", "create",
		func(ctx context.Context, c *client.Client, t target) (string, error) {
			if _, err := c.Raw().Create(ctx, &skiffv1.CreateRequest{Ref: t.ref, Object: t.data}); err != nil {
				return "", err
			}
			return t.display + " created", nil
		})
	cmd.Use = "create -f FILENAME | create namespace NAME"
	cmd.AddCommand(newCreateNamespaceCmd())
	return cmd
}

func newReplaceCmd() *cobra.Command {
	return manifestCmd("replace", "Replace objects by manifests (the objects must exist)", "replace",
		func(ctx context.Context, c *client.Client, t target) (string, error) {
			if _, err := c.Raw().Update(ctx, &skiffv1.UpdateRequest{Ref: t.ref, Object: t.data}); err != nil {
				return "", err
			}
			return t.display + " replaced", nil
		})
}

func newCreateNamespaceCmd() *cobra.Command {
	var cf cliFlags
	cmd := &cobra.Command{
		Use:     "namespace NAME",
		Aliases: []string{"ns"},
		Short:   "Create a namespace",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := cf.request(cmd.Context())
			defer cancel()
			data := fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q}}`, args[0])
			_, err = c.Raw().Create(ctx, &skiffv1.CreateRequest{
				Ref: &skiffv1.ResourceRef{Version: "v1", Resource: "namespaces"}, Object: data})
			if err != nil {
				return cliError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "namespace/%s created\n", args[0])
			return nil
		},
	}
	cf.register(cmd, false)
	return cmd
}

func newDeleteCmd() *cobra.Command {
	var (
		cf             cliFlags
		ff             fileFlags
		ignoreNotFound bool
		cascade        string
		grace          int64
		wait           bool
	)
	cmd := &cobra.Command{
		Use:   "delete (-f FILENAME | KIND NAME...)",
		Short: "Delete objects by manifests or by kind and names",
		Example: `  skiff delete -f app.yaml
  skiff delete pod web
  skiff delete deploy/web svc/web`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var propagation string
			switch cascade {
			case "background", "true", "":
				propagation = "Background"
			case "foreground":
				propagation = "Foreground"
			case "orphan", "false":
				propagation = "Orphan"
			default:
				return fmt.Errorf("--cascade=%s: want background, foreground or orphan", cascade)
			}
			if len(ff.files) > 0 && len(args) > 0 {
				return errors.New("give either -f or KIND NAME, not both")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			var ts []target
			if len(ff.files) > 0 {
				objs, err := decodeManifests(&ff, cmd.InOrStdin())
				if err != nil {
					return err
				}
				if ts, err = targets(objs, cf.namespace, c.Namespace); err != nil {
					return err
				}
			} else {
				ctx, cancel := cf.request(cmd.Context())
				ts, err = namedTargets(ctx, c, args)
				cancel()
				if err != nil {
					return err
				}
			}
			return runAll(ts, cmd.OutOrStdout(), cmd.ErrOrStderr(), func(t target) (string, error) {
				ctx, cancel := cf.request(cmd.Context())
				defer cancel()
				req := &skiffv1.DeleteRequest{Ref: t.ref, Propagation: propagation}
				if grace >= 0 {
					req.GracePeriodSeconds = &grace
				}
				_, err := c.Raw().Delete(ctx, req)
				if ignoreNotFound && client.IsNotFound(err) {
					return fmt.Sprintf("%s %q not found (ignored)", displayKind(t.display), t.ref.Name), nil
				}
				if err != nil {
					return "", err
				}
				if wait {
					if err := waitGone(ctx, c, t.ref); err != nil {
						return "", err
					}
				}
				return fmt.Sprintf("%s %q deleted", displayKind(t.display), t.ref.Name), nil
			})
		},
	}
	cf.register(cmd, false)
	ff.register(cmd, "delete")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat a missing object as deleted")
	cmd.Flags().StringVar(&cascade, "cascade", "background", "background, foreground or orphan: what happens to dependents")
	cmd.Flags().Int64Var(&grace, "grace-period", -1, "seconds to let the object terminate; -1 uses its own, 0 deletes at once")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the objects are gone")
	return cmd
}

func displayKind(display string) string {
	for i := 0; i < len(display); i++ {
		if display[i] == '/' {
			return display[:i]
		}
	}
	return display
}

// namedTargets turns "KIND NAME..." or "KIND/NAME..." into targets.
func namedTargets(ctx context.Context, c *client.Client, args []string) ([]target, error) {
	if len(args) == 0 {
		return nil, errors.New("you must give a kind and names, or -f FILENAME")
	}
	var ts []target
	add := func(kind, name string) error {
		r, err := c.ResolveResource(ctx, kind)
		if err != nil {
			return cliError(err)
		}
		ts = append(ts, target{ref: client.Ref(r, c.Namespace, name), display: kindDisplay(r.Singular, r.Group) + "/" + name})
		return nil
	}
	if kind, name, ok := cutSlash(args[0]); ok {
		for _, a := range args {
			kind, name, ok = cutSlash(a)
			if !ok {
				return nil, fmt.Errorf("there is no need to give a resource type as a separate argument when passing arguments in resource/name form (%q)", a)
			}
			if err := add(kind, name); err != nil {
				return nil, err
			}
		}
		return ts, nil
	}
	if len(args) < 2 {
		return nil, fmt.Errorf("give the names of the %s to delete", args[0])
	}
	for _, name := range args[1:] {
		if err := add(args[0], name); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

func cutSlash(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], i > 0 && i < len(s)-1
		}
	}
	return "", "", false
}

// waitGone polls until the object is NotFound or ctx ends.
func waitGone(ctx context.Context, c *client.Client, ref *skiffv1.ResourceRef) error {
	for {
		_, err := c.Raw().Get(ctx, &skiffv1.GetRequest{Ref: ref})
		if client.IsNotFound(err) {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("timed out waiting for %s %q to be deleted", ref.Resource, ref.Name)
		}
		select {
		case <-ctx.Done():
		case <-timeAfter(200):
		}
	}
}

func init() {
	rootCmd.AddCommand(newApplyCmd(), newCreateCmd(), newReplaceCmd(), newDeleteCmd())
}
