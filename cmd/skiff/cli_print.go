//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves, as Kubernetes still does; describe and get show it.
package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/api"
)

// age renders a duration the way kubectl's AGE column does: precise when
// recent, coarser as it grows.
func age(d time.Duration) string {
	if d < -time.Second {
		return "<invalid>"
	}
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	m, h := s/60, s/3600
	switch {
	case s < 120:
		return fmt.Sprintf("%ds", s)
	case m < 10:
		if s%60 == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%ds", m, s%60)
	case m < 180:
		return fmt.Sprintf("%dm", m)
	case h < 8:
		if m%60 == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m%60)
	case h < 48:
		return fmt.Sprintf("%dh", h)
	case h < 24*8:
		if h%24 == 0 {
			return fmt.Sprintf("%dd", h/24)
		}
		return fmt.Sprintf("%dd%dh", h/24, h%24)
	case h < 24*365*2:
		return fmt.Sprintf("%dd", h/24)
	case h < 24*365*8:
		return fmt.Sprintf("%dy%dd", h/24/365, (h/24)%365)
	}
	return fmt.Sprintf("%dy", h/24/365)
}

func ageOf(m metav1.Object, now time.Time) string {
	ts := m.GetCreationTimestamp()
	if ts.IsZero() {
		return "<unknown>"
	}
	return age(now.Sub(ts.Time))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func labelsString(l map[string]string) string {
	if len(l) == 0 {
		return "<none>"
	}
	parts := make([]string, 0, len(l))
	for _, k := range sortedKeys(l) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ",")
}

// table is a kubectl-like table of one kind.
type table struct {
	headers []string
	rows    [][]string
}

// columns says, for one kind, the headers and cells after NAME (normal,
// then the extra ones of -o wide), without AGE which is placed per kind.
type columns struct {
	headers, wide []string
	cells         func(obj runtime.Object, now time.Time) (cells, wide []string)
	// noName drops the NAME column (events show their object instead).
	noName bool
}

func podStatus(p *corev1.Pod) (ready, total, restarts int, reason string) {
	total = len(p.Spec.Containers)
	reason = string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	for _, cs := range p.Status.InitContainerStatuses {
		restarts += int(cs.RestartCount)
	}
	for _, cs := range p.Status.ContainerStatuses {
		restarts += int(cs.RestartCount)
		if cs.Ready {
			ready++
		}
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			reason = cs.State.Waiting.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
			reason = cs.State.Terminated.Reason
		}
	}
	if p.DeletionTimestamp != nil {
		reason = "Terminating"
	}
	return ready, total, restarts, reason
}

func containersAndImages(spec corev1.PodSpec) (string, string) {
	var names, images []string
	for _, c := range spec.Containers {
		names, images = append(names, c.Name), append(images, c.Image)
	}
	return strings.Join(names, ","), strings.Join(images, ",")
}

func selectorString(s *metav1.LabelSelector) string {
	if s == nil {
		return "<none>"
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return "<error>"
	}
	return orNone(sel.String())
}

func servicePorts(s *corev1.Service) string {
	var parts []string
	for _, p := range s.Spec.Ports {
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.NodePort != 0 {
			parts = append(parts, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol))
		} else {
			parts = append(parts, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
		}
	}
	return orNone(strings.Join(parts, ","))
}

func externalIP(s *corev1.Service) string {
	switch s.Spec.Type {
	case corev1.ServiceTypeExternalName:
		return s.Spec.ExternalName
	case corev1.ServiceTypeLoadBalancer:
		var ips []string
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				ips = append(ips, in.IP)
			} else if in.Hostname != "" {
				ips = append(ips, in.Hostname)
			}
		}
		ips = append(ips, s.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	}
	return orNone(strings.Join(s.Spec.ExternalIPs, ","))
}

