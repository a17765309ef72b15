package api

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxDataSize bounds a ConfigMap's or Secret's data: objects live in one
// store value, and etcd's default request limit is about 1.5 MiB.
const maxDataSize = 1 << 20

func validateConfigMapData(data map[string]string, binary map[string][]byte) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for k, v := range data {
		errs = append(errs, invalidIfMsgs(field.NewPath("data").Key(k), k, validation.IsConfigMapKey(k))...)
		size += len(k) + len(v)
	}
	for k, v := range binary {
		kp := field.NewPath("binaryData").Key(k)
		errs = append(errs, invalidIfMsgs(kp, k, validation.IsConfigMapKey(k))...)
		if _, dup := data[k]; dup {
			errs = append(errs, field.Invalid(kp, k, "duplicate of key present in data"))
		}
		size += len(k) + len(v)
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", maxDataSize))
	}
	return errs
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	dp := field.NewPath("data")
	size := 0
	for k, v := range s.Data {
		errs = append(errs, invalidIfMsgs(dp.Key(k), k, validation.IsConfigMapKey(k))...)
		size += len(v)
	}
	for k := range s.StringData {
		errs = append(errs, invalidIfMsgs(field.NewPath("stringData").Key(k), k, validation.IsConfigMapKey(k))...)
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(dp, "", maxDataSize))
	}
	need := func(keys ...string) {
		for _, k := range keys {
			if _, ok := s.Data[k]; !ok {
				if _, ok := s.StringData[k]; !ok {
					errs = append(errs, field.Required(dp.Key(k), ""))
				}
			}
		}
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		need(corev1.DockerConfigKey)
	case corev1.SecretTypeDockerConfigJson:
		need(corev1.DockerConfigJsonKey)
	case corev1.SecretTypeBasicAuth:
		if len(s.Data[corev1.BasicAuthUsernameKey]) == 0 && len(s.Data[corev1.BasicAuthPasswordKey]) == 0 &&
			s.StringData[corev1.BasicAuthUsernameKey] == "" && s.StringData[corev1.BasicAuthPasswordKey] == "" {
			errs = append(errs, field.Required(dp.Key(corev1.BasicAuthUsernameKey), ""))
			errs = append(errs, field.Required(dp.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		need(corev1.SSHAuthPrivateKey)
	case corev1.SecretTypeTLS:
		need(corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	return errs
}

// validateImmutableData: a Secret or ConfigMap marked immutable can be
// deleted but never changed, and the mark cannot be taken off.
func validateImmutableData(newImm, oldImm *bool, newData, oldData, newBin, oldBin any) field.ErrorList {
	if oldImm == nil || !*oldImm {
		return nil
	}
	var errs field.ErrorList
	if newImm == nil || !*newImm {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
	}
	if !equalData(newData, oldData) {
		errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
	}
	if !equalData(newBin, oldBin) {
		errs = append(errs, field.Forbidden(field.NewPath("binaryData"), "field is immutable when `immutable` is set"))
	}
	return errs
}

func equalData(a, b any) bool {
	return len(immutable(a, b, field.NewPath("x"))) == 0
}

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	var errs field.ErrorList
	for i, f := range ns.Spec.Finalizers {
		errs = append(errs, invalidIfMsgs(field.NewPath("spec", "finalizers").Index(i), f, validation.IsQualifiedName(string(f)))...)
	}
	return errs
}

func validateNode(n *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec")
	if n.Spec.PodCIDR != "" {
		errs = append(errs, validCIDR(n.Spec.PodCIDR, p.Child("podCIDR"))...)
	}
	for i, c := range n.Spec.PodCIDRs {
		errs = append(errs, validCIDR(c, p.Child("podCIDRs").Index(i))...)
	}
	type taintKey struct {
		key    string
		effect corev1.TaintEffect
	}
	seen := map[taintKey]bool{}
	for i, t := range n.Spec.Taints {
		tp := p.Child("taints").Index(i)
		errs = append(errs, invalidIfMsgs(tp.Child("key"), t.Key, validation.IsQualifiedName(t.Key))...)
		if t.Value != "" {
			errs = append(errs, invalidIfMsgs(tp.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))...)
		}
		errs = append(errs, supportedEffect(t.Effect, tp.Child("effect"))...)
		k := taintKey{t.Key, t.Effect}
		if seen[k] {
			errs = append(errs, field.Duplicate(tp, fmt.Sprintf("%s:%s", t.Key, t.Effect)))
		}
		seen[k] = true
	}
	return errs
}

// standardQuotaResources are the resource names a quota may limit without
// a domain prefix.
var standardQuotaResources = sets.New(
	"pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
	"persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
	"cpu", "memory", "ephemeral-storage", "storage",
	"requests.cpu", "requests.memory", "requests.storage", "requests.ephemeral-storage",
	"limits.cpu", "limits.memory", "limits.ephemeral-storage",
)

// integerQuotaResources count objects, so their quantities are whole.
var integerQuotaResources = sets.New(
	"pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
	"persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
)

func validateQuotaResourceName(name string, p *field.Path) field.ErrorList {
	if standardQuotaResources.Has(name) || strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) ||
		strings.HasPrefix(name, corev1.ResourceRequestsHugePagesPrefix) {
		return nil
	}
	if strings.HasPrefix(name, "count/") {
		if strings.TrimPrefix(name, "count/") == "" {
			return field.ErrorList{field.Invalid(p, name, "must name a resource after count/")}
		}
		return nil
	}
	if !strings.Contains(name, "/") {
		return field.ErrorList{field.Invalid(p, name, "must be a standard resource for quota")}
	}
	return invalidIfMsgs(p, name, validation.IsQualifiedName(name))
}

func validateResourceQuota(q *corev1.ResourceQuota) field.ErrorList {
	var errs field.ErrorList
	hp := field.NewPath("spec", "hard")
	for name, v := range q.Spec.Hard {
		kp := hp.Key(string(name))
		errs = append(errs, validateQuotaResourceName(string(name), kp)...)
		errs = append(errs, nonNegativeQuantity(v, kp)...)
		if (integerQuotaResources.Has(string(name)) || strings.HasPrefix(string(name), "count/")) && v.MilliValue()%1000 != 0 {
			errs = append(errs, field.Invalid(kp, v.String(), "must be an integer"))
		}
	}
	scopes := []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating,
		corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopePriorityClass,
		corev1.ResourceQuotaScopeCrossNamespacePodAffinity, corev1.ResourceQuotaScopeVolumeAttributesClass}
	for i, s := range q.Spec.Scopes {
		errs = append(errs, supported(s, field.NewPath("spec", "scopes").Index(i), scopes...)...)
	}
	if sel := q.Spec.ScopeSelector; sel != nil {
		for i, r := range sel.MatchExpressions {
			rp := field.NewPath("spec", "scopeSelector", "matchExpressions").Index(i)
			errs = append(errs, supported(r.ScopeName, rp.Child("scopeName"), scopes...)...)
			errs = append(errs, supported(r.Operator, rp.Child("operator"), corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn,
				corev1.ScopeSelectorOpExists, corev1.ScopeSelectorOpDoesNotExist)...)
		}
	}
	return errs
}

