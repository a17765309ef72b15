package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "sigs.k8s.io/json"

	"github.com/skiffhq/skiff/client"
)

// Storage layout (all under Config.StorePrefix, "/registry" by default):
//
//	/registry/<group>/<resource>/<namespace>/<name>   namespaced objects
//	/registry/<group>/<resource>/<name>               cluster-scoped objects
//	/registry/ranges/serviceips/<ip>                  allocated ClusterIPs
//	/registry/ranges/servicenodeports/<port>          allocated NodePorts
//
// The core group has no segment (/registry/pods/default/web), as in
// Kubernetes; this is package api's KindInfo.StorageKey layout, with
// Config.StorePrefix in place of /registry. Values are the object's JSON
// without metadata.resourceVersion: the resourceVersion of an object is the
// key's mod revision, set when the object is read.

func (s *Server) resourcePrefix(k Kind) string {
	if k.GVR.Group == "" {
		return s.cfg.StorePrefix + "/" + k.GVR.Resource + "/"
	}
	return s.cfg.StorePrefix + "/" + k.GVR.Group + "/" + k.GVR.Resource + "/"
}

// listPrefix is the prefix of a resource's objects in ns ("" for all
// namespaces or for cluster-scoped resources); it ends with "/".
func (s *Server) listPrefix(k Kind, ns string) string {
	p := s.resourcePrefix(k)
	if k.Namespaced && ns != "" {
		p += ns + "/"
	}
	return p
}

func (s *Server) objectKey(k Kind, ns, name string) string {
	if k.Namespaced {
		return s.resourcePrefix(k) + ns + "/" + name
	}
	return s.resourcePrefix(k) + name
}

// encodeForStore is the JSON stored for obj: apiVersion/kind set, no
// resourceVersion.
func encodeForStore(k Kind, obj runtime.Object) ([]byte, error) {
	obj.GetObjectKind().SetGroupVersionKind(k.GVK())
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	data, err := json.Marshal(obj)
	m.SetResourceVersion(rv)
	return data, err
}

// decodeStored turns a stored value back into a typed object whose
// resourceVersion is rev.
func decodeStored(k Kind, data []byte, rev int64) (runtime.Object, error) {
	obj := k.New()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("decoding stored %s: %w", k.GVR.Resource, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(k.GVK())
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	return obj, nil
}

// decodeRequest decodes a request body strictly into the kind's type: an
// unknown or duplicated field is a BadRequest naming it.
func decodeRequest(k Kind, data []byte) (runtime.Object, metav1.Object, error) {
	if len(data) == 0 {
		return nil, nil, client.NewBadRequest("the request carries no object")
	}
	obj := k.New()
	strictErrs, err := kjson.UnmarshalStrict(data, obj)
	if err != nil {
		return nil, nil, client.NewBadRequest(fmt.Sprintf("cannot decode %s: %v", k.Kind, err))
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return nil, nil, client.NewBadRequest(fmt.Sprintf("strict decoding error: %s", strings.Join(msgs, ", ")))
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk != k.GVK() {
		return nil, nil, client.NewBadRequest(fmt.Sprintf("the object is %s %s, the request is about %s (%s)",
			gvk.GroupVersion(), gvk.Kind, k.GVR.Resource, k.GVK().GroupVersion()))
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, client.NewInternal(err)
	}
	return obj, m, nil
}

// getObject reads one object and its mod revision.
func (s *Server) getObject(ctx context.Context, k Kind, ns, name string) (runtime.Object, int64, error) {
	resp, err := s.etcd.Get(ctx, s.objectKey(k, ns, name))
	if err != nil {
		return nil, 0, storeError(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, client.NewNotFound(k.GroupResource(), name)
	}
	kv := resp.Kvs[0]
	obj, err := decodeStored(k, kv.Value, kv.ModRevision)
	if err != nil {
		return nil, 0, client.NewInternal(err)
	}
	return obj, kv.ModRevision, nil
}

// storeError maps an etcd client error to a StatusError.
func storeError(err error) error {
	var se *client.StatusError
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return client.FromError(err)
	}
	if strings.Contains(err.Error(), "required revision has been compacted") {
		return client.NewExpired("too old resource version: " + err.Error())
	}
	return client.NewUnavailable("store: " + err.Error())
}

// txn runs a transaction and reports whether it succeeded.
func (s *Server) txn(ctx context.Context, cmps []clientv3.Cmp, ops []clientv3.Op) (*clientv3.TxnResponse, error) {
	resp, err := s.etcd.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return nil, storeError(err)
	}
	return resp, nil
}
