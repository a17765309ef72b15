package api

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// objectMeta returns a pointer to the object's ObjectMeta.
func objectMeta(obj runtime.Object) (*metav1.ObjectMeta, error) {
	if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if om, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return om, nil
		}
	}
	return nil, fmt.Errorf("%T has no ObjectMeta", obj)
}

// metaOf returns the object's metadata accessor.
func metaOf(obj runtime.Object) (metav1.Object, error) {
	return meta.Accessor(obj)
}

// EncodeList writes objects as one v1 List, the way kubectl get -o yaml
// prints several objects. Each item gets its apiVersion and kind.
func EncodeList(objs []runtime.Object, format string) ([]byte, error) {
	items := make([]json.RawMessage, 0, len(objs))
	for _, obj := range objs {
		info, err := KindOf(obj)
		if err != nil {
			return nil, err
		}
		obj = obj.DeepCopyObject()
		obj.GetObjectKind().SetGroupVersionKind(info.GVK)
		raw, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		items = append(items, raw)
	}
	list := map[string]any{
		"apiVersion": "v1",
		"kind":       "List",
		"items":      items,
		"metadata":   map[string]any{"resourceVersion": ""},
	}
	return encodeJSONValue(list, format)
}

func encodeJSONValue(v any, format string) ([]byte, error) {
	switch format {
	case "json":
		out, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return nil, err
		}
		return append(out, '\n'), nil
	case "yaml", "yml":
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return yaml.JSONToYAML(raw)
	}
	return nil, fmt.Errorf("unsupported output format %q: want yaml or json", format)
}

// Encode writes obj as "yaml" or "json" (indented, as kubectl's -o json),
// with apiVersion and kind set from its Go type. obj is not modified.
func Encode(obj runtime.Object, format string) ([]byte, error) {
	info, err := KindOf(obj)
	if err != nil {
		return nil, err
	}
	obj = obj.DeepCopyObject()
	obj.GetObjectKind().SetGroupVersionKind(info.GVK)
	return encodeJSONValue(obj, format)
}
