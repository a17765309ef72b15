package api

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PortRange is an inclusive range of ports, such as the NodePort range.
type PortRange struct {
	Base int // first port
	Size int // number of ports
}

// Contains reports whether port is in the range.
func (r PortRange) Contains(port int) bool {
	return port >= r.Base && port < r.Base+r.Size
}

// String is the "30000-32767" form of the range.
func (r PortRange) String() string {
	return fmt.Sprintf("%d-%d", r.Base, r.Base+r.Size-1)
}

// ParsePortRange parses "30000-32767" (or a single port "8080").
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, found := strings.Cut(strings.TrimSpace(s), "-")
	if !found {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return PortRange{}, fmt.Errorf("invalid port range %q: want LOW-HIGH within 1-65535", s)
	}
	return PortRange{Base: a, Size: b - a + 1}, nil
}

// Validator validates objects as Kubernetes' API server does on create and
// update. Its settings are those of the cluster that change what is valid.
type Validator struct {
	// NodePorts is the range NodePort and LoadBalancer services draw their
	// node ports from (the API server's --service-node-port-range).
	NodePorts PortRange
}

// DefaultValidator is a Validator with Kubernetes' default settings.
func DefaultValidator() Validator {
	return Validator{NodePorts: PortRange{Base: 30000, Size: 2768}}
}

// Validate checks the Validator's own settings.
func (v Validator) Validate() error {
	if v.NodePorts.Base < 1 || v.NodePorts.Size < 1 || v.NodePorts.Base+v.NodePorts.Size-1 > 65535 {
		return fmt.Errorf("node port range %s is not within 1-65535", v.NodePorts)
	}
	return nil
}

// Validate checks a new object with the default settings; see
// Validator.ValidateObject.
func Validate(obj runtime.Object) field.ErrorList {
	return DefaultValidator().ValidateObject(obj)
}

// ValidateUpdate checks an update with the default settings; see
// Validator.ValidateObjectUpdate. Run Validate on the new object too.
func ValidateUpdate(newObj, oldObj runtime.Object) field.ErrorList {
	return DefaultValidator().ValidateObjectUpdate(newObj, oldObj)
}

