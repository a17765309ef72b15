//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves, as Kubernetes still does; describe and get show it.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

func newDescribeCmd() *cobra.Command {
	var (
		cf       cliFlags
		selector string
	)
	cmd := &cobra.Command{
		Use:   "describe KIND [NAME...] | describe KIND/NAME",
		Short: "Show an object in detail, with its events",
		Example: `  skiff describe pod web
  skiff describe deploy/web
  skiff describe nodes`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reqs, err := parseGetArgs(args)
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ns := c.Namespace
			if cf.allNamespaces {
				ns = ""
			}
			out := cmd.OutOrStdout()
			first, failed := true, 0
			for _, r := range reqs {
				ctx, cancel := cf.request(cmd.Context())
				var items [][]byte
				if len(r.names) > 0 {
					for _, name := range r.names {
						resp, err := c.Raw().Get(ctx, &skiffv1.GetRequest{Ref: refFor(r.info, ns, name)})
						if err != nil {
							failed++
							fmt.Fprintln(cmd.ErrOrStderr(), cliError(err))
							continue
						}
						items = append(items, resp.Object)
					}
				} else {
					resp, err := c.Raw().List(ctx, &skiffv1.ListRequest{Ref: refFor(r.info, ns, ""), LabelSelector: selector})
					if err != nil {
						cancel()
						return cliError(err)
					}
					items = resp.Items
				}
				for _, data := range items {
					if !first {
						fmt.Fprintln(out)
					}
					first = false
					if err := describeObject(cmd, c, &cf, r.info, data, out); err != nil {
						cancel()
						return err
					}
				}
				cancel()
			}
			if failed > 0 {
				return fmt.Errorf("%d of the requested objects were not found", failed)
			}
			return nil
		},
	}
	cf.register(cmd, true)
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "describe the objects matching this label selector")
	return cmd
}

// describeObject prints metadata the way kubectl does, then the object's
// spec and status as an indented tree, then its events.
func describeObject(cmd *cobra.Command, c *client.Client, cf *cliFlags, info api.KindInfo, data []byte, out io.Writer) error {
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	obj, err := decodeTyped(info, data)
	if err != nil {
		return err
	}
	m := obj.(metav1.Object)
	w := newTabWriter(out)
	if describeKind(w, obj, clientDescribeEnv(cmd, c, cf)) {
		if err := w.Flush(); err != nil {
			return err
		}
		describeEvents(cmd, c, cf, info, m, out)
		return nil
	}
	fmt.Fprintf(w, "Name:\t%s\n", m.GetName())
	if info.Namespaced {
		fmt.Fprintf(w, "Namespace:\t%s\n", m.GetNamespace())
	}
	fmt.Fprintf(w, "Labels:\t%s\n", multiline(m.GetLabels(), nil))
	fmt.Fprintf(w, "Annotations:\t%s\n", multiline(m.GetAnnotations(), map[string]bool{corev1.LastAppliedConfigAnnotation: true}))
	ts := m.GetCreationTimestamp()
	fmt.Fprintf(w, "CreationTimestamp:\t%s\n", ts.Time.Format(time.RFC1123Z))
	if dt := m.GetDeletionTimestamp(); dt != nil {
		fmt.Fprintf(w, "DeletionTimestamp:\t%s\n", dt.Time.Format(time.RFC1123Z))
	}
	if fs := m.GetFinalizers(); len(fs) > 0 {
		fmt.Fprintf(w, "Finalizers:\t[%s]\n", strings.Join(fs, " "))
	}
	if refs := m.GetOwnerReferences(); len(refs) > 0 {
		for i, r := range refs {
			label := "Controlled By:"
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(w, "%s\t%s/%s\n", label, r.Kind, r.Name)
		}
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		if k != "apiVersion" && k != "kind" && k != "metadata" {
			keys = append(keys, k)
		}
	}
	// spec first, then status, then the rest (data, rules, ...).
	sort.Slice(keys, func(i, j int) bool {
		return sectionRank(keys[i]) < sectionRank(keys[j]) || sectionRank(keys[i]) == sectionRank(keys[j]) && keys[i] < keys[j]
	})
	for _, k := range keys {
		if info.GVK.Kind == "Secret" && (k == "data" || k == "stringData") {
			describeSecretData(w, doc[k])
			continue
		}
		writeTree(w, title(k), doc[k], 0)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	describeEvents(cmd, c, cf, info, m, out)
	return nil
}

// clientDescribeEnv looks up what a describer needs through the API; a
// failed lookup shows as missing, never as an error of describe.
func clientDescribeEnv(cmd *cobra.Command, c *client.Client, cf *cliFlags) describeEnv {
	list := func(resource, ns, fieldSel string, into func([]byte)) {
		info, err := api.ResolveResource(resource)
		if err != nil {
			return
		}
		ctx, cancel := cf.request(cmd.Context())
		defer cancel()
		resp, err := c.Raw().List(ctx, &skiffv1.ListRequest{Ref: refFor(info, ns, ""), FieldSelector: fieldSel})
		if err != nil {
			return
		}
		for _, it := range resp.Items {
			into(it)
		}
	}
	return describeEnv{
		replicaSets: func(ns string) []appsv1.ReplicaSet {
			var out []appsv1.ReplicaSet
			list("replicasets", ns, "", func(b []byte) {
				var rs appsv1.ReplicaSet
				if json.Unmarshal(b, &rs) == nil {
					out = append(out, rs)
				}
			})
			return out
		},
		endpoints: func(ns, name string) *corev1.Endpoints {
			var found *corev1.Endpoints
			list("endpoints", ns, "metadata.name="+name, func(b []byte) {
				var ep corev1.Endpoints
				if json.Unmarshal(b, &ep) == nil && ep.Name == name {
					found = &ep
				}
			})
			return found
		},
		nodePods: func(node string) []corev1.Pod {
			var out []corev1.Pod
			list("pods", "", "spec.nodeName="+node, func(b []byte) {
				var p corev1.Pod
				if json.Unmarshal(b, &p) == nil && p.Spec.NodeName == node {
					out = append(out, p)
				}
			})
			return out
		},
	}
}

func sectionRank(k string) int {
	switch k {
	case "spec":
		return 0
	case "status":
		return 1
	}
	return 2
}

func multiline(m map[string]string, skip map[string]bool) string {
	return multilineSep(m, skip, "=")
}

// multilineSep lists m's entries but skip, sorted, one "key<sep>value" a
// line continued by a tab (describe's column), or <none>.
func multilineSep(m map[string]string, skip map[string]bool, sep string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !skip[k] {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "<none>"
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + sep + m[k]
	}
	return strings.Join(lines, "\n\t")
}

// title turns a JSON field name into kubectl describe's words:
// nodeName -> Node Name.
func title(k string) string {
	var b strings.Builder
	for i, r := range k {
		if i == 0 {
			b.WriteRune(unicode.ToUpper(r))
			continue
		}
		if unicode.IsUpper(r) && i > 0 && !unicode.IsUpper(rune(k[i-1])) {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func scalar(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return fmt.Sprintf("%v", t)
	case bool:
		return fmt.Sprintf("%v", t)
	case nil:
		return "<none>"
	}
	return fmt.Sprintf("%v", v)
}

// writeTree prints a JSON value as "Key:  value" lines, nested values
// indented by two spaces, list items numbered by their name when they have
// one.
func writeTree(w io.Writer, key string, v any, depth int) {
	pad := strings.Repeat("  ", depth)
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			fmt.Fprintf(w, "%s%s:\t<none>\n", pad, key)
			return
		}
		fmt.Fprintf(w, "%s%s:\n", pad, key)
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			writeTree(w, title(k), t[k], depth+1)
		}
	case []any:
		if len(t) == 0 {
			fmt.Fprintf(w, "%s%s:\t<none>\n", pad, key)
			return
		}
		allScalar := true
		for _, e := range t {
			switch e.(type) {
			case map[string]any, []any:
				allScalar = false
			}
		}
		if allScalar {
			parts := make([]string, len(t))
			for i, e := range t {
				parts[i] = scalar(e)
			}
			fmt.Fprintf(w, "%s%s:\t%s\n", pad, key, strings.Join(parts, ", "))
			return
		}
		fmt.Fprintf(w, "%s%s:\n", pad, key)
		for i, e := range t {
			name := fmt.Sprintf("[%d]", i)
			if m, ok := e.(map[string]any); ok {
				if n, ok := m["name"].(string); ok && n != "" {
					name = n
				} else if n, ok := m["type"].(string); ok && n != "" {
					name = n
				}
			}
			writeTree(w, name, e, depth+1)
		}
	default:
		fmt.Fprintf(w, "%s%s:\t%s\n", pad, key, scalar(v))
	}
}