func validateLimitRange(lr *corev1.LimitRange) field.ErrorList {
	var errs field.ErrorList
	for i, item := range lr.Spec.Limits {
		ip := field.NewPath("spec", "limits").Index(i)
		errs = append(errs, supported(item.Type, ip.Child("type"), corev1.LimitTypePod, corev1.LimitTypeContainer, corev1.LimitTypePersistentVolumeClaim)...)
		if item.Type == corev1.LimitTypePod {
			if len(item.Default) > 0 {
				errs = append(errs, field.Forbidden(ip.Child("default"), "may not be specified when `type` is 'Pod'"))
			}
			if len(item.DefaultRequest) > 0 {
				errs = append(errs, field.Forbidden(ip.Child("defaultRequest"), "may not be specified when `type` is 'Pod'"))
			}
		}
		if item.Type == corev1.LimitTypePersistentVolumeClaim {
			_, minOK := item.Min[corev1.ResourceStorage]
			_, maxOK := item.Max[corev1.ResourceStorage]
			if !minOK && !maxOK {
				errs = append(errs, field.Required(ip.Child("limits"), "either minimum or maximum storage value is required, but neither was provided"))
			}
		}
		for _, m := range []struct {
			name string
			list corev1.ResourceList
		}{{"max", item.Max}, {"min", item.Min}, {"default", item.Default}, {"defaultRequest", item.DefaultRequest}, {"maxLimitRequestRatio", item.MaxLimitRequestRatio}} {
			for rn, q := range m.list {
				errs = append(errs, nonNegativeQuantity(q, ip.Child(m.name).Key(string(rn)))...)
			}
		}
		// Per resource: min <= defaultRequest <= default <= max.
		for rn, minQ := range item.Min {
			if maxQ, ok := item.Max[rn]; ok && minQ.Cmp(maxQ) > 0 {
				errs = append(errs, field.Invalid(ip.Child("min").Key(string(rn)), minQ.String(), fmt.Sprintf("min value %s is greater than max value %s", minQ.String(), maxQ.String())))
			}
		}
		for rn, dr := range item.DefaultRequest {
			drp := ip.Child("defaultRequest").Key(string(rn))
			if minQ, ok := item.Min[rn]; ok && minQ.Cmp(dr) > 0 {
				errs = append(errs, field.Invalid(drp, dr.String(), fmt.Sprintf("min value %s is greater than default request value %s", minQ.String(), dr.String())))
			}
			if d, ok := item.Default[rn]; ok && dr.Cmp(d) > 0 {
				errs = append(errs, field.Invalid(drp, dr.String(), fmt.Sprintf("default request value %s is greater than default limit value %s", dr.String(), d.String())))
			}
			if maxQ, ok := item.Max[rn]; ok && dr.Cmp(maxQ) > 0 {
				errs = append(errs, field.Invalid(drp, dr.String(), fmt.Sprintf("default request value %s is greater than max value %s", dr.String(), maxQ.String())))
			}
		}
		for rn, d := range item.Default {
			dp := ip.Child("default").Key(string(rn))
			if minQ, ok := item.Min[rn]; ok && minQ.Cmp(d) > 0 {
				errs = append(errs, field.Invalid(dp, d.String(), fmt.Sprintf("min value %s is greater than default value %s", minQ.String(), d.String())))
			}
			if maxQ, ok := item.Max[rn]; ok && d.Cmp(maxQ) > 0 {
				errs = append(errs, field.Invalid(dp, d.String(), fmt.Sprintf("default value %s is greater than max value %s", d.String(), maxQ.String())))
			}
		}
		one := resource.MustParse("1")
		for rn, r := range item.MaxLimitRequestRatio {
			if r.Cmp(one) < 0 {
				errs = append(errs, field.Invalid(ip.Child("maxLimitRequestRatio").Key(string(rn)), r.String(), fmt.Sprintf("ratio %s is less than 1", r.String())))
			}
		}
	}
	return errs
}

