package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Object is one decoded manifest object: the typed Kubernetes object and
// where it came from, so that later errors (validation, admission) can be
// placed on the line of the field they are about.
type Object struct {
	// Obj is the typed object (*corev1.Pod, *appsv1.Deployment, ...), with
	// apiVersion and kind set.
	Obj runtime.Object
	// Kind describes Obj's kind.
	Kind KindInfo
	// File is the name given to Decode; Doc the 1-based document index in
	// it; DocLine the line where the document starts; Line the line of the
	// object's first field (for an item of a List, of the item).
	File    string
	Doc     int
	DocLine int
	Line    int

	// lines maps field paths ("spec.replicas", "metadata.labels[app]")
	// to the line of their key in the manifest.
	lines map[string]int
	// pathPrefix is "items[3]." for an object that is an item of a List.
	pathPrefix string
	multiDoc   bool
}

// LineOf returns the manifest line of the field at path (in field.Path
// syntax), or of its nearest ancestor present in the manifest, or of the
// object itself.
func (o *Object) LineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := o.lines[p]; ok {
			return l
		}
	}
	return o.Line
}

// parentPath drops the last element of a field path: a.b[0] -> a.b -> a.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
		return ""
	}
	depth := 0
	for i := len(p) - 1; i >= 0; i-- {
		switch p[i] {
		case ']':
			depth++
		case '[':
			depth--
		case '.':
			if depth == 0 {
				return p[:i]
			}
		}
	}
	return ""
}

// Name is "namespace/name" or "name", for messages.
func (o *Object) Name() string {
	m, err := metaOf(o.Obj)
	if err != nil {
		return ""
	}
	if m.GetNamespace() != "" {
		return m.GetNamespace() + "/" + m.GetName()
	}
	return m.GetName()
}

// Decode reads every object of a YAML or JSON file strictly.
//
// YAML may hold several documents separated by "---"; empty documents and
// comment-only documents are skipped. JSON may hold one or more objects one
// after the other. A document of kind List (apiVersion v1) contributes its
// items. Every problem in the file is collected — unknown or misplaced
// fields (with a hint when a known field is close), values of the wrong
// type, missing or unknown apiVersion/kind, syntax errors — and returned as
// a *FileErrors; if there is any, no object is returned, so that a file
// with one bad document applies nothing.
//
// Decode does not default or validate; see Default and Validate, and
// Object.Errors to place their errors in the file.
func Decode(filename string, data []byte) ([]Object, error) {
	objs, errs := decodeFile(filename, data)
	if errs != nil {
		return nil, errs
	}
	return objs, nil
}

// decodeFile returns the objects that decoded cleanly and, if any document
// did not, the errors of the file.
func decodeFile(filename string, data []byte) ([]Object, *FileErrors) {
	d := &decoder{file: filename}
	docs, err := splitDocuments(filename, data)
	if err != nil {
		var fe *FileErrors
		if !errors.As(err, &fe) {
			fe = &FileErrors{File: filename, Errors: []*FieldError{{File: filename, Msg: err.Error(), Err: ErrSyntax}}}
		}
		return nil, fe
	}
	nonEmpty := 0
	for _, doc := range docs {
		if doc.root != nil {
			nonEmpty++
		}
	}
	d.multiDoc = nonEmpty > 1
	for _, doc := range docs {
		if doc.root == nil {
			continue
		}
		d.doc++
		d.docLine = doc.line
		d.document(doc.root)
	}
	if len(d.errs) > 0 {
		return d.objs, &FileErrors{File: filename, Errors: d.errs}
	}
	return d.objs, nil
}

type document struct {
	root *yaml.Node // nil for an empty document
	line int        // where the document starts
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// splitDocuments parses data into YAML node trees, one per document. JSON
// is parsed by the same YAML parser (JSON is YAML's flow syntax), after
// being cut into top-level values by encoding/json so that a stream of JSON
// objects works and so that JSON syntax errors get JSON's own messages.
func splitDocuments(file string, data []byte) ([]document, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return splitJSON(file, data)
	}
	var docs []document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, syntaxError(file, err, data)
		}
		docs = append(docs, document{root: docRoot(&n), line: n.Line})
	}
}

// syntaxError turns a YAML parser error into a FieldError on its line,
// with a hint for the classic mistake: a tab in the indentation.
func syntaxError(file string, err error, data []byte) error {
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if tabLine := firstIndentTab(data); tabLine > 0 && strings.Contains(msg, "cannot start any token") {
		line = tabLine
		msg += "; YAML indentation must use spaces, not tabs"
	}
	return &FileErrors{File: file, Errors: []*FieldError{{
		File: file, Line: line, Msg: "invalid YAML: " + msg, Err: ErrSyntax,
	}}}
}