func describeSecretData(w io.Writer, v any) {
	fmt.Fprintln(w, "Data")
	fmt.Fprintln(w, "====")
	m, _ := v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, _ := m[k].(string)
		fmt.Fprintf(w, "%s:\t%d bytes\n", k, len(s)*3/4)
	}
}

// describeEvents prints the events whose involvedObject is the object.
func describeEvents(cmd *cobra.Command, c *client.Client, cf *cliFlags, info api.KindInfo, m metav1.Object, out io.Writer) {
	evInfo, err := api.ResolveResource("events")
	if err != nil {
		return
	}
	ctx, cancel := cf.request(cmd.Context())
	defer cancel()
	sel := "involvedObject.kind=" + info.GVK.Kind + ",involvedObject.name=" + m.GetName()
	resp, err := c.Raw().List(ctx, &skiffv1.ListRequest{Ref: refFor(evInfo, m.GetNamespace(), ""), FieldSelector: sel})
	if err != nil {
		fmt.Fprintf(out, "Events:  <unavailable: %v>\n", cliError(err))
		return
	}
	var evs []*corev1.Event
	for _, it := range resp.Items {
		ev := &corev1.Event{}
		if json.Unmarshal(it, ev) == nil && (ev.InvolvedObject.UID == "" || ev.InvolvedObject.UID == m.GetUID()) {
			evs = append(evs, ev)
		}
	}
	if len(evs) == 0 {
		fmt.Fprintln(out, "Events:  <none>")
		return
	}
	sort.Slice(evs, func(i, j int) bool { return eventTime(evs[i]).Before(eventTime(evs[j])) })
	fmt.Fprintln(out, "Events:")
	w := newTabWriter(out)
	defer w.Flush()
	fmt.Fprintln(w, "  Type\tReason\tAge\tFrom\tMessage")
	fmt.Fprintln(w, "  ----\t------\t----\t----\t-------")
	now := time.Now()
	for _, ev := range evs {
		from := ev.Source.Component
		if ev.Source.Host != "" {
			from += ", " + ev.Source.Host
		}
		if from == "" {
			from = ev.ReportingController
		}
		ageStr := age(now.Sub(eventTime(ev)))
		if ev.Count > 1 {
			ageStr = fmt.Sprintf("%s (x%d over %s)", ageStr, ev.Count, age(now.Sub(ev.FirstTimestamp.Time)))
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", ev.Type, ev.Reason, ageStr, from, strings.TrimSpace(ev.Message))
	}
}

func eventTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}

func init() { rootCmd.AddCommand(newDescribeCmd()) }
