package apiserver

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Kind describes one resource the server stores.
type Kind struct {
	GVR        schema.GroupVersionResource
	Kind       string
	Singular   string
	ShortNames []string
	Namespaced bool
	// HasStatus: status is written through UpdateStatus only; Update keeps
	// the stored status (Kubernetes' status subresource).
	HasStatus bool
	// New returns an empty typed object of the kind.
	New func() runtime.Object
}

// GVK is the group/version/kind of the resource.
func (k Kind) GVK() schema.GroupVersionKind { return k.GVR.GroupVersion().WithKind(k.Kind) }

// GroupResource is the resource without its version.
func (k Kind) GroupResource() schema.GroupResource { return k.GVR.GroupResource() }

// Scheme is what the server needs to know about object kinds: which exist,
// how they are defaulted and validated. Package api provides the real one;
// BuiltinScheme is a small stand-in. Its methods are called concurrently
// from every request goroutine and must not keep the objects they are given.
type Scheme interface {
	// Kinds lists the served resources.
	Kinds() []Kind
	// Default fills in defaults, in place.
	Default(obj runtime.Object)
	// Validate checks a new object.
	Validate(obj runtime.Object) field.ErrorList
	// ValidateUpdate checks obj replacing old (immutable fields).
	ValidateUpdate(obj, old runtime.Object) field.ErrorList
}

// BuiltinScheme serves the Kubernetes kinds of issue 4 with a few defaults
// and checks of names only. It stands in for package api's registry.
type BuiltinScheme struct{}

var _ Scheme = BuiltinScheme{}

func k(g, v, r, kind, singular string, namespaced, status bool, newFn func() runtime.Object, short ...string) Kind {
	return Kind{GVR: schema.GroupVersionResource{Group: g, Version: v, Resource: r}, Kind: kind, Singular: singular,
		ShortNames: short, Namespaced: namespaced, HasStatus: status, New: newFn}
}