// firstIndentTab is the 1-based line of the first line indented with a
// tab, or 0.
func firstIndentTab(data []byte) int {
	for i, l := range bytes.Split(data, []byte("\n")) {
		indent := l[:len(l)-len(bytes.TrimLeft(l, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 && len(bytes.TrimSpace(l)) > 0 {
			return i + 1
		}
	}
	return 0
}

// docRoot returns the content of a document node, or nil when the
// document is empty (nothing, or only comments, or a bare null).
func docRoot(n *yaml.Node) *yaml.Node {
	if n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
		return nil
	}
	root := n.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil
	}
	return root
}

func splitJSON(file string, data []byte) ([]document, error) {
	var docs []document
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := dec.InputOffset()
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			off := dec.InputOffset()
			var se *json.SyntaxError
			if errors.As(err, &se) {
				off = se.Offset
			}
			return nil, &FileErrors{File: file, Errors: []*FieldError{{
				File: file, Line: lineAt(data, int(off)), Msg: "invalid JSON: " + err.Error(), Err: ErrSyntax,
			}}}
		}
		// Skip the whitespace before the value so its line is right.
		for int(start) < len(data) && strings.ContainsRune(" \t\r\n", rune(data[start])) {
			start++
		}
		line := lineAt(data, int(start))
		// Valid JSON has no raw tabs inside strings, so tabs can become
		// spaces (YAML forbids tabs in some places JSON allows them).
		body := bytes.ReplaceAll(raw, []byte("\t"), []byte(" "))
		// Leading newlines make the YAML parser count lines from the
		// value's place in the file.
		src := append(bytes.Repeat([]byte("\n"), line-1), body...)
		var n yaml.Node
		if err := yaml.Unmarshal(src, &n); err != nil {
			return nil, syntaxError(file, err, nil)
		}
		docs = append(docs, document{root: docRoot(&n), line: line})
	}
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int) int {
	if off > len(data) {
		off = len(data)
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

type decoder struct {
	file     string
	doc      int
	docLine  int
	multiDoc bool
	errs     []*FieldError
	objs     []Object
}

func (d *decoder) errorf(line int, path string, sentinel error, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{
		File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...),
		Doc: d.doc, DocLine: d.docLine, MultiDoc: d.multiDoc, Err: sentinel,
	})
}

// document decodes one YAML document (or JSON value) into objects.
func (d *decoder) document(root *yaml.Node) {
	d.object(root, "")
}

// object decodes one object mapping; prefix is "items[i]." inside a List.
//
// itemOf, for an item of a typed list (PodList), is the list's apiVersion
// and item kind: the API server omits them from list items.
func (d *decoder) object(n *yaml.Node, prefix string, itemOf ...string) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, strings.TrimSuffix(prefix, "."), ErrWrongType,
			"expected an object with apiVersion and kind, got %s", describe(n))
		return
	}
	apiVersion, avNode := scalarField(n, "apiVersion")
	kind, kindNode := scalarField(n, "kind")
	if len(itemOf) == 2 && avNode == nil && kindNode == nil {
		apiVersion, kind = itemOf[0], itemOf[1]
		avNode, kindNode = n, n
	}
	if avNode == nil || kindNode == nil || apiVersion == "" || kind == "" {
		var missing []string
		if avNode == nil || apiVersion == "" {
			missing = append(missing, "apiVersion")
		}
		if kindNode == nil || kind == "" {
			missing = append(missing, "kind")
		}
		d.errorf(n.Line, strings.TrimSuffix(prefix, "."), ErrMissingKind,
			"%s not set; every object needs both (for example apiVersion: v1 and kind: Pod)%s",
			strings.Join(missing, " and "), kindGuess(n))
		return
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		d.errorf(avNode.Line, prefix+"apiVersion", ErrUnknownKind, "invalid apiVersion %q: %v", apiVersion, err)
		return
	}
	if gv.Group == "" && gv.Version == "v1" && kind == "List" {
		d.list(n, prefix, nil)
		return
	}
	// A typed list (PodList, DeploymentList), as the API returns lists.
	if item, ok := strings.CutSuffix(kind, "List"); ok {
		if _, err := KindFor(gv.WithKind(item)); err == nil {
			d.list(n, prefix, []string{apiVersion, item})
			return
		}
	}
	var obj runtime.Object
	var info KindInfo
	legacy, isLegacy := legacyKinds[gv.WithKind(kind)]
	if isLegacy {
		obj = legacy.new()
		info, err = KindFor(legacy.to)
	} else {
		info, err = KindFor(gv.WithKind(kind))
		if err == nil {
			obj = info.New()
		}
	}
	if err != nil {
		line := kindNode.Line
		d.errorf(line, prefix+"kind", ErrUnknownKind, "%s", strings.TrimPrefix(err.Error(), ErrUnknownKind.Error()+": "))
		return
	}
	w := &walker{d: d, lines: map[string]int{}, prefix: prefix}
	if isLegacy {
		w.newer = typeOfObject(info.New())
		w.newerAPIVersion = info.APIVersion()
	}
	before := len(d.errs)
	val := w.value(n, typeOfObject(obj), "", nil)
	if len(d.errs) > before {
		return
	}
	raw, err := json.Marshal(val)
	if err == nil {
		err = json.Unmarshal(raw, obj)
	}
	if err != nil {
		// The walk checks every value the JSON decoder would reject, so
		// this is a bug in the walk; still report it on the object.
		d.errorf(n.Line, strings.TrimSuffix(prefix, "."), ErrWrongType, "%v", err)
		return
	}
	if isLegacy {
		obj = legacy.convert(obj, w.lines)
	}
	obj.GetObjectKind().SetGroupVersionKind(info.GVK)
	d.objs = append(d.objs, Object{
		Obj: obj, Kind: info, File: d.file, Doc: d.doc, DocLine: d.docLine, Line: n.Line,
		lines: w.lines, pathPrefix: prefix, multiDoc: d.multiDoc,
	})
}

