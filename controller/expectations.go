package controller

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// DefaultExpectationsTimeout is how long a controller waits for its own
// creations and deletions to show in its cache before it stops trusting
// them (a watch event lost for good, a create that failed after all).
const DefaultExpectationsTimeout = 5 * time.Minute

// Expectations remembers, per controller key, the pods that controller
// created or deleted and that its cache has not yet reflected. Unlike
// Kubernetes' counters, they are names checked against the cache on every
// reconcile, so no event handler has to report observations: the check is
// level-triggered too. Safe for concurrent use.
type Expectations struct {
	mu      sync.Mutex
	byOwner map[string]*pending
	timeout time.Duration
	now     func() time.Time
}

type pending struct {
	creates map[string]struct{}  // pod keys expected to appear
	deletes map[string]types.UID // pod keys expected to go (or be marked)
	since   time.Time            // the latest expectation
}

// NewExpectations returns expectations that lapse after timeout (0 means
// DefaultExpectationsTimeout); now is the clock (nil: time.Now).
func NewExpectations(timeout time.Duration, now func() time.Time) *Expectations {
	if timeout <= 0 {
		timeout = DefaultExpectationsTimeout
	}
	if now == nil {
		now = time.Now
	}
	return &Expectations{byOwner: map[string]*pending{}, timeout: timeout, now: now}
}

func (e *Expectations) entry(owner string) *pending {
	p := e.byOwner[owner]
	if p == nil {
		p = &pending{creates: map[string]struct{}{}, deletes: map[string]types.UID{}}
		e.byOwner[owner] = p
	}
	p.since = e.now()
	return p
}

// ExpectCreate records that owner is about to create podKey. Call it before
// the create, so a watch event cannot arrive before the expectation.
func (e *Expectations) ExpectCreate(owner, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.entry(owner).creates[podKey] = struct{}{}
}

// ExpectDelete records that owner is about to delete podKey (of uid).
func (e *Expectations) ExpectDelete(owner, podKey string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.entry(owner).deletes[podKey] = uid
}

// Cancel drops an expectation whose write failed (or needs no observing).
func (e *Expectations) Cancel(owner, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.byOwner[owner]; p != nil {
		delete(p.creates, podKey)
		delete(p.deletes, podKey)
	}
}

// Forget drops everything expected for owner (it was deleted).
func (e *Expectations) Forget(owner string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byOwner, owner)
}

// Satisfied reports whether pods (the cache) reflects every creation and
// deletion owner expects, pruning those it does; expectations older than
// the timeout are dropped. When it returns false, wait is how long until
// they lapse, for a safety-net requeue.
func (e *Expectations) Satisfied(owner string, pods Cache) (ok bool, wait time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.byOwner[owner]
	if p == nil {
		return true, 0
	}
	for k := range p.creates {
		if _, seen := pods.Get(k); seen {
			delete(p.creates, k)
		}
	}
	for k, uid := range p.deletes {
		o, present := pods.Get(k)
		if !present {
			delete(p.deletes, k)
			continue
		}
		if pod, isPod := o.(*corev1.Pod); !isPod || pod.UID != uid || pod.DeletionTimestamp != nil {
			delete(p.deletes, k)
		}
	}
	if len(p.creates) == 0 && len(p.deletes) == 0 {
		delete(e.byOwner, owner)
		return true, 0
	}
	age := e.now().Sub(p.since)
	if age >= e.timeout {
		delete(e.byOwner, owner)
		return true, 0
	}
	return false, e.timeout - age
}