func validateEvent(e *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	if e.InvolvedObject.Namespace != "" && e.Namespace != "" && e.InvolvedObject.Namespace != e.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("involvedObject", "namespace"), e.InvolvedObject.Namespace, "does not match event.namespace"))
	}
	if e.Type != "" {
		errs = append(errs, supported(e.Type, field.NewPath("type"), corev1.EventTypeNormal, corev1.EventTypeWarning)...)
	}
	if len(e.Reason) > 128 {
		errs = append(errs, field.TooLong(field.NewPath("reason"), "", 128))
	}
	if len(e.Message) > 4096 {
		errs = append(errs, field.TooLong(field.NewPath("message"), "", 4096))
	}
	return errs
}

var accessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod}

func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, p *field.Path) field.ErrorList {
	if len(modes) == 0 {
		return field.ErrorList{field.Required(p, "at least 1 access mode is required")}
	}
	var errs field.ErrorList
	for _, m := range modes {
		errs = append(errs, supported(m, p, accessModes...)...)
		if m == corev1.ReadWriteOncePod && len(modes) > 1 {
			errs = append(errs, field.Forbidden(p, "may not use ReadWriteOncePod with other access modes"))
		}
	}
	return errs
}

func validatePV(pv *corev1.PersistentVolume) field.ErrorList {
	p := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, validateAccessModes(pv.Spec.AccessModes, p.Child("accessModes"))...)
	if len(pv.Spec.Capacity) == 0 {
		errs = append(errs, field.Required(p.Child("capacity"), ""))
	}
	for rn, q := range pv.Spec.Capacity {
		cp := p.Child("capacity").Key(string(rn))
		if rn != corev1.ResourceStorage {
			errs = append(errs, field.NotSupported(cp, rn, []corev1.ResourceName{corev1.ResourceStorage}))
			continue
		}
		if q.Sign() <= 0 {
			errs = append(errs, field.Invalid(cp, q.String(), "must be greater than zero"))
		}
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != "" {
		errs = append(errs, supported(pv.Spec.PersistentVolumeReclaimPolicy, p.Child("persistentVolumeReclaimPolicy"),
			corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimRetain)...)
	}
	if pv.Spec.StorageClassName != "" {
		errs = append(errs, dnsSubdomain(pv.Spec.StorageClassName, p.Child("storageClassName"))...)
	}
	if pv.Spec.VolumeMode != nil {
		errs = append(errs, supported(*pv.Spec.VolumeMode, p.Child("volumeMode"), corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem)...)
	}
	set := setPointerFields(&pv.Spec.PersistentVolumeSource)
	switch {
	case len(set) == 0:
		errs = append(errs, field.Required(p, "must specify a volume type"))
	case len(set) > 1:
		errs = append(errs, field.Forbidden(p.Child(set[1]), "may not specify more than 1 volume type"))
	}
	if hp := pv.Spec.HostPath; hp != nil {
		if hp.Path == "" {
			errs = append(errs, field.Required(p.Child("hostPath", "path"), ""))
		}
		if hp.Type != nil {
			errs = append(errs, validHostPathType(*hp.Type, p.Child("hostPath", "type"))...)
		}
	}
	if l := pv.Spec.Local; l != nil && l.Path == "" {
		errs = append(errs, field.Required(p.Child("local", "path"), ""))
	}
	return errs
}

