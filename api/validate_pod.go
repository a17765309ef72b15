package api

import (
	"fmt"
	"path"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// podRules are the differences between validating a Pod and a pod template
// inside a workload.
type podRules struct {
	// pod: a Pod object, not a template.
	pod bool
	// restartPolicies allowed; nil means any of Always, OnFailure, Never.
	restartPolicies []corev1.RestartPolicy
}

var allRestartPolicies = []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}

// validatePodTemplate checks a workload's pod template: its labels and
// annotations, and its pod spec.
func validatePodTemplate(t *corev1.PodTemplateSpec, p *field.Path, rules podRules) field.ErrorList {
	errs := validLabels(t.Labels, p.Child("metadata", "labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(t.Annotations, p.Child("metadata", "annotations"))...)
	return append(errs, validatePodSpec(&t.Spec, p.Child("spec"), rules)...)
}

// validatePodSpec checks the parts of a pod spec that hold for Pods and
// templates alike.
func validatePodSpec(s *corev1.PodSpec, p *field.Path, rules podRules) field.ErrorList {
	var errs field.ErrorList
	volumes, volErrs := validateVolumes(s.Volumes, p.Child("volumes"))
	errs = append(errs, volErrs...)

	// Container names are unique across init, regular and ephemeral
	// containers: they name the same things (logs, exec, status).
	names := sets.New[string]()
	if len(s.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	for i := range s.InitContainers {
		errs = append(errs, validateContainer(&s.InitContainers[i], p.Child("initContainers").Index(i), names, volumes, true)...)
	}
	for i := range s.Containers {
		errs = append(errs, validateContainer(&s.Containers[i], p.Child("containers").Index(i), names, volumes, false)...)
	}

	allowed := rules.restartPolicies
	if allowed == nil {
		allowed = allRestartPolicies
	}
	errs = append(errs, supported(s.RestartPolicy, p.Child("restartPolicy"), allowed...)...)
	errs = append(errs, supported(s.DNSPolicy, p.Child("dnsPolicy"),
		corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone)...)
	if s.DNSPolicy == corev1.DNSNone && (s.DNSConfig == nil || len(s.DNSConfig.Nameservers) == 0) {
		errs = append(errs, field.Required(p.Child("dnsConfig"), "must provide `dnsConfig` with at least one nameserver when `dnsPolicy` is None"))
	}
	if s.DNSConfig != nil {
		for i, ns := range s.DNSConfig.Nameservers {
			errs = append(errs, validIP(ns, p.Child("dnsConfig", "nameservers").Index(i))...)
		}
	}
	errs = append(errs, validLabels(s.NodeSelector, p.Child("nodeSelector"))...)
	if s.ServiceAccountName != "" {
		errs = append(errs, dnsSubdomain(s.ServiceAccountName, p.Child("serviceAccountName"))...)
	}
	if s.NodeName != "" {
		errs = append(errs, dnsSubdomain(s.NodeName, p.Child("nodeName"))...)
	}
	if s.Hostname != "" {
		errs = append(errs, dnsLabel(s.Hostname, p.Child("hostname"))...)
	}
	if s.Subdomain != "" {
		errs = append(errs, dnsLabel(s.Subdomain, p.Child("subdomain"))...)
	}
	if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds < 1 {
		errs = append(errs, field.Invalid(p.Child("activeDeadlineSeconds"), *s.ActiveDeadlineSeconds, "must be between 1 and 2147483647, inclusive"))
	}
	if s.SchedulerName != "" {
		errs = append(errs, dnsSubdomain(s.SchedulerName, p.Child("schedulerName"))...)
	}
	errs = append(errs, validateAffinity(s.Affinity, p.Child("affinity"))...)
	errs = append(errs, validateTopologySpread(s.TopologySpreadConstraints, p.Child("topologySpreadConstraints"))...)
	for i, t := range s.Tolerations {
		errs = append(errs, validateToleration(t, p.Child("tolerations").Index(i))...)
	}
	// Two containers cannot bind the same port on the node.
	hostPorts := sets.New[string]()
	for i, c := range s.Containers {
		for j, port := range c.Ports {
			if port.HostPort == 0 {
				continue
			}
			key := fmt.Sprintf("%s/%s/%d", port.HostIP, port.Protocol, port.HostPort)
			if hostPorts.Has(key) {
				errs = append(errs, field.Duplicate(p.Child("containers").Index(i).Child("ports").Index(j).Child("hostPort"), key))
			}
			hostPorts.Insert(key)
		}
	}
	if s.HostNetwork {
		for i, c := range s.Containers {
			for j, port := range c.Ports {
				if port.HostPort != port.ContainerPort {
					errs = append(errs, field.Invalid(p.Child("containers").Index(i).Child("ports").Index(j).Child("containerPort"),
						port.ContainerPort, "must match `hostPort` when `hostNetwork` is true"))
				}
			}
		}
	}
	return errs
}

// validatePodOnly checks what Kubernetes checks only on Pods (not on
// templates, for compatibility with older workloads).
func validatePodOnly(s *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range s.Containers {
		if c.Image != strings.TrimSpace(c.Image) {
			errs = append(errs, field.Invalid(p.Child("containers").Index(i).Child("image"), c.Image, "must not have leading or trailing whitespace"))
		}
	}
	return errs
}

func validateContainer(c *corev1.Container, p *field.Path, names sets.Set[string], volumes sets.Set[string], init bool) field.ErrorList {
	var errs field.ErrorList
	switch {
	case c.Name == "":
		errs = append(errs, field.Required(p.Child("name"), ""))
	case names.Has(c.Name):
		errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
	default:
		errs = append(errs, dnsLabel(c.Name, p.Child("name"))...)
	}
	names.Insert(c.Name)
	if c.Image == "" {
		errs = append(errs, field.Required(p.Child("image"), ""))
	}
	errs = append(errs, supported(c.ImagePullPolicy, p.Child("imagePullPolicy"),
		corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)...)
	errs = append(errs, supported(c.TerminationMessagePolicy, p.Child("terminationMessagePolicy"),
		corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError)...)
	if c.RestartPolicy != nil {
		if !init {
			errs = append(errs, field.Forbidden(p.Child("restartPolicy"), "may not be set for non-init containers"))
		} else if *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			errs = append(errs, field.NotSupported(p.Child("restartPolicy"), *c.RestartPolicy, []corev1.ContainerRestartPolicy{corev1.ContainerRestartPolicyAlways}))
		}
	}
	sidecar := init && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways

	portNames := sets.New[string]()
	for i, port := range c.Ports {
		pp := p.Child("ports").Index(i)
		if port.Name != "" {
			errs = append(errs, invalidIfMsgs(pp.Child("name"), port.Name, validation.IsValidPortName(port.Name))...)
			if portNames.Has(port.Name) {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			portNames.Insert(port.Name)
		}
		if port.ContainerPort == 0 {
			errs = append(errs, field.Required(pp.Child("containerPort"), ""))
		} else {
			errs = append(errs, validPort(port.ContainerPort, pp.Child("containerPort"))...)
		}
		if port.HostPort != 0 {
			errs = append(errs, validPort(port.HostPort, pp.Child("hostPort"))...)
		}
		errs = append(errs, supported(port.Protocol, pp.Child("protocol"), corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
	}
	errs = append(errs, validateEnv(c.Env, p.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, p.Child("envFrom"))...)
	errs = append(errs, validateResources(&c.Resources, p.Child("resources"))...)
	errs = append(errs, validateMounts(c.VolumeMounts, volumes, p.Child("volumeMounts"))...)

	// Plain init containers run to completion: probes make no sense on
	// them. Sidecars (init containers that restart) may have them.
	if init && !sidecar {
		for _, pr := range []struct {
			probe *corev1.Probe
			name  string
		}{{c.LivenessProbe, "livenessProbe"}, {c.ReadinessProbe, "readinessProbe"}, {c.StartupProbe, "startupProbe"}} {
			if pr.probe != nil {
				errs = append(errs, field.Forbidden(p.Child(pr.name), "may not be set for init containers without restartPolicy=Always"))
			}
		}
		return errs
	}
	errs = append(errs, validateProbe(c.LivenessProbe, p.Child("livenessProbe"), true)...)
	errs = append(errs, validateProbe(c.ReadinessProbe, p.Child("readinessProbe"), false)...)
	errs = append(errs, validateProbe(c.StartupProbe, p.Child("startupProbe"), true)...)
	return errs
}

func validateEnv(env []corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		ep := p.Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(ep.Child("name"), ""))
		} else {
			errs = append(errs, invalidIfMsgs(ep.Child("name"), e.Name, validation.IsRelaxedEnvVarName(e.Name))...)
		}
		if e.ValueFrom == nil {
			continue
		}
		vp := ep.Child("valueFrom")
		n := 0
		if e.ValueFrom.FieldRef != nil {
			n++
			if e.ValueFrom.FieldRef.FieldPath == "" {
				errs = append(errs, field.Required(vp.Child("fieldRef", "fieldPath"), ""))
			}
		}
		if e.ValueFrom.ResourceFieldRef != nil {
			n++
			if e.ValueFrom.ResourceFieldRef.Resource == "" {
				errs = append(errs, field.Required(vp.Child("resourceFieldRef", "resource"), ""))
			}
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			n++
			errs = append(errs, validateKeyRef(r.Name, r.Key, vp.Child("configMapKeyRef"))...)
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			n++
			errs = append(errs, validateKeyRef(r.Name, r.Key, vp.Child("secretKeyRef"))...)
		}
		if e.ValueFrom.FileKeyRef != nil {
			n++
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(vp, "", "may not have more than one field specified at a time"))
		case e.Value != "":
			errs = append(errs, field.Invalid(vp, "", "may not be specified when `value` is not empty"))
		}
	}
	return errs
}

func validateKeyRef(name, key string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else {
		errs = append(errs, dnsSubdomain(name, p.Child("name"))...)
	}
	if key == "" {
		errs = append(errs, field.Required(p.Child("key"), ""))
	} else {
		errs = append(errs, invalidIfMsgs(p.Child("key"), key, validation.IsConfigMapKey(key))...)
	}
	return errs
}

func validateEnvFrom(from []corev1.EnvFromSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, f := range from {
		fp := p.Index(i)
		if f.Prefix != "" {
			errs = append(errs, invalidIfMsgs(fp.Child("prefix"), f.Prefix, validation.IsRelaxedEnvVarName(f.Prefix))...)
		}
		n := 0
		if f.ConfigMapRef != nil {
			n++
			errs = append(errs, refName(f.ConfigMapRef.Name, fp.Child("configMapRef", "name"))...)
		}
		if f.SecretRef != nil {
			n++
			errs = append(errs, refName(f.SecretRef.Name, fp.Child("secretRef", "name"))...)
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(fp, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(fp, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

func refName(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return dnsSubdomain(name, p)
}

// validateResources checks requests and limits: known resource names,
// non-negative quantities, and no request above its limit.
func validateResources(r *corev1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for name, q := range r.Limits {
		lp := p.Child("limits").Key(string(name))
		errs = append(errs, validateContainerResourceName(name, lp)...)
		errs = append(errs, nonNegativeQuantity(q, lp)...)
	}
	for name, q := range r.Requests {
		rp := p.Child("requests").Key(string(name))
		errs = append(errs, validateContainerResourceName(name, rp)...)
		errs = append(errs, nonNegativeQuantity(q, rp)...)
		limit, hasLimit := r.Limits[name]
		if hasLimit && q.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(rp, q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
		}
		// Extended resources (vendor.com/gpu) cannot be overcommitted.
		if isExtendedResource(name) && (!hasLimit || q.Cmp(limit) != 0) {
			errs = append(errs, field.Invalid(rp, q.String(), fmt.Sprintf("must be equal to %s limit", name)))
		}
	}
	for name := range r.Requests {
		if strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
			if _, ok := r.Limits[name]; !ok {
				errs = append(errs, field.Required(p.Child("limits").Key(string(name)), "hugepages need a limit equal to their request"))
			}
		}
	}
	return errs
}

func nonNegativeQuantity(q resource.Quantity, p *field.Path) field.ErrorList {
	if q.Sign() < 0 {
		return field.ErrorList{field.Invalid(p, q.String(), "must be greater than or equal to 0")}
	}
	return nil
}

func isExtendedResource(name corev1.ResourceName) bool {
	s := string(name)
	return strings.Contains(s, "/") && !strings.HasPrefix(s, "kubernetes.io/") && !strings.HasPrefix(s, corev1.ResourceDefaultNamespacePrefix)
}

func validateContainerResourceName(name corev1.ResourceName, p *field.Path) field.ErrorList {
	s := string(name)
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return nil
	}
	if strings.HasPrefix(s, corev1.ResourceHugePagesPrefix) {
		if _, err := resource.ParseQuantity(strings.TrimPrefix(s, corev1.ResourceHugePagesPrefix)); err != nil {
			return field.ErrorList{field.Invalid(p, s, "must be hugepages-<size>, like hugepages-2Mi")}
		}
		return nil
	}
	if !strings.Contains(s, "/") {
		return field.ErrorList{field.Invalid(p, s, "must be a standard resource type (cpu, memory, ephemeral-storage, hugepages-<size>) or fully qualified (example.com/gpu)")}
	}
	return invalidIfMsgs(p, s, validation.IsQualifiedName(s))
}

// validateVolumes checks names and sources and returns the set of names,
// for mounts to refer to.
func validateVolumes(vols []corev1.Volume, p *field.Path) (sets.Set[string], field.ErrorList) {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, v := range vols {
		vp := p.Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(vp.Child("name"), ""))
		case names.Has(v.Name):
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		default:
			errs = append(errs, dnsLabel(v.Name, vp.Child("name"))...)
		}
		names.Insert(v.Name)
		errs = append(errs, validateVolumeSource(&v.VolumeSource, vp)...)
	}
	return names, errs
}

// setPointerFields counts the non-nil pointer fields of a "one of" struct
// (a volume source) and returns their JSON names.
func setPointerFields(v any) []string {
	rv := reflect.ValueOf(v).Elem()
	var set []string
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		if f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
			set = append(set, name)
		}
	}
	return set
}

