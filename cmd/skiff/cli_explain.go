package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/api"
)

func newExplainCmd() *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "explain KIND[.FIELD.PATH]",
		Short: "Document a kind or one of its fields (from the Kubernetes types' own docs)",
		Example: `  skiff explain pods
  skiff explain deploy.spec.strategy
  skiff explain pod.spec.containers --recursive`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := api.Explain(args[0], recursive)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), doc.Format(recursive))
			return err
		},
	}
	cmd.Flags().BoolVar(&recursive, "recursive", false, "list every field below, depth first")
	return cmd
}

func init() { rootCmd.AddCommand(newExplainCmd()) }
