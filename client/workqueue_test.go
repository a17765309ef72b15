package client

import (
	"sync"
	"testing"
	"time"
)

func TestQueueDedupesAndKeepsOrder(t *testing.T) {
	q := NewDefaultQueue[string]()
	defer q.ShutDown()
	for _, k := range []string{"a", "b", "a", "c", "b"} {
		q.Add(k)
	}
	if q.Len() != 3 {
		t.Fatalf("len = %d, want 3", q.Len())
	}
	for _, want := range []string{"a", "b", "c"} {
		got, shut := q.Get()
		if shut || got != want {
			t.Fatalf("Get = %q (shutdown %v), want %q", got, shut, want)
		}
		q.Done(got)
	}
}

func TestQueueItemInProcessIsNotHandedOutTwice(t *testing.T) {
	q := NewDefaultQueue[string]()
	defer q.ShutDown()
	q.Add("k")
	item, _ := q.Get()
	q.Add("k") // changed while being processed
	if q.Len() != 0 {
		t.Fatalf("an item in process was queued for another worker")
	}
	got := make(chan string, 1)
	go func() {
		it, _ := q.Get()
		got <- it
	}()
	select {
	case it := <-got:
		t.Fatalf("second worker got %q while the first still processes it", it)
	case <-time.After(50 * time.Millisecond):
	}
	q.Done(item)
	select {
	case it := <-got:
		if it != "k" {
			t.Fatalf("got %q", it)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the item added during processing was lost")
	}
}

func TestQueueRateLimitedBackoff(t *testing.T) {
	q := NewQueue[string](20*time.Millisecond, 80*time.Millisecond)
	defer q.ShutDown()
	var delays []time.Duration
	for i := 0; i < 4; i++ {
		start := time.Now()
		q.AddRateLimited("k")
		it, _ := q.Get()
		delays = append(delays, time.Since(start))
		q.Done(it)
	}
	want := []time.Duration{20, 40, 80, 80}
	for i, d := range delays {
		if w := want[i] * time.Millisecond; d < w || d > w+time.Second {
			t.Errorf("retry %d came after %s, want about %s", i, d, w)
		}
	}
	if q.NumRequeues("k") != 4 {
		t.Errorf("NumRequeues = %d, want 4", q.NumRequeues("k"))
	}
	q.Forget("k")
	if q.NumRequeues("k") != 0 {
		t.Errorf("Forget did not reset")
	}
}

func TestQueueShutDownReleasesWorkers(t *testing.T) {
	q := NewDefaultQueue[int]()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				it, shut := q.Get()
				if shut {
					return
				}
				q.Done(it)
			}
		}()
	}
	q.Add(1)
	q.AddAfter(2, time.Hour)
	q.ShutDown()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("workers still blocked after ShutDown")
	}
	q.Add(3)
	if q.Len() != 0 {
		t.Errorf("Add after ShutDown queued an item")
	}
}