func validateVolumeSource(s *corev1.VolumeSource, p *field.Path) field.ErrorList {
	set := setPointerFields(s)
	switch {
	case len(set) == 0:
		return field.ErrorList{field.Required(p, "must specify a volume type")}
	case len(set) > 1:
		return field.ErrorList{field.Forbidden(p.Child(set[1]), "may not specify more than 1 volume type")}
	}
	var errs field.ErrorList
	switch {
	case s.HostPath != nil:
		if s.HostPath.Path == "" {
			errs = append(errs, field.Required(p.Child("hostPath", "path"), ""))
		}
		if s.HostPath.Type != nil {
			errs = append(errs, validHostPathType(*s.HostPath.Type, p.Child("hostPath", "type"))...)
		}
	case s.EmptyDir != nil:
		if l := s.EmptyDir.SizeLimit; l != nil {
			errs = append(errs, nonNegativeQuantity(*l, p.Child("emptyDir", "sizeLimit"))...)
		}
		if m := s.EmptyDir.Medium; m != corev1.StorageMediumDefault && m != corev1.StorageMediumMemory && !strings.HasPrefix(string(m), string(corev1.StorageMediumHugePages)) {
			errs = append(errs, field.NotSupported(p.Child("emptyDir", "medium"), m, []corev1.StorageMedium{corev1.StorageMediumDefault, corev1.StorageMediumMemory, corev1.StorageMediumHugePages}))
		}
	case s.ConfigMap != nil:
		errs = append(errs, refName(s.ConfigMap.Name, p.Child("configMap", "name"))...)
		errs = append(errs, validateKeyPaths(s.ConfigMap.Items, p.Child("configMap", "items"))...)
		errs = append(errs, validateMode(s.ConfigMap.DefaultMode, p.Child("configMap", "defaultMode"))...)
	case s.Secret != nil:
		errs = append(errs, refName(s.Secret.SecretName, p.Child("secret", "secretName"))...)
		errs = append(errs, validateKeyPaths(s.Secret.Items, p.Child("secret", "items"))...)
		errs = append(errs, validateMode(s.Secret.DefaultMode, p.Child("secret", "defaultMode"))...)
	case s.PersistentVolumeClaim != nil:
		if s.PersistentVolumeClaim.ClaimName == "" {
			errs = append(errs, field.Required(p.Child("persistentVolumeClaim", "claimName"), ""))
		}
	case s.NFS != nil:
		if s.NFS.Server == "" {
			errs = append(errs, field.Required(p.Child("nfs", "server"), ""))
		}
		if !path.IsAbs(s.NFS.Path) {
			errs = append(errs, field.Invalid(p.Child("nfs", "path"), s.NFS.Path, "must be an absolute path"))
		}
	}
	return errs
}

