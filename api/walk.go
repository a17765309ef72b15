package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The walker checks a YAML node tree against the Go type it will be decoded
// into, the way Kubernetes' strict decoding does (unknown fields, duplicate
// fields, wrong JSON types), but keeping the YAML node's line for every
// problem and reporting all of them rather than the first. It also builds
// the JSON-shaped value (maps, slices, scalars) that encoding/json then
// decodes into the typed object, with the conversions kubectl's YAML to JSON
// step makes (YAML 1.1 booleans, octal 0644, integer map keys as strings).

var (
	timeType        = reflect.TypeOf(metav1.Time{})
	microTimeType   = reflect.TypeOf(metav1.MicroTime{})
	durationType    = reflect.TypeOf(metav1.Duration{})
	quantityType    = reflect.TypeOf(resource.Quantity{})
	intOrStringType = reflect.TypeOf(intstr.IntOrString{})
	rawExtType      = reflect.TypeOf(runtime.RawExtension{})
	unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	byteSliceType   = reflect.TypeOf([]byte(nil))
)

type walker struct {
	d      *decoder
	lines  map[string]int
	prefix string
	// active holds the anchors being expanded on the current path: an
	// alias to one of them is a cycle. visits counts the nodes walked
	// through aliases, which a few anchors can multiply without bound.
	active map[*yaml.Node]bool
	visits int
	// exhausted is set once the visit budget is spent and reported.
	exhausted bool
	// newer is set when decoding an older API version: the served
	// version's type and apiVersion, to suggest switching when a field
	// exists only there.
	newer           reflect.Type
	newerAPIVersion string
}

// maxVisits bounds the nodes one document may expand to through aliases;
// what is written out in full is bounded by the input's size already.
const maxVisits = 100000

// enter follows an alias and accounts for the visit. It returns the node
// to walk and a function to call when done, or ok=false (already reported)
// if the node must not be walked.
func (w *walker) enter(n *yaml.Node, path string) (target *yaml.Node, leave func(), ok bool) {
	if len(w.active) > 0 || n.Kind == yaml.AliasNode {
		w.visits++
	}
	if w.visits > maxVisits {
		if !w.exhausted {
			w.exhausted = true
			w.errorf(n, path, ErrSyntax, "document expands to more than %d values through aliases", maxVisits)
		}
		return nil, nil, false
	}
	if n.Kind != yaml.AliasNode {
		return n, func() {}, true
	}
	target = deref(n)
	if w.active == nil {
		w.active = map[*yaml.Node]bool{}
	}
	if w.active[target] {
		w.errorf(n, path, ErrSyntax, "alias *%s refers to a value that contains it", n.Value)
		return nil, nil, false
	}
	w.active[target] = true
	return target, func() { delete(w.active, target) }, true
}

// ancestor is an enclosing struct, for "this field belongs one level up"
// hints.
type ancestor struct {
	t    reflect.Type
	path string
}

func typeOfObject(obj runtime.Object) reflect.Type {
	return reflect.TypeOf(obj).Elem()
}

func (w *walker) errorf(n *yaml.Node, path string, sentinel error, format string, args ...any) {
	w.d.errorf(n.Line, w.prefix+path, sentinel, format, args...)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// value checks n against t and returns its JSON-shaped value. Errors are
// recorded on the decoder; the returned value is then meaningless.
func (w *walker) value(n *yaml.Node, t reflect.Type, path string, anc []ancestor) any {
	n, leave, ok := w.enter(n, path)
	if !ok {
		return nil
	}
	defer leave()
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType, microTimeType:
		return w.timeValue(n, path)
	case durationType:
		s, ok := w.stringScalar(n, path, "a duration such as 30s")
		if ok {
			if _, err := time.ParseDuration(s); err != nil {
				w.errorf(n, path, ErrWrongType, "invalid duration %q: %v", s, err)
			}
		}
		return s
	case quantityType:
		return w.quantityValue(n, path)
	case intOrStringType:
		return w.intOrStringValue(n, path)
	case rawExtType:
		return w.anyValue(n, path)
	case byteSliceType:
		s, ok := w.stringScalar(n, path, "a base64 string")
		if ok {
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				w.errorf(n, path, ErrWrongType, "invalid base64 data: %v", err)
			}
		}
		return s
	}
	if t.Kind() != reflect.Struct && t.Kind() != reflect.Map && t.Kind() != reflect.Slice &&
		reflect.PointerTo(t).Implements(unmarshalerType) {
		// A type with its own JSON form we do not know: let it decide.
		return w.anyValue(n, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		if reflect.PointerTo(t).Implements(unmarshalerType) && len(fieldsOf(t).byName) == 0 {
			return w.anyValue(n, path)
		}
		return w.structValue(n, t, path, anc)
	case reflect.Map:
		return w.mapValue(n, t, path, anc)
	case reflect.Slice:
		return w.sliceValue(n, t, path, anc)
	case reflect.Interface:
		return w.anyValue(n, path)
	case reflect.String:
		s, _ := w.stringScalar(n, path, "")
		return s
	case reflect.Bool:
		return w.boolValue(n, path)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return w.intValue(n, t, path)
	case reflect.Float32, reflect.Float64:
		if n.Kind == yaml.ScalarNode {
			if st := scalarType(n); st == "integer" || st == "number" {
				f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
				if err == nil {
					return f
				}
				if i, ok := parseYAMLInt(n.Value); ok {
					return float64(i)
				}
			}
		}
		w.errorf(n, path, ErrWrongType, "expected number, got %s", describe(n))
		return nil
	}
	return w.anyValue(n, path)
}

