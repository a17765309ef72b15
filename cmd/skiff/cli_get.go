package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

type getFlags struct {
	cliFlags
	output     string
	selector   string
	fieldSel   string
	showLabels bool
	watch      bool
	noHeaders  bool
}

func newGetCmd() *cobra.Command {
	var gf getFlags
	cmd := &cobra.Command{
		Use:   "get KIND[,KIND...] [NAME...] | get KIND/NAME...",
		Short: "Show objects as tables, YAML, JSON or names",
		Example: `  skiff get pods
  skiff get deploy,svc -o wide
  skiff get pod web -o yaml
  skiff get all -A
  skiff get pods -l app=web -w`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runGet(cmd, &gf, args) },
	}
	gf.register(cmd, true)
	f := cmd.Flags()
	f.StringVarP(&gf.output, "output", "o", "", "output format: wide, yaml, json, name or jsonpath=TEMPLATE")
	f.StringVarP(&gf.selector, "selector", "l", "", "label selector (app=web,tier!=db)")
	f.StringVar(&gf.fieldSel, "field-selector", "", "field selector (status.phase=Running)")
	f.BoolVar(&gf.showLabels, "show-labels", false, "add a LABELS column")
	f.BoolVarP(&gf.watch, "watch", "w", false, "after listing, watch for changes")
	f.BoolVar(&gf.noHeaders, "no-headers", false, "omit table headers")
	return cmd
}

// getRequest is one kind to show, with optional names.
type getRequest struct {
	info  api.KindInfo
	names []string
}

func parseGetArgs(args []string) ([]getRequest, error) {
	if strings.Contains(args[0], "/") {
		var reqs []getRequest
		for _, a := range args {
			kind, name, ok := cutSlash(a)
			if !ok {
				return nil, fmt.Errorf("there is no need to give a resource type as a separate argument when passing arguments in resource/name form (%q)", a)
			}
			info, err := api.ResolveResource(kind)
			if err != nil {
				return nil, err
			}
			reqs = append(reqs, getRequest{info: info, names: []string{name}})
		}
		return reqs, nil
	}
	var reqs []getRequest
	for _, kind := range strings.Split(args[0], ",") {
		if kind == "all" {
			for _, info := range api.Kinds() {
				for _, c := range info.Categories {
					if c == "all" {
						reqs = append(reqs, getRequest{info: info})
					}
				}
			}
			continue
		}
		info, err := api.ResolveResource(kind)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, getRequest{info: info})
	}
	if len(args) > 1 {
		if len(reqs) != 1 {
			return nil, errors.New("names can only be given with a single kind")
		}
		reqs[0].names = args[1:]
	}
	return reqs, nil
}

func refFor(info api.KindInfo, ns, name string) *skiffv1.ResourceRef {
	if !info.Namespaced {
		ns = ""
	}
	return &skiffv1.ResourceRef{Group: info.GVK.Group, Version: info.GVK.Version, Resource: info.Resource, Namespace: ns, Name: name}
}

func decodeTyped(info api.KindInfo, data []byte) (runtime.Object, error) {
	obj := info.New()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, err
	}
	obj.GetObjectKind().SetGroupVersionKind(info.GVK)
	return obj, nil
}

func runGet(cmd *cobra.Command, gf *getFlags, args []string) error {
	var jp *jsonPath
	switch {
	case gf.output == "" || gf.output == "wide" || gf.output == "yaml" || gf.output == "json" || gf.output == "name":
	case strings.HasPrefix(gf.output, "jsonpath="):
		var err error
		if jp, err = parseJSONPath(strings.TrimPrefix(gf.output, "jsonpath=")); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json, jsonpath=TEMPLATE, name, wide, yaml", gf.output)
	}
	if jp != nil && gf.watch {
		return errors.New("-o jsonpath cannot be combined with --watch")
	}
	reqs, err := parseGetArgs(args)
	if err != nil {
		return err
	}
	if gf.watch && len(reqs) != 1 {
		return errors.New("watch is only supported on individual resources and resource collections, but multiple kinds were given")
	}
	c, err := gf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	ns := c.Namespace
	if gf.allNamespaces {
		ns = ""
	}
	var (
		failed     int
		shown      int
		all        []runtime.Object
		lastListRV string
		printed    bool
		widths     []int
	)
	now := time.Now()
	for _, r := range reqs {
		var objs []runtime.Object
		ctx, cancel := gf.request(cmd.Context())
		if len(r.names) > 0 {
			for _, name := range r.names {
				resp, err := c.Raw().Get(ctx, &skiffv1.GetRequest{Ref: refFor(r.info, ns, name)})
				if err != nil {
					failed++
					fmt.Fprintln(errOut, cliError(err))
					continue
				}
				obj, err := decodeTyped(r.info, resp.Object)
				if err != nil {
					cancel()
					return err
				}
				objs = append(objs, obj)
			}
		} else {
			var cont string
			for {
				resp, err := c.Raw().List(ctx, &skiffv1.ListRequest{Ref: refFor(r.info, ns, ""), LabelSelector: gf.selector,
					FieldSelector: gf.fieldSel, Limit: 500, ContinueToken: cont})
				if err != nil {
					cancel()
					return cliError(err)
				}
				for _, it := range resp.Items {
					obj, err := decodeTyped(r.info, it)
					if err != nil {
						cancel()
						return err
					}
					objs = append(objs, obj)
				}
				lastListRV = resp.ResourceVersion
				if cont = resp.ContinueToken; cont == "" {
					break
				}
			}
		}
		cancel()
		shown += len(objs)
		switch {
		case jp != nil:
			all = append(all, objs...)
		case gf.output == "yaml" || gf.output == "json":
			all = append(all, objs...)
		case gf.output == "name":
			for _, o := range objs {
				fmt.Fprintf(out, "%s/%s\n", kindDisplay(r.info.Singular, r.info.GVK.Group), o.(interface{ GetName() string }).GetName())
			}
		default:
			if len(objs) == 0 {
				continue
			}
			if printed {
				fmt.Fprintln(out)
			}
			printed = true
			t := buildTable(r.info, objs, printOptions{wide: gf.output == "wide", showLabels: gf.showLabels,
				withNamespace: gf.allNamespaces && r.info.Namespaced, withKind: len(reqs) > 1}, now)
			if err := t.write(out, !gf.noHeaders); err != nil {
				return err
			}
			widths = t.widths()
		}
	}
	if jp != nil {
		var buf bytes.Buffer
		if err := printObjects(&buf, all, "json", len(reqs) == 1 && len(reqs[0].names) == 1); err != nil {
			return err
		}
		var doc any
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			return err
		}
		fmt.Fprint(out, jp.execute(doc))
	} else if gf.output == "yaml" || gf.output == "json" {
		if err := printObjects(out, all, gf.output, len(reqs) == 1 && len(reqs[0].names) == 1); err != nil {
			return err
		}
	}
	if shown == 0 && failed == 0 && !gf.watch && jp == nil && gf.output != "yaml" && gf.output != "json" {
		if gf.allNamespaces || (len(reqs) == 1 && !reqs[0].info.Namespaced) {
			fmt.Fprintln(errOut, "No resources found")
		} else {
			fmt.Fprintf(errOut, "No resources found in %s namespace.\n", ns)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of the requested objects were not found", failed)
	}
	if gf.watch {
		return watchAndPrint(cmd, gf, c, reqs[0], ns, lastListRV, widths)
	}
	return nil
}

