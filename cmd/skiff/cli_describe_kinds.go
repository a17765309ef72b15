//lint:file-ignore SA1019 Endpoints is one of the kinds Skiff serves, as Kubernetes still does; describe and get show it.
package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// describeEnv is what a kind's describer may look up besides the object:
// the replica sets of a deployment, the endpoints of a service, the pods on
// a node. Every lookup may be nil (golden tests, or the server refused):
// the describer then prints what the object alone says.
type describeEnv struct {
	replicaSets func(namespace string) []appsv1.ReplicaSet
	endpoints   func(namespace, name string) *corev1.Endpoints
	nodePods    func(node string) []corev1.Pod
	now         time.Time // zero: the wall clock
}

func (e describeEnv) clock() time.Time {
	if e.now.IsZero() {
		return time.Now()
	}
	return e.now
}

// describeKind prints the kubectl layout of the kinds users describe most
// (pods, deployments, replica sets, services, nodes). It reports false for
// other kinds, which get the generic tree.
func describeKind(w io.Writer, obj runtime.Object, env describeEnv) bool {
	switch o := obj.(type) {
	case *corev1.Pod:
		describePod(w, o, env.clock())
	case *appsv1.Deployment:
		describeDeployment(w, o, env)
	case *appsv1.ReplicaSet:
		describeReplicaSet(w, o)
	case *corev1.Service:
		describeService(w, o, env)
	case *corev1.Node:
		describeNode(w, o, env)
	default:
		return false
	}
	return true
}

func stamp(t metav1.Time) string { return t.Time.Format(time.RFC1123Z) }

func annotationsOf(m metav1.Object) string {
	return multilineColon(m.GetAnnotations(), map[string]bool{corev1.LastAppliedConfigAnnotation: true})
}

// multilineColon is multiline with kubectl's "key: value" form, used for
// annotations.
func multilineColon(m map[string]string, skip map[string]bool) string {
	return multilineSep(m, skip, ": ")
}

func controlledBy(w io.Writer, m metav1.Object) {
	for _, r := range m.GetOwnerReferences() {
		if r.Controller != nil && *r.Controller {
			fmt.Fprintf(w, "Controlled By:\t%s/%s\n", r.Kind, r.Name)
			return
		}
	}
}

