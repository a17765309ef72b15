package main

import (
	"fmt"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// moreColumns: the table shapes of the kinds that columnsFor does not
// lay out itself, with kubectl's headers.
func moreColumns(kind string) (columns, bool) {
	switch kind {
	case "Ingress":
		return columns{headers: []string{"CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				in := o.(*networkingv1.Ingress)
				class := "<none>"
				if in.Spec.IngressClassName != nil {
					class = *in.Spec.IngressClassName
				}
				return []string{class, ingressHosts(in), ingressAddress(in), ingressPorts(in), ageOf(in, now)}, nil
			}}, true
	case "CronJob":
		return columns{headers: []string{"SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"}, wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				c := o.(*batchv1.CronJob)
				tz := "<none>"
				if c.Spec.TimeZone != nil {
					tz = *c.Spec.TimeZone
				}
				suspend := c.Spec.Suspend != nil && *c.Spec.Suspend
				last := "<none>"
				if c.Status.LastScheduleTime != nil {
					last = age(now.Sub(c.Status.LastScheduleTime.Time))
				}
				ctrs, imgs := containersAndImages(c.Spec.JobTemplate.Spec.Template.Spec)
				return []string{c.Spec.Schedule, tz, fmt.Sprint(suspend), itoa(len(c.Status.Active)), last, ageOf(c, now)},
					[]string{ctrs, imgs, selectorString(c.Spec.JobTemplate.Spec.Selector)}
			}}, true
	case "PersistentVolumeClaim":
		return columns{headers: []string{"STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"}, wide: []string{"VOLUMEMODE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				c := o.(*corev1.PersistentVolumeClaim)
				capacity, modes := "", ""
				if c.Spec.VolumeName != "" {
					if q, ok := c.Status.Capacity[corev1.ResourceStorage]; ok {
						capacity = q.String()
					}
					modes = accessModes(c.Status.AccessModes)
				}
				return []string{string(c.Status.Phase), c.Spec.VolumeName, capacity, modes, orUnset(c.Spec.StorageClassName),
						orUnset(c.Spec.VolumeAttributesClassName), ageOf(c, now)},
					[]string{volumeMode(c.Spec.VolumeMode)}
			}}, true
	case "PersistentVolume":
		return columns{headers: []string{"CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"}, wide: []string{"VOLUMEMODE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				v := o.(*corev1.PersistentVolume)
				capacity := ""
				if q, ok := v.Spec.Capacity[corev1.ResourceStorage]; ok {
					capacity = q.String()
				}
				claim := ""
				if r := v.Spec.ClaimRef; r != nil {
					claim = r.Namespace + "/" + r.Name
				}
				class := v.Spec.StorageClassName
				if class == "" {
					class = "<unset>"
				}
				return []string{capacity, accessModes(v.Spec.AccessModes), string(v.Spec.PersistentVolumeReclaimPolicy), string(v.Status.Phase),
						claim, class, orUnset(v.Spec.VolumeAttributesClassName), v.Status.Reason, ageOf(v, now)},
					[]string{volumeMode(v.Spec.VolumeMode)}
			}}, true
	case "HorizontalPodAutoscaler":
		return columns{headers: []string{"REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				h := o.(*autoscalingv2.HorizontalPodAutoscaler)
				ref := h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
				minPods := "<unset>"
				if h.Spec.MinReplicas != nil {
					minPods = itoa(*h.Spec.MinReplicas)
				}
				return []string{ref, hpaTargets(h), minPods, itoa(h.Spec.MaxReplicas), itoa(h.Status.CurrentReplicas), ageOf(h, now)}, nil
			}}, true
	case "ServiceAccount":
		return columns{headers: []string{"SECRETS", "AGE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				s := o.(*corev1.ServiceAccount)
				return []string{itoa(len(s.Secrets)), ageOf(s, now)}, nil
			}}, true
	case "StorageClass":
		return columns{headers: []string{"PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				s := o.(*storagev1.StorageClass)
				reclaim := string(corev1.PersistentVolumeReclaimDelete)
				if s.ReclaimPolicy != nil {
					reclaim = string(*s.ReclaimPolicy)
				}
				binding := string(storagev1.VolumeBindingImmediate)
				if s.VolumeBindingMode != nil {
					binding = string(*s.VolumeBindingMode)
				}
				expand := s.AllowVolumeExpansion != nil && *s.AllowVolumeExpansion
				return []string{s.Provisioner, reclaim, binding, fmt.Sprint(expand), ageOf(s, now)}, nil
			}}, true
	}
	return columns{}, false
}

