package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// matcher selects objects by labels and fields, with package api's
// selector rules (per-kind selectable fields, as Kubernetes).
type matcher struct {
	labels labels.Selector
	fields fields.Selector
	// name, when set, is the one object watched or listed (ref.name).
	name string
}

func newMatcher(k Kind, labelSel, fieldSel string) (*matcher, error) {
	ls, err := api.ParseLabelSelector(labelSel)
	if err != nil {
		return nil, client.NewBadRequest(err.Error())
	}
	info, err := api.KindFor(k.GVK())
	if err != nil {
		return nil, client.NewInternal(err)
	}
	fs, err := api.ParseFieldSelector(info, fieldSel)
	if err != nil {
		return nil, client.NewBadRequest(err.Error())
	}
	return &matcher{labels: ls, fields: fs}, nil
}

func (m *matcher) everything() bool { return m.labels.Empty() && m.fields.Empty() && m.name == "" }

func (m *matcher) matches(obj runtime.Object) bool {
	if m.everything() {
		return true
	}
	if m.name != "" {
		if acc, err := meta.Accessor(obj); err != nil || acc.GetName() != m.name {
			return false
		}
	}
	return api.Matches(obj, m.labels, m.fields)
}

// continueToken is the opaque position of the next page: the revision the
// first page was read at, and the key to start from.
type continueToken struct {
	Rev   int64  `json:"rv"`
	Start string `json:"start"`
}

func encodeContinue(t continueToken) string {
	data, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(data, &t)
	}
	if err != nil || t.Rev <= 0 || t.Start == "" {
		return t, client.NewBadRequest("invalid continue token")
	}
	return t, nil
}

// listBatch is how many keys a selective list reads per store call.
const listBatch = 500

