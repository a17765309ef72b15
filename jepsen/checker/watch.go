package checker

import (
	"fmt"
	"strings"
)

// The watch checker compares what each watcher saw with a reference: the
// events of a full-range watch from revision 1 taken after the cluster was
// healed. The reference itself is first checked against the register
// history (CheckReference), so a store that rewrote history for everyone
// alike is still caught.

// Event is one watch event as recorded by the harness.
type Event struct {
	Type      string `json:"type"` // PUT or DELETE
	Key       string `json:"key"`
	Value     string `json:"value,omitempty"`
	CreateRev int64  `json:"create_rev"`
	ModRev    int64  `json:"mod_rev"`
	Version   int64  `json:"version"`
	HasPrev   bool   `json:"has_prev,omitempty"`
	PrevValue string `json:"prev_value,omitempty"`
	PrevMod   int64  `json:"prev_mod_rev,omitempty"`
}

// WatchResponse is one response received by a watcher.
type WatchResponse struct {
	Time     int64   `json:"time"`
	Revision int64   `json:"revision"` // header revision
	Events   []Event `json:"events"`
}

// Watcher is what one watcher asked for and received.
type Watcher struct {
	ID        int             `json:"id"`
	Node      string          `json:"node"`
	Prefix    string          `json:"prefix"`
	StartRev  int64           `json:"start_rev"` // first revision asked for
	PrevKV    bool            `json:"prev_kv"`
	Responses []WatchResponse `json:"responses"`
	Err       string          `json:"error,omitempty"` // watch ended with an error
}

// keyState replays the reference: the live kv of every key.
type keyState struct {
	Value     string
	CreateRev int64
	ModRev    int64
	Version   int64
}

// CheckReference checks the reference event stream on its own and against
// the register ops of history:
//   - revisions never go backwards and one revision never holds two events
//     on the same key;
//   - created vs modified: create_rev, version follow from the replay;
//   - every acknowledged put and successful cas (ok, with its revision)
//     appears at that revision with its value;
//   - every event's value was written by some client (unique values), and
//     no value was applied twice.
func CheckReference(ref []Event, history []Op) error {
	if err := checkReplay("reference", ref, nil, false); err != nil {
		return err
	}
	type at struct {
		rev int64
		key string
	}
	byRev := map[at]Event{}
	seenValue := map[string]int64{}
	for _, e := range ref {
		byRev[at{e.ModRev, e.Key}] = e
		if e.Type == "PUT" {
			if r, dup := seenValue[e.Value]; dup && e.Value != "" {
				return fmt.Errorf("%w: value %q applied twice (revisions %d and %d)", ErrWatch, e.Value, r, e.ModRev)
			}
			seenValue[e.Value] = e.ModRev
		}
	}
	written := map[string]bool{}
	for _, o := range history {
		if !o.IsWrite() {
			continue
		}
		if o.F == FAdd {
			written[o.Key] = true
			continue
		}
		written[o.Key+"="+o.Value] = true
		if o.Type != OK || (o.F == FCAS && !o.Succeeded) {
			continue
		}
		e, ok := byRev[at{o.Rev, o.Key}]
		if !ok {
			return fmt.Errorf("%w: acknowledged %s %s=%s at revision %d is missing from the full watch history", ErrLostWrite, o.F, o.Key, o.Value, o.Rev)
		}
		if e.Type != "PUT" || e.Value != o.Value {
			return fmt.Errorf("%w: acknowledged %s %s=%s at revision %d, but the watch history has %s %s=%s there", ErrWatch, o.F, o.Key, o.Value, o.Rev, e.Type, e.Key, e.Value)
		}
	}
	for _, e := range ref {
		if e.Type != "PUT" {
			continue
		}
		if !written[e.Key+"="+e.Value] && !written[e.Key] {
			return fmt.Errorf("%w: watch history has %s=%s at revision %d, which no client wrote", ErrPhantomWrite, e.Key, e.Value, e.ModRev)
		}
	}
	return nil
}

