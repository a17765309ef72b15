package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// cliFlags are the connection flags every client command has, as kubectl's.
type cliFlags struct {
	kubeconfig    string
	context       string
	namespace     string
	allNamespaces bool
	timeout       time.Duration
}

func (f *cliFlags) register(cmd *cobra.Command, allNamespaces bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "client config file (default $SKIFFCONFIG or ~/.skiff/config)")
	fl.StringVar(&f.kubeconfig, "config", "", "alias of --kubeconfig")
	fl.StringVar(&f.context, "context", "", "context of the client config to use")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace (default: the context's, else default)")
	fl.DurationVar(&f.timeout, "request-timeout", 30*time.Second, "time limit of each request")
	if allNamespaces {
		fl.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "list across all namespaces")
	}
}

func (f *cliFlags) client() (*client.Client, error) {
	c, err := client.New(client.Options{ConfigPath: f.kubeconfig, Context: f.context, Namespace: f.namespace})
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w\nhint: start a server (skiff up, skiff apiserver) to get an admin config, or point $%s / --kubeconfig at one",
			err, client.ConfigEnv)
	}
	return c, err
}

// request is a context bounded by --request-timeout.
func (f *cliFlags) request(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	return context.WithTimeout(parent, f.timeout)
}

// fileFlags are -f and -R.
type fileFlags struct {
	files     []string
	recursive bool
}

func (f *fileFlags) register(cmd *cobra.Command, what string) {
	cmd.Flags().StringSliceVarP(&f.files, "filename", "f", nil, "file, directory or - (stdin) of manifests to "+what)
	cmd.Flags().BoolVarP(&f.recursive, "recursive", "R", false, "process directories given with -f recursively")
}

// manifestFiles expands -f arguments: files as given, directories into their
// .yaml, .yml and .json files (recursively with -R), "-" as stdin.
func (f *fileFlags) manifestFiles() ([]string, error) {
	var out []string
	for _, p := range f.files {
		if p == "-" {
			out = append(out, p)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("the path %q does not exist", p)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && !f.recursive {
					return filepath.SkipDir
				}
				return nil
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("must give at least one manifest with -f (a file, a directory, or - for stdin)")
	}
	return out, nil
}

// decodeManifests reads and strictly decodes every file. Any error in any
// document is reported and nothing is returned, so nothing is applied.
func decodeManifests(ff *fileFlags, stdin io.Reader) ([]api.Object, error) {
	files, err := ff.manifestFiles()
	if err != nil {
		return nil, err
	}
	var objs []api.Object
	var errs []error
	for _, name := range files {
		var data []byte
		if name == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		got, err := api.Decode(name, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, got...)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w\nnothing was applied", errors.Join(errs...))
	}
	if len(objs) == 0 {
		return nil, errors.New("no objects passed to apply")
	}
	return objs, nil
}

// target is where one decoded object goes: its resource reference and JSON.
type target struct {
	obj  api.Object
	ref  *skiffv1.ResourceRef
	data []byte
	// display is kubectl's kind.group/name.
	display string
}

// targets places decoded objects in namespaces: an object without one
// goes to -n or the context's; one whose namespace differs from an explicit
// -n is an error, as in kubectl.
func targets(objs []api.Object, explicitNS, defaultNS string) ([]target, error) {
	var out []target
	for _, o := range objs {
		info := o.Kind
		m, err := metaOf(o.Obj)
		if err != nil {
			return nil, err
		}
		ns := ""
		if info.Namespaced {
			ns = m.GetNamespace()
			switch {
			case ns == "" && explicitNS != "":
				ns = explicitNS
			case ns == "":
				ns = defaultNS
			case explicitNS != "" && ns != explicitNS:
				return nil, fmt.Errorf("the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation",
					ns, explicitNS, ns)
			}
			m.SetNamespace(ns)
		}
		data, err := json.Marshal(o.Obj)
		if err != nil {
			return nil, err
		}
		out = append(out, target{obj: o, data: data,
			ref: &skiffv1.ResourceRef{Group: info.GVK.Group, Version: info.GVK.Version, Resource: info.Resource,
				Namespace: ns, Name: m.GetName()},
			display: kindDisplay(info.Singular, info.GVK.Group) + "/" + m.GetName()})
	}
	return out, nil
}

func kindDisplay(singular, group string) string {
	if group == "" {
		return singular
	}
	return singular + "." + group
}

// cliError renders a client error as kubectl does for server errors.
func cliError(err error) error {
	se := client.FromError(err)
	if se == nil {
		return nil
	}
	switch se.Reason() {
	case client.ReasonUnavailable, client.ReasonTimeout:
		if namesNode(se.Error()) {
			// The API server answered: it is a node's agent (for logs,
			// exec, port-forward, top, images) that could not be reached.
			return serverError{se}
		}
		return fmt.Errorf("unable to reach the server: %s", se.Error())
	case client.ReasonInternalError, "":
		return se
	}
	return serverError{se}
}

// nodeInMessage matches the "node NAME" the API server puts in the errors
// of calls it relays to an agent. gRPC's own transport errors (the API
// server down) never say it.
var nodeInMessage = regexp.MustCompile(`(^|[^\w-])node [\w][\w.-]*`)

// namesNode reports whether an error message names a node.
func namesNode(msg string) bool { return nodeInMessage.MatchString(msg) }

// serverError prints as kubectl prints a server's refusal:
// "Error from server (NotFound): pods "x" not found".
type serverError struct{ se *client.StatusError }

func (e serverError) Error() string {
	return "Error from server (" + e.se.Reason() + "): " + e.se.Error()
}

func (e serverError) Unwrap() error { return e.se }

// runAll runs fn on every target, printing successes on out; the errors are
// printed on errOut and turn into a non-zero exit.
func runAll(ts []target, out, errOut io.Writer, fn func(t target) (string, error)) error {
	failed := 0
	for _, t := range ts {
		msg, err := fn(t)
		if err != nil {
			failed++
			fmt.Fprintln(errOut, cliError(err))
			continue
		}
		fmt.Fprintln(out, msg)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d objects failed", failed, len(ts))
	}
	return nil
}

func metaOf(obj runtime.Object) (interface {
	GetName() string
	GetNamespace() string
	SetNamespace(string)
}, error) {
	m, ok := obj.(interface {
		GetName() string
		GetNamespace() string
		SetNamespace(string)
	})
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func timeAfter(ms int) <-chan time.Time { return time.After(time.Duration(ms) * time.Millisecond) }