func describePod(w io.Writer, p *corev1.Pod, now time.Time) {
	fmt.Fprintf(w, "Name:\t%s\n", p.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", p.Namespace)
	prio := int32(0)
	if p.Spec.Priority != nil {
		prio = *p.Spec.Priority
	}
	fmt.Fprintf(w, "Priority:\t%d\n", prio)
	if p.Spec.PriorityClassName != "" {
		fmt.Fprintf(w, "Priority Class Name:\t%s\n", p.Spec.PriorityClassName)
	}
	fmt.Fprintf(w, "Service Account:\t%s\n", orNone(p.Spec.ServiceAccountName))
	node := "<none>"
	if p.Spec.NodeName != "" {
		node = p.Spec.NodeName
		if p.Status.HostIP != "" {
			node += "/" + p.Status.HostIP
		}
	}
	fmt.Fprintf(w, "Node:\t%s\n", node)
	if p.Status.StartTime != nil {
		fmt.Fprintf(w, "Start Time:\t%s\n", stamp(*p.Status.StartTime))
	}
	fmt.Fprintf(w, "Labels:\t%s\n", multiline(p.Labels, nil))
	fmt.Fprintf(w, "Annotations:\t%s\n", annotationsOf(p))
	if p.DeletionTimestamp != nil {
		fmt.Fprintf(w, "Status:\tTerminating (lasts %s)\n", age(now.Sub(p.DeletionTimestamp.Time)))
	} else {
		fmt.Fprintf(w, "Status:\t%s\n", orNone(string(p.Status.Phase)))
	}
	if p.Status.Reason != "" {
		fmt.Fprintf(w, "Reason:\t%s\n", p.Status.Reason)
	}
	if p.Status.Message != "" {
		fmt.Fprintf(w, "Message:\t%s\n", p.Status.Message)
	}
	fmt.Fprintf(w, "IP:\t%s\n", p.Status.PodIP)
	if len(p.Status.PodIPs) == 0 {
		fmt.Fprintf(w, "IPs:\t<none>\n")
	} else {
		fmt.Fprintf(w, "IPs:\n")
		for _, ip := range p.Status.PodIPs {
			fmt.Fprintf(w, "  IP:\t%s\n", ip.IP)
		}
	}
	controlledBy(w, p)
	if len(p.Spec.InitContainers) > 0 {
		fmt.Fprintf(w, "Init Containers:\n")
		describeContainers(w, p.Spec.InitContainers, p.Status.InitContainerStatuses)
	}
	fmt.Fprintf(w, "Containers:\n")
	describeContainers(w, p.Spec.Containers, p.Status.ContainerStatuses)
	if len(p.Status.Conditions) > 0 {
		fmt.Fprintf(w, "Conditions:\n")
		fmt.Fprintf(w, "  Type\tStatus\n")
		for _, c := range p.Status.Conditions {
			fmt.Fprintf(w, "  %s \t%s \n", c.Type, c.Status)
		}
	}
	describeVolumes(w, p.Spec.Volumes, "")
	if p.Status.QOSClass != "" {
		fmt.Fprintf(w, "QoS Class:\t%s\n", p.Status.QOSClass)
	}
	fmt.Fprintf(w, "Node-Selectors:\t%s\n", multiline(p.Spec.NodeSelector, nil))
	fmt.Fprintf(w, "Tolerations:\t%s\n", tolerations(p.Spec.Tolerations))
}

func describeContainers(w io.Writer, cs []corev1.Container, statuses []corev1.ContainerStatus) {
	byName := map[string]corev1.ContainerStatus{}
	for _, s := range statuses {
		byName[s.Name] = s
	}
	for _, c := range cs {
		st, have := byName[c.Name]
		fmt.Fprintf(w, "  %s:\n", c.Name)
		if have && st.ContainerID != "" {
			fmt.Fprintf(w, "    Container ID:\t%s\n", st.ContainerID)
		}
		fmt.Fprintf(w, "    Image:\t%s\n", c.Image)
		if have {
			fmt.Fprintf(w, "    Image ID:\t%s\n", st.ImageID)
		}
		describeContainerBody(w, c, "    ")
		if have {
			describeState(w, "State", st.State)
			if st.LastTerminationState.Terminated != nil {
				describeState(w, "Last State", st.LastTerminationState)
			}
			fmt.Fprintf(w, "    Ready:\t%s\n", boolWord(st.Ready))
			fmt.Fprintf(w, "    Restart Count:\t%d\n", st.RestartCount)
		}
		describeResources(w, c.Resources, "    ")
		describeProbe(w, "Liveness", c.LivenessProbe)
		describeProbe(w, "Readiness", c.ReadinessProbe)
		describeProbe(w, "Startup", c.StartupProbe)
		describeEnvironment(w, c, "    ")
		describeMounts(w, c.VolumeMounts, "    ")
	}
}

// describeContainerBody prints command, args and ports (shared by pods and
// pod templates).
func describeContainerBody(w io.Writer, c corev1.Container, pad string) {
	if len(c.Ports) == 0 {
		fmt.Fprintf(w, "%sPort:\t<none>\n", pad)
		fmt.Fprintf(w, "%sHost Port:\t<none>\n", pad)
	} else {
		var ports, hostPorts []string
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			ports = append(ports, fmt.Sprintf("%d/%s", p.ContainerPort, proto))
			hostPorts = append(hostPorts, fmt.Sprintf("%d/%s", p.HostPort, proto))
		}
		fmt.Fprintf(w, "%sPort%s:\t%s\n", pad, plural(len(ports)), strings.Join(ports, ", "))
		fmt.Fprintf(w, "%sHost Port%s:\t%s\n", pad, plural(len(ports)), strings.Join(hostPorts, ", "))
	}
	if len(c.Command) > 0 {
		fmt.Fprintf(w, "%sCommand:\n", pad)
		for _, a := range c.Command {
			fmt.Fprintf(w, "%s  %s\n", pad, a)
		}
	}
	if len(c.Args) > 0 {
		fmt.Fprintf(w, "%sArgs:\n", pad)
		for _, a := range c.Args {
			fmt.Fprintf(w, "%s  %s\n", pad, a)
		}
	}
}

func plural(n int) string {
	if n > 1 {
		return "s"
	}
	return ""
}

