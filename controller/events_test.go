package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestRecorderDeduplicates(t *testing.T) {
	f := newFake()
	rs := testRS("web", 1)
	f.add(rs)
	r := NewRecorder(f, "test", nil)
	t0 := f.now // the fake's clock moves under its lock on every create
	r.now = func() time.Time { return t0 }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	r.Event(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: web-a")
	r.Event(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: web-a")
	r.Event(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: web-a")
	r.Event(rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: quota")
	eventually(t, 5*time.Second, "events recorded", func() error {
		counts := map[string]int32{}
		for _, o := range f.cache("Event").List(nil) {
			e := o.(*corev1.Event)
			if e.InvolvedObject.Kind != "ReplicaSet" || e.InvolvedObject.Name != "web" || e.InvolvedObject.UID != rs.UID || e.Source.Component != "test" {
				t.Fatalf("event about %+v from %q", e.InvolvedObject, e.Source.Component)
			}
			counts[e.Reason] += e.Count
			if e.Reason == "SuccessfulCreate" && e.Count != 3 {
				return errNotYet("SuccessfulCreate count", e.Count)
			}
		}
		if len(counts) != 2 || counts["FailedCreate"] != 1 {
			return errNotYet("events", counts)
		}
		return nil
	})
	if n := len(f.cache("Event").List(nil)); n != 2 {
		t.Errorf("%d events stored, want 2 (repeats counted, not stored)", n)
	}
}

func errNotYet(what string, v any) error { return &notYet{what, v} }

type notYet struct {
	what string
	v    any
}

func (e *notYet) Error() string { return e.what + " not yet: " + fmtAny(e.v) }

func fmtAny(v any) string { return fmt.Sprint(v) }