func validHostPathType(t corev1.HostPathType, p *field.Path) field.ErrorList {
	switch t {
	case corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
		corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev:
		return nil
	}
	return field.ErrorList{field.NotSupported(p, t, []corev1.HostPathType{corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate,
		corev1.HostPathDirectory, corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket,
		corev1.HostPathCharDev, corev1.HostPathBlockDev})}
}

func validateMode(mode *int32, p *field.Path) field.ErrorList {
	if mode != nil && (*mode < 0 || *mode > 0o777) {
		return field.ErrorList{field.Invalid(p, *mode, "must be a number between 0 and 0777 (octal), both inclusive")}
	}
	return nil
}

func validateKeyPaths(items []corev1.KeyToPath, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(ip.Child("key"), ""))
		}
		errs = append(errs, validateRelativePath(it.Path, ip.Child("path"))...)
		errs = append(errs, validateMode(it.Mode, ip.Child("mode"))...)
	}
	return errs
}

// validateRelativePath: a path inside a volume, which must stay inside it.
func validateRelativePath(p string, fp *field.Path) field.ErrorList {
	if p == "" {
		return field.ErrorList{field.Required(fp, "")}
	}
	if path.IsAbs(p) {
		return field.ErrorList{field.Invalid(fp, p, "must be a relative path")}
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return field.ErrorList{field.Invalid(fp, p, "must not contain '..'")}
		}
	}
	return nil
}