func validatePVCSpec(s *corev1.PersistentVolumeClaimSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateAccessModes(s.AccessModes, p.Child("accessModes"))...)
	rp := p.Child("resources", "requests").Key(string(corev1.ResourceStorage))
	if q, ok := s.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(rp, ""))
	} else if q.Sign() <= 0 {
		errs = append(errs, field.Invalid(rp, q.String(), "must be greater than zero"))
	}
	if s.StorageClassName != nil && *s.StorageClassName != "" {
		errs = append(errs, dnsSubdomain(*s.StorageClassName, p.Child("storageClassName"))...)
	}
	if s.VolumeMode != nil {
		errs = append(errs, supported(*s.VolumeMode, p.Child("volumeMode"), corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem)...)
	}
	return errs
}

// validatePVCUpdate: a claim can grow (resources.requests), and be bound
// once (volumeName); the rest of its spec is fixed.
func validatePVCUpdate(newC, oldC *corev1.PersistentVolumeClaim) field.ErrorList {
	mutated := newC.Spec.DeepCopy()
	mutated.Resources = oldC.Spec.Resources
	mutated.VolumeAttributesClassName = oldC.Spec.VolumeAttributesClassName
	if oldC.Spec.VolumeName == "" {
		mutated.VolumeName = ""
	}
	if len(immutable(*mutated, oldC.Spec, field.NewPath("spec"))) > 0 {
		return field.ErrorList{field.Forbidden(field.NewPath("spec"), "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims")}
	}
	return nil
}

