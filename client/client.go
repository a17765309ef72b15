package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// Client talks to the cluster API. It is safe for concurrent use.
type Client struct {
	conn *grpc.ClientConn
	svc  skiffv1.ClusterServiceClient
	// Namespace is the default namespace of the context (or "default").
	Namespace string
	// Server is the URL of the API server.
	Server string

	mu        sync.Mutex
	resources []*skiffv1.APIResource
}

// Options select a context of a config.
type Options struct {
	// ConfigPath: see ConfigPath; empty means $SKIFFCONFIG or ~/.skiff/config.
	ConfigPath string
	// Config, when set, is used instead of reading a file.
	Config *Config
	// Context overrides the config's current context.
	Context string
	// Namespace overrides the context's namespace.
	Namespace string
}

// New connects to the cluster the options select. The connection is lazy:
// an unreachable server shows up as the first call's error.
func New(opts Options) (*Client, error) {
	cfg := opts.Config
	if cfg == nil {
		var err error
		if cfg, err = LoadConfig(ConfigPath(opts.ConfigPath)); err != nil {
			return nil, err
		}
	}
	cl, user, ctx, err := cfg.Resolve(opts.Context)
	if err != nil {
		return nil, err
	}
	c, err := Dial(cl, user)
	if err != nil {
		return nil, err
	}
	c.Namespace = ctx.Namespace
	if opts.Namespace != "" {
		c.Namespace = opts.Namespace
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	return c, nil
}

type tokenCreds string

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}
func (tokenCreds) RequireTransportSecurity() bool { return true }

// Dial connects to one cluster as one user.
func Dial(cl Cluster, user AuthInfo) (*Client, error) {
	u, err := url.Parse(cl.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server %q: want https://host:port", cl.Server)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cl.TLSServerName}
	if len(cl.CertificateAuthorityData) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cl.CertificateAuthorityData) {
			return nil, errors.New("certificate-authority-data holds no certificate")
		}
		tlsCfg.RootCAs = pool
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = u.Hostname()
	}
	if len(user.ClientCertificateData) > 0 {
		cert, err := tls.X509KeyPair(user.ClientCertificateData, user.ClientKeyData)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	dopts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg))}
	if user.Token != "" {
		dopts = append(dopts, grpc.WithPerRPCCredentials(tokenCreds(user.Token)))
	}
	conn, err := grpc.NewClient("dns:///"+u.Host, dopts...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, svc: skiffv1.NewClusterServiceClient(conn), Server: cl.Server, Namespace: "default"}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Raw is the generated gRPC client, for callers that work on JSON.
func (c *Client) Raw() skiffv1.ClusterServiceClient { return c.svc }

// PodStreams is the generated client of the container log and exec streams
// (skiff logs, skiff exec), on the same connection.
func (c *Client) PodStreams() skiffv1.PodStreamServiceClient {
	return skiffv1.NewPodStreamServiceClient(c.conn)
}

// Resources lists the served resources (cached after the first call).
func (c *Client) Resources(ctx context.Context) ([]*skiffv1.APIResource, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resources != nil {
		return c.resources, nil
	}
	resp, err := c.svc.Discover(ctx, &skiffv1.DiscoverRequest{})
	if err != nil {
		return nil, FromError(err)
	}
	c.resources = resp.Resources
	return c.resources, nil
}

// ResolveResource finds a resource by any name kubectl accepts: plural,
// singular, short name or kind, any case, optionally "name.group".
func (c *Client) ResolveResource(ctx context.Context, name string) (*skiffv1.APIResource, error) {
	rs, err := c.Resources(ctx)
	if err != nil {
		return nil, err
	}
	name = strings.ToLower(name)
	group, hasGroup := "", false
	if i := strings.Index(name, "."); i > 0 {
		name, group, hasGroup = name[:i], name[i+1:], true
	}
	for _, r := range rs {
		if hasGroup && r.Group != group {
			continue
		}
		if r.Resource == name || r.Singular == name || strings.ToLower(r.Kind) == name {
			return r, nil
		}
		for _, s := range r.ShortNames {
			if s == name {
				return r, nil
			}
		}
	}
	return nil, NewNotFound(schema.GroupResource{Resource: name}, "").
		WithMessage(fmt.Sprintf("the server doesn't have a resource type %q", name))
}

// ResourceFor finds the resource of a kind.
func (c *Client) ResourceFor(ctx context.Context, gvk schema.GroupVersionKind) (*skiffv1.APIResource, error) {
	rs, err := c.Resources(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.Group == gvk.Group && r.Kind == gvk.Kind {
			return r, nil
		}
	}
	return nil, NewBadRequest(fmt.Sprintf("no resource for kind %s", gvk))
}

// Ref builds the reference of an object of resource r.
func Ref(r *skiffv1.APIResource, namespace, name string) *skiffv1.ResourceRef {
	if !r.Namespaced {
		namespace = ""
	}
	return &skiffv1.ResourceRef{Group: r.Group, Version: r.Version, Resource: r.Resource, Namespace: namespace, Name: name}
}

