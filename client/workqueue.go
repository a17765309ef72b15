package client

import (
	"container/heap"
	"sync"
	"time"
)

// Queue is a rate-limited work queue of keys, shaped like client-go's:
//   - an item added several times before a worker takes it is handed out
//     once (the queue holds a set, in FIFO order);
//   - an item being processed (between Get and Done) is never handed to a
//     second worker; if it is added meanwhile it is handed out again after
//     Done, so no change is lost;
//   - AddRateLimited re-adds an item after a per-item exponential backoff,
//     reset by Forget.
//
// Controllers enqueue object keys (namespace/name), never objects, and
// reconcile from the informer's cache. All methods are safe for concurrent
// use.
type Queue[T comparable] struct {
	mu         sync.Mutex
	cond       *sync.Cond
	order      []T
	dirty      map[T]bool
	processing map[T]bool
	shutdown   bool

	failures map[T]int
	base     time.Duration
	max      time.Duration

	waiting     waitHeap[T]
	waitingSet  map[T]time.Time
	wakeWaiting chan struct{}
	stopWaiting chan struct{}
}

// NewQueue returns a queue whose AddRateLimited waits base·2^n (n = the
// item's failures since its last Forget), capped at max.
func NewQueue[T comparable](base, max time.Duration) *Queue[T] {
	q := &Queue[T]{
		dirty: map[T]bool{}, processing: map[T]bool{}, failures: map[T]int{},
		base: base, max: max, waitingSet: map[T]time.Time{},
		wakeWaiting: make(chan struct{}, 1), stopWaiting: make(chan struct{}),
	}
	q.cond = sync.NewCond(&q.mu)
	go q.waitLoop()
	return q
}

// NewDefaultQueue backs off from 5ms to 1000s, as client-go's default.
func NewDefaultQueue[T comparable]() *Queue[T] {
	return NewQueue[T](5*time.Millisecond, 1000*time.Second)
}

// Add queues item unless it is already queued.
func (q *Queue[T]) Add(item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(item)
}

func (q *Queue[T]) addLocked(item T) {
	if q.shutdown || q.dirty[item] {
		return
	}
	q.dirty[item] = true
	if q.processing[item] {
		return // queued again by Done
	}
	q.order = append(q.order, item)
	q.cond.Signal()
}

// Get blocks until an item is available and returns it; shutdown is true
// once the queue is shut down.
func (q *Queue[T]) Get() (item T, shutdown bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if len(q.order) == 0 {
		var zero T
		return zero, true
	}
	item = q.order[0]
	var zero T
	q.order[0] = zero
	q.order = q.order[1:]
	q.processing[item] = true
	delete(q.dirty, item)
	return item, false
}

// Done marks the end of processing item.
func (q *Queue[T]) Done(item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, item)
	if q.dirty[item] {
		q.order = append(q.order, item)
		q.cond.Signal()
	}
}

// Len is the number of queued items (not counting those in process).
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// AddAfter queues item after d (at once when d <= 0). An item already
// waiting keeps the earlier of the two times.
func (q *Queue[T]) AddAfter(item T, d time.Duration) {
	if d <= 0 {
		q.Add(item)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	at := time.Now().Add(d)
	if old, ok := q.waitingSet[item]; ok && !at.Before(old) {
		return
	}
	q.waitingSet[item] = at
	heap.Push(&q.waiting, waitEntry[T]{item: item, at: at})
	select {
	case q.wakeWaiting <- struct{}{}:
	default:
	}
}

// AddRateLimited queues item after its backoff and counts a failure.
func (q *Queue[T]) AddRateLimited(item T) {
	q.mu.Lock()
	n := q.failures[item]
	q.failures[item] = n + 1
	q.mu.Unlock()
	d := q.base
	for i := 0; i < n && d < q.max; i++ {
		d *= 2
	}
	q.AddAfter(item, min(d, q.max))
}

// Forget resets item's backoff (call it after a successful reconcile).
func (q *Queue[T]) Forget(item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, item)
}

// NumRequeues is item's failures since its last Forget.
func (q *Queue[T]) NumRequeues(item T) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failures[item]
}

// ShutDown makes Get return shutdown=true to every worker at once; items
// still queued are dropped.
func (q *Queue[T]) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.shutdown {
		q.shutdown = true
		q.order = nil
		close(q.stopWaiting)
	}
	q.cond.Broadcast()
}

// ShuttingDown reports whether ShutDown was called.
func (q *Queue[T]) ShuttingDown() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.shutdown
}

func (q *Queue[T]) waitLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		now := time.Now()
		for q.waiting.Len() > 0 && !q.waiting[0].at.After(now) {
			e := heap.Pop(&q.waiting).(waitEntry[T])
			if at, ok := q.waitingSet[e.item]; ok && at.Equal(e.at) {
				delete(q.waitingSet, e.item)
				q.addLocked(e.item)
			}
		}
		next := time.Hour
		if q.waiting.Len() > 0 {
			next = time.Until(q.waiting[0].at)
		}
		q.mu.Unlock()
		timer.Reset(next)
		select {
		case <-q.stopWaiting:
			return
		case <-q.wakeWaiting:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
	}
}

type waitEntry[T comparable] struct {
	item T
	at   time.Time
}

type waitHeap[T comparable] []waitEntry[T]

func (h waitHeap[T]) Len() int           { return len(h) }
func (h waitHeap[T]) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h waitHeap[T]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waitHeap[T]) Push(x any)        { *h = append(*h, x.(waitEntry[T])) }
func (h *waitHeap[T]) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