func (w *walker) structValue(n *yaml.Node, t reflect.Type, path string, anc []ancestor) any {
	if n.Kind != yaml.MappingNode {
		w.errorf(n, path, ErrWrongType, "expected object, got %s", describe(n))
		return nil
	}
	fields := fieldsOf(t)
	out := map[string]any{}
	seen := map[string]int{}
	for _, kv := range pairs(n) {
		k, v := kv[0], kv[1]
		name := k.Value
		fpath := join(path, name)
		if first, dup := seen[name]; dup {
			w.errorf(k, fpath, ErrDuplicateField, "duplicate field %q (first given at line %d)", name, first)
			continue
		}
		seen[name] = k.Line
		ft, ok := fields.byName[name]
		if !ok || k.Kind != yaml.ScalarNode {
			w.errorf(k, fpath, ErrUnknownField, "%s", w.unknownFieldHint(name, t, fields, path, anc))
			continue
		}
		w.lines[fpath] = k.Line
		val := w.value(v, ft, fpath, append(anc, ancestor{t, path}))
		if val != nil {
			out[name] = val
		}
	}
	return out
}

func (w *walker) unknownFieldHint(name string, t reflect.Type, fields *structFields, path string, anc []ancestor) string {
	msg := unknownFieldMsg(name, fields.names)
	if strings.Contains(msg, "did you mean") {
		return msg
	}
	if w.newer != nil && typeHasPath(w.newer, join(path, name)) {
		return msg + fmt.Sprintf("; it is a field of apiVersion %s", w.newerAPIVersion)
	}
	// Misplaced one or two levels too deep: the field belongs to an
	// enclosing object.
	for i := len(anc) - 1; i >= 0 && i >= len(anc)-3; i-- {
		if _, ok := fieldsOf(anc[i].t).byName[name]; ok {
			return msg + fmt.Sprintf("; %q is a field of %s, not of %s", name, orTop(anc[i].path), orTop(path))
		}
	}
	// Misplaced too high: the field exists a few levels below.
	if below := findBelow(t, name, 4); below != "" {
		return msg + fmt.Sprintf("; did you mean %s?", join(path, below))
	}
	return msg
}

func orTop(path string) string {
	if path == "" {
		return "the object's top level"
	}
	return path
}

// unknownFieldMsg says that name is unknown, suggesting the known field it
// most likely misspells.
func unknownFieldMsg(name string, known []string) string {
	msg := fmt.Sprintf("unknown field %q", name)
	if best := closestNames(name, known, 2); len(best) > 0 {
		return msg + fmt.Sprintf(", did you mean %s?", quoteJoin(best))
	}
	return msg
}

// typeHasPath reports whether a field path (list indexes and map keys
// ignored) names a field of t.
func typeHasPath(t reflect.Type, path string) bool {
	for _, seg := range strings.Split(path, ".") {
		if i := strings.IndexByte(seg, '['); i >= 0 {
			seg = seg[:i]
		}
		st := elemStruct(t)
		if st == nil {
			return false
		}
		ft, ok := fieldsOf(st).byName[seg]
		if !ok {
			return false
		}
		t = ft
	}
	return true
}