// refOf is the reference of a typed object; its namespace defaults to the
// client's.
func (c *Client) refOf(ctx context.Context, obj runtime.Object) (*skiffv1.ResourceRef, []byte, error) {
	gvk, err := KindOf(obj)
	if err != nil {
		return nil, nil, err
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	r, err := c.ResourceFor(ctx, gvk)
	if err != nil {
		return nil, nil, err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	ns := m.GetNamespace()
	if r.Namespaced && ns == "" {
		ns = c.Namespace
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, err
	}
	return Ref(r, ns, m.GetName()), data, nil
}

// ListAll lists, uncached, every object of kind gvk in namespace ("" for
// all namespaces), following the continue token page by page (pages of
// 500). newObj makes an empty object of the kind to decode each item into.
func (c *Client) ListAll(ctx context.Context, gvk schema.GroupVersionKind, namespace string, newObj func() runtime.Object) ([]runtime.Object, error) {
	r, err := c.ResourceFor(ctx, gvk)
	if err != nil {
		return nil, err
	}
	var out []runtime.Object
	err = c.listPages(ctx, &skiffv1.ListRequest{Ref: Ref(r, namespace, "")}, func(resp *skiffv1.ListResponse) error {
		for _, item := range resp.Items {
			obj := newObj()
			if err := into(item, obj); err != nil {
				return err
			}
			out = append(out, obj)
		}
		return nil
	})
	return out, err
}

// listPages lists req page by page (pages of 500, following the continue
// token) and hands each page to fn, stopping at the first error.
func (c *Client) listPages(ctx context.Context, req *skiffv1.ListRequest, fn func(*skiffv1.ListResponse) error) error {
	req.Limit = 500
	for {
		resp, err := c.svc.List(ctx, req)
		if err != nil {
			return FromError(err)
		}
		if err := fn(resp); err != nil {
			return err
		}
		if req.ContinueToken = resp.ContinueToken; req.ContinueToken == "" {
			return nil
		}
	}
}

// into decodes a response into obj, replacing its contents (json.Unmarshal
// alone would merge into maps and keep fields absent from the answer).
func into(data []byte, obj runtime.Object) error {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if v := reflect.ValueOf(obj); v.Kind() == reflect.Pointer && !v.IsNil() {
		v.Elem().Set(reflect.Zero(v.Elem().Type()))
	}
	if err := json.Unmarshal(data, obj); err != nil {
		return fmt.Errorf("decoding %T: %w", obj, err)
	}
	if obj.GetObjectKind().GroupVersionKind().Kind == "" {
		obj.GetObjectKind().SetGroupVersionKind(gvk)
	}
	return nil
}

// Get reads namespace/name into obj, whose type says the kind.
func (c *Client) Get(ctx context.Context, namespace, name string, obj runtime.Object) error {
	gvk, err := KindOf(obj)
	if err != nil {
		return err
	}
	r, err := c.ResourceFor(ctx, gvk)
	if err != nil {
		return err
	}
	if namespace == "" {
		namespace = c.Namespace
	}
	resp, err := c.svc.Get(ctx, &skiffv1.GetRequest{Ref: Ref(r, namespace, name)})
	if err != nil {
		return FromError(err)
	}
	return into(resp.Object, obj)
}

// Create stores obj and updates it with the stored version.
func (c *Client) Create(ctx context.Context, obj runtime.Object) error {
	ref, data, err := c.refOf(ctx, obj)
	if err != nil {
		return err
	}
	resp, err := c.svc.Create(ctx, &skiffv1.CreateRequest{Ref: ref, Object: data})
	if err != nil {
		return FromError(err)
	}
	return into(resp.Object, obj)
}

// Update replaces obj; its resourceVersion, when set, must be current.
func (c *Client) Update(ctx context.Context, obj runtime.Object) error {
	ref, data, err := c.refOf(ctx, obj)
	if err != nil {
		return err
	}
	resp, err := c.svc.Update(ctx, &skiffv1.UpdateRequest{Ref: ref, Object: data})
	if err != nil {
		return FromError(err)
	}
	return into(resp.Object, obj)
}

// UpdateStatus replaces obj's status.
func (c *Client) UpdateStatus(ctx context.Context, obj runtime.Object) error {
	ref, data, err := c.refOf(ctx, obj)
	if err != nil {
		return err
	}
	resp, err := c.svc.UpdateStatus(ctx, &skiffv1.UpdateStatusRequest{Ref: ref, Object: data})
	if err != nil {
		return FromError(err)
	}
	return into(resp.Object, obj)
}

// Apply creates or three-way-merges obj (kubectl apply) and updates it with
// the stored version.
func (c *Client) Apply(ctx context.Context, obj runtime.Object) (created bool, err error) {
	ref, data, err := c.refOf(ctx, obj)
	if err != nil {
		return false, err
	}
	resp, err := c.svc.Apply(ctx, &skiffv1.ApplyRequest{Ref: ref, Object: data})
	if err != nil {
		return false, FromError(err)
	}
	return resp.Created, into(resp.Object, obj)
}

// DeleteOptions tune Delete.
type DeleteOptions struct {
	// Propagation is Background (default), Foreground or Orphan.
	Propagation string
	// GracePeriodSeconds overrides the object's grace period.
	GracePeriodSeconds *int64
	// PreconditionUID and PreconditionResourceVersion must match the
	// stored object, or the delete is a Conflict.
	PreconditionUID, PreconditionResourceVersion string
}

// Delete deletes the object obj names. pending reports an object kept
// while finalizers or a grace period hold it.
func (c *Client) Delete(ctx context.Context, obj runtime.Object, opts *DeleteOptions) (pending bool, err error) {
	ref, _, err := c.refOf(ctx, obj)
	if err != nil {
		return false, err
	}
	req := &skiffv1.DeleteRequest{Ref: ref}
	if opts != nil {
		req.Propagation, req.GracePeriodSeconds = opts.Propagation, opts.GracePeriodSeconds
		req.PreconditionUid, req.PreconditionResourceVersion = opts.PreconditionUID, opts.PreconditionResourceVersion
	}
	resp, err := c.svc.Delete(ctx, req)
	if err != nil {
		return false, FromError(err)
	}
	return resp.Pending, into(resp.Object, obj)
}

// ListOptions filter List and Watch.
type ListOptions struct {
	LabelSelector, FieldSelector string
	// Limit and Continue page a List.
	Limit    int64
	Continue string
	// ResourceVersion starts a Watch after this version.
	ResourceVersion string
	// AllowBookmarks asks a Watch for BOOKMARK events.
	AllowBookmarks bool
}

// List reads objects into a typed list (*corev1.PodList, ...). namespace
// "" lists all namespaces. The list's metadata gets resourceVersion and
// continue.
func (c *Client) List(ctx context.Context, namespace string, list runtime.Object, opts ListOptions) error {
	gvk, err := itemKind(list)
	if err != nil {
		return err
	}
	r, err := c.ResourceFor(ctx, gvk)
	if err != nil {
		return err
	}
	resp, err := c.svc.List(ctx, &skiffv1.ListRequest{Ref: Ref(r, namespace, ""), LabelSelector: opts.LabelSelector,
		FieldSelector: opts.FieldSelector, Limit: opts.Limit, ContinueToken: opts.Continue})
	if err != nil {
		return FromError(err)
	}
	items := make([]json.RawMessage, len(resp.Items))
	for i, it := range resp.Items {
		items[i] = it
	}
	md := map[string]any{"resourceVersion": resp.ResourceVersion}
	if resp.ContinueToken != "" {
		md["continue"] = resp.ContinueToken
	}
	if resp.ContinueToken != "" && resp.RemainingItemCount > 0 {
		md["remainingItemCount"] = resp.RemainingItemCount
	}
	data, err := json.Marshal(map[string]any{
		"apiVersion": gvk.GroupVersion().String(), "kind": gvk.Kind + "List", "metadata": md, "items": items})
	if err != nil {
		return err
	}
	return into(data, list)
}

// EventType is the type of a watch event.
type EventType string

// Watch event types, as Kubernetes'.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
	Bookmark EventType = "BOOKMARK"
)

// Event is one change seen by a watch.
type Event struct {
	Type   EventType
	Object runtime.Object
}

// Watch streams changes of the kind of example (a typed object, e.g.
// &corev1.Pod{}) in namespace ("" for all). The channel closes when ctx
// ends or the stream fails; then errp tells why (nil after ctx ended).
func (c *Client) Watch(ctx context.Context, namespace string, example runtime.Object, opts ListOptions) (<-chan Event, func() error, error) {
	gvk, err := KindOf(example)
	if err != nil {
		return nil, nil, err
	}
	r, err := c.ResourceFor(ctx, gvk)
	if err != nil {
		return nil, nil, err
	}
	stream, err := c.svc.Watch(ctx, &skiffv1.WatchRequest{Ref: Ref(r, namespace, ""), ResourceVersion: opts.ResourceVersion,
		LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector, AllowBookmarks: opts.AllowBookmarks})
	if err != nil {
		return nil, nil, FromError(err)
	}
	ch := make(chan Event)
	var (
		mu     sync.Mutex
		result error
	)
	go func() {
		defer close(ch)
		for {
			ev, err := stream.Recv()
			if err != nil {
				if ctx.Err() == nil {
					mu.Lock()
					result = FromError(err)
					mu.Unlock()
				}
				return
			}
			obj, err := Scheme.New(gvk)
			if err == nil {
				err = json.Unmarshal(ev.Object, obj)
			}
			if err != nil {
				mu.Lock()
				result = fmt.Errorf("decoding watch event: %w", err)
				mu.Unlock()
				return
			}
			obj.GetObjectKind().SetGroupVersionKind(gvk)
			select {
			case ch <- Event{Type: EventType(ev.Type), Object: obj}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, func() error { mu.Lock(); defer mu.Unlock(); return result }, nil
}

// ResourceVersionOf is an object's resourceVersion as a number (0 if none).
func ResourceVersionOf(obj runtime.Object) int64 {
	m, err := meta.Accessor(obj)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(m.GetResourceVersion(), 10, 64)
	return n
}