// list decodes a v1 List or a typed list: only apiVersion, kind, metadata
// and items. itemOf is the apiVersion and kind of a typed list's items.
func (d *decoder) list(n *yaml.Node, prefix string, itemOf []string) {
	for _, kv := range pairs(n) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "apiVersion", "kind", "metadata":
		case "items":
			v = deref(v)
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
				continue
			}
			if v.Kind != yaml.SequenceNode {
				d.errorf(v.Line, prefix+"items", ErrWrongType, "expected list, got %s", describe(v))
				continue
			}
			for i, item := range v.Content {
				d.object(item, fmt.Sprintf("%sitems[%d].", prefix, i), itemOf...)
			}
		default:
			d.errorf(k.Line, prefix+k.Value, ErrUnknownField, "%s", unknownFieldMsg(k.Value, []string{"apiVersion", "kind", "metadata", "items"}))
		}
	}
}

// kindGuess suggests a kind for a document without one, from the shape of
// its spec: containers at spec.containers look like a Pod, and so on.
func kindGuess(n *yaml.Node) string {
	spec := mapGet(n, "spec")
	if spec == nil {
		return ""
	}
	switch {
	case mapGet(spec, "containers") != nil:
		return "; this looks like a Pod (apiVersion: v1, kind: Pod)"
	case mapGet(spec, "template") != nil && mapGet(spec, "selector") != nil:
		return "; this looks like a Deployment (apiVersion: apps/v1, kind: Deployment)"
	case mapGet(spec, "ports") != nil:
		return "; this looks like a Service (apiVersion: v1, kind: Service)"
	}
	return ""
}

// scalarField returns the string value of key in mapping n and its node.
func scalarField(n *yaml.Node, key string) (string, *yaml.Node) {
	v := mapGet(n, key)
	if v == nil {
		return "", nil
	}
	if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		return "", v
	}
	return v.Value, v
}

func mapGet(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for _, kv := range pairs(n) {
		if kv[0].Value == key {
			return deref(kv[1])
		}
	}
	return nil
}

// deref follows aliases (*anchor) to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// pairs lists the key/value pairs of a mapping, expanding merge keys
// (<<: *anchor): merged pairs come first so that explicit keys win.
func pairs(n *yaml.Node) [][2]*yaml.Node {
	return pairsDepth(n, 0)
}

// maxMergeDepth bounds nested merge keys, which could otherwise refer to
// themselves.
const maxMergeDepth = 16

func pairsDepth(n *yaml.Node, depth int) [][2]*yaml.Node {
	var merged, own [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			v = deref(v)
			if depth >= maxMergeDepth {
				continue
			}
			switch v.Kind {
			case yaml.MappingNode:
				merged = append(merged, pairsDepth(v, depth+1)...)
			case yaml.SequenceNode:
				for _, m := range v.Content {
					if m = deref(m); m.Kind == yaml.MappingNode {
						merged = append(merged, pairsDepth(m, depth+1)...)
					}
				}
			}
			continue
		}
		own = append(own, [2]*yaml.Node{k, v})
	}
	if len(merged) == 0 {
		return own
	}
	ownKeys := map[string]bool{}
	for _, kv := range own {
		ownKeys[kv[0].Value] = true
	}
	var out [][2]*yaml.Node
	for _, kv := range merged {
		if !ownKeys[kv[0].Value] {
			out = append(out, kv)
		}
	}
	return append(out, own...)
}

// describe names a node's type and value for "expected X, got Y".
func describe(n *yaml.Node) string {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "object"
	case yaml.SequenceNode:
		return "list"
	}
	switch scalarType(n) {
	case "integer":
		return "integer " + n.Value
	case "number":
		return "number " + n.Value
	case "boolean":
		return "boolean " + n.Value
	case "null":
		return "null"
	}
	return fmt.Sprintf("string %q", n.Value)
}

// yaml11Bools are the plain scalars YAML 1.1 (and so kubectl, whose YAML
// library follows 1.1) reads as booleans though YAML 1.2 reads them as
// strings.
var yaml11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"n": false, "N": false, "no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

// scalarType is the JSON type a scalar has when kubectl converts YAML to
// JSON: "string", "integer", "number", "boolean" or "null".
func scalarType(n *yaml.Node) string {
	switch n.ShortTag() {
	case "!!int":
		return "integer"
	case "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	case "!!null":
		return "null"
	case "!!str":
		if n.Style == 0 {
			if _, ok := yaml11Bools[n.Value]; ok {
				return "boolean"
			}
		}
	}
	return "string"
}