// ingressHosts lists the rules' hosts as kubectl does: "*" when no rule
// names one, the first three and a count beyond.
func ingressHosts(in *networkingv1.Ingress) string {
	var hosts []string
	for _, r := range in.Spec.Rules {
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	switch {
	case len(hosts) == 0:
		return "*"
	case len(hosts) > 3:
		return strings.Join(hosts[:3], ",") + fmt.Sprintf(" + %d more...", len(hosts)-3)
	}
	return strings.Join(hosts, ",")
}

func ingressAddress(in *networkingv1.Ingress) string {
	var addrs []string
	for _, lb := range in.Status.LoadBalancer.Ingress {
		if lb.IP != "" {
			addrs = append(addrs, lb.IP)
		} else if lb.Hostname != "" {
			addrs = append(addrs, lb.Hostname)
		}
	}
	return strings.Join(addrs, ",")
}

func ingressPorts(in *networkingv1.Ingress) string {
	if len(in.Spec.TLS) > 0 {
		return "80, 443"
	}
	return "80"
}

// accessModes abbreviates as kubectl: RWO, ROX, RWX, RWOP.
func accessModes(modes []corev1.PersistentVolumeAccessMode) string {
	short := map[corev1.PersistentVolumeAccessMode]string{
		corev1.ReadWriteOnce: "RWO", corev1.ReadOnlyMany: "ROX", corev1.ReadWriteMany: "RWX", corev1.ReadWriteOncePod: "RWOP",
	}
	var out []string
	seen := map[string]bool{}
	for _, m := range modes {
		s := short[m]
		if s == "" {
			s = string(m)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

func orUnset(p *string) string {
	if p == nil || *p == "" {
		return "<unset>"
	}
	return *p
}

func volumeMode(m *corev1.PersistentVolumeMode) string {
	if m == nil {
		return string(corev1.PersistentVolumeFilesystem)
	}
	return string(*m)
}

// hpaTargets renders resource metric targets ("cpu: 40%/50%", or
// <unknown> before any measurement).
func hpaTargets(h *autoscalingv2.HorizontalPodAutoscaler) string {
	current := map[corev1.ResourceName]autoscalingv2.MetricValueStatus{}
	for _, m := range h.Status.CurrentMetrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil {
			current[m.Resource.Name] = m.Resource.Current
		}
	}
	var out []string
	for _, m := range h.Spec.Metrics {
		if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil {
			out = append(out, "<unknown>")
			continue
		}
		target, cur := "<unset>", "<unknown>"
		t := m.Resource.Target
		c, ok := current[m.Resource.Name]
		switch {
		case t.AverageUtilization != nil:
			target = fmt.Sprintf("%d%%", *t.AverageUtilization)
			if ok && c.AverageUtilization != nil {
				cur = fmt.Sprintf("%d%%", *c.AverageUtilization)
			}
		case t.AverageValue != nil:
			target = t.AverageValue.String()
			if ok && c.AverageValue != nil {
				cur = c.AverageValue.String()
			}
		}
		out = append(out, fmt.Sprintf("%s: %s/%s", m.Resource.Name, cur, target))
	}
	if len(out) == 0 {
		return "<none>"
	}
	return strings.Join(out, ", ")
}
