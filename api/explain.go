package api

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FieldDoc documents a kind or one of its fields, for `skiff explain`, from
// the field documentation k8s.io/api generates into the types themselves
// (their SwaggerDoc methods): the same text kubectl explain shows.
type FieldDoc struct {
	// Kind is the kind explained.
	Kind KindInfo
	// Path is the field path inside the kind ("spec.containers"); empty for
	// the kind itself.
	Path string
	// Name is the field's JSON name ("containers"); empty for the kind.
	Name string
	// Type is the field's type as kubectl prints it: string, integer,
	// boolean, number, Quantity, IntOrString, a type name (PodSpec), or
	// []X and map[string]X of those.
	Type string
	// Description is the field's documentation, or the type's for the kind.
	Description string
	// Required reports a field Kubernetes requires.
	Required bool
	// Fields are the fields of an object type, sorted by name; with
	// recursive explanation, each with its own Fields.
	Fields []FieldDoc
}

// Explain documents a kind or field named as `kubectl explain` takes it:
// a resource name, then a field path ("pods", "deploy.spec.strategy",
// "svc.spec.ports.targetPort"). With recursive, every field below is
// listed, depth first.
func Explain(path string, recursive bool) (*FieldDoc, error) {
	parts := strings.Split(strings.TrimSpace(path), ".")
	info, err := ResolveResource(parts[0])
	if err != nil {
		return nil, err
	}
	return ExplainField(info, parts[1:], recursive)
}

// ExplainField documents the field at fieldPath (nil for the kind itself)
// of kind info.
func ExplainField(info KindInfo, fieldPath []string, recursive bool) (*FieldDoc, error) {
	t := reflect.TypeOf(info.New()).Elem()
	doc := &FieldDoc{Kind: info, Type: info.GVK.Kind, Description: typeDoc(t)}
	var walked []string
	for _, name := range fieldPath {
		if name == "" {
			continue
		}
		st := structOf(t)
		if st == nil {
			return nil, fmt.Errorf("field %q does not exist: %s is a %s, which has no fields", name, strings.Join(walked, "."), doc.Type)
		}
		var found *fieldInfo
		fields := docFields(st)
		for i := range fields {
			if fields[i].name == name {
				found = &fields[i]
				break
			}
		}
		if found == nil {
			var names []string
			for _, f := range fields {
				names = append(names, f.name)
			}
			where := info.Singular
			if len(walked) > 0 {
				where += "." + strings.Join(walked, ".")
			}
			msg := fmt.Sprintf("field %q does not exist in %s", name, where)
			if best := closestNames(name, names, 2); len(best) > 0 {
				msg += fmt.Sprintf("; did you mean %s?", quoteJoin(best))
			}
			return nil, fmt.Errorf("%s", msg)
		}
		walked = append(walked, found.name)
		t = found.t
		doc = &FieldDoc{Kind: info, Path: strings.Join(walked, "."), Name: found.name,
			Type: typeName(found.t), Description: found.doc, Required: found.required}
	}
	if st := structOf(t); st != nil {
		doc.Fields = explainFields(st, doc.Path, info, recursive, map[reflect.Type]bool{st: true})
	}
	return doc, nil
}

