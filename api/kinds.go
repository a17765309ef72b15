package api

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Sentinel errors of the package. Each is wrapped with details (%w) and
// tested with errors.Is.
var (
	// ErrUnknownResource: a resource name (pods, deploy, deployments.apps)
	// that names none of the kinds Skiff serves.
	ErrUnknownResource = errors.New("the server doesn't have a resource type")
	// ErrUnknownKind: an apiVersion/kind pair (or a Go type) that is not
	// one of the kinds Skiff serves.
	ErrUnknownKind = errors.New("unknown kind")
	// ErrMissingKind: a document without apiVersion or kind.
	ErrMissingKind = errors.New("missing apiVersion or kind")
	// ErrUnknownField: a field the kind's schema does not have.
	ErrUnknownField = errors.New("unknown field")
	// ErrWrongType: a value of the wrong YAML/JSON type for its field.
	ErrWrongType = errors.New("wrong type")
	// ErrDuplicateField: a key given twice in one mapping.
	ErrDuplicateField = errors.New("duplicate field")
	// ErrSyntax: the bytes are not YAML or JSON.
	ErrSyntax = errors.New("syntax error")
	// ErrInvalid: an object failed validation.
	ErrInvalid = errors.New("invalid object")
)

// KindInfo describes one kind Skiff serves: its group/version/kind, the
// resource names users type, and where its objects live in the store.
type KindInfo struct {
	// GVK is the kind as written in manifests (apiVersion + kind).
	GVK schema.GroupVersionKind
	// Resource is the lowercase plural used in URLs, storage keys and
	// `skiff get` (pods, deployments).
	Resource string
	// Singular is the lowercase singular (pod, deployment).
	Singular string
	// ShortNames are kubectl's abbreviations (po, deploy).
	ShortNames []string
	// Namespaced reports whether objects live in a namespace.
	Namespaced bool
	// Categories, like kubectl's: "all" is what `get all` lists.
	Categories []string
}

// APIVersion is the manifest form of the group/version: "v1", "apps/v1".
func (k KindInfo) APIVersion() string { return k.GVK.GroupVersion().String() }

// GroupResource is the group-qualified resource: "pods", "deployments.apps".
func (k KindInfo) GroupResource() string {
	if k.GVK.Group == "" {
		return k.Resource
	}
	return k.Resource + "." + k.GVK.Group
}

// ObjectRef is how kubectl names one object in messages and -o name:
// "pod/web", "deployment.apps/web" (lowercase kind, then the group).
func (k KindInfo) ObjectRef(name string) string {
	if k.GVK.Group == "" {
		return k.Singular + "/" + name
	}
	return k.Singular + "." + k.GVK.Group + "/" + name
}

// String is the kubectl-style resource name (deployments.apps).
func (k KindInfo) String() string { return k.GroupResource() }

// New returns a new empty object of the kind with apiVersion and kind set.
func (k KindInfo) New() runtime.Object {
	obj, err := registry().scheme.New(k.GVK)
	if err != nil {
		// The registry is built from the scheme; this cannot happen
		// unless the table below and the scheme disagree.
		panic(fmt.Sprintf("api: kind %s not in scheme: %v", k.GVK, err))
	}
	obj.GetObjectKind().SetGroupVersionKind(k.GVK)
	return obj
}

// StoragePrefix is the key prefix under which all objects of the kind (in
// one namespace, or in all when namespace is "") are stored, ending in "/".
//
// Layout: /registry/<resource>/... for the core group, as Kubernetes lays
// out etcd (/registry/pods/default/web), and /registry/<group>/<resource>/...
// for every other group (/registry/apps/deployments/default/web). Putting
// the group in the key for named groups keeps two groups' resources of the
// same name apart; keeping the core group bare keeps etcdctl habits working.
// Cluster-scoped kinds have no namespace segment (/registry/nodes/n1).
func (k KindInfo) StoragePrefix(namespace string) string {
	var b strings.Builder
	b.WriteString("/registry/")
	if k.GVK.Group != "" {
		b.WriteString(k.GVK.Group)
		b.WriteByte('/')
	}
	b.WriteString(k.Resource)
	b.WriteByte('/')
	if k.Namespaced && namespace != "" {
		b.WriteString(namespace)
		b.WriteByte('/')
	}
	return b.String()
}

// StorageKey is the store key of one object. namespace is ignored for
// cluster-scoped kinds.
func (k KindInfo) StorageKey(namespace, name string) string {
	if !k.Namespaced {
		namespace = ""
	}
	return k.StoragePrefix(namespace) + name
}