func validateIngress(ing *networkingv1.Ingress) field.ErrorList {
	p := field.NewPath("spec")
	s := &ing.Spec
	var errs field.ErrorList
	if len(s.Rules) == 0 && s.DefaultBackend == nil {
		errs = append(errs, field.Invalid(p, "", "either `defaultBackend` or `rules` must be specified"))
	}
	if s.DefaultBackend != nil {
		errs = append(errs, validateIngressBackend(s.DefaultBackend, p.Child("defaultBackend"))...)
	}
	if s.IngressClassName != nil {
		errs = append(errs, dnsSubdomain(*s.IngressClassName, p.Child("ingressClassName"))...)
	}
	for i, r := range s.Rules {
		rp := p.Child("rules").Index(i)
		if r.Host != "" {
			errs = append(errs, validateIngressHost(r.Host, rp.Child("host"))...)
		}
		if r.HTTP == nil {
			continue
		}
		pp := rp.Child("http", "paths")
		if len(r.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(pp, ""))
		}
		for j, hp := range r.HTTP.Paths {
			jp := pp.Index(j)
			if hp.PathType == nil {
				errs = append(errs, field.Required(jp.Child("pathType"), "pathType must be specified"))
			} else {
				errs = append(errs, supported(*hp.PathType, jp.Child("pathType"),
					networkingv1.PathTypeExact, networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific)...)
				if *hp.PathType != networkingv1.PathTypeImplementationSpecific && !strings.HasPrefix(hp.Path, "/") {
					errs = append(errs, field.Invalid(jp.Child("path"), hp.Path, "must be an absolute path"))
				}
			}
			errs = append(errs, validateIngressBackend(&hp.Backend, jp.Child("backend"))...)
		}
	}
	for i, t := range s.TLS {
		for j, h := range t.Hosts {
			errs = append(errs, validateIngressHost(h, p.Child("tls").Index(i).Child("hosts").Index(j))...)
		}
	}
	return errs
}

func validateIngressHost(h string, p *field.Path) field.ErrorList {
	if net.ParseIP(h) != nil {
		return field.ErrorList{field.Invalid(p, h, "must be a DNS name, not an IP address")}
	}
	if strings.Contains(h, "*") {
		return invalidIfMsgs(p, h, validation.IsWildcardDNS1123Subdomain(h))
	}
	return invalidIfMsgs(p, h, validation.IsDNS1123Subdomain(h))
}

func validateIngressBackend(b *networkingv1.IngressBackend, p *field.Path) field.ErrorList {
	switch {
	case b.Service != nil && b.Resource != nil:
		return field.ErrorList{field.Invalid(p, "", "cannot set both service and resource backends")}
	case b.Service == nil && b.Resource == nil:
		return field.ErrorList{field.Invalid(p, "", "resource or service backend is required")}
	case b.Resource != nil:
		var errs field.ErrorList
		if b.Resource.Kind == "" {
			errs = append(errs, field.Required(p.Child("resource", "kind"), ""))
		}
		if b.Resource.Name == "" {
			errs = append(errs, field.Required(p.Child("resource", "name"), ""))
		}
		return errs
	}
	var errs field.ErrorList
	sp := p.Child("service")
	if b.Service.Name == "" {
		errs = append(errs, field.Required(sp.Child("name"), ""))
	} else {
		errs = append(errs, invalidIfMsgs(sp.Child("name"), b.Service.Name, validation.IsDNS1035Label(b.Service.Name))...)
	}
	port := b.Service.Port
	switch {
	case port.Name != "" && port.Number != 0:
		errs = append(errs, field.Invalid(sp.Child("port"), port, "cannot set both port name & port number"))
	case port.Name != "":
		errs = append(errs, invalidIfMsgs(sp.Child("port", "name"), port.Name, validation.IsValidPortName(port.Name))...)
	case port.Number != 0:
		errs = append(errs, validPort(port.Number, sp.Child("port", "number"))...)
	default:
		errs = append(errs, field.Required(sp.Child("port"), "port name or number is required"))
	}
	return errs
}