// List implements ClusterService. Every page is read at the revision of
// the first one, so pages together are one consistent snapshot; a continue
// token older than the store's compaction is Expired.
func (s *Server) List(ctx context.Context, req *skiffv1.ListRequest) (*skiffv1.ListResponse, error) {
	k, err := s.resolve(req.Ref, false)
	if err != nil {
		return nil, err
	}
	match, err := newMatcher(k, req.LabelSelector, req.FieldSelector)
	if err != nil {
		return nil, err
	}
	match.name = req.Ref.Name
	if req.Limit < 0 {
		return nil, client.NewBadRequest("limit must not be negative")
	}
	prefix := s.listPrefix(k, req.Ref.Namespace)
	end := clientv3.GetPrefixRangeEnd(prefix)
	start, rev := prefix, int64(0)
	if req.ContinueToken != "" {
		t, err := decodeContinue(req.ContinueToken)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(t.Start, prefix) {
			return nil, client.NewBadRequest("the continue token is for another list")
		}
		start, rev = t.Start, t.Rev
	}
	out := &skiffv1.ListResponse{}
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		batch := int64(0)
		if req.Limit > 0 {
			batch = req.Limit - int64(len(out.Items)) + 1 // one more tells whether there is a next page
			if !match.everything() {
				batch = max(batch, listBatch)
			}
		}
		if batch > 0 {
			opts = append(opts, clientv3.WithLimit(batch))
		}
		resp, err := s.etcd.Get(ctx, start, opts...)
		if err != nil {
			if strings.Contains(err.Error(), "compacted") {
				return nil, client.NewExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
			}
			return nil, storeError(err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for i, kv := range resp.Kvs {
			if req.Limit > 0 && int64(len(out.Items)) == req.Limit {
				out.ContinueToken = encodeContinue(continueToken{Rev: rev, Start: string(kv.Key)})
				if match.everything() {
					out.RemainingItemCount = resp.Count - int64(i)
				}
				out.ResourceVersion = strconv.FormatInt(rev, 10)
				return out, nil
			}
			obj, err := decodeStored(k, kv.Value, kv.ModRevision)
			if err != nil {
				return nil, client.NewInternal(err)
			}
			if !match.matches(obj) {
				continue
			}
			data, err := marshal(obj)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, data)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	out.ResourceVersion = strconv.FormatInt(rev, 10)
	return out, nil
}

// Watch implements ClusterService. It follows the store's watch on the
// resource's prefix from resource_version+1 with the previous values, so
// it can say DELETED with the last state, and turn selector transitions
// into ADDED/DELETED as Kubernetes does. Events carry the store revision as
// resourceVersion, so a client that reconnects (to this server after a
// restart, or to another) resumes exactly where it stopped.
func (s *Server) Watch(req *skiffv1.WatchRequest, stream skiffv1.ClusterService_WatchServer) error {
	ctx := stream.Context()
	k, err := s.resolve(req.Ref, false)
	if err != nil {
		return err
	}
	match, err := newMatcher(k, req.LabelSelector, req.FieldSelector)
	if err != nil {
		return err
	}
	// A watch of one object (ref.name) still follows the whole prefix:
	// names are not prefix-free (web, web-2).
	match.name = req.Ref.Name
	prefix := s.listPrefix(k, req.Ref.Namespace)
	send := func(typ string, obj runtime.Object) error {
		data, err := marshal(obj)
		if err != nil {
			return err
		}
		return stream.Send(&skiffv1.WatchResponse{Type: typ, Object: data})
	}
	var from int64
	switch req.ResourceVersion {
	case "", "0":
		resp, err := s.etcd.Get(ctx, prefix, clientv3.WithPrefix())
		if err != nil {
			return storeError(err)
		}
		for _, kv := range resp.Kvs {
			obj, err := decodeStored(k, kv.Value, kv.ModRevision)
			if err != nil {
				return client.NewInternal(err)
			}
			if match.matches(obj) {
				if err := send("ADDED", obj); err != nil {
					return err
				}
			}
		}
		from = resp.Header.Revision
	default:
		from, err = strconv.ParseInt(req.ResourceVersion, 10, 64)
		if err != nil || from < 0 {
			return client.NewBadRequest(fmt.Sprintf("invalid resource version %q", req.ResourceVersion))
		}
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.etcd.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from+1), clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	var tick <-chan time.Time
	if req.AllowBookmarks {
		t := time.NewTicker(s.cfg.BookmarkInterval)
		defer t.Stop()
		tick = t.C
	}
	last := from
	bookmark := func(rev int64) error {
		obj := k.New()
		obj.GetObjectKind().SetGroupVersionKind(k.GVK())
		acc, _ := meta.Accessor(obj)
		acc.SetResourceVersion(strconv.FormatInt(rev, 10))
		return send("BOOKMARK", obj)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			// Ask the store where it is; the answer comes back on wch as
			// a progress notification.
			if err := s.etcd.RequestProgress(wctx); err != nil && ctx.Err() == nil {
				s.log.Debug("watch progress request", "err", err)
			}
		case wr, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return client.NewUnavailable("the store closed the watch")
			}
			if wr.CompactRevision != 0 {
				return client.NewExpired(fmt.Sprintf("too old resource version: %d (%d)", from, wr.CompactRevision))
			}
			if err := wr.Err(); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return storeError(err)
			}
			if wr.IsProgressNotify() {
				if req.AllowBookmarks && wr.Header.Revision >= last {
					last = wr.Header.Revision
					if err := bookmark(last); err != nil {
						return err
					}
				}
				continue
			}
			for _, ev := range wr.Events {
				last = ev.Kv.ModRevision
				if err := s.sendEvent(k, match, ev, send); err != nil {
					return err
				}
			}
		}
	}
}

func (s *Server) sendEvent(k Kind, match *matcher, ev *clientv3.Event, send func(string, runtime.Object) error) error {
	var prev runtime.Object
	if ev.PrevKv != nil {
		p, err := decodeStored(k, ev.PrevKv.Value, ev.PrevKv.ModRevision)
		if err != nil {
			return client.NewInternal(err)
		}
		prev = p
	}
	prevMatch := prev != nil && match.matches(prev)
	if ev.Type == clientv3.EventTypeDelete {
		if prev == nil || !prevMatch {
			return nil
		}
		acc, _ := meta.Accessor(prev)
		acc.SetResourceVersion(strconv.FormatInt(ev.Kv.ModRevision, 10))
		return send("DELETED", prev)
	}
	cur, err := decodeStored(k, ev.Kv.Value, ev.Kv.ModRevision)
	if err != nil {
		return client.NewInternal(err)
	}
	curMatch := match.matches(cur)
	switch {
	case curMatch && prevMatch:
		return send("MODIFIED", cur)
	case curMatch:
		return send("ADDED", cur)
	case prevMatch:
		return send("DELETED", cur)
	}
	return nil
}