// printObjects writes one object, or a v1 List of them, as YAML or JSON.
func printObjects(w io.Writer, objs []runtime.Object, format string, single bool) error {
	if single && len(objs) == 1 {
		data, err := api.Encode(objs[0], format)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	items := make([]json.RawMessage, 0, len(objs))
	for _, o := range objs {
		data, err := api.Encode(o, "json")
		if err != nil {
			return err
		}
		items = append(items, data)
	}
	list := map[string]any{"apiVersion": "v1", "kind": "List", "items": items, "metadata": map[string]any{"resourceVersion": ""}}
	data, err := json.MarshalIndent(list, "", "    ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return err
		}
	} else {
		data = append(data, '\n')
	}
	_, err = w.Write(data)
	return err
}

// watchAndPrint follows changes after rv and prints each as a row (or a
// document), until interrupted. It resumes after a broken stream, and
// relists when the version is too old.
func watchAndPrint(cmd *cobra.Command, gf *getFlags, c *client.Client, r getRequest, ns, rv string, widths []int) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := cmd.OutOrStdout()
	fieldSel := gf.fieldSel
	if len(r.names) == 1 {
		if fieldSel != "" {
			fieldSel += ","
		}
		fieldSel += "metadata.name=" + r.names[0]
	}
	for ctx.Err() == nil {
		stream, err := c.Raw().Watch(ctx, &skiffv1.WatchRequest{Ref: refFor(r.info, ns, ""), ResourceVersion: rv,
			LabelSelector: gf.selector, FieldSelector: fieldSel, AllowBookmarks: true})
		if err != nil {
			return cliError(err)
		}
		for {
			ev, err := stream.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if client.IsExpired(err) {
					rv = "" // start over with the current state
				} else if se := client.FromError(err); se.Reason() != client.ReasonUnavailable {
					return cliError(err)
				}
				time.Sleep(time.Second)
				break
			}
			obj, err := decodeTyped(r.info, ev.Object)
			if err != nil {
				return err
			}
			if m, ok := obj.(interface{ GetResourceVersion() string }); ok {
				rv = m.GetResourceVersion()
			}
			if ev.Type == string(client.Bookmark) {
				continue
			}
			switch gf.output {
			case "yaml", "json":
				if gf.output == "yaml" {
					fmt.Fprintln(out, "---")
				}
				if err := printObjects(out, []runtime.Object{obj}, gf.output, true); err != nil {
					return err
				}
			case "name":
				fmt.Fprintf(out, "%s/%s\n", kindDisplay(r.info.Singular, r.info.GVK.Group), obj.(interface{ GetName() string }).GetName())
			default:
				t := buildTable(r.info, []runtime.Object{obj}, printOptions{wide: gf.output == "wide", showLabels: gf.showLabels,
					withNamespace: gf.allNamespaces && r.info.Namespaced}, time.Now())
				if widths == nil {
					// Nothing was listed: this row sets the widths.
					widths = t.widths()
					if !gf.noHeaders {
						if err := (table{headers: t.headers, rows: [][]string{t.headers}}).writeRowsAligned(out, widths); err != nil {
							return err
						}
					}
				}
				if err := t.writeRowsAligned(out, widths); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func init() { rootCmd.AddCommand(newGetCmd()) }