// findBelow searches struct types under t, breadth first to depth, for a
// field called name, and returns its path relative to t.
func findBelow(t reflect.Type, name string, depth int) string {
	type item struct {
		t    reflect.Type
		path string
	}
	level := []item{{t, ""}}
	seen := map[reflect.Type]bool{t: true}
	for d := 0; d < depth && len(level) > 0; d++ {
		var next []item
		for _, it := range level {
			f := fieldsOf(it.t)
			for _, fname := range f.names {
				ft := elemStruct(f.byName[fname])
				if ft == nil || seen[ft] {
					continue
				}
				seen[ft] = true
				p := join(it.path, fname)
				if isList(f.byName[fname]) {
					p += "[*]"
				}
				if _, ok := fieldsOf(ft).byName[name]; ok {
					return join(p, name)
				}
				next = append(next, item{ft, p})
			}
		}
		level = next
	}
	return ""
}

// isList reports whether a field holds a list (not []byte).
func isList(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Slice && t != byteSliceType
}

// elemStruct returns the struct type a field holds (directly, by pointer,
// or as list elements), or nil.
func elemStruct(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == timeType || t == microTimeType || t == quantityType ||
		t == intOrStringType || t == rawExtType || t == durationType {
		return nil
	}
	return t
}

func (w *walker) mapValue(n *yaml.Node, t reflect.Type, path string, anc []ancestor) any {
	if n.Kind != yaml.MappingNode {
		w.errorf(n, path, ErrWrongType, "expected object, got %s", describe(n))
		return nil
	}
	out := map[string]any{}
	seen := map[string]int{}
	for _, kv := range pairs(n) {
		k, v := deref(kv[0]), kv[1]
		if k.Kind != yaml.ScalarNode {
			w.errorf(k, path, ErrWrongType, "map keys must be strings, got %s", describe(k))
			continue
		}
		key := k.Value
		kpath := path + "[" + key + "]"
		if first, dup := seen[key]; dup {
			w.errorf(k, kpath, ErrDuplicateField, "duplicate key %q (first given at line %d)", key, first)
			continue
		}
		seen[key] = k.Line
		w.lines[kpath] = k.Line
		out[key] = w.value(v, t.Elem(), kpath, anc)
	}
	return out
}

func (w *walker) sliceValue(n *yaml.Node, t reflect.Type, path string, anc []ancestor) any {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.MappingNode {
			hint = "; start each item with \"- \""
		}
		w.errorf(n, path, ErrWrongType, "expected list, got %s%s", describe(n), hint)
		return nil
	}
	out := make([]any, len(n.Content))
	for i, item := range n.Content {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		w.lines[ipath] = item.Line
		out[i] = w.value(item, t.Elem(), ipath, anc)
	}
	return out
}

// stringScalar returns a string scalar's value. A number or boolean where a
// string is expected is an error, as it is for kubectl; the hint says to
// quote it.
func (w *walker) stringScalar(n *yaml.Node, path, what string) (string, bool) {
	expected := "string"
	if what != "" {
		expected = "string (" + what + ")"
	}
	if n.Kind != yaml.ScalarNode {
		w.errorf(n, path, ErrWrongType, "expected %s, got %s", expected, describe(n))
		return "", false
	}
	if st := scalarType(n); st != "string" {
		w.errorf(n, path, ErrWrongType, "expected %s, got %s; quote it: \"%s\"", expected, describe(n), n.Value)
		return "", false
	}
	return n.Value, true
}

func (w *walker) boolValue(n *yaml.Node, path string) any {
	if n.Kind == yaml.ScalarNode && scalarType(n) == "boolean" {
		if b, ok := yaml11Bools[n.Value]; ok {
			return b
		}
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err == nil {
			return b
		}
	}
	hint := ""
	if n.Kind == yaml.ScalarNode && n.Style != 0 {
		if _, err := strconv.ParseBool(n.Value); err == nil {
			hint = "; remove the quotes"
		}
	}
	w.errorf(n, path, ErrWrongType, "expected boolean, got %s%s", describe(n), hint)
	return nil
}

func (w *walker) intValue(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind == yaml.ScalarNode {
		switch scalarType(n) {
		case "integer":
			if i, ok := parseYAMLInt(n.Value); ok {
				if !fitsInt(i, t) {
					w.errorf(n, path, ErrWrongType, "integer %s out of range for %s", n.Value, t.Kind())
					return nil
				}
				return i
			}
		case "number":
			// 3.0 is an integer in JSON terms; 2.5 is not.
			if f, err := strconv.ParseFloat(n.Value, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				if !fitsInt(int64(f), t) {
					w.errorf(n, path, ErrWrongType, "integer %s out of range for %s", n.Value, t.Kind())
					return nil
				}
				return int64(f)
			}
		}
	}
	hint := ""
	if n.Kind == yaml.ScalarNode && n.Style != 0 {
		if _, ok := parseYAMLInt(n.Value); ok {
			hint = "; remove the quotes"
		}
	}
	w.errorf(n, path, ErrWrongType, "expected integer, got %s%s", describe(n), hint)
	return nil
}

