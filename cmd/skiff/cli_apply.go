package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// manifestCmd builds apply, create and replace: decode every manifest
// first (one bad document applies nothing), then send each object.
func manifestCmd(use, short, verb string, send func(ctx context.Context, c *client.Client, t target, dryRun bool) (string, error)) *cobra.Command {
	var (
		cf     cliFlags
		ff     fileFlags
		dryRun string
	)
	cmd := &cobra.Command{
		Use:   use + " -f FILENAME",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			suffix, err := dryRunSuffix(dryRun)
			if err != nil {
				return err
			}
			objs, err := decodeManifests(&ff, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if dryRun == "client" {
				// Decoded strictly; nothing is sent.
				ts, err := targets(objs, cf.namespace, "default")
				if err != nil {
					return err
				}
				for _, t := range ts {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s%s\n", t.display, pastTense(verb), suffix)
				}
				return nil
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
				msg, err := send(ctx, c, t, dryRun == "server")
				return msg + suffix, err
			})
		},
	}
	cf.register(cmd, false)
	ff.register(cmd, verb)
	cmd.Flags().StringVar(&dryRun, "dry-run", "none", "none, client (decode and check locally) or server (the server defaults and validates, stores nothing)")
	cmd.Flags().Lookup("dry-run").NoOptDefVal = "client"
	return cmd
}

func dryRunSuffix(mode string) (string, error) {
	switch mode {
	case "none", "":
		return "", nil
	case "client", "server":
		return " (" + mode + " dry run)", nil
	}
	return "", fmt.Errorf("--dry-run=%s: want none, client or server", mode)
}

func pastTense(verb string) string {
	switch verb {
	case "apply":
		return "configured"
	case "create":
		return "created"
	case "replace":
		return "replaced"
	}
	return verb + "d"
}

func newApplyCmd() *cobra.Command {
	return manifestCmd("apply", "Create or update objects from manifests (kubectl apply: three-way merge)", "apply",
		func(ctx context.Context, c *client.Client, t target, dry bool) (string, error) {
			resp, err := c.Raw().Apply(ctx, &skiffv1.ApplyRequest{Ref: t.ref, Object: t.data, DryRun: dry})
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
	cmd := manifestCmd("create", "Create objects from manifests, or a namespace, config map, secret or deployment", "create",
		func(ctx context.Context, c *client.Client, t target, dry bool) (string, error) {
			if _, err := c.Raw().Create(ctx, &skiffv1.CreateRequest{Ref: t.ref, Object: t.data, DryRun: dry}); err != nil {
				return "", err
			}
			return t.display + " created", nil
		})
	cmd.Use = "create -f FILENAME | create (namespace|configmap|secret generic|deployment) NAME"
	cmd.AddCommand(newCreateNamespaceCmd(), newCreateConfigMapCmd(), newCreateSecretCmd(), newCreateDeploymentCmd())
	return cmd
}

func newReplaceCmd() *cobra.Command {
	return manifestCmd("replace", "Replace objects by manifests (the objects must exist)", "replace",
		func(ctx context.Context, c *client.Client, t target, dry bool) (string, error) {
			if _, err := c.Raw().Update(ctx, &skiffv1.UpdateRequest{Ref: t.ref, Object: t.data, DryRun: dry}); err != nil {
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
		selector       string
		all            bool
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
				if selector != "" || all {
					ts, err = selectedTargets(ctx, c, args, selector, cf.allNamespaces)
				} else {
					ts, err = namedTargets(ctx, c, args)
				}
				cancel()
				if err != nil {
					return err
				}
				if len(ts) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "No resources found")
					return nil
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
	cf.register(cmd, true)
	ff.register(cmd, "delete")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "delete the objects of KIND matching this label selector")
	cmd.Flags().BoolVar(&all, "all", false, "delete every object of KIND in the namespace")
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

// selectedTargets lists the objects of one kind matching a selector.
func selectedTargets(ctx context.Context, c *client.Client, args []string, selector string, allNS bool) ([]target, error) {
	if len(args) != 1 {
		return nil, errors.New("with -l or --all, give exactly one kind and no names")
	}
	r, err := c.ResolveResource(ctx, args[0])
	if err != nil {
		return nil, cliError(err)
	}
	ns := c.Namespace
	if allNS {
		ns = ""
	}
	var ts []target
	cont := ""
	for {
		resp, err := c.Raw().List(ctx, &skiffv1.ListRequest{Ref: client.Ref(r, ns, ""), LabelSelector: selector, Limit: 500, ContinueToken: cont})
		if err != nil {
			return nil, cliError(err)
		}
		for _, item := range resp.Items {
			var m struct {
				Metadata struct{ Name, Namespace string } `json:"metadata"`
			}
			if err := json.Unmarshal(item, &m); err != nil {
				return nil, err
			}
			ts = append(ts, target{ref: client.Ref(r, m.Metadata.Namespace, m.Metadata.Name),
				display: kindDisplay(r.Singular, r.Group) + "/" + m.Metadata.Name})
		}
		if cont = resp.ContinueToken; cont == "" {
			return ts, nil
		}
	}
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
	if _, _, ok := cutSlash(args[0]); ok {
		for _, a := range args {
			kind, name, ok := cutSlash(a)
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