// checkReplay checks ordering and, when full is the complete history from
// revision 1, the create/modify distinction and prev_kv of events.
func checkReplay(who string, evs []Event, full []Event, prevKV bool) error {
	var last int64
	keysAtRev := map[string]bool{}
	for i, e := range evs {
		if e.ModRev < last {
			return fmt.Errorf("%w: %s: revisions went backwards: %d after %d (event %d)", ErrWatch, who, e.ModRev, last, i)
		}
		if e.ModRev != last {
			keysAtRev = map[string]bool{}
		}
		if keysAtRev[e.Key] {
			return fmt.Errorf("%w: %s: duplicate event for %s at revision %d", ErrWatch, who, e.Key, e.ModRev)
		}
		keysAtRev[e.Key] = true
		last = e.ModRev
	}
	if full == nil {
		full = evs
	}
	// Replay the full history and check created/modified, versions and
	// (when asked for) prev_kv of the events in evs.
	want := map[int64]map[string]keyState{} // rev -> key -> state before rev
	live := map[string]keyState{}
	inEvs := map[int64]bool{}
	for _, e := range evs {
		inEvs[e.ModRev] = true
	}
	for _, e := range full {
		before, existed := live[e.Key]
		if inEvs[e.ModRev] {
			if want[e.ModRev] == nil {
				want[e.ModRev] = map[string]keyState{}
			}
			if existed {
				want[e.ModRev][e.Key] = before
			}
		}
		switch e.Type {
		case "PUT":
			if existed {
				live[e.Key] = keyState{Value: e.Value, CreateRev: before.CreateRev, ModRev: e.ModRev, Version: before.Version + 1}
			} else {
				live[e.Key] = keyState{Value: e.Value, CreateRev: e.ModRev, ModRev: e.ModRev, Version: 1}
			}
		case "DELETE":
			delete(live, e.Key)
		}
	}
	for _, e := range evs {
		states := want[e.ModRev]
		before, existed := states[e.Key]
		if e.Type == "PUT" {
			wantCreate, wantVersion := e.ModRev, int64(1)
			if existed {
				wantCreate, wantVersion = before.CreateRev, before.Version+1
			}
			if e.CreateRev != wantCreate || e.Version != wantVersion {
				kind := "created"
				if existed {
					kind = "modified"
				}
				return fmt.Errorf("%w: %s: event %s at revision %d should be %s (create_rev %d, version %d) but has create_rev %d, version %d", ErrWatch, who, e.Key, e.ModRev, kind, wantCreate, wantVersion, e.CreateRev, e.Version)
			}
		}
		if !prevKV {
			continue
		}
		switch {
		case existed && !e.HasPrev:
			return fmt.Errorf("%w: %s: event %s at revision %d has no prev_kv, but the key held %q", ErrWatch, who, e.Key, e.ModRev, before.Value)
		case !existed && e.HasPrev:
			return fmt.Errorf("%w: %s: event %s at revision %d has prev_kv %q, but the key did not exist", ErrWatch, who, e.Key, e.ModRev, e.PrevValue)
		case existed && (e.PrevValue != before.Value || e.PrevMod != before.ModRev):
			return fmt.Errorf("%w: %s: event %s at revision %d has prev_kv %q@%d, want %q@%d", ErrWatch, who, e.Key, e.ModRev, e.PrevValue, e.PrevMod, before.Value, before.ModRev)
		}
	}
	return nil
}

// CheckWatcher checks one watcher against the reference (the full history
// from revision 1):
//   - revisions strictly increase from one response to the next, so no
//     revision is split across responses and nothing is delivered twice;
//   - within a response revisions never go backwards, no duplicates;
//   - no gaps: the events equal the reference's events under the watcher's
//     prefix from its start revision through the reference's last one;
//   - created/modified and (if asked for) prev_kv are right.
func CheckWatcher(w Watcher, ref []Event) error {
	who := fmt.Sprintf("watcher %d on %s (prefix %q from rev %d)", w.ID, w.Node, w.Prefix, w.StartRev)
	var got []Event
	var lastRespRev int64
	for i, r := range w.Responses {
		if len(r.Events) == 0 {
			continue
		}
		first := r.Events[0].ModRev
		if first <= lastRespRev {
			if first == lastRespRev {
				return fmt.Errorf("%w: %s: revision %d split across responses (or delivered twice), response %d", ErrWatch, who, first, i)
			}
			return fmt.Errorf("%w: %s: revisions went backwards: %d after %d, response %d", ErrWatch, who, first, lastRespRev, i)
		}
		lastRespRev = r.Events[len(r.Events)-1].ModRev
		got = append(got, r.Events...)
	}
	if err := checkReplay(who, got, ref, w.PrevKV); err != nil {
		return err
	}
	var want []Event
	for _, e := range ref {
		if e.ModRev >= w.StartRev && strings.HasPrefix(e.Key, w.Prefix) {
			want = append(want, e)
		}
	}
	for i := 0; i < len(want) || i < len(got); i++ {
		switch {
		case i >= len(got):
			if w.Err != "" {
				return fmt.Errorf("%w: %s: the watch ended with error %q, missing %d events from revision %d on (last seen %d)", ErrWatch, who, w.Err, len(want)-i, want[i].ModRev, lastRespRev)
			}
			return fmt.Errorf("%w: %s: missing %d events from revision %d on (last seen %d)", ErrWatch, who, len(want)-i, want[i].ModRev, lastRespRev)
		case i >= len(want):
			return fmt.Errorf("%w: %s: event %s at revision %d is not in the full history", ErrWatch, who, got[i].Key, got[i].ModRev)
		case got[i].ModRev != want[i].ModRev || got[i].Key != want[i].Key:
			if got[i].ModRev > want[i].ModRev {
				return fmt.Errorf("%w: %s: gap: expected %s at revision %d, got %s at revision %d", ErrWatch, who, want[i].Key, want[i].ModRev, got[i].Key, got[i].ModRev)
			}
			return fmt.Errorf("%w: %s: event %s at revision %d is not in the full history (expected %s at %d)", ErrWatch, who, got[i].Key, got[i].ModRev, want[i].Key, want[i].ModRev)
		case got[i].Type != want[i].Type || got[i].Value != want[i].Value:
			return fmt.Errorf("%w: %s: at revision %d saw %s %s=%q, the full history has %s %s=%q", ErrWatch, who, got[i].ModRev, got[i].Type, got[i].Key, got[i].Value, want[i].Type, want[i].Key, want[i].Value)
		}
	}
	return nil
}
