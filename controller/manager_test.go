package controller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/client"
)

// scripted is a Reconciler whose results are set per key; it records calls.
type scripted struct {
	mu     sync.Mutex
	calls  map[string]int
	errs   map[string]error
	resync map[string]time.Duration
}

func (s *scripted) Name() string { return "scripted" }

func (s *scripted) Reconcile(_ context.Context, key string) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[key]++
	return Result{RequeueAfter: s.resync[key]}, s.errs[key]
}

func (s *scripted) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[key]
}

func TestLoopRetriesErrorsAndForgetsSuccess(t *testing.T) {
	s := &scripted{calls: map[string]int{}, errs: map[string]error{"bad": errors.New("boom")}, resync: map[string]time.Duration{"later": 20 * time.Millisecond}}
	l := newLoop(s, discardLogger())
	l.queue = client.NewQueue[string](time.Millisecond, 10*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	l.start(ctx, 2, &wg)
	defer func() { cancel(); l.queue.ShutDown(); wg.Wait() }()

	l.queue.Add("good")
	l.queue.Add("bad")
	l.queue.Add("later")
	eventually(t, 5*time.Second, "a failing key retried", func() error {
		if n := s.count("bad"); n < 3 {
			return errors.New("bad reconciled fewer than 3 times")
		}
		if n := s.count("later"); n < 2 {
			return errors.New("RequeueAfter did not reconcile again")
		}
		return nil
	})
	if n := s.count("good"); n != 1 {
		t.Errorf("a successful key was reconciled %d times, want 1", n)
	}
	if n := l.queue.NumRequeues("good"); n != 0 {
		t.Errorf("good has %d requeues, want 0 (forgotten)", n)
	}
	if n := l.queue.NumRequeues("bad"); n == 0 {
		t.Errorf("bad has no requeues counted")
	}
}
