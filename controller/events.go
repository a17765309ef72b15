package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
)

// EventRecorder records Kubernetes Events about objects (what `skiff
// describe` lists). Event must not block: reconciles call it.
type EventRecorder interface {
	Event(obj runtime.Object, eventType, reason, message string)
}

type noEvents struct{}

func (noEvents) Event(runtime.Object, string, string, string) {}

// Recorder is an EventRecorder writing through the API from its own
// goroutine (Run). Repeats of an event (same object, type, reason and
// message) update one Event's count and lastTimestamp, as Kubernetes does;
// events beyond a full buffer are dropped rather than slowing reconciles.
type Recorder struct {
	w         Writer
	component string
	log       *slog.Logger
	now       func() time.Time
	ch        chan *corev1.Event

	mu   sync.Mutex
	seen map[string]*corev1.Event // dedup key → the stored event
}

// maxSeen bounds the dedup memory; past it, the memory starts afresh.
const maxSeen = 4096

// NewRecorder returns a recorder whose events name component as source.
func NewRecorder(w Writer, component string, log *slog.Logger) *Recorder {
	if log == nil {
		log = discardLogger()
	}
	return &Recorder{w: w, component: component, log: log, now: time.Now, ch: make(chan *corev1.Event, 1024), seen: map[string]*corev1.Event{}}
}

// Event queues an event about obj.
func (r *Recorder) Event(obj runtime.Object, eventType, reason, message string) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	gvk, err := client.KindOf(obj)
	if err != nil {
		return
	}
	now := metav1.NewTime(r.now())
	e := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: m.GetNamespace(), Name: fmt.Sprintf("%s.%x.%s", m.GetName(), now.UnixNano(), randomSuffix())},
		InvolvedObject: corev1.ObjectReference{Kind: gvk.Kind, APIVersion: gvk.GroupVersion().String(),
			Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(), ResourceVersion: m.GetResourceVersion()},
		Reason: reason, Message: message, Type: eventType, Count: 1,
		FirstTimestamp: now, LastTimestamp: now,
		Source:              corev1.EventSource{Component: r.component},
		ReportingController: r.component,
	}
	select {
	case r.ch <- e:
	default:
		r.log.Debug("event dropped: buffer full", "object", m.GetNamespace()+"/"+m.GetName(), "reason", reason)
	}
}

// Run writes queued events until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-r.ch:
			r.write(ctx, e)
		}
	}
}

func (r *Recorder) write(ctx context.Context, e *corev1.Event) {
	key := string(e.InvolvedObject.UID) + "\x00" + e.Type + "\x00" + e.Reason + "\x00" + e.Message
	r.mu.Lock()
	prev := r.seen[key]
	r.mu.Unlock()
	if prev != nil {
		upd := prev.DeepCopy()
		upd.Count++
		upd.LastTimestamp = e.LastTimestamp
		if err := r.w.Update(ctx, upd); err == nil {
			r.remember(key, upd)
			return
		}
		// Gone (expired, deleted) or changed by someone else: start anew.
	}
	if err := r.w.Create(ctx, e); err != nil {
		r.log.Debug("event not recorded", "object", e.Namespace+"/"+e.InvolvedObject.Name, "reason", e.Reason, "err", err)
		return
	}
	r.remember(key, e)
}

func (r *Recorder) remember(key string, e *corev1.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) >= maxSeen {
		r.seen = map[string]*corev1.Event{}
	}
	r.seen[key] = e
}