func explainFields(t reflect.Type, path string, info KindInfo, recursive bool, onPath map[reflect.Type]bool) []FieldDoc {
	var out []FieldDoc
	for _, f := range docFields(t) {
		fd := FieldDoc{Kind: info, Path: join(path, f.name), Name: f.name, Type: typeName(f.t),
			Description: f.doc, Required: f.required}
		if st := structOf(f.t); recursive && st != nil && !onPath[st] {
			onPath[st] = true
			fd.Fields = explainFields(st, fd.Path, info, true, onPath)
			delete(onPath, st)
		}
		out = append(out, fd)
	}
	// kubectl lists fields alphabetically.
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type fieldInfo struct {
	name     string
	t        reflect.Type
	doc      string
	required bool
}

type swaggerDoc interface{ SwaggerDoc() map[string]string }

// docFields lists a struct's JSON fields with their documentation, inline
// embedded structs flattened, in declaration order.
func docFields(t reflect.Type) []fieldInfo {
	var docs map[string]string
	if d, ok := reflect.New(t).Elem().Interface().(swaggerDoc); ok {
		docs = d.SwaggerDoc()
	}
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if sf.Anonymous && (name == "" || strings.Contains(","+opts+",", ",inline,")) {
			if et := structOf(sf.Type); et != nil {
				out = append(out, docFields(et)...)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, fieldInfo{
			name: name, t: sf.Type, doc: docs[name],
			// Kubernetes marks optional fields omitempty (or pointers);
			// the rest are required.
			required: !strings.Contains(","+opts+",", ",omitempty,") && !strings.Contains(","+opts+",", ",omitzero,") &&
				sf.Type.Kind() != reflect.Pointer,
		})
	}
	return out
}

func typeDoc(t reflect.Type) string {
	if d, ok := reflect.New(t).Elem().Interface().(swaggerDoc); ok {
		return d.SwaggerDoc()[""]
	}
	return ""
}

// structOf is the documented struct type under t (through pointers and
// lists), or nil for scalars and opaque types.
func structOf(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if elemStruct(t) == nil || t == reflect.TypeOf(metav1.FieldsV1{}) {
		return nil
	}
	return t
}

// typeName renders a type as kubectl explain does.
func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType, microTimeType, durationType, byteSliceType:
		return "string"
	case quantityType:
		return "Quantity"
	case intOrStringType:
		return "IntOrString"
	case rawExtType, reflect.TypeOf(metav1.FieldsV1{}):
		return "Object"
	}
	switch t.Kind() {
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Map:
		return "map[string]" + typeName(t.Elem())
	case reflect.Struct:
		return t.Name()
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Interface:
		return "Object"
	}
	return "integer"
}

// Format renders the explanation as kubectl explain does: kind and
// version, the field and its description, then its fields (with their
// descriptions, or as an indented tree when explained recursively).
func (d *FieldDoc) Format(recursive bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "KIND:       %s\nVERSION:    %s\n\n", d.Kind.GVK.Kind, d.Kind.APIVersion())
	if d.Name != "" {
		fmt.Fprintf(&b, "FIELD: %s <%s>%s\n\n", d.Name, d.Type, requiredMark(d.Required))
	}
	if d.Description != "" {
		b.WriteString("DESCRIPTION:\n")
		for _, l := range wrap(d.Description, 76) {
			b.WriteString("    " + l + "\n")
		}
		b.WriteString("\n")
	}
	if len(d.Fields) == 0 {
		return b.String()
	}
	b.WriteString("FIELDS:\n")
	if recursive {
		writeTree(&b, d.Fields, 1)
		return b.String()
	}
	for _, f := range d.Fields {
		fmt.Fprintf(&b, "  %s\t<%s>%s\n", f.Name, f.Type, requiredMark(f.Required))
		for _, l := range wrap(f.Description, 74) {
			b.WriteString("    " + l + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func writeTree(b *strings.Builder, fields []FieldDoc, depth int) {
	for _, f := range fields {
		fmt.Fprintf(b, "%s%s\t<%s>%s\n", strings.Repeat("  ", depth), f.Name, f.Type, requiredMark(f.Required))
		writeTree(b, f.Fields, depth+1)
	}
}

func requiredMark(r bool) string {
	if r {
		return " -required-"
	}
	return ""
}

// wrap splits text into lines of at most width runes, at spaces, keeping
// the text's own line breaks.
func wrap(text string, width int) []string {
	var out []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, w := range strings.Fields(para) {
			if line != "" && len(line)+1+len(w) > width {
				out = append(out, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		out = append(out, line)
	}
	return out
}
