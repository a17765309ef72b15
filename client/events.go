package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// EventRecorder writes core/v1 Events about objects, as Kubernetes'
// components do (Scheduled, Pulled, Created, Started, Killing, ...), so
// `skiff describe` can show them. A repeat of the same reason and message
// about the same object bumps the count of the existing Event instead of
// writing a new one. Safe for concurrent use.
type EventRecorder struct {
	c         *Client
	component string
	host      string

	mu   sync.Mutex
	seen map[string]string // object uid + reason + message -> event name
}

// NewEventRecorder records as component (default-scheduler, kubelet, ...),
// optionally on host (a node name).
func NewEventRecorder(c *Client, component, host string) *EventRecorder {
	return &EventRecorder{c: c, component: component, host: host, seen: map[string]string{}}
}

// Event records one event; eventType is corev1.EventTypeNormal or
// corev1.EventTypeWarning.
func (r *EventRecorder) Event(ctx context.Context, obj runtime.Object, eventType, reason, message string) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	gvk, err := KindOf(obj)
	if err != nil {
		return err
	}
	ns := m.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	key := string(m.GetUID()) + "\x00" + reason + "\x00" + message
	now := metav1.Now()
	r.mu.Lock()
	name, repeat := r.seen[key]
	r.mu.Unlock()
	if repeat {
		err := RetryOnConflict(ctx, 5, func() error {
			ev := &corev1.Event{}
			if err := r.c.Get(ctx, ns, name, ev); err != nil {
				return err
			}
			ev.Count++
			ev.LastTimestamp = now
			return r.c.Update(ctx, ev)
		})
		if err == nil || !IsNotFound(err) {
			return err
		}
		// The event was deleted meanwhile: write a new one.
	}
	name = fmt.Sprintf("%s.%x", m.GetName(), time.Now().UnixNano())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		InvolvedObject: corev1.ObjectReference{Kind: gvk.Kind, APIVersion: gvk.GroupVersion().String(),
			Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(), ResourceVersion: m.GetResourceVersion()},
		Reason: reason, Message: message, Type: eventType, Count: 1,
		FirstTimestamp: now, LastTimestamp: now,
		Source:              corev1.EventSource{Component: r.component, Host: r.host},
		ReportingController: r.component, ReportingInstance: r.host,
	}
	if err := r.c.Create(ctx, ev); err != nil {
		return err
	}
	r.mu.Lock()
	r.seen[key] = name
	r.mu.Unlock()
	return nil
}