var builtinKinds = []Kind{
	k("", "v1", "pods", "Pod", "pod", true, true, func() runtime.Object { return &corev1.Pod{} }, "po"),
	k("", "v1", "services", "Service", "service", true, true, func() runtime.Object { return &corev1.Service{} }, "svc"),
	k("", "v1", "endpoints", "Endpoints", "endpoints", true, false, func() runtime.Object { return &corev1.Endpoints{} }, "ep"),
	k("", "v1", "configmaps", "ConfigMap", "configmap", true, false, func() runtime.Object { return &corev1.ConfigMap{} }, "cm"),
	k("", "v1", "secrets", "Secret", "secret", true, false, func() runtime.Object { return &corev1.Secret{} }),
	k("", "v1", "namespaces", "Namespace", "namespace", false, true, func() runtime.Object { return &corev1.Namespace{} }, "ns"),
	k("", "v1", "nodes", "Node", "node", false, true, func() runtime.Object { return &corev1.Node{} }, "no"),
	k("", "v1", "replicationcontrollers", "ReplicationController", "replicationcontroller", true, true, func() runtime.Object { return &corev1.ReplicationController{} }, "rc"),
	k("", "v1", "resourcequotas", "ResourceQuota", "resourcequota", true, true, func() runtime.Object { return &corev1.ResourceQuota{} }, "quota"),
	k("", "v1", "limitranges", "LimitRange", "limitrange", true, false, func() runtime.Object { return &corev1.LimitRange{} }, "limits"),
	k("", "v1", "events", "Event", "event", true, false, func() runtime.Object { return &corev1.Event{} }, "ev"),
	k("", "v1", "serviceaccounts", "ServiceAccount", "serviceaccount", true, false, func() runtime.Object { return &corev1.ServiceAccount{} }, "sa"),
	k("", "v1", "persistentvolumes", "PersistentVolume", "persistentvolume", false, true, func() runtime.Object { return &corev1.PersistentVolume{} }, "pv"),
	k("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", "persistentvolumeclaim", true, true, func() runtime.Object { return &corev1.PersistentVolumeClaim{} }, "pvc"),
	k("apps", "v1", "deployments", "Deployment", "deployment", true, true, func() runtime.Object { return &appsv1.Deployment{} }, "deploy"),
	k("apps", "v1", "replicasets", "ReplicaSet", "replicaset", true, true, func() runtime.Object { return &appsv1.ReplicaSet{} }, "rs"),
	k("apps", "v1", "statefulsets", "StatefulSet", "statefulset", true, true, func() runtime.Object { return &appsv1.StatefulSet{} }, "sts"),
	k("apps", "v1", "daemonsets", "DaemonSet", "daemonset", true, true, func() runtime.Object { return &appsv1.DaemonSet{} }, "ds"),
	k("apps", "v1", "controllerrevisions", "ControllerRevision", "controllerrevision", true, false, func() runtime.Object { return &appsv1.ControllerRevision{} }),
	k("batch", "v1", "jobs", "Job", "job", true, true, func() runtime.Object { return &batchv1.Job{} }),
	k("batch", "v1", "cronjobs", "CronJob", "cronjob", true, true, func() runtime.Object { return &batchv1.CronJob{} }, "cj"),
	k("networking.k8s.io", "v1", "ingresses", "Ingress", "ingress", true, true, func() runtime.Object { return &networkingv1.Ingress{} }, "ing"),
	k("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", "horizontalpodautoscaler", true, true, func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} }, "hpa"),
	k("rbac.authorization.k8s.io", "v1", "roles", "Role", "role", true, false, func() runtime.Object { return &rbacv1.Role{} }),
	k("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", "rolebinding", true, false, func() runtime.Object { return &rbacv1.RoleBinding{} }),
	k("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", "clusterrole", false, false, func() runtime.Object { return &rbacv1.ClusterRole{} }),
	k("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", "clusterrolebinding", false, false, func() runtime.Object { return &rbacv1.ClusterRoleBinding{} }),
	k("storage.k8s.io", "v1", "storageclasses", "StorageClass", "storageclass", false, false, func() runtime.Object { return &storagev1.StorageClass{} }, "sc"),
}

// Kinds implements Scheme.
func (BuiltinScheme) Kinds() []Kind { return builtinKinds }

// Default implements Scheme: the defaults the server's own logic relies on
// (Service type, port protocol and targetPort; Pod restartPolicy).
func (BuiltinScheme) Default(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Service:
		if o.Spec.Type == "" && o.Spec.ExternalName == "" {
			o.Spec.Type = corev1.ServiceTypeClusterIP
		}
		for i := range o.Spec.Ports {
			p := &o.Spec.Ports[i]
			if p.Protocol == "" {
				p.Protocol = corev1.ProtocolTCP
			}
			if p.TargetPort == (intstr.IntOrString{}) {
				p.TargetPort = intstr.FromInt32(p.Port)
			}
		}
	case *corev1.Pod:
		if o.Spec.RestartPolicy == "" {
			o.Spec.RestartPolicy = corev1.RestartPolicyAlways
		}
	}
}

// Validate implements Scheme: names and the Service nodePort range.
func (BuiltinScheme) Validate(obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	m, ok := obj.(interface{ GetName() string })
	if ok {
		if m.GetName() == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "name"), "name or generateName is required"))
		} else if msgs := validation.IsDNS1123Subdomain(m.GetName()); len(msgs) > 0 {
			errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), m.GetName(), strings.Join(msgs, "; ")))
		}
	}
	if svc, ok := obj.(*corev1.Service); ok {
		for i, p := range svc.Spec.Ports {
			if p.NodePort != 0 && (p.NodePort < 30000 || p.NodePort > 32767) {
				errs = append(errs, field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), p.NodePort,
					fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", 30000, 32767)))
			}
		}
	}
	return errs
}

// ValidateUpdate implements Scheme.
func (s BuiltinScheme) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	return s.Validate(obj)
}
