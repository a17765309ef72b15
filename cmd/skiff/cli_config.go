package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

func newConfigCmd() *cobra.Command {
	var path string
	load := func() (*client.Config, string, error) {
		p := client.ConfigPath(path)
		c, err := client.LoadConfig(p)
		return c, p, err
	}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show and change the client config (clusters, users, contexts)",
		Args:  cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&path, "kubeconfig", "", "client config file (default $SKIFFCONFIG or ~/.skiff/config)")
	cmd.PersistentFlags().StringVar(&path, "config", "", "alias of --kubeconfig")

	var raw bool
	view := &cobra.Command{
		Use:   "view",
		Short: "Print the client config (secrets redacted unless --raw)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := load()
			if err != nil {
				return err
			}
			// Marshal through a generic document so redacted fields can be
			// replaced with kubectl's markers.
			data, err := yaml.Marshal(c)
			if err != nil {
				return err
			}
			if !raw {
				var doc map[string]any
				if err := yaml.Unmarshal(data, &doc); err != nil {
					return err
				}
				redact(doc)
				if data, err = yaml.Marshal(doc); err != nil {
					return err
				}
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	view.Flags().BoolVar(&raw, "raw", false, "show certificates, keys and tokens")

	use := &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make a context the current one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, p, err := load()
			if err != nil {
				return err
			}
			found := false
			for _, ctx := range c.Contexts {
				found = found || ctx.Name == args[0]
			}
			if !found {
				return fmt.Errorf("no context exists with the name: %q", args[0])
			}
			c.CurrentContext = args[0]
			if err := c.Save(p); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Switched to context %q.\n", args[0])
			return nil
		},
	}

	getContexts := &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := load()
			if err != nil {
				return err
			}
			tw := newTabWriter(cmd.OutOrStdout())
			fmt.Fprintln(tw, "CURRENT\tNAME\tCLUSTER\tAUTHINFO\tNAMESPACE")
			ctxs := append([]client.NamedContext(nil), c.Contexts...)
			sort.Slice(ctxs, func(i, j int) bool { return ctxs[i].Name < ctxs[j].Name })
			for _, ctx := range ctxs {
				cur := ""
				if ctx.Name == c.CurrentContext {
					cur = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cur, ctx.Name, ctx.Context.Cluster, ctx.Context.User, ctx.Context.Namespace)
			}
			return tw.Flush()
		},
	}

	current := &cobra.Command{
		Use:   "current-context",
		Short: "Print the current context",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := load()
			if err != nil {
				return err
			}
			if c.CurrentContext == "" {
				return fmt.Errorf("current-context is not set")
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.CurrentContext)
			return nil
		},
	}

	var setNS string
	setContext := &cobra.Command{
		Use:   "set-context [NAME]",
		Short: "Change a context (the current one by default): --namespace",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, p, err := load()
			if err != nil {
				return err
			}
			name := c.CurrentContext
			if len(args) == 1 {
				name = args[0]
			}
			for i := range c.Contexts {
				if c.Contexts[i].Name == name {
					if cmd.Flags().Changed("namespace") {
						c.Contexts[i].Context.Namespace = setNS
					}
					if err := c.Save(p); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "Context %q modified.\n", name)
					return nil
				}
			}
			return fmt.Errorf("no context exists with the name: %q", name)
		},
	}
	setContext.Flags().StringVar(&setNS, "namespace", "", "default namespace of the context")

	cmd.AddCommand(view, use, getContexts, current, setContext)
	return cmd
}

// redact replaces secret values with kubectl's markers.
func redact(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			switch {
			case strings.HasSuffix(k, "-data"):
				t[k] = "DATA+OMITTED"
			case k == "token":
				t[k] = "REDACTED"
			default:
				redact(val)
			}
		}
	case []any:
		for _, e := range t {
			redact(e)
		}
	}
}

func newClusterInfoCmd() *cobra.Command {
	var cf cliFlags
	cmd := &cobra.Command{
		Use:   "cluster-info",
		Short: "Show where the control plane runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := cf.request(cmd.Context())
			defer cancel()
			resp, err := c.Raw().Discover(ctx, &skiffv1.DiscoverRequest{})
			if err != nil {
				return cliError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Skiff control plane is running at %s\n", c.Server)
			fmt.Fprintf(cmd.OutOrStdout(), "API server version: %s\n", resp.ServerVersion)
			if len(resp.StoreEndpoints) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "Store: %s\n", strings.Join(resp.StoreEndpoints, ","))
			}
			return nil
		},
	}
	cf.register(cmd, false)
	return cmd
}

func newAPIResourcesCmd() *cobra.Command {
	var (
		cf         cliFlags
		namespaced string
		output     string
	)
	cmd := &cobra.Command{
		Use:   "api-resources",
		Short: "List the resource types the server serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := cf.request(cmd.Context())
			defer cancel()
			rs, err := c.Resources(ctx)
			if err != nil {
				return cliError(err)
			}
			sorted := append([]*skiffv1.APIResource(nil), rs...)
			sort.Slice(sorted, func(i, j int) bool {
				if sorted[i].Group != sorted[j].Group {
					return sorted[i].Group < sorted[j].Group
				}
				return sorted[i].Resource < sorted[j].Resource
			})
			tw := newTabWriter(cmd.OutOrStdout())
			if output != "name" {
				fmt.Fprintln(tw, "NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND")
			}
			for _, r := range sorted {
				if namespaced != "" && fmt.Sprint(r.Namespaced) != namespaced {
					continue
				}
				gv := r.Version
				if r.Group != "" {
					gv = r.Group + "/" + r.Version
				}
				if output == "name" {
					name := r.Resource
					if r.Group != "" {
						name += "." + r.Group
					}
					fmt.Fprintln(tw, name)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", r.Resource, strings.Join(r.ShortNames, ","), gv, r.Namespaced, r.Kind)
			}
			return tw.Flush()
		},
	}
	cf.register(cmd, false)
	cmd.Flags().StringVar(&namespaced, "namespaced", "", "true or false: only namespaced or cluster-scoped resources")
	cmd.Flags().StringVarP(&output, "output", "o", "", "name: only the names")
	return cmd
}

func init() {
	rootCmd.AddCommand(newConfigCmd(), newClusterInfoCmd(), newAPIResourcesCmd())
}