func validateMounts(mounts []corev1.VolumeMount, volumes sets.Set[string], p *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := sets.New[string]()
	for i, m := range mounts {
		mp := p.Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(mp.Child("name"), ""))
		} else if !volumes.Has(m.Name) {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		} else if paths.Has(m.MountPath) {
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths.Insert(m.MountPath)
		if m.SubPath != "" {
			errs = append(errs, validateRelativePath(m.SubPath, mp.Child("subPath"))...)
		}
	}
	return errs
}

func validateProbe(pr *corev1.Probe, p *field.Path, successMustBeOne bool) field.ErrorList {
	if pr == nil {
		return nil
	}
	var errs field.ErrorList
	n := 0
	if pr.Exec != nil {
		n++
		if len(pr.Exec.Command) == 0 {
			errs = append(errs, field.Required(p.Child("exec", "command"), ""))
		}
	}
	if pr.HTTPGet != nil {
		n++
		h := pr.HTTPGet
		errs = append(errs, validPortNumOrName(h.Port, p.Child("httpGet", "port"))...)
		if h.Scheme != corev1.URISchemeHTTP && h.Scheme != corev1.URISchemeHTTPS {
			errs = append(errs, field.NotSupported(p.Child("httpGet", "scheme"), h.Scheme, []corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}))
		}
		for i, hd := range h.HTTPHeaders {
			errs = append(errs, invalidIfMsgs(p.Child("httpGet", "httpHeaders").Index(i).Child("name"), hd.Name, validation.IsHTTPHeaderName(hd.Name))...)
		}
	}
	if pr.TCPSocket != nil {
		n++
		errs = append(errs, validPortNumOrName(pr.TCPSocket.Port, p.Child("tcpSocket", "port"))...)
	}
	if pr.GRPC != nil {
		n++
		errs = append(errs, validPort(pr.GRPC.Port, p.Child("grpc", "port"))...)
	}
	switch {
	case n == 0:
		errs = append(errs, field.Required(p, "must specify a handler type"))
	case n > 1:
		errs = append(errs, field.Forbidden(p, "may not specify more than 1 handler type"))
	}
	errs = append(errs, nonNegative(int64(pr.InitialDelaySeconds), p.Child("initialDelaySeconds"))...)
	errs = append(errs, nonNegative(int64(pr.TimeoutSeconds), p.Child("timeoutSeconds"))...)
	errs = append(errs, nonNegative(int64(pr.PeriodSeconds), p.Child("periodSeconds"))...)
	errs = append(errs, nonNegative(int64(pr.SuccessThreshold), p.Child("successThreshold"))...)
	errs = append(errs, nonNegative(int64(pr.FailureThreshold), p.Child("failureThreshold"))...)
	if successMustBeOne && pr.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(p.Child("successThreshold"), pr.SuccessThreshold, "must be 1"))
	}
	errs = append(errs, positivePtr(pr.TerminationGracePeriodSeconds, p.Child("terminationGracePeriodSeconds"))...)
	return errs
}