func parseYAMLInt(s string) (int64, bool) {
	s = strings.ReplaceAll(s, "_", "")
	if strings.HasPrefix(s, "0o") || strings.HasPrefix(s, "0O") {
		s = "0" + s[2:]
	}
	i, err := strconv.ParseInt(s, 0, 64)
	return i, err == nil
}

func fitsInt(i int64, t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if i < 0 {
			return false
		}
		bits := t.Bits()
		return bits >= 64 || uint64(i) < 1<<uint(bits)
	}
	bits := t.Bits()
	if bits >= 64 {
		return true
	}
	lim := int64(1) << uint(bits-1)
	return i >= -lim && i < lim
}

func (w *walker) timeValue(n *yaml.Node, path string) any {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!str" || n.ShortTag() == "!!timestamp") {
		if _, err := time.Parse(time.RFC3339, n.Value); err != nil {
			w.errorf(n, path, ErrWrongType, "invalid time %q: want RFC 3339, like 2006-01-02T15:04:05Z", n.Value)
			return nil
		}
		return n.Value
	}
	w.errorf(n, path, ErrWrongType, "expected string (a time like 2006-01-02T15:04:05Z), got %s", describe(n))
	return nil
}

func (w *walker) quantityValue(n *yaml.Node, path string) any {
	if n.Kind == yaml.ScalarNode {
		switch scalarType(n) {
		case "string", "integer", "number":
			s := n.Value
			if scalarType(n) == "integer" {
				if i, ok := parseYAMLInt(s); ok {
					s = strconv.FormatInt(i, 10)
				}
			}
			if _, err := resource.ParseQuantity(s); err != nil {
				w.errorf(n, path, ErrWrongType, "invalid quantity %q: use a number with an optional suffix, like 100m, 0.5, 128Mi or 1G", n.Value)
				return nil
			}
			return s
		}
	}
	w.errorf(n, path, ErrWrongType, "expected quantity (string or number), got %s", describe(n))
	return nil
}

func (w *walker) intOrStringValue(n *yaml.Node, path string) any {
	if n.Kind == yaml.ScalarNode {
		switch scalarType(n) {
		case "integer":
			if i, ok := parseYAMLInt(n.Value); ok && i >= math.MinInt32 && i <= math.MaxInt32 {
				return i
			}
			w.errorf(n, path, ErrWrongType, "integer %s out of range for int32", n.Value)
			return nil
		case "string":
			return n.Value
		}
	}
	w.errorf(n, path, ErrWrongType, "expected integer or string, got %s", describe(n))
	return nil
}

// anyValue converts a node to its JSON form without a schema (for
// runtime.RawExtension and free-form fields).
func (w *walker) anyValue(n *yaml.Node, path string) any {
	n, leave, ok := w.enter(n, path)
	if !ok {
		return nil
	}
	defer leave()
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		for _, kv := range pairs(n) {
			out[deref(kv[0]).Value] = w.anyValue(kv[1], path)
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			out[i] = w.anyValue(c, path)
		}
		return out
	}
	switch scalarType(n) {
	case "integer":
		if i, ok := parseYAMLInt(n.Value); ok {
			return i
		}
	case "number":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return f
		}
	case "boolean":
		if b, ok := yaml11Bools[n.Value]; ok {
			return b
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		return b
	case "null":
		return nil
	}
	return n.Value
}

// structFields is the JSON view of a struct type: its field names (with
// inline embedded structs flattened) and their types.
type structFields struct {
	names  []string // sorted
	byName map[string]reflect.Type
}

var fieldCache sync.Map // reflect.Type -> *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{byName: map[string]reflect.Type{}}
	collectFields(t, f)
	for name := range f.byName {
		f.names = append(f.names, name)
	}
	sort.Strings(f.names)
	fieldCache.Store(t, f)
	return f
}

func collectFields(t reflect.Type, f *structFields) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		inline := strings.Contains(","+opts+",", ",inline,")
		if sf.Anonymous && (name == "" || inline) {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, f)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f.byName[name] = sf.Type
	}
}