func int32OrZero(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func itoa[T ~int | ~int32 | ~int64](v T) string { return strconv.FormatInt(int64(v), 10) }

// columnsFor returns the table shape of a kind.
func columnsFor(kind string) columns {
	switch kind {
	case "Pod":
		return columns{headers: []string{"READY", "STATUS", "RESTARTS", "AGE"}, wide: []string{"IP", "NODE", "NOMINATED NODE", "READINESS GATES"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				p := o.(*corev1.Pod)
				ready, total, restarts, reason := podStatus(p)
				return []string{fmt.Sprintf("%d/%d", ready, total), reason, itoa(restarts), ageOf(p, now)},
					[]string{orNone(p.Status.PodIP), orNone(p.Spec.NodeName), orNone(p.Status.NominatedNodeName), "<none>"}
			}}
	case "Deployment":
		return columns{headers: []string{"READY", "UP-TO-DATE", "AVAILABLE", "AGE"}, wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				d := o.(*appsv1.Deployment)
				c, i := containersAndImages(d.Spec.Template.Spec)
				return []string{fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, int32OrZero(d.Spec.Replicas)), itoa(d.Status.UpdatedReplicas),
						itoa(d.Status.AvailableReplicas), ageOf(d, now)},
					[]string{c, i, selectorString(d.Spec.Selector)}
			}}
	case "ReplicaSet":
		return columns{headers: []string{"DESIRED", "CURRENT", "READY", "AGE"}, wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				r := o.(*appsv1.ReplicaSet)
				c, i := containersAndImages(r.Spec.Template.Spec)
				return []string{itoa(int32OrZero(r.Spec.Replicas)), itoa(r.Status.Replicas), itoa(r.Status.ReadyReplicas), ageOf(r, now)},
					[]string{c, i, selectorString(r.Spec.Selector)}
			}}
	case "ReplicationController":
		return columns{headers: []string{"DESIRED", "CURRENT", "READY", "AGE"}, wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				r := o.(*corev1.ReplicationController)
				c, i := "", ""
				if r.Spec.Template != nil {
					c, i = containersAndImages(r.Spec.Template.Spec)
				}
				return []string{itoa(int32OrZero(r.Spec.Replicas)), itoa(r.Status.Replicas), itoa(r.Status.ReadyReplicas), ageOf(r, now)},
					[]string{c, i, labelsString(r.Spec.Selector)}
			}}
	case "StatefulSet":
		return columns{headers: []string{"READY", "AGE"}, wide: []string{"CONTAINERS", "IMAGES"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				s := o.(*appsv1.StatefulSet)
				c, i := containersAndImages(s.Spec.Template.Spec)
				return []string{fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, int32OrZero(s.Spec.Replicas)), ageOf(s, now)}, []string{c, i}
			}}
	case "DaemonSet":
		return columns{headers: []string{"DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"}, wide: []string{"CONTAINERS", "IMAGES", "SELECTOR"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				d := o.(*appsv1.DaemonSet)
				c, i := containersAndImages(d.Spec.Template.Spec)
				return []string{itoa(d.Status.DesiredNumberScheduled), itoa(d.Status.CurrentNumberScheduled), itoa(d.Status.NumberReady),
						itoa(d.Status.UpdatedNumberScheduled), itoa(d.Status.NumberAvailable), labelsString(d.Spec.Template.Spec.NodeSelector), ageOf(d, now)},
					[]string{c, i, selectorString(d.Spec.Selector)}
			}}
	case "Service":
		return columns{headers: []string{"TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"}, wide: []string{"SELECTOR"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				s := o.(*corev1.Service)
				typ := s.Spec.Type
				if typ == "" {
					typ = corev1.ServiceTypeClusterIP
				}
				return []string{string(typ), orNone(s.Spec.ClusterIP), externalIP(s), servicePorts(s), ageOf(s, now)},
					[]string{labelsString(s.Spec.Selector)}
			}}
	case "Endpoints":
		return columns{headers: []string{"ENDPOINTS", "AGE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				e := o.(*corev1.Endpoints)
				var list []string
				for _, sub := range e.Subsets {
					for _, a := range sub.Addresses {
						if len(sub.Ports) == 0 {
							list = append(list, a.IP)
						}
						for _, p := range sub.Ports {
							list = append(list, fmt.Sprintf("%s:%d", a.IP, p.Port))
						}
					}
				}
				eps := "<none>"
				if len(list) > 3 {
					eps = strings.Join(list[:3], ",") + fmt.Sprintf(" + %d more...", len(list)-3)
				} else if len(list) > 0 {
					eps = strings.Join(list, ",")
				}
				return []string{eps, ageOf(e, now)}, nil
			}}
	case "Namespace":
		return columns{headers: []string{"STATUS", "AGE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				n := o.(*corev1.Namespace)
				return []string{string(n.Status.Phase), ageOf(n, now)}, nil
			}}
	case "Node":
		return columns{headers: []string{"STATUS", "ROLES", "AGE", "VERSION"}, wide: []string{"INTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				n := o.(*corev1.Node)
				status := "Unknown"
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady {
						// kubectl: Ready only when True; False and Unknown
						// (heartbeats stopped) both read NotReady.
						status = "NotReady"
						if c.Status == corev1.ConditionTrue {
							status = "Ready"
						}
					}
				}
				if n.Spec.Unschedulable {
					status += ",SchedulingDisabled"
				}
				var roles []string
				for k := range n.Labels {
					if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
						roles = append(roles, r)
					}
				}
				sort.Strings(roles)
				ip := ""
				for _, a := range n.Status.Addresses {
					if a.Type == corev1.NodeInternalIP {
						ip = a.Address
					}
				}
				ni := n.Status.NodeInfo
				return []string{status, orNone(strings.Join(roles, ",")), ageOf(n, now), orNone(ni.KubeletVersion)},
					[]string{orNone(ip), orNone(ni.OSImage), orNone(ni.KernelVersion), orNone(ni.ContainerRuntimeVersion)}
			}}
	case "ConfigMap":
		return columns{headers: []string{"DATA", "AGE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				c := o.(*corev1.ConfigMap)
				return []string{itoa(len(c.Data) + len(c.BinaryData)), ageOf(c, now)}, nil
			}}
	case "Secret":
		return columns{headers: []string{"TYPE", "DATA", "AGE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				s := o.(*corev1.Secret)
				return []string{string(s.Type), itoa(len(s.Data) + len(s.StringData)), ageOf(s, now)}, nil
			}}
	case "Job":
		return columns{headers: []string{"COMPLETIONS", "DURATION", "AGE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				j := o.(*batchv1.Job)
				completions := "1"
				if j.Spec.Completions != nil {
					completions = itoa(*j.Spec.Completions)
				}
				dur := ""
				if j.Status.StartTime != nil {
					end := now
					if j.Status.CompletionTime != nil {
						end = j.Status.CompletionTime.Time
					}
					dur = age(end.Sub(j.Status.StartTime.Time))
				}
				return []string{fmt.Sprintf("%d/%s", j.Status.Succeeded, completions), dur, ageOf(j, now)}, nil
			}}
	case "Event":
		return columns{noName: true, headers: []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				e := o.(*corev1.Event)
				ts := e.LastTimestamp.Time
				if ts.IsZero() {
					ts = e.EventTime.Time
				}
				if ts.IsZero() {
					ts = e.CreationTimestamp.Time
				}
				obj := strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
				return []string{age(now.Sub(ts)), e.Type, e.Reason, obj, strings.TrimSpace(e.Message)}, nil
			}}
	case "Lease":
		return columns{headers: []string{"HOLDER", "AGE"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				l := o.(*coordinationv1.Lease)
				holder := ""
				if l.Spec.HolderIdentity != nil {
					holder = *l.Spec.HolderIdentity
				}
				return []string{holder, ageOf(l, now)}, nil
			}}
	case "ResourceQuota":
		return columns{headers: []string{"AGE", "REQUEST", "LIMIT"},
			cells: func(o runtime.Object, now time.Time) ([]string, []string) {
				q := o.(*corev1.ResourceQuota)
				var req, lim []string
				names := make([]string, 0, len(q.Spec.Hard))
				for n := range q.Spec.Hard {
					names = append(names, string(n))
				}
				sort.Strings(names)
				for _, name := range names {
					used := q.Status.Used[corev1.ResourceName(name)]
					hard := q.Spec.Hard[corev1.ResourceName(name)]
					cell := fmt.Sprintf("%s: %s/%s", name, used.String(), hard.String())
					if strings.HasPrefix(name, "limits.") {
						lim = append(lim, cell)
					} else {
						req = append(req, cell)
					}
				}
				return []string{ageOf(q, now), strings.Join(req, ", "), strings.Join(lim, ", ")}, nil
			}}
	}
	if c, ok := moreColumns(kind); ok {
		return c
	}
	return columns{headers: []string{"AGE"},
		cells: func(o runtime.Object, now time.Time) ([]string, []string) {
			m, _ := o.(metav1.Object)
			return []string{ageOf(m, now)}, nil
		}}
}

