package api

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func (v Validator) validateService(svc *corev1.Service) field.ErrorList {
	s := &svc.Spec
	p := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, supported(s.Type, p.Child("type"), corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)...)
	headless := s.ClusterIP == corev1.ClusterIPNone

	switch s.Type {
	case corev1.ServiceTypeExternalName:
		if s.ExternalName == "" {
			errs = append(errs, field.Required(p.Child("externalName"), ""))
		} else {
			name := strings.TrimSuffix(s.ExternalName, ".")
			errs = append(errs, invalidIfMsgs(p.Child("externalName"), s.ExternalName, validation.IsDNS1123Subdomain(name))...)
		}
		if s.ClusterIP != "" {
			errs = append(errs, field.Forbidden(p.Child("clusterIP"), "may not be set for ExternalName services"))
		}
	case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		if headless {
			errs = append(errs, field.Invalid(p.Child("clusterIP"), s.ClusterIP, fmt.Sprintf("may not be set to 'None' for %s services", s.Type)))
		}
	}
	if s.ClusterIP != "" && !headless {
		errs = append(errs, validIP(s.ClusterIP, p.Child("clusterIP"))...)
	}
	for i, ip := range s.ClusterIPs {
		if i == 0 && s.ClusterIP != "" && ip != s.ClusterIP {
			errs = append(errs, field.Invalid(p.Child("clusterIPs").Index(0), ip, "must match `clusterIP`"))
		}
		if ip != corev1.ClusterIPNone {
			errs = append(errs, validIP(ip, p.Child("clusterIPs").Index(i))...)
		}
	}

	if len(s.Ports) == 0 && !headless && s.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(p.Child("ports"), ""))
	}
	names := sets.New[string]()
	type portKey struct {
		port     int32
		protocol corev1.Protocol
	}
	seen := map[portKey]bool{}
	nodePorts := map[portKey]bool{}
	for i, port := range s.Ports {
		pp := p.Child("ports").Index(i)
		if len(s.Ports) > 1 && port.Name == "" {
			errs = append(errs, field.Required(pp.Child("name"), ""))
		} else if port.Name != "" {
			errs = append(errs, dnsLabel(port.Name, pp.Child("name"))...)
			if names.Has(port.Name) {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			names.Insert(port.Name)
		}
		errs = append(errs, validPort(port.Port, pp.Child("port"))...)
		errs = append(errs, supported(port.Protocol, pp.Child("protocol"), corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
		if s.Type != corev1.ServiceTypeExternalName {
			errs = append(errs, validPortNumOrName(port.TargetPort, pp.Child("targetPort"))...)
		}
		key := portKey{port.Port, port.Protocol}
		if seen[key] {
			errs = append(errs, field.Duplicate(pp, fmt.Sprintf("%d/%s", port.Port, port.Protocol)))
		}
		seen[key] = true

		if port.NodePort == 0 {
			continue
		}
		np := pp.Child("nodePort")
		if s.Type != corev1.ServiceTypeNodePort && s.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(np, fmt.Sprintf("may not be used when `type` is '%s'", s.Type)))
			continue
		}
		if !v.NodePorts.Contains(int(port.NodePort)) {
			errs = append(errs, field.Invalid(np, port.NodePort,
				fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", v.NodePorts)))
			continue
		}
		nk := portKey{port.NodePort, port.Protocol}
		if nodePorts[nk] {
			errs = append(errs, field.Duplicate(np, port.NodePort))
		}
		nodePorts[nk] = true
	}

	errs = append(errs, validLabels(s.Selector, p.Child("selector"))...)
	errs = append(errs, supported(s.SessionAffinity, p.Child("sessionAffinity"), corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP)...)
	if s.SessionAffinity == corev1.ServiceAffinityClientIP && s.SessionAffinityConfig != nil &&
		s.SessionAffinityConfig.ClientIP != nil && s.SessionAffinityConfig.ClientIP.TimeoutSeconds != nil {
		if t := *s.SessionAffinityConfig.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPAffinitySeconds {
			errs = append(errs, field.Invalid(p.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds"), t,
				fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds)))
		}
	}
	for i, ip := range s.ExternalIPs {
		errs = append(errs, validIP(ip, p.Child("externalIPs").Index(i))...)
	}
	if s.ExternalTrafficPolicy != "" {
		if s.Type != corev1.ServiceTypeNodePort && s.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Invalid(p.Child("externalTrafficPolicy"), s.ExternalTrafficPolicy,
				"may only be set when `type` is 'NodePort' or 'LoadBalancer'"))
		} else {
			errs = append(errs, supported(s.ExternalTrafficPolicy, p.Child("externalTrafficPolicy"),
				corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)...)
		}
	}
	if s.InternalTrafficPolicy != nil {
		errs = append(errs, supported(*s.InternalTrafficPolicy, p.Child("internalTrafficPolicy"),
			corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal)...)
	}
	if s.Type != corev1.ServiceTypeLoadBalancer {
		if len(s.LoadBalancerSourceRanges) > 0 {
			errs = append(errs, field.Forbidden(p.Child("loadBalancerSourceRanges"), "may only be used when `type` is 'LoadBalancer'"))
		}
		if s.LoadBalancerClass != nil {
			errs = append(errs, field.Forbidden(p.Child("loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"))
		}
	}
	for i, r := range s.LoadBalancerSourceRanges {
		errs = append(errs, validCIDR(strings.TrimSpace(r), p.Child("loadBalancerSourceRanges").Index(i))...)
	}
	return errs
}

// validateServiceUpdate: a cluster IP, once allocated, is the service's
// identity for clients; it cannot change (except by becoming ExternalName,
// which has none).
func validateServiceUpdate(newSvc, oldSvc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec")
	if oldSvc.Spec.ClusterIP != "" && newSvc.Spec.Type != corev1.ServiceTypeExternalName &&
		oldSvc.Spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, immutable(newSvc.Spec.ClusterIP, oldSvc.Spec.ClusterIP, p.Child("clusterIP"))...)
	}
	return errs
}

//lint:ignore SA1019 Endpoints is one of the kinds Skiff serves, as Kubernetes still does.
func validateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	var errs field.ErrorList
	for i, ss := range ep.Subsets {
		sp := field.NewPath("subsets").Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(sp, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j, a := range ss.Addresses {
			errs = append(errs, validIP(a.IP, sp.Child("addresses").Index(j).Child("ip"))...)
		}
		for j, a := range ss.NotReadyAddresses {
			errs = append(errs, validIP(a.IP, sp.Child("notReadyAddresses").Index(j).Child("ip"))...)
		}
		for j, port := range ss.Ports {
			pp := sp.Child("ports").Index(j)
			if len(ss.Ports) > 1 && port.Name == "" {
				errs = append(errs, field.Required(pp.Child("name"), ""))
			} else if port.Name != "" {
				errs = append(errs, dnsLabel(port.Name, pp.Child("name"))...)
			}
			errs = append(errs, validPort(port.Port, pp.Child("port"))...)
			errs = append(errs, supported(port.Protocol, pp.Child("protocol"), corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
		}
	}
	return errs
}

// maxClientIPAffinitySeconds is one day, Kubernetes' ceiling for ClientIP
// session affinity.
const maxClientIPAffinitySeconds = 86400