func validatePolicyRules(rules []rbacv1.PolicyRule, namespaced bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range rules {
		rp := p.Index(i)
		if len(r.Verbs) == 0 {
			errs = append(errs, field.Required(rp.Child("verbs"), "verbs must contain at least one value"))
		}
		if len(r.NonResourceURLs) > 0 {
			if namespaced {
				errs = append(errs, field.Invalid(rp.Child("nonResourceURLs"), r.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
			}
			if len(r.APIGroups) > 0 || len(r.Resources) > 0 || len(r.ResourceNames) > 0 {
				errs = append(errs, field.Invalid(rp.Child("nonResourceURLs"), r.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
			}
			continue
		}
		if len(r.APIGroups) == 0 {
			errs = append(errs, field.Required(rp.Child("apiGroups"), "resource rules must supply at least one api group"))
		}
		if len(r.Resources) == 0 {
			errs = append(errs, field.Required(rp.Child("resources"), "resource rules must supply at least one resource"))
		}
	}
	return errs
}

func validateRoleBinding(ref rbacv1.RoleRef, subjects []rbacv1.Subject, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	rp := field.NewPath("roleRef")
	if ref.APIGroup != rbacv1.GroupName {
		errs = append(errs, field.NotSupported(rp.Child("apiGroup"), ref.APIGroup, []string{rbacv1.GroupName}))
	}
	if namespaced {
		errs = append(errs, supported(ref.Kind, rp.Child("kind"), "Role", "ClusterRole")...)
	} else {
		errs = append(errs, supported(ref.Kind, rp.Child("kind"), "ClusterRole")...)
	}
	if ref.Name == "" {
		errs = append(errs, field.Required(rp.Child("name"), ""))
	} else {
		errs = append(errs, invalidIfMsgs(rp.Child("name"), ref.Name, content.IsPathSegmentName(ref.Name))...)
	}
	for i, s := range subjects {
		sp := field.NewPath("subjects").Index(i)
		if s.Name == "" {
			errs = append(errs, field.Required(sp.Child("name"), ""))
		}
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			if s.Name != "" {
				errs = append(errs, dnsSubdomain(s.Name, sp.Child("name"))...)
			}
			if s.APIGroup != "" {
				errs = append(errs, field.NotSupported(sp.Child("apiGroup"), s.APIGroup, []string{""}))
			}
			if !namespaced && s.Namespace == "" {
				errs = append(errs, field.Required(sp.Child("namespace"), ""))
			}
		case rbacv1.UserKind, rbacv1.GroupKind:
			if s.APIGroup != rbacv1.GroupName {
				errs = append(errs, field.NotSupported(sp.Child("apiGroup"), s.APIGroup, []string{rbacv1.GroupName}))
			}
		default:
			errs = append(errs, field.NotSupported(sp.Child("kind"), s.Kind, []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
		}
	}
	return errs
}

func validateStorageClass(sc *storagev1.StorageClass) field.ErrorList {
	var errs field.ErrorList
	if sc.Provisioner == "" {
		errs = append(errs, field.Required(field.NewPath("provisioner"), ""))
	} else {
		errs = append(errs, invalidIfMsgs(field.NewPath("provisioner"), sc.Provisioner, validation.IsQualifiedName(strings.ToLower(sc.Provisioner)))...)
	}
	if sc.ReclaimPolicy != nil {
		errs = append(errs, supported(*sc.ReclaimPolicy, field.NewPath("reclaimPolicy"), corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain)...)
	}
	if sc.VolumeBindingMode != nil {
		errs = append(errs, supported(*sc.VolumeBindingMode, field.NewPath("volumeBindingMode"), storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer)...)
	}
	if len(sc.Parameters) > 512 {
		errs = append(errs, field.TooMany(field.NewPath("parameters"), len(sc.Parameters), 512))
	}
	return errs
}