// printOptions shape a table.
type printOptions struct {
	wide, showLabels, withNamespace, withKind bool
}

// buildTable lays out objects of one kind.
func buildTable(info api.KindInfo, objs []runtime.Object, opts printOptions, now time.Time) table {
	cols := columnsFor(info.GVK.Kind)
	t := table{}
	if opts.withNamespace {
		t.headers = append(t.headers, "NAMESPACE")
	}
	if !cols.noName {
		t.headers = append(t.headers, "NAME")
	}
	t.headers = append(t.headers, cols.headers...)
	if opts.wide {
		t.headers = append(t.headers, cols.wide...)
	}
	if opts.showLabels {
		t.headers = append(t.headers, "LABELS")
	}
	for _, o := range objs {
		m := o.(metav1.Object)
		var row []string
		if opts.withNamespace {
			row = append(row, m.GetNamespace())
		}
		name := m.GetName()
		if opts.withKind {
			name = kindDisplay(info.Singular, info.GVK.Group) + "/" + name
		}
		cells, wide := cols.cells(o, now)
		if !cols.noName {
			row = append(row, name)
		}
		row = append(row, cells...)
		if opts.wide {
			row = append(row, wide...)
		}
		if opts.showLabels {
			row = append(row, labelsString(m.GetLabels()))
		}
		t.rows = append(t.rows, row)
	}
	return t
}

func newTabWriter(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 6, 4, 3, ' ', 0) }

func (t table) write(w io.Writer, headers bool) error {
	tw := newTabWriter(w)
	if headers {
		fmt.Fprintln(tw, strings.Join(t.headers, "\t"))
	}
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// widths are the column widths write gives t (cell width + 3 spaces).
func (t table) widths() []int {
	w := make([]int, len(t.headers))
	for i, h := range t.headers {
		w[i] = len(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(w) && len(c) > w[i] {
				w[i] = len(c)
			}
		}
	}
	for i := range w {
		w[i] += 3
	}
	return w
}

// writeRowsAligned writes t's rows padded to at least widths, so rows
// printed later (get -w) line up under a table printed before.
func (t table) writeRowsAligned(out io.Writer, widths []int) error {
	for _, r := range t.rows {
		var b strings.Builder
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			w := len(c) + 3
			if i < len(widths) && widths[i] > w {
				w = widths[i]
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", w-len(c)))
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(out, b.String()); err != nil {
			return err
		}
	}
	return nil
}