func boolWord(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func describeState(w io.Writer, label string, s corev1.ContainerState) {
	switch {
	case s.Running != nil:
		fmt.Fprintf(w, "    %s:\tRunning\n", label)
		fmt.Fprintf(w, "      Started:\t%s\n", stamp(s.Running.StartedAt))
	case s.Waiting != nil:
		fmt.Fprintf(w, "    %s:\tWaiting\n", label)
		if s.Waiting.Reason != "" {
			fmt.Fprintf(w, "      Reason:\t%s\n", s.Waiting.Reason)
		}
		if s.Waiting.Message != "" {
			fmt.Fprintf(w, "      Message:\t%s\n", s.Waiting.Message)
		}
	case s.Terminated != nil:
		t := s.Terminated
		fmt.Fprintf(w, "    %s:\tTerminated\n", label)
		if t.Reason != "" {
			fmt.Fprintf(w, "      Reason:\t%s\n", t.Reason)
		}
		if t.Message != "" {
			fmt.Fprintf(w, "      Message:\t%s\n", t.Message)
		}
		fmt.Fprintf(w, "      Exit Code:\t%d\n", t.ExitCode)
		if t.Signal != 0 {
			fmt.Fprintf(w, "      Signal:\t%d\n", t.Signal)
		}
		fmt.Fprintf(w, "      Started:\t%s\n", stamp(t.StartedAt))
		fmt.Fprintf(w, "      Finished:\t%s\n", stamp(t.FinishedAt))
	default:
		fmt.Fprintf(w, "    %s:\tWaiting\n", label)
	}
}

func describeResources(w io.Writer, r corev1.ResourceRequirements, pad string) {
	for _, part := range []struct {
		label string
		list  corev1.ResourceList
	}{{"Limits", r.Limits}, {"Requests", r.Requests}} {
		if len(part.list) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s%s:\n", pad, part.label)
		names := make([]string, 0, len(part.list))
		for n := range part.list {
			names = append(names, string(n))
		}
		sort.Strings(names)
		for _, n := range names {
			q := part.list[corev1.ResourceName(n)]
			fmt.Fprintf(w, "%s  %s:\t%s\n", pad, n, q.String())
		}
	}
}

func describeProbe(w io.Writer, kind string, p *corev1.Probe) {
	if p == nil {
		return
	}
	var action string
	switch {
	case p.HTTPGet != nil:
		scheme := strings.ToLower(string(p.HTTPGet.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		host := p.HTTPGet.Host
		action = fmt.Sprintf("http-get %s://%s:%s%s", scheme, host, p.HTTPGet.Port.String(), p.HTTPGet.Path)
	case p.TCPSocket != nil:
		action = fmt.Sprintf("tcp-socket %s:%s", p.TCPSocket.Host, p.TCPSocket.Port.String())
	case p.Exec != nil:
		action = "exec [" + strings.Join(p.Exec.Command, " ") + "]"
	case p.GRPC != nil:
		svc := ""
		if p.GRPC.Service != nil {
			svc = *p.GRPC.Service
		}
		action = fmt.Sprintf("grpc <pod>:%d %s", p.GRPC.Port, svc)
	default:
		action = "unknown"
	}
	timeout, period, success, failure := p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold
	if timeout == 0 {
		timeout = 1
	}
	if period == 0 {
		period = 10
	}
	if success == 0 {
		success = 1
	}
	if failure == 0 {
		failure = 3
	}
	fmt.Fprintf(w, "    %s:\t%s delay=%ds timeout=%ds period=%ds #success=%d #failure=%d\n",
		kind, action, p.InitialDelaySeconds, timeout, period, success, failure)
}

func describeEnvironment(w io.Writer, c corev1.Container, pad string) {
	if len(c.EnvFrom) > 0 {
		fmt.Fprintf(w, "%sEnvironment Variables from:\n", pad)
		for _, f := range c.EnvFrom {
			kind, name, optional := "", "", false
			switch {
			case f.ConfigMapRef != nil:
				kind, name = "ConfigMap", f.ConfigMapRef.Name
				optional = f.ConfigMapRef.Optional != nil && *f.ConfigMapRef.Optional
			case f.SecretRef != nil:
				kind, name = "Secret", f.SecretRef.Name
				optional = f.SecretRef.Optional != nil && *f.SecretRef.Optional
			}
			prefix := ""
			if f.Prefix != "" {
				prefix = " with prefix '" + f.Prefix + "'"
			}
			fmt.Fprintf(w, "%s  %s\t%s%s\tOptional: %v\n", pad, name, kind, prefix, optional)
		}
	}
	if len(c.Env) == 0 {
		fmt.Fprintf(w, "%sEnvironment:\t<none>\n", pad)
		return
	}
	fmt.Fprintf(w, "%sEnvironment:\n", pad)
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			fmt.Fprintf(w, "%s  %s:\t%s\n", pad, e.Name, e.Value)
		case e.ValueFrom.FieldRef != nil:
			fmt.Fprintf(w, "%s  %s:\t (%s:%s)\n", pad, e.Name, orDefault(e.ValueFrom.FieldRef.APIVersion, "v1"), e.ValueFrom.FieldRef.FieldPath)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			fmt.Fprintf(w, "%s  %s:\t<set to the key '%s' of config map '%s'>\tOptional: %v\n", pad, e.Name, r.Key, r.Name, r.Optional != nil && *r.Optional)
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			fmt.Fprintf(w, "%s  %s:\t<set to the key '%s' in secret '%s'>\tOptional: %v\n", pad, e.Name, r.Key, r.Name, r.Optional != nil && *r.Optional)
		case e.ValueFrom.ResourceFieldRef != nil:
			fmt.Fprintf(w, "%s  %s:\t%s (%s)\n", pad, e.Name, e.ValueFrom.ResourceFieldRef.Resource, orDefault(e.ValueFrom.ResourceFieldRef.ContainerName, c.Name))
		}
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func describeMounts(w io.Writer, ms []corev1.VolumeMount, pad string) {
	if len(ms) == 0 {
		fmt.Fprintf(w, "%sMounts:\t<none>\n", pad)
		return
	}
	fmt.Fprintf(w, "%sMounts:\n", pad)
	for _, m := range ms {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		sub := ""
		if m.SubPath != "" {
			sub = ",path=\"" + m.SubPath + "\""
		}
		fmt.Fprintf(w, "%s  %s from %s (%s%s)\n", pad, m.MountPath, m.Name, mode, sub)
	}
}

func describeVolumes(w io.Writer, vs []corev1.Volume, pad string) {
	if len(vs) == 0 {
		fmt.Fprintf(w, "%sVolumes:\t<none>\n", pad)
		return
	}
	fmt.Fprintf(w, "%sVolumes:\n", pad)
	for _, v := range vs {
		fmt.Fprintf(w, "%s  %s:\n", pad, v.Name)
		p := pad + "    "
		switch {
		case v.EmptyDir != nil:
			fmt.Fprintf(w, "%sType:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n", p)
			fmt.Fprintf(w, "%sMedium:\t%s\n", p, v.EmptyDir.Medium)
			limit := "<unset>"
			if v.EmptyDir.SizeLimit != nil {
				limit = v.EmptyDir.SizeLimit.String()
			}
			fmt.Fprintf(w, "%sSizeLimit:\t%s\n", p, limit)
		case v.HostPath != nil:
			fmt.Fprintf(w, "%sType:\tHostPath (bare host directory volume)\n", p)
			fmt.Fprintf(w, "%sPath:\t%s\n", p, v.HostPath.Path)
			t := ""
			if v.HostPath.Type != nil {
				t = string(*v.HostPath.Type)
			}
			fmt.Fprintf(w, "%sHostPathType:\t%s\n", p, t)
		case v.ConfigMap != nil:
			fmt.Fprintf(w, "%sType:\tConfigMap (a volume populated by a ConfigMap)\n", p)
			fmt.Fprintf(w, "%sName:\t%s\n", p, v.ConfigMap.Name)
			fmt.Fprintf(w, "%sOptional:\t%v\n", p, v.ConfigMap.Optional != nil && *v.ConfigMap.Optional)
		case v.Secret != nil:
			fmt.Fprintf(w, "%sType:\tSecret (a volume populated by a Secret)\n", p)
			fmt.Fprintf(w, "%sSecretName:\t%s\n", p, v.Secret.SecretName)
			fmt.Fprintf(w, "%sOptional:\t%v\n", p, v.Secret.Optional != nil && *v.Secret.Optional)
		case v.PersistentVolumeClaim != nil:
			fmt.Fprintf(w, "%sType:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n", p)
			fmt.Fprintf(w, "%sClaimName:\t%s\n", p, v.PersistentVolumeClaim.ClaimName)
			fmt.Fprintf(w, "%sReadOnly:\t%v\n", p, v.PersistentVolumeClaim.ReadOnly)
		case v.Projected != nil:
			fmt.Fprintf(w, "%sType:\tProjected (a volume that contains injected data from multiple sources)\n", p)
		case v.DownwardAPI != nil:
			fmt.Fprintf(w, "%sType:\tDownwardAPI (a volume populated by information about the pod)\n", p)
			for _, it := range v.DownwardAPI.Items {
				if it.FieldRef != nil {
					fmt.Fprintf(w, "%s  %s -> %s\n", p, it.FieldRef.FieldPath, it.Path)
				}
			}
		default:
			fmt.Fprintf(w, "%sType:\t<unknown>\n", p)
		}
	}
}

func tolerations(ts []corev1.Toleration) string {
	if len(ts) == 0 {
		return "<none>"
	}
	lines := make([]string, 0, len(ts))
	for _, t := range ts {
		// kubectl's order: key[=value][:effect][ op=Exists][ for Ns].
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		if t.Effect != "" {
			s += ":" + string(t.Effect)
		}
		if t.Operator == corev1.TolerationOpExists && t.Value == "" {
			s += " op=Exists"
		}
		if t.TolerationSeconds != nil {
			s += fmt.Sprintf(" for %ds", *t.TolerationSeconds)
		}
		lines = append(lines, strings.TrimSpace(s))
	}
	return strings.Join(lines, "\n\t")
}

func describeTemplate(w io.Writer, t corev1.PodTemplateSpec) {
	fmt.Fprintf(w, "Pod Template:\n")
	fmt.Fprintf(w, "  Labels:\t%s\n", multiline(t.Labels, nil))
	if len(t.Annotations) > 0 {
		fmt.Fprintf(w, "  Annotations:\t%s\n", multilineColon(t.Annotations, nil))
	}
	if t.Spec.ServiceAccountName != "" {
		fmt.Fprintf(w, "  Service Account:\t%s\n", t.Spec.ServiceAccountName)
	}
	for _, part := range []struct {
		label string
		cs    []corev1.Container
	}{{"Init Containers", t.Spec.InitContainers}, {"Containers", t.Spec.Containers}} {
		if len(part.cs) == 0 {
			continue
		}
		fmt.Fprintf(w, "  %s:\n", part.label)
		for _, c := range part.cs {
			fmt.Fprintf(w, "   %s:\n", c.Name)
			fmt.Fprintf(w, "    Image:\t%s\n", c.Image)
			describeContainerBody(w, c, "    ")
			describeResources(w, c.Resources, "    ")
			describeProbe(w, "Liveness", c.LivenessProbe)
			describeProbe(w, "Readiness", c.ReadinessProbe)
			describeProbe(w, "Startup", c.StartupProbe)
			describeEnvironment(w, c, "    ")
			describeMounts(w, c.VolumeMounts, "    ")
		}
	}
	describeVolumes(w, t.Spec.Volumes, "  ")
	if len(t.Spec.NodeSelector) > 0 {
		fmt.Fprintf(w, "  Node-Selectors:\t%s\n", multiline(t.Spec.NodeSelector, nil))
	}
	if len(t.Spec.Tolerations) > 0 {
		fmt.Fprintf(w, "  Tolerations:\t%s\n", tolerations(t.Spec.Tolerations))
	}
}

func describeDeployment(w io.Writer, d *appsv1.Deployment, env describeEnv) {
	fmt.Fprintf(w, "Name:\t%s\n", d.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", d.Namespace)
	fmt.Fprintf(w, "CreationTimestamp:\t%s\n", stamp(d.CreationTimestamp))
	fmt.Fprintf(w, "Labels:\t%s\n", multiline(d.Labels, nil))
	fmt.Fprintf(w, "Annotations:\t%s\n", annotationsOf(d))
	fmt.Fprintf(w, "Selector:\t%s\n", selectorString(d.Spec.Selector))
	fmt.Fprintf(w, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable\n",
		int32OrZero(d.Spec.Replicas), d.Status.UpdatedReplicas, d.Status.Replicas, d.Status.AvailableReplicas, d.Status.UnavailableReplicas)
	strategy := d.Spec.Strategy.Type
	if strategy == "" {
		strategy = appsv1.RollingUpdateDeploymentStrategyType
	}
	fmt.Fprintf(w, "StrategyType:\t%s\n", strategy)
	fmt.Fprintf(w, "MinReadySeconds:\t%d\n", d.Spec.MinReadySeconds)
	if strategy == appsv1.RollingUpdateDeploymentStrategyType {
		unavail, surge := intstr.FromString("25%"), intstr.FromString("25%")
		if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
			if ru.MaxUnavailable != nil {
				unavail = *ru.MaxUnavailable
			}
			if ru.MaxSurge != nil {
				surge = *ru.MaxSurge
			}
		}
		fmt.Fprintf(w, "RollingUpdateStrategy:\t%s max unavailable, %s max surge\n", unavail.String(), surge.String())
	}
	describeTemplate(w, d.Spec.Template)
	if len(d.Status.Conditions) > 0 {
		fmt.Fprintf(w, "Conditions:\n")
		fmt.Fprintf(w, "  Type\tStatus\tReason\n")
		fmt.Fprintf(w, "  ----\t------\t------\n")
		for _, c := range d.Status.Conditions {
			fmt.Fprintf(w, "  %s \t%s\t%s\n", c.Type, c.Status, c.Reason)
		}
	}
	if env.replicaSets == nil {
		return
	}
	var newRS *appsv1.ReplicaSet
	var old []appsv1.ReplicaSet
	rev := d.Annotations["deployment.kubernetes.io/revision"]
	for _, rs := range env.replicaSets(d.Namespace) {
		owned := false
		for _, r := range rs.OwnerReferences {
			if r.UID == d.UID && r.Controller != nil && *r.Controller {
				owned = true
			}
		}
		if !owned {
			continue
		}
		if rs.Annotations["deployment.kubernetes.io/revision"] == rev && newRS == nil {
			rs := rs
			newRS = &rs
		} else if int32OrZero(rs.Spec.Replicas) > 0 || rs.Status.Replicas > 0 {
			old = append(old, rs)
		}
	}
	rsLine := func(rs appsv1.ReplicaSet) string {
		return fmt.Sprintf("%s (%d/%d replicas created)", rs.Name, rs.Status.Replicas, int32OrZero(rs.Spec.Replicas))
	}
	if len(old) == 0 {
		fmt.Fprintf(w, "OldReplicaSets:\t<none>\n")
	} else {
		lines := make([]string, len(old))
		for i, rs := range old {
			lines[i] = rsLine(rs)
		}
		fmt.Fprintf(w, "OldReplicaSets:\t%s\n", strings.Join(lines, ", "))
	}
	if newRS == nil {
		fmt.Fprintf(w, "NewReplicaSet:\t<none>\n")
	} else {
		fmt.Fprintf(w, "NewReplicaSet:\t%s\n", rsLine(*newRS))
	}
}

func describeReplicaSet(w io.Writer, rs *appsv1.ReplicaSet) {
	fmt.Fprintf(w, "Name:\t%s\n", rs.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", rs.Namespace)
	fmt.Fprintf(w, "Selector:\t%s\n", selectorString(rs.Spec.Selector))
	fmt.Fprintf(w, "Labels:\t%s\n", multiline(rs.Labels, nil))
	fmt.Fprintf(w, "Annotations:\t%s\n", annotationsOf(rs))
	controlledBy(w, rs)
	fmt.Fprintf(w, "Replicas:\t%d current / %d desired\n", rs.Status.Replicas, int32OrZero(rs.Spec.Replicas))
	fmt.Fprintf(w, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n",
		rs.Status.ReadyReplicas, max(0, rs.Status.Replicas-rs.Status.ReadyReplicas), 0, 0)
	describeTemplate(w, rs.Spec.Template)
}

func describeService(w io.Writer, s *corev1.Service, env describeEnv) {
	fmt.Fprintf(w, "Name:\t%s\n", s.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", s.Namespace)
	fmt.Fprintf(w, "Labels:\t%s\n", multiline(s.Labels, nil))
	fmt.Fprintf(w, "Annotations:\t%s\n", annotationsOf(s))
	fmt.Fprintf(w, "Selector:\t%s\n", strings.ReplaceAll(multiline(s.Spec.Selector, nil), "\n\t", ","))
	typ := s.Spec.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	fmt.Fprintf(w, "Type:\t%s\n", typ)
	if s.Spec.IPFamilyPolicy != nil {
		fmt.Fprintf(w, "IP Family Policy:\t%s\n", *s.Spec.IPFamilyPolicy)
	}
	if len(s.Spec.IPFamilies) > 0 {
		fams := make([]string, len(s.Spec.IPFamilies))
		for i, f := range s.Spec.IPFamilies {
			fams[i] = string(f)
		}
		fmt.Fprintf(w, "IP Families:\t%s\n", strings.Join(fams, ","))
	}
	if typ == corev1.ServiceTypeExternalName {
		fmt.Fprintf(w, "External Name:\t%s\n", s.Spec.ExternalName)
	} else {
		fmt.Fprintf(w, "IP:\t%s\n", s.Spec.ClusterIP)
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		fmt.Fprintf(w, "IPs:\t%s\n", strings.Join(ips, ","))
	}
	if len(s.Spec.ExternalIPs) > 0 {
		fmt.Fprintf(w, "External IPs:\t%s\n", strings.Join(s.Spec.ExternalIPs, ","))
	}
	var lbIngress []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		lbIngress = append(lbIngress, orDefault(in.IP, in.Hostname))
	}
	if len(lbIngress) > 0 {
		fmt.Fprintf(w, "LoadBalancer Ingress:\t%s\n", strings.Join(lbIngress, ", "))
	}
	var eps *corev1.Endpoints
	if env.endpoints != nil && len(s.Spec.Selector) > 0 {
		eps = env.endpoints(s.Namespace, s.Name)
	}
	for _, p := range s.Spec.Ports {
		name := p.Name
		if name == "" {
			name = "<unset>"
		}
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		fmt.Fprintf(w, "Port:\t%s\t%d/%s\n", name, p.Port, proto)
		tp := p.TargetPort
		if tp.Type == intstr.Int && tp.IntVal == 0 {
			tp = intstr.FromInt32(p.Port)
		}
		if tp.Type == intstr.String {
			fmt.Fprintf(w, "TargetPort:\t%s/%s\n", tp.StrVal, proto)
		} else {
			fmt.Fprintf(w, "TargetPort:\t%d/%s\n", tp.IntVal, proto)
		}
		if p.NodePort != 0 {
			fmt.Fprintf(w, "NodePort:\t%s\t%d/%s\n", name, p.NodePort, proto)
		}
		if env.endpoints != nil && len(s.Spec.Selector) > 0 {
			fmt.Fprintf(w, "Endpoints:\t%s\n", endpointsFor(eps, p))
		}
	}
	aff := s.Spec.SessionAffinity
	if aff == "" {
		aff = corev1.ServiceAffinityNone
	}
	fmt.Fprintf(w, "Session Affinity:\t%s\n", aff)
	if s.Spec.ExternalTrafficPolicy != "" {
		fmt.Fprintf(w, "External Traffic Policy:\t%s\n", s.Spec.ExternalTrafficPolicy)
	}
	if s.Spec.InternalTrafficPolicy != nil {
		fmt.Fprintf(w, "Internal Traffic Policy:\t%s\n", *s.Spec.InternalTrafficPolicy)
	}
}

// endpointsFor lists the ready addresses serving one service port, at most
// three then "+ N more...", as kubectl does.
func endpointsFor(eps *corev1.Endpoints, sp corev1.ServicePort) string {
	if eps == nil {
		return "<none>"
	}
	var list []string
	for _, sub := range eps.Subsets {
		for _, p := range sub.Ports {
			if len(sub.Ports) > 1 && p.Name != sp.Name {
				continue
			}
			for _, a := range sub.Addresses {
				list = append(list, fmt.Sprintf("%s:%d", a.IP, p.Port))
			}
		}
	}
	if len(list) == 0 {
		return "<none>"
	}
	if len(list) > 3 {
		return strings.Join(list[:3], ",") + fmt.Sprintf(" + %d more...", len(list)-3)
	}
	return strings.Join(list, ",")
}

func describeNode(w io.Writer, n *corev1.Node, env describeEnv) {
	fmt.Fprintf(w, "Name:\t%s\n", n.Name)
	role := "<none>"
	var roles []string
	for k := range n.Labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok {
			roles = append(roles, r)
		}
	}
	if len(roles) > 0 {
		sort.Strings(roles)
		role = strings.Join(roles, ",")
	}
	fmt.Fprintf(w, "Roles:\t%s\n", role)
	fmt.Fprintf(w, "Labels:\t%s\n", multiline(n.Labels, nil))
	fmt.Fprintf(w, "Annotations:\t%s\n", annotationsOf(n))
	fmt.Fprintf(w, "CreationTimestamp:\t%s\n", stamp(n.CreationTimestamp))
	if len(n.Spec.Taints) == 0 {
		fmt.Fprintf(w, "Taints:\t<none>\n")
	} else {
		lines := make([]string, len(n.Spec.Taints))
		for i, t := range n.Spec.Taints {
			lines[i] = t.ToString()
		}
		fmt.Fprintf(w, "Taints:\t%s\n", strings.Join(lines, "\n\t"))
	}
	fmt.Fprintf(w, "Unschedulable:\t%v\n", n.Spec.Unschedulable)
	fmt.Fprintf(w, "Conditions:\n")
	fmt.Fprintf(w, "  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
	fmt.Fprintf(w, "  ----\t------\t-----------------\t------------------\t------\t-------\n")
	for _, c := range n.Status.Conditions {
		fmt.Fprintf(w, "  %s \t%s \t%s \t%s \t%s \t%s\n", c.Type, c.Status, stamp(c.LastHeartbeatTime), stamp(c.LastTransitionTime), c.Reason, c.Message)
	}
	fmt.Fprintf(w, "Addresses:\n")
	for _, a := range n.Status.Addresses {
		fmt.Fprintf(w, "  %s:\t%s\n", a.Type, a.Address)
	}
	for _, part := range []struct {
		label string
		list  corev1.ResourceList
	}{{"Capacity", n.Status.Capacity}, {"Allocatable", n.Status.Allocatable}} {
		if len(part.list) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s:\n", part.label)
		names := make([]string, 0, len(part.list))
		for k := range part.list {
			names = append(names, string(k))
		}
		sort.Strings(names)
		for _, k := range names {
			q := part.list[corev1.ResourceName(k)]
			fmt.Fprintf(w, "  %s:\t%s\n", k, q.String())
		}
	}
	info := n.Status.NodeInfo
	fmt.Fprintf(w, "System Info:\n")
	fmt.Fprintf(w, "  Machine ID:\t%s\n", info.MachineID)
	fmt.Fprintf(w, "  Kernel Version:\t%s\n", info.KernelVersion)
	fmt.Fprintf(w, "  OS Image:\t%s\n", info.OSImage)
	fmt.Fprintf(w, "  Operating System:\t%s\n", info.OperatingSystem)
	fmt.Fprintf(w, "  Architecture:\t%s\n", info.Architecture)
	fmt.Fprintf(w, "  Container Runtime Version:\t%s\n", info.ContainerRuntimeVersion)
	fmt.Fprintf(w, "  Kubelet Version:\t%s\n", info.KubeletVersion)
	if n.Spec.PodCIDR != "" {
		fmt.Fprintf(w, "PodCIDR:\t%s\n", n.Spec.PodCIDR)
		fmt.Fprintf(w, "PodCIDRs:\t%s\n", strings.Join(n.Spec.PodCIDRs, ","))
	}
	if env.nodePods == nil {
		return
	}
	pods := env.nodePods(n.Name)
	var active []corev1.Pod
	for _, p := range pods {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			active = append(active, p)
		}
	}
	fmt.Fprintf(w, "Non-terminated Pods:\t(%d in total)\n", len(active))
	if len(active) > 0 {
		fmt.Fprintf(w, "  Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
		fmt.Fprintf(w, "  ---------\t----\t------------\t----------\t---------------\t-------------\t---\n")
	}
	var totReq, totLim corev1.ResourceList = corev1.ResourceList{}, corev1.ResourceList{}
	alloc := n.Status.Allocatable
	pct := func(q resource.Quantity, name corev1.ResourceName) string {
		a, ok := alloc[name]
		if !ok || a.IsZero() {
			return q.String()
		}
		var p int64
		if name == corev1.ResourceCPU {
			p = q.MilliValue() * 100 / a.MilliValue()
		} else {
			p = q.Value() * 100 / a.Value()
		}
		return fmt.Sprintf("%s (%d%%)", q.String(), p)
	}
	now := env.clock()
	for _, p := range active {
		req, lim := podTotals(p)
		for k, v := range req {
			t := totReq[k]
			t.Add(v)
			totReq[k] = t
		}
		for k, v := range lim {
			t := totLim[k]
			t.Add(v)
			totLim[k] = t
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Namespace, p.Name,
			pct(req[corev1.ResourceCPU], corev1.ResourceCPU), pct(lim[corev1.ResourceCPU], corev1.ResourceCPU),
			pct(req[corev1.ResourceMemory], corev1.ResourceMemory), pct(lim[corev1.ResourceMemory], corev1.ResourceMemory),
			ageOf(&p, now))
	}
	fmt.Fprintf(w, "Allocated resources:\n")
	fmt.Fprintf(w, "  Resource\tRequests\tLimits\n")
	fmt.Fprintf(w, "  --------\t--------\t------\n")
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", name, pct(totReq[name], name), pct(totLim[name], name))
	}
}

// podTotals sums a pod's container requests and limits (init containers
// are not added: they do not run alongside).
func podTotals(p corev1.Pod) (req, lim corev1.ResourceList) {
	req, lim = corev1.ResourceList{}, corev1.ResourceList{}
	for _, c := range p.Spec.Containers {
		for k, v := range c.Resources.Requests {
			t := req[k]
			t.Add(v)
			req[k] = t
		}
		for k, v := range c.Resources.Limits {
			t := lim[k]
			t.Add(v)
			lim[k] = t
		}
	}
	return req, lim
}
