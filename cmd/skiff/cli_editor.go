package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/api"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

func newEditCmd() *cobra.Command {
	var cf cliFlags
	cmd := &cobra.Command{
		Use:   "edit (KIND NAME | KIND/NAME)",
		Short: "Edit an object in $EDITOR and save it back (strictly decoded, validated)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := cf.request(cmd.Context())
			ts, err := namedTargets(ctx, c, args)
			cancel()
			if err != nil {
				return err
			}
			if len(ts) != 1 {
				return errors.New("edit one object at a time")
			}
			t := ts[0]
			ctx, cancel = cf.request(cmd.Context())
			resp, err := c.Raw().Get(ctx, &skiffv1.GetRequest{Ref: t.ref})
			cancel()
			if err != nil {
				return cliError(err)
			}
			info, err := resolveRef(t.ref)
			if err != nil {
				return err
			}
			obj, err := decodeTyped(info, resp.Object)
			if err != nil {
				return err
			}
			original, err := api.Encode(obj, "yaml")
			if err != nil {
				return err
			}
			f, err := os.CreateTemp("", "skiff-edit-*.yaml")
			if err != nil {
				return err
			}
			path := f.Name()
			header := "# Edit the object below. Lines starting with '#' are ignored; an empty file aborts the edit.\n" +
				"# If an error occurs, the file is kept so your changes are not lost.\n#\n"
			_, werr := f.Write(append([]byte(header), original...))
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				os.Remove(path)
				return werr
			}
			editor := os.Getenv("SKIFF_EDITOR")
			if editor == "" {
				editor = os.Getenv("EDITOR")
			}
			if editor == "" {
				editor = "vi"
			}
			run := exec.CommandContext(cmd.Context(), "sh", "-c", editor+` "$1"`, "editor", path)
			run.Stdin, run.Stdout, run.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := run.Run(); err != nil {
				return fmt.Errorf("editor %q: %w (your file: %s)", editor, err, path)
			}
			edited, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var body []byte
			for _, line := range bytes.SplitAfter(edited, []byte("\n")) {
				if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
					body = append(body, line...)
				}
			}
			if len(bytes.TrimSpace(body)) == 0 {
				os.Remove(path)
				fmt.Fprintln(cmd.ErrOrStderr(), "Edit cancelled, no objects found.")
				return nil
			}
			if bytes.Equal(bytes.TrimSpace(body), bytes.TrimSpace(original)) {
				os.Remove(path)
				fmt.Fprintln(cmd.OutOrStdout(), "Edit cancelled, no changes made.")
				return nil
			}
			objs, err := api.Decode(path, body)
			if err != nil {
				return fmt.Errorf("%w\nyour changes are kept in %s", err, path)
			}
			if len(objs) != 1 || objs[0].Kind.GVK != info.GVK {
				return fmt.Errorf("the edited file must hold the one %s being edited (kept in %s)", info.GVK.Kind, path)
			}
			data, err := json.Marshal(objs[0].Obj)
			if err != nil {
				return err
			}
			ctx, cancel = cf.request(cmd.Context())
			defer cancel()
			if _, err := c.Raw().Update(ctx, &skiffv1.UpdateRequest{Ref: t.ref, Object: data}); err != nil {
				return fmt.Errorf("%w\nyour changes are kept in %s", cliError(err), path)
			}
			os.Remove(path)
			fmt.Fprintf(cmd.OutOrStdout(), "%s edited\n", t.display)
			return nil
		},
	}
	cf.register(cmd, false)
	return cmd
}

func resolveRef(ref *skiffv1.ResourceRef) (api.KindInfo, error) {
	name := ref.Resource
	if ref.Group != "" {
		name += "." + ref.Group
	}
	info, err := api.ResolveResource(name)
	if err != nil && strings.Contains(name, ".") {
		return api.ResolveResource(ref.Resource)
	}
	return info, err
}

func init() { rootCmd.AddCommand(newEditCmd()) }