// kindTable is the list of served kinds, in the order `api-resources`
// prints them (core first, then by group).
var kindTable = []struct {
	gv         schema.GroupVersion
	kind       string
	resource   string
	short      []string
	namespaced bool
	all        bool
}{
	{corev1.SchemeGroupVersion, "ConfigMap", "configmaps", []string{"cm"}, true, false},
	{corev1.SchemeGroupVersion, "Endpoints", "endpoints", []string{"ep"}, true, false},
	{corev1.SchemeGroupVersion, "Event", "events", []string{"ev"}, true, false},
	{corev1.SchemeGroupVersion, "LimitRange", "limitranges", []string{"limits"}, true, false},
	{corev1.SchemeGroupVersion, "Namespace", "namespaces", []string{"ns"}, false, false},
	{corev1.SchemeGroupVersion, "Node", "nodes", []string{"no"}, false, false},
	{corev1.SchemeGroupVersion, "PersistentVolumeClaim", "persistentvolumeclaims", []string{"pvc"}, true, false},
	{corev1.SchemeGroupVersion, "PersistentVolume", "persistentvolumes", []string{"pv"}, false, false},
	{corev1.SchemeGroupVersion, "Pod", "pods", []string{"po"}, true, true},
	{corev1.SchemeGroupVersion, "ReplicationController", "replicationcontrollers", []string{"rc"}, true, true},
	{corev1.SchemeGroupVersion, "ResourceQuota", "resourcequotas", []string{"quota"}, true, false},
	{corev1.SchemeGroupVersion, "Secret", "secrets", nil, true, false},
	{corev1.SchemeGroupVersion, "ServiceAccount", "serviceaccounts", []string{"sa"}, true, false},
	{corev1.SchemeGroupVersion, "Service", "services", []string{"svc"}, true, true},
	{appsv1.SchemeGroupVersion, "ControllerRevision", "controllerrevisions", nil, true, false},
	{appsv1.SchemeGroupVersion, "DaemonSet", "daemonsets", []string{"ds"}, true, true},
	{appsv1.SchemeGroupVersion, "Deployment", "deployments", []string{"deploy"}, true, true},
	{appsv1.SchemeGroupVersion, "ReplicaSet", "replicasets", []string{"rs"}, true, true},
	{appsv1.SchemeGroupVersion, "StatefulSet", "statefulsets", []string{"sts"}, true, true},
	{autoscalingv2.SchemeGroupVersion, "HorizontalPodAutoscaler", "horizontalpodautoscalers", []string{"hpa"}, true, true},
	{batchv1.SchemeGroupVersion, "CronJob", "cronjobs", []string{"cj"}, true, true},
	{batchv1.SchemeGroupVersion, "Job", "jobs", nil, true, true},
	{coordinationv1.SchemeGroupVersion, "Lease", "leases", nil, true, false},
	{networkingv1.SchemeGroupVersion, "Ingress", "ingresses", []string{"ing"}, true, false},
	{rbacv1.SchemeGroupVersion, "ClusterRoleBinding", "clusterrolebindings", nil, false, false},
	{rbacv1.SchemeGroupVersion, "ClusterRole", "clusterroles", nil, false, false},
	{rbacv1.SchemeGroupVersion, "RoleBinding", "rolebindings", nil, true, false},
	{rbacv1.SchemeGroupVersion, "Role", "roles", nil, true, false},
	{storagev1.SchemeGroupVersion, "StorageClass", "storageclasses", []string{"sc"}, false, false},
}

type kindRegistry struct {
	scheme *runtime.Scheme
	kinds  []KindInfo
	byGVK  map[schema.GroupVersionKind]int
	// byName maps every lowercase name form (resource, singular, short,
	// kind, and their .group / .version.group forms) to indexes in kinds.
	byName map[string][]int
}

// registry is built once, on first use, and never changes afterwards.
var registry = sync.OnceValue(func() *kindRegistry {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		networkingv1.AddToScheme, autoscalingv2.AddToScheme,
		rbacv1.AddToScheme, storagev1.AddToScheme, coordinationv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(fmt.Sprintf("api: building scheme: %v", err))
		}
	}
	r := &kindRegistry{
		scheme: s,
		byGVK:  map[schema.GroupVersionKind]int{},
		byName: map[string][]int{},
	}
	for i, row := range kindTable {
		gvk := row.gv.WithKind(row.kind)
		if !s.Recognizes(gvk) {
			panic(fmt.Sprintf("api: scheme does not know %s", gvk))
		}
		k := KindInfo{
			GVK:        gvk,
			Resource:   row.resource,
			Singular:   strings.ToLower(row.kind),
			ShortNames: row.short,
			Namespaced: row.namespaced,
		}
		if row.all {
			k.Categories = []string{"all"}
		}
		r.kinds = append(r.kinds, k)
		r.byGVK[gvk] = i
		names := append([]string{k.Resource, k.Singular}, k.ShortNames...)
		for _, n := range names {
			r.add(n, i)
			r.add(n+"."+gvk.Group, i)
			r.add(n+"."+gvk.Version+"."+gvk.Group, i)
		}
	}
	return r
})

func (r *kindRegistry) add(name string, i int) {
	name = strings.TrimSuffix(name, ".")
	for _, j := range r.byName[name] {
		if j == i {
			return
		}
	}
	r.byName[name] = append(r.byName[name], i)
}

