package api

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// Field selectors (skiff get pods --field-selector spec.nodeName=n1) test a
// few fields per kind, the ones Kubernetes indexes: metadata.name and
// metadata.namespace for every kind, plus per kind the fields controllers
// and agents list by (a node's pods, pods in a phase, a Secret's type, an
// object's events). Anything else is refused rather than silently matching
// nothing.

// selectableFields lists each kind's extra selectable fields.
var selectableFields = map[string][]string{
	"Pod": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
		"spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"},
	"Node":                  {"spec.unschedulable"},
	"Namespace":             {"status.phase"},
	"Secret":                {"type"},
	"Service":               {"spec.clusterIP", "spec.type"},
	"ReplicationController": {"status.replicas"},
	"ReplicaSet":            {"status.replicas"},
	"Job":                   {"status.successful"},
	"Event": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
		"involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
		"reason", "reportingComponent", "source", "type"},
}

// SelectableFieldNames lists the fields a field selector may test on
// objects of kind, sorted.
func SelectableFieldNames(info KindInfo) []string {
	names := []string{"metadata.name", "metadata.namespace"}
	if info.GVK.Group == "" || info.GVK.Kind == "ReplicaSet" || info.GVK.Kind == "Job" {
		names = append(names, selectableFields[info.GVK.Kind]...)
	}
	sort.Strings(names)
	return names
}

// SelectableFields returns the values of obj's selectable fields, for
// matching a field selector against it. Cluster-scoped objects have an
// empty metadata.namespace.
func SelectableFields(obj runtime.Object) fields.Set {
	set := fields.Set{}
	if m, err := metaOf(obj); err == nil {
		set["metadata.name"] = m.GetName()
		set["metadata.namespace"] = m.GetNamespace()
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		set["spec.nodeName"] = o.Spec.NodeName
		set["spec.restartPolicy"] = string(o.Spec.RestartPolicy)
		set["spec.schedulerName"] = o.Spec.SchedulerName
		set["spec.serviceAccountName"] = o.Spec.ServiceAccountName
		set["spec.hostNetwork"] = strconv.FormatBool(o.Spec.HostNetwork)
		set["status.phase"] = string(o.Status.Phase)
		set["status.podIP"] = o.Status.PodIP
		set["status.nominatedNodeName"] = o.Status.NominatedNodeName
	case *corev1.Node:
		set["spec.unschedulable"] = strconv.FormatBool(o.Spec.Unschedulable)
	case *corev1.Namespace:
		set["status.phase"] = string(o.Status.Phase)
	case *corev1.Secret:
		set["type"] = string(o.Type)
	case *corev1.Service:
		set["spec.clusterIP"] = o.Spec.ClusterIP
		set["spec.type"] = string(o.Spec.Type)
	case *corev1.ReplicationController:
		set["status.replicas"] = strconv.Itoa(int(o.Status.Replicas))
	case *appsv1.ReplicaSet:
		set["status.replicas"] = strconv.Itoa(int(o.Status.Replicas))
	case *batchv1.Job:
		set["status.successful"] = strconv.Itoa(int(o.Status.Succeeded))
	case *corev1.Event:
		r := o.InvolvedObject
		set["involvedObject.kind"] = r.Kind
		set["involvedObject.namespace"] = r.Namespace
		set["involvedObject.name"] = r.Name
		set["involvedObject.uid"] = string(r.UID)
		set["involvedObject.apiVersion"] = r.APIVersion
		set["involvedObject.resourceVersion"] = r.ResourceVersion
		set["involvedObject.fieldPath"] = r.FieldPath
		set["reason"] = o.Reason
		set["reportingComponent"] = o.ReportingController
		set["source"] = o.Source.Component
		set["type"] = o.Type
	}
	return set
}

// ParseFieldSelector parses a field selector ("spec.nodeName=n1,status.phase!=Running")
// for objects of kind, refusing fields the kind cannot be selected by.
func ParseFieldSelector(info KindInfo, s string) (fields.Selector, error) {
	sel, err := fields.ParseSelector(s)
	if err != nil {
		return nil, fmt.Errorf("invalid field selector %q: %w", s, err)
	}
	allowed := SelectableFieldNames(info)
	for _, r := range sel.Requirements() {
		if !contains(allowed, r.Field) {
			return nil, fmt.Errorf("field label not supported: %s (%s can be selected by %s)",
				r.Field, info.Resource, strings.Join(allowed, ", "))
		}
	}
	return sel, nil
}

// ParseLabelSelector parses a label selector as kubectl's -l does
// ("app=web,tier in (a,b),!canary").
func ParseLabelSelector(s string) (labels.Selector, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid label selector %q: %w", s, err)
	}
	return sel, nil
}

// Matches reports whether obj's labels match labelSel and its selectable
// fields match fieldSel; nil selectors match everything.
func Matches(obj runtime.Object, labelSel labels.Selector, fieldSel fields.Selector) bool {
	if labelSel != nil && !labelSel.Empty() {
		m, err := metaOf(obj)
		if err != nil || !labelSel.Matches(labels.Set(m.GetLabels())) {
			return false
		}
	}
	if fieldSel != nil && !fieldSel.Empty() {
		return fieldSel.Matches(SelectableFields(obj))
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
