package api

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// ManifestExtensions are the file name extensions `skiff apply -f DIR`
// reads, as kubectl does.
var ManifestExtensions = []string{".json", ".yaml", ".yml"}

// IsManifestFile reports whether a file in a directory given to -f is a
// manifest, by its extension.
func IsManifestFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range ManifestExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// SetNamespace puts a namespaced object in namespace, the one given on the
// command line (skiff -n), as kubectl does: an object without a namespace
// takes it, an object already in it is fine, an object in another one is
// an error (applying it elsewhere than it says would surprise). Cluster-
// scoped objects are left alone. An empty namespace changes nothing.
func (o *Object) SetNamespace(namespace string) error {
	if namespace == "" || !o.Kind.Namespaced {
		return nil
	}
	m, err := metaOf(o.Obj)
	if err != nil {
		return err
	}
	switch m.GetNamespace() {
	case "":
		m.SetNamespace(namespace)
		return nil
	case namespace:
		return nil
	}
	return &FileErrors{File: o.File, Errors: []*FieldError{{
		File: o.File, Line: o.LineOf("metadata.namespace"), Path: o.pathPrefix + "metadata.namespace",
		Msg: fmt.Sprintf("the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation.",
			m.GetNamespace(), namespace, m.GetNamespace()),
		Doc: o.Doc, DocLine: o.DocLine, MultiDoc: o.multiDoc, Err: ErrInvalid,
	}}}
}

// Load is what `skiff apply -f` does with a file before sending anything:
// Decode it strictly, put every object in namespace (see SetNamespace; ""
// keeps the manifest's own, or "default"), Default it, and Validate it with
// v. Every problem of every document is returned together as one
// *FileErrors, each on its line; if there is any, no object is returned, so
// a file with one bad document applies nothing.
func (v Validator) Load(filename string, data []byte, namespace string) ([]Object, error) {
	// Documents that decode are validated even when others do not, so
	// that one run reports every problem of the file.
	objs, decodeErrs := decodeFile(filename, data)
	all := &FileErrors{File: filename}
	if decodeErrs != nil {
		all.Errors = append(all.Errors, decodeErrs.Errors...)
	}
	add := func(err error) {
		var fe *FileErrors
		if errors.As(err, &fe) {
			all.Errors = append(all.Errors, fe.Errors...)
		}
	}
	for i := range objs {
		o := &objs[i]
		if err := o.SetNamespace(namespace); err != nil {
			add(err)
			continue
		}
		Default(o.Obj)
		add(o.Errors(v.ValidateObject(o.Obj)))
	}
	if len(all.Errors) > 0 {
		sort.SliceStable(all.Errors, func(i, j int) bool {
			a, b := all.Errors[i], all.Errors[j]
			if a.Doc != b.Doc {
				return a.Doc < b.Doc
			}
			return a.Line < b.Line
		})
		return nil, all
	}
	return objs, nil
}

// Load decodes, defaults and validates a file with the default Validator,
// keeping each object's own namespace; see Validator.Load.
func Load(filename string, data []byte) ([]Object, error) {
	return DefaultValidator().Load(filename, data, "")
}