// ValidateObject checks an object about to be created. Like Kubernetes, it
// expects a defaulted object (see Default): a field Default always sets is
// required here. Errors carry field paths (spec.template.spec.containers[0].name)
// and Kubernetes' wording.
func (v Validator) ValidateObject(obj runtime.Object) field.ErrorList {
	info, err := KindOf(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	om, err := objectMeta(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	errs := apivalidation.ValidateObjectMeta(om, info.Namespaced, nameRule(info), field.NewPath("metadata"))
	errs = append(errs, v.validateSpec(obj)...)
	return append(errs, validateStatus(obj)...)
}

// nameRule is the rule each kind's names follow in Kubernetes.
func nameRule(info KindInfo) apivalidation.ValidateNameFunc {
	switch info.GVK.Kind {
	case "Service":
		return apivalidation.NameIsDNS1035Label
	case "Namespace":
		return apivalidation.NameIsDNSLabel
	case "HorizontalPodAutoscaler", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Event":
		return pathSegmentName
	}
	return apivalidation.NameIsDNSSubdomain
}

func (v Validator) validateSpec(obj runtime.Object) field.ErrorList {
	spec := field.NewPath("spec")
	switch o := obj.(type) {
	case *corev1.Pod:
		errs := validatePodSpec(&o.Spec, spec, podRules{pod: true})
		return append(errs, validatePodOnly(&o.Spec, spec)...)
	case *corev1.Service:
		return v.validateService(o)
	//lint:ignore SA1019 Endpoints is one of the kinds Skiff serves, as Kubernetes still does.
	case *corev1.Endpoints:
		return validateEndpoints(o)
	case *corev1.ConfigMap:
		return validateConfigMapData(o.Data, o.BinaryData)
	case *corev1.Secret:
		return validateSecret(o)
	case *corev1.Namespace:
		return validateNamespace(o)
	case *corev1.Node:
		return validateNode(o)
	case *corev1.ReplicationController:
		return validateReplicationController(o)
	case *corev1.ResourceQuota:
		return validateResourceQuota(o)
	case *corev1.LimitRange:
		return validateLimitRange(o)
	case *corev1.Event:
		return validateEvent(o)
	case *corev1.ServiceAccount:
		return nil
	case *corev1.PersistentVolume:
		return validatePV(o)
	case *corev1.PersistentVolumeClaim:
		return validatePVCSpec(&o.Spec, spec)
	case *appsv1.Deployment:
		return validateDeployment(o)
	case *appsv1.ReplicaSet:
		return validateReplicaSet(o)
	case *appsv1.StatefulSet:
		return validateStatefulSet(o)
	case *appsv1.DaemonSet:
		return validateDaemonSet(o)
	case *appsv1.ControllerRevision:
		return validateControllerRevision(o)
	case *batchv1.Job:
		return validateJobSpec(&o.Spec, spec, true)
	case *batchv1.CronJob:
		return validateCronJob(o)
	case *networkingv1.Ingress:
		return validateIngress(o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		return validateHPA(o)
	case *rbacv1.Role:
		return validatePolicyRules(o.Rules, true, field.NewPath("rules"))
	case *rbacv1.ClusterRole:
		return validatePolicyRules(o.Rules, false, field.NewPath("rules"))
	case *rbacv1.RoleBinding:
		return validateRoleBinding(o.RoleRef, o.Subjects, true)
	case *rbacv1.ClusterRoleBinding:
		return validateRoleBinding(o.RoleRef, o.Subjects, false)
	case *storagev1.StorageClass:
		return validateStorageClass(o)
	case *coordinationv1.Lease:
		return validateLease(o)
	}
	return nil
}

// pathSegmentName is the rule for names that only need to fit in a URL
// path segment (RBAC objects, HPAs, events): no "/" or "%", not "." or "..".
func pathSegmentName(name string, prefix bool) []string {
	return content.IsPathSegmentName(name)
}

// Helpers shared by the kinds' validations.

func nonNegative(v int64, p *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(v, p)
}

func nonNegativePtr[T ~int32 | ~int64](v *T, p *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return nonNegative(int64(*v), p)
}

func positivePtr[T ~int32 | ~int64](v *T, p *field.Path) field.ErrorList {
	if v == nil || *v > 0 {
		return nil
	}
	return field.ErrorList{field.Invalid(p, *v, "must be greater than 0")}
}

func invalidIfMsgs(p *field.Path, value any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, m := range msgs {
		errs = append(errs, field.Invalid(p, value, m))
	}
	return errs
}

func dnsLabel(name string, p *field.Path) field.ErrorList {
	return invalidIfMsgs(p, name, validation.IsDNS1123Label(name))
}

func dnsSubdomain(name string, p *field.Path) field.ErrorList {
	return invalidIfMsgs(p, name, validation.IsDNS1123Subdomain(name))
}

func validPort(port int32, p *field.Path) field.ErrorList {
	return invalidIfMsgs(p, port, validation.IsValidPortNum(int(port)))
}

// validPortNumOrName checks a port given as a number (1-65535) or as a
// named container port (an IANA service name).
func validPortNumOrName(port intstr.IntOrString, p *field.Path) field.ErrorList {
	switch port.Type {
	case intstr.Int:
		return invalidIfMsgs(p, port.IntValue(), validation.IsValidPortNum(port.IntValue()))
	case intstr.String:
		return invalidIfMsgs(p, port.StrVal, validation.IsValidPortName(port.StrVal))
	}
	return field.ErrorList{field.InternalError(p, fmt.Errorf("unknown type: %v", port.Type))}
}

func validIP(ip string, p *field.Path) field.ErrorList {
	if net.ParseIP(ip) == nil {
		return field.ErrorList{field.Invalid(p, ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")}
	}
	return nil
}

func validCIDR(cidr string, p *field.Path) field.ErrorList {
	if _, _, err := net.ParseCIDR(cidr); err != nil {
		return field.ErrorList{field.Invalid(p, cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")}
	}
	return nil
}

func validLabels(m map[string]string, p *field.Path) field.ErrorList {
	return metavalidation.ValidateLabels(m, p)
}

func immutable(newVal, oldVal any, p *field.Path) field.ErrorList {
	return apivalidation.ValidateImmutableField(newVal, oldVal, p)
}

func supported[T ~string](value T, p *field.Path, allowed ...T) field.ErrorList {
	if value == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return field.ErrorList{field.NotSupported(p, value, allowed)}
}

// sortedKeys returns a map's keys in order, for deterministic errors.
func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