func validateToleration(t corev1.Toleration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t.Key != "" {
		errs = append(errs, invalidIfMsgs(p.Child("key"), t.Key, validation.IsQualifiedName(t.Key))...)
	}
	if t.Key == "" && t.Operator != corev1.TolerationOpExists {
		errs = append(errs, field.Invalid(p.Child("operator"), t.Operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
	}
	switch t.Operator {
	case corev1.TolerationOpEqual, "":
		errs = append(errs, invalidIfMsgs(p.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))...)
	case corev1.TolerationOpExists:
		if t.Value != "" {
			errs = append(errs, field.Invalid(p.Child("operator"), t.Value, "value must be empty when `operator` is 'Exists'"))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("operator"), t.Operator, []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
	}
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		errs = append(errs, field.Invalid(p.Child("effect"), t.Effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
	}
	if t.Effect != "" {
		errs = append(errs, supportedEffect(t.Effect, p.Child("effect"))...)
	}
	return errs
}

func supportedEffect(e corev1.TaintEffect, p *field.Path) field.ErrorList {
	return supported(e, p, corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute)
}

// validatePodUpdate allows what Kubernetes allows on a running pod: images,
// activeDeadlineSeconds (set or shortened), added tolerations, and a lowered
// terminationGracePeriodSeconds; nothing else in spec may change.
func validatePodUpdate(newPod, oldPod *corev1.Pod) field.ErrorList {
	p := field.NewPath("spec")
	var errs field.ErrorList
	if oldPod.Spec.ActiveDeadlineSeconds != nil {
		if newPod.Spec.ActiveDeadlineSeconds == nil {
			errs = append(errs, field.Invalid(p.Child("activeDeadlineSeconds"), nil, "must not update from a positive integer to nil value"))
		} else if *newPod.Spec.ActiveDeadlineSeconds > *oldPod.Spec.ActiveDeadlineSeconds {
			errs = append(errs, field.Invalid(p.Child("activeDeadlineSeconds"), *newPod.Spec.ActiveDeadlineSeconds, "must be less than or equal to previous value"))
		}
	}
	// Compare the specs with the mutable fields taken from the old one.
	mutated := newPod.Spec.DeepCopy()
	if len(mutated.Containers) == len(oldPod.Spec.Containers) {
		for i := range mutated.Containers {
			mutated.Containers[i].Image = oldPod.Spec.Containers[i].Image
		}
	}
	if len(mutated.InitContainers) == len(oldPod.Spec.InitContainers) {
		for i := range mutated.InitContainers {
			mutated.InitContainers[i].Image = oldPod.Spec.InitContainers[i].Image
		}
	}
	mutated.ActiveDeadlineSeconds = oldPod.Spec.ActiveDeadlineSeconds
	if oldPod.Spec.NodeName == "" {
		mutated.NodeName = "" // binding sets it once
	}
	if mutated.TerminationGracePeriodSeconds != nil && oldPod.Spec.TerminationGracePeriodSeconds != nil &&
		*mutated.TerminationGracePeriodSeconds <= *oldPod.Spec.TerminationGracePeriodSeconds {
		mutated.TerminationGracePeriodSeconds = oldPod.Spec.TerminationGracePeriodSeconds
	}
	if tolerationsAdded(oldPod.Spec.Tolerations, mutated.Tolerations) {
		mutated.Tolerations = oldPod.Spec.Tolerations
	}
	if !apiequality.Semantic.DeepEqual(*mutated, oldPod.Spec) {
		errs = append(errs, field.Forbidden(p, "pod updates may not change fields other than `spec.containers[*].image`, "+
			"`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) "+
			"or `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"))
	}
	return errs
}

// tolerationsAdded reports whether newT keeps every toleration of oldT.
func tolerationsAdded(oldT, newT []corev1.Toleration) bool {
	for _, o := range oldT {
		found := false
		for _, n := range newT {
			if apiequality.Semantic.DeepEqual(o, n) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
