package apiserver

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// Apply implements ClusterService: kubectl's client-side apply, run in the
// server so every client gets it. The manifest, as sent, is recorded in the
// last-applied-configuration annotation. On update, a strategic three-way
// merge patch is computed from (last applied, new manifest, live object)
// and applied to the live object: fields the manifest sets win, fields
// removed from the manifest since the last apply are removed, and fields
// nobody declared (status, a ClusterIP the server allocated, replicas set
// by an autoscaler) stay. The update is conditional on the live object's
// resourceVersion and retried when it lost a race.
func (s *Server) Apply(ctx context.Context, req *skiffv1.ApplyRequest) (*skiffv1.ApplyResponse, error) {
	k, err := s.resolve(req.Ref, false)
	if err != nil {
		return nil, err
	}
	// Strict decoding first: a bad manifest is rejected as for Create.
	_, m, err := decodeRequest(k, req.Object)
	if err != nil {
		return nil, err
	}
	if err := s.placeObject(k, req.Ref, m); err != nil {
		return nil, err
	}
	if m.GetName() == "" {
		return nil, client.NewBadRequest("apply needs metadata.name")
	}
	modified, err := appliedManifest(req.Object, m.GetNamespace(), k.Namespaced)
	if err != nil {
		return nil, client.NewBadRequest(err.Error())
	}
	patchMeta, err := strategicpatch.NewPatchMetaFromStruct(k.New())
	if err != nil {
		return nil, client.NewInternal(err)
	}
	for attempt := 0; attempt < maxRetries; attempt++ {
		live, _, err := s.getObject(ctx, k, m.GetNamespace(), m.GetName())
		if client.IsNotFound(err) {
			obj, om, err := s.prepareCreate(ctx, k, req.Ref, modified)
			if err != nil {
				return nil, err
			}
			out, err := s.create(ctx, k, obj, om, req.DryRun)
			if client.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			data, err := marshal(out)
			return &skiffv1.ApplyResponse{Object: data, Created: true}, err
		}
		if err != nil {
			return nil, err
		}
		liveM, _ := meta.Accessor(live)
		var original []byte
		if a := liveM.GetAnnotations()[corev1.LastAppliedConfigAnnotation]; a != "" {
			original = []byte(a)
		}
		current, err := json.Marshal(live)
		if err != nil {
			return nil, client.NewInternal(err)
		}
		patch, err := strategicpatch.CreateThreeWayMergePatch(original, modified, current, patchMeta, true)
		if err != nil {
			return nil, client.NewBadRequest(fmt.Sprintf("computing the apply patch: %v", err))
		}
		merged, err := strategicpatch.StrategicMergePatchUsingLookupPatchMeta(current, patch, patchMeta)
		if err != nil {
			return nil, client.NewBadRequest(fmt.Sprintf("applying the patch: %v", err))
		}
		obj := k.New()
		if err := json.Unmarshal(merged, obj); err != nil {
			return nil, client.NewBadRequest(fmt.Sprintf("the merged object does not decode: %v", err))
		}
		om, _ := meta.Accessor(obj)
		om.SetResourceVersion(liveM.GetResourceVersion())
		out, changed, err := s.update(ctx, k, obj, updateMain, req.DryRun)
		if client.IsConflict(err) && err.(*client.StatusError).Status.GetMessage() != "" && isStale(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		data, err := marshal(out)
		return &skiffv1.ApplyResponse{Object: data, Unchanged: !changed}, err
	}
	return nil, client.NewConflict(k.GroupResource(), m.GetName(), "too many concurrent writes, try again")
}

func isStale(err error) bool {
	se := client.FromError(err)
	return se != nil && se.Reason() == client.ReasonConflict &&
		len(se.Status.GetMessage()) >= len(client.StaleResourceVersion) &&
		se.Status.GetMessage()[len(se.Status.GetMessage())-len(client.StaleResourceVersion):] == client.StaleResourceVersion
}

// appliedManifest is the manifest as the user wrote it, with its namespace
// filled in, top-level status and nulls dropped, and the
// last-applied-configuration annotation set to itself (without the
// annotation), as kubectl records it.
func appliedManifest(raw []byte, ns string, namespaced bool) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	delete(doc, "status")
	dropNulls(doc)
	md, _ := doc["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		doc["metadata"] = md
	}
	delete(md, "resourceVersion")
	delete(md, "uid")
	delete(md, "creationTimestamp")
	delete(md, "generation")
	delete(md, "managedFields")
	if namespaced {
		md["namespace"] = ns
	}
	ann, _ := md["annotations"].(map[string]any)
	if ann != nil {
		delete(ann, corev1.LastAppliedConfigAnnotation)
		if len(ann) == 0 {
			delete(md, "annotations")
		}
	}
	self, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if ann == nil {
		ann = map[string]any{}
	}
	ann[corev1.LastAppliedConfigAnnotation] = string(self) + "\n"
	md["annotations"] = ann
	return json.Marshal(doc)
}

func dropNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for key, val := range t {
			if val == nil {
				delete(t, key)
				continue
			}
			dropNulls(val)
		}
	case []any:
		for _, e := range t {
			dropNulls(e)
		}
	}
}