// Scheme returns the runtime.Scheme holding Kubernetes' Go types for the
// served groups. It is shared; callers must not register more types.
func Scheme() *runtime.Scheme { return registry().scheme }

// Kinds lists the served kinds, core group first, then by group, each
// group sorted by resource.
func Kinds() []KindInfo {
	return append([]KindInfo(nil), registry().kinds...)
}

// KindFor returns the kind served under gvk.
func KindFor(gvk schema.GroupVersionKind) (KindInfo, error) {
	r := registry()
	if i, ok := r.byGVK[gvk]; ok {
		return r.kinds[i], nil
	}
	return KindInfo{}, fmt.Errorf("%w: no kind %q is registered for version %q%s",
		ErrUnknownKind, gvk.Kind, gvk.GroupVersion().String(), suggestKinds(gvk))
}

// KindOf returns the kind of a typed object, by its Go type (apiVersion and
// kind need not be set on obj).
func KindOf(obj runtime.Object) (KindInfo, error) {
	r := registry()
	gvks, _, err := r.scheme.ObjectKinds(obj)
	if err != nil {
		return KindInfo{}, fmt.Errorf("%w: %T", ErrUnknownKind, obj)
	}
	for _, gvk := range gvks {
		if i, ok := r.byGVK[gvk]; ok {
			return r.kinds[i], nil
		}
	}
	return KindInfo{}, fmt.Errorf("%w: %T is not a served kind", ErrUnknownKind, obj)
}

// ResolveResource finds a kind by any name a kubectl user would type:
// plural, singular, short name or Kind, in any case, optionally qualified
// by group (deployments.apps) or version and group (deployments.v1.apps).
func ResolveResource(name string) (KindInfo, error) {
	r := registry()
	key := strings.ToLower(strings.TrimSpace(name))
	idx := r.byName[key]
	if len(idx) == 1 {
		return r.kinds[idx[0]], nil
	}
	if len(idx) > 1 {
		var alts []string
		for _, i := range idx {
			alts = append(alts, r.kinds[i].GroupResource())
		}
		return KindInfo{}, fmt.Errorf("%w %q: ambiguous, one of %s", ErrUnknownResource, name, strings.Join(alts, ", "))
	}
	msg := fmt.Sprintf("%v %q", ErrUnknownResource, name)
	if best := closestNames(key, r.allNames(), 2); len(best) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", quoteJoin(best))
	}
	return KindInfo{}, wrapMsg{ErrUnknownResource, msg}
}

func (r *kindRegistry) allNames() []string {
	var out []string
	for _, k := range r.kinds {
		out = append(out, k.Resource, k.Singular)
		out = append(out, k.ShortNames...)
	}
	return out
}

// wrapMsg is an error whose text replaces the sentinel's but which still
// matches it with errors.Is.
type wrapMsg struct {
	sentinel error
	msg      string
}

func (w wrapMsg) Error() string { return w.msg }
func (w wrapMsg) Unwrap() error { return w.sentinel }

// suggestKinds names served kinds close to gvk: the same kind in another
// version, or kinds whose name is close to gvk.Kind.
func suggestKinds(gvk schema.GroupVersionKind) string {
	r := registry()
	var same []string
	var names []string
	for _, k := range r.kinds {
		if strings.EqualFold(k.GVK.Kind, gvk.Kind) {
			same = append(same, k.APIVersion()+" "+k.GVK.Kind)
		}
		names = append(names, k.GVK.Kind)
	}
	if len(same) > 0 {
		return "; known: " + strings.Join(same, ", ")
	}
	best := closestNames(gvk.Kind, names, 3)
	if len(best) == 0 {
		return ""
	}
	var out []string
	for _, b := range best {
		for _, k := range r.kinds {
			if k.GVK.Kind == b {
				out = append(out, k.APIVersion()+" "+b)
			}
		}
	}
	return "; did you mean " + strings.Join(out, ", ") + "?"
}

// closestNames returns the candidates equal to s ignoring case, or else
// those within maxDist edits of it (case-insensitive), best first.
func closestNames(s string, candidates []string, maxDist int) []string {
	ls := strings.ToLower(s)
	type scored struct {
		name string
		d    int
	}
	var hits []scored
	seen := map[string]bool{}
	for _, c := range candidates {
		if seen[c] {
			continue
		}
		seen[c] = true
		d := editDistance(ls, strings.ToLower(c))
		limit := maxDist
		if len(s) <= 3 {
			limit = 1
		}
		if d <= limit {
			hits = append(hits, scored{c, d})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].d < hits[j].d })
	if len(hits) > 0 && hits[0].d == 0 {
		hits = hits[:1]
	}
	var out []string
	for _, h := range hits {
		out = append(out, h.name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func quoteJoin(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	switch len(q) {
	case 1:
		return q[0]
	default:
		return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
	}
}
