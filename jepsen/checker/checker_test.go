package checker

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func put(p int, key, v string, call, ret int64, typ Outcome, rev int64) Op {
	return Op{Process: p, F: FPut, Key: key, Value: v, Type: typ, Rev: rev, Call: call, Return: ret}
}

func get(p int, key, v string, call, ret int64, rev int64) Op {
	return Op{Process: p, F: FGet, Key: key, Value: v, Found: v != "", Type: OK, Rev: rev, Call: call, Return: ret}
}

func cas(p int, key string, expect int64, v string, call, ret int64, typ Outcome, ok bool, rev int64) Op {
	return Op{Process: p, F: FCAS, Key: key, Value: v, ExpectRev: expect, Type: typ, Succeeded: ok, Rev: rev, Call: call, Return: ret}
}

func TestCheckRegister(t *testing.T) {
	tests := []struct {
		name    string
		history []Op
		wantErr error
	}{
		{"sequential", []Op{
			get(0, "k", "", 0, 1, 0),
			put(0, "k", "a", 2, 3, OK, 2),
			get(1, "k", "a", 4, 5, 2),
			cas(1, "k", 2, "b", 6, 7, OK, true, 3),
			cas(0, "k", 2, "c", 8, 9, OK, false, 0),
			get(0, "k", "b", 10, 11, 3),
		}, nil},
		{"concurrent read may see old or new", []Op{
			put(0, "k", "a", 0, 1, OK, 2),
			put(0, "k", "b", 2, 10, OK, 3),
			get(1, "k", "a", 3, 4, 2),
			get(2, "k", "b", 5, 6, 3),
		}, nil},
		{"two keys are independent", []Op{
			put(0, "x", "a", 0, 1, OK, 2),
			put(1, "y", "b", 2, 3, OK, 3),
			get(2, "x", "a", 4, 5, 2),
			get(2, "y", "b", 6, 7, 3),
		}, nil},
		{"unknown write later observed", []Op{
			put(0, "k", "a", 0, 1, OK, 2),
			put(1, "k", "b", 2, 3, Info, 0),
			get(2, "k", "a", 4, 5, 2),
			get(2, "k", "b", 6, 7, 3),
		}, nil},
		{"unknown write never observed", []Op{
			put(0, "k", "a", 0, 1, OK, 2),
			put(1, "k", "b", 2, 3, Info, 0),
			get(2, "k", "a", 20, 21, 2),
		}, nil},
		{"failed read is ignored", []Op{
			put(0, "k", "a", 0, 1, OK, 2),
			{Process: 1, F: FGet, Key: "k", Type: Fail, Call: 2, Return: 3},
		}, nil},
		{"stale read after a newer write completed", []Op{
			put(0, "k", "a", 0, 1, OK, 2),
			put(0, "k", "b", 2, 3, OK, 3),
			get(1, "k", "a", 4, 5, 2),
		}, ErrNotLinearizable},
		{"read of a value never written", []Op{
			put(0, "k", "a", 0, 1, OK, 2),
			get(1, "k", "z", 4, 5, 2),
		}, ErrNotLinearizable},
		{"cas succeeded against the wrong revision", []Op{
			put(0, "k", "a", 0, 1, OK, 2),
			put(0, "k", "b", 2, 3, OK, 3),
			cas(1, "k", 2, "c", 4, 5, OK, true, 4),
		}, ErrNotLinearizable},
		{"cas failed although the revision matched", []Op{
			put(0, "k", "a", 0, 1, OK, 2),
			cas(1, "k", 2, "c", 4, 5, OK, false, 0),
		}, ErrNotLinearizable},
		{"write revisions went backwards", []Op{
			put(0, "k", "a", 0, 1, OK, 5),
			put(0, "k", "b", 2, 3, OK, 4),
		}, ErrNotLinearizable},
		{"read revision disagrees with the write", []Op{
			put(0, "k", "a", 0, 1, OK, 5),
			get(1, "k", "a", 2, 3, 6),
		}, ErrNotLinearizable},
		{"deleted value reappears (lost write)", []Op{
			put(0, "k", "a", 0, 1, OK, 2),
			get(1, "k", "", 2, 3, 0),
		}, ErrNotLinearizable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr, err := CheckRegister(tt.history, 10*time.Second)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckRegister: got %v, want %v (result %s)", err, tt.wantErr, rr.Result)
			}
			var buf bytes.Buffer
			if err := VisualizeRegister(&buf, rr); err != nil || buf.Len() == 0 {
				t.Fatalf("visualize: %v, %d bytes", err, buf.Len())
			}
			if tt.wantErr != nil && !strings.Contains(err.Error(), "key(s) k") {
				t.Errorf("error does not name the key: %v", err)
			}
		})
	}
}

// TestCheckRegisterTimeoutIsFailure: porcupine's Unknown is never a pass.
func TestCheckRegisterTimeoutIsFailure(t *testing.T) {
	// Many fully concurrent unknown writes and reads make the search space
	// large; with a 1ns budget the checker gives up.
	var h []Op
	for i := 0; i < 200; i++ {
		v := fmt.Sprintf("v%d", i)
		h = append(h, put(i, "k", v, int64(i), 1000, Info, 0))
		h = append(h, get(1000+i, "k", v, int64(i), 2000, int64(i+2)))
	}
	_, err := CheckRegister(h, time.Nanosecond)
	if err == nil {
		t.Fatal("CheckRegister with a 1ns timeout passed")
	}
	if !errors.Is(err, ErrCheckTimeout) {
		t.Fatalf("got %v, want a timeout failure", err)
	}
}

func TestCheckSet(t *testing.T) {
	add := func(k string, typ Outcome) Op { return Op{F: FAdd, Key: k, Type: typ} }
	read := func(node string, vals ...string) Op { return Op{F: FRead, Node: node, Type: OK, Values: vals} }
	tests := []struct {
		name    string
		history []Op
		wantErr error
		lost    int
	}{
		{"all present, unknown recovered", []Op{add("a", OK), add("b", OK), add("c", Info), add("d", Fail), read("n1", "a", "b", "c"), read("n2", "a", "b", "c")}, nil, 0},
		{"acknowledged add lost on one member", []Op{add("a", OK), add("b", OK), read("n1", "a", "b"), read("n2", "a")}, ErrLostWrite, 1},
		{"phantom key", []Op{add("a", OK), read("n1", "a", "zz")}, ErrPhantomWrite, 0},
		{"failed add present", []Op{add("a", OK), add("b", Fail), read("n1", "a", "b")}, ErrPhantomWrite, 0},
		{"no final read", []Op{add("a", OK)}, ErrLostWrite, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := CheckSet(tt.history)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && (err == nil || !strings.Contains(err.Error(), tt.wantErr.Error())) {
				t.Fatalf("CheckSet: got %v, want %v", err, tt.wantErr)
			}
			if len(res.Lost) != tt.lost {
				t.Errorf("lost = %v, want %d", res.Lost, tt.lost)
			}
		})
	}
}

func TestCheckHashes(t *testing.T) {
	if err := CheckHashes(10, map[string]uint32{"n1": 7, "n2": 7, "n3": 7}, nil); err != nil {
		t.Fatalf("equal hashes: %v", err)
	}
	if err := CheckHashes(10, map[string]uint32{"n1": 7, "n2": 8, "n3": 7}, nil); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("different hashes: got %v", err)
	}
	if err := CheckHashes(10, map[string]uint32{"n1": 7, "n2": 7}, map[string]string{"n3": "Unimplemented"}); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("member error: got %v", err)
	}
}

// ev builds a PUT event; creates when version is 1.
func ev(key, v string, rev, create, version int64) Event {
	return Event{Type: "PUT", Key: key, Value: v, ModRev: rev, CreateRev: create, Version: version}
}

func withPrev(e Event, v string, mod int64) Event {
	e.HasPrev, e.PrevValue, e.PrevMod = true, v, mod
	return e
}

// reference: r/a created at 2, r/b at 3, r/a modified at 4, s/x at 5,
// r/a deleted at 6, r/a re-created at 7.
func reference() []Event {
	return []Event{
		ev("r/a", "1", 2, 2, 1),
		ev("r/b", "2", 3, 3, 1),
		ev("r/a", "3", 4, 2, 2),
		ev("s/x", "4", 5, 5, 1),
		{Type: "DELETE", Key: "r/a", ModRev: 6},
		ev("r/a", "5", 7, 7, 1),
	}
}

func resp(evs ...Event) WatchResponse { return WatchResponse{Events: evs} }

func TestCheckWatcher(t *testing.T) {
	ref := reference()
	good := Watcher{ID: 1, Node: "n1", Prefix: "r/", StartRev: 1, PrevKV: true, Responses: []WatchResponse{
		resp(ref[0], ref[1]),
		resp(withPrev(ref[2], "1", 2)),
		resp(withPrev(ref[4], "3", 4)),
		resp(ref[5]),
	}}
	if err := CheckWatcher(good, ref); err != nil {
		t.Fatalf("good watcher: %v", err)
	}
	fromRev := Watcher{ID: 2, Node: "n2", Prefix: "", StartRev: 4, Responses: []WatchResponse{
		resp(ref[2], ref[3]), resp(ref[4], ref[5]),
	}}
	if err := CheckWatcher(fromRev, ref); err != nil {
		t.Fatalf("watcher from revision 4: %v", err)
	}
	bad := []struct {
		name string
		w    Watcher
		want string
	}{
		{"gap", Watcher{Prefix: "r/", StartRev: 1, Responses: []WatchResponse{resp(ref[0]), resp(ref[2], ref[4], ref[5])}}, "gap"},
		{"duplicate delivery", Watcher{Prefix: "r/", StartRev: 1, Responses: []WatchResponse{resp(ref[0], ref[1]), resp(ref[1], ref[2], ref[4], ref[5])}}, "split across responses"},
		{"backwards", Watcher{Prefix: "r/", StartRev: 1, Responses: []WatchResponse{resp(ref[0], ref[2]), resp(ref[1]), resp(ref[4], ref[5])}}, "backwards"},
		{"missing tail", Watcher{Prefix: "r/", StartRev: 1, Responses: []WatchResponse{resp(ref[0], ref[1], ref[2])}}, "missing 2 events"},
		{"wrong value", Watcher{Prefix: "r/", StartRev: 1, Responses: []WatchResponse{resp(ref[0], ref[1], ev("r/a", "X", 4, 2, 2), ref[4], ref[5])}}, "saw PUT"},
		{"modified reported as created", Watcher{Prefix: "r/", StartRev: 1, Responses: []WatchResponse{resp(ref[0], ref[1], ev("r/a", "3", 4, 4, 1), ref[4], ref[5])}}, "should be modified"},
		{"missing prev_kv", Watcher{Prefix: "r/", StartRev: 1, PrevKV: true, Responses: []WatchResponse{resp(ref[0], ref[1], ref[2], withPrev(ref[4], "3", 4), ref[5])}}, "no prev_kv"},
		{"wrong prev_kv", Watcher{Prefix: "r/", StartRev: 1, PrevKV: true, Responses: []WatchResponse{resp(ref[0], ref[1], withPrev(ref[2], "2", 3), withPrev(ref[4], "3", 4), ref[5])}}, "want \"1\"@2"},
		{"prev_kv on a create", Watcher{Prefix: "r/", StartRev: 1, PrevKV: true, Responses: []WatchResponse{resp(withPrev(ref[0], "0", 1), ref[1], withPrev(ref[2], "1", 2), withPrev(ref[4], "3", 4), ref[5])}}, "did not exist"},
		{"event outside the prefix", Watcher{Prefix: "r/", StartRev: 1, Responses: []WatchResponse{resp(ref[0], ref[1], ref[2], ref[3], ref[4], ref[5])}}, "not in the full history"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckWatcher(tt.w, ref)
			if !errors.Is(err, ErrWatch) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrWatch containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckReference(t *testing.T) {
	ref := reference()
	hist := []Op{
		put(0, "r/a", "1", 0, 1, OK, 2),
		put(0, "r/b", "2", 0, 1, OK, 3),
		cas(0, "r/a", 2, "3", 0, 1, OK, true, 4),
		put(0, "s/x", "4", 0, 1, Info, 0),
		put(0, "r/a", "5", 0, 1, OK, 7),
	}
	if err := CheckReference(ref, hist); err != nil {
		t.Fatalf("good reference: %v", err)
	}
	lost := append(append([]Op(nil), hist...), put(1, "r/b", "9", 0, 1, OK, 8))
	if err := CheckReference(ref, lost); !errors.Is(err, ErrLostWrite) {
		t.Fatalf("acknowledged write missing: got %v", err)
	}
	if err := CheckReference(ref, hist[:4]); !errors.Is(err, ErrPhantomWrite) {
		t.Fatalf("unwritten value: got %v", err)
	}
	twice := append(append([]Event(nil), ref...), ev("r/b", "1", 8, 3, 2))
	if err := CheckReference(twice, hist); !errors.Is(err, ErrWatch) {
		t.Fatalf("value applied twice: got %v", err)
	}
	backwards := []Event{ref[1], ref[0]}
	if err := CheckReference(backwards, hist); !errors.Is(err, ErrWatch) {
		t.Fatalf("backwards reference: got %v", err)
	}
}

func TestCheckLeases(t *testing.T) {
	lput := func(k string, rev int64) Op {
		return Op{F: FLeasePut, Key: k, Value: k, Type: OK, Rev: rev, Lease: 7}
	}
	lread := func(vals ...string) Op { return Op{F: FLeaseRead, Node: "n1", Type: OK, Values: vals} }
	ref := []Event{ev("lease/a", "lease/a", 2, 2, 1), ev("lease/b", "lease/b", 3, 3, 1), {Type: "DELETE", Key: "lease/a", ModRev: 4}, {Type: "DELETE", Key: "lease/b", ModRev: 5}}
	good := []Op{lput("lease/a", 2), lput("lease/b", 3), {F: FRevoke, Lease: 7, Type: OK}, lread()}
	if err := CheckLeases(good, ref); err != nil {
		t.Fatalf("good: %v", err)
	}
	tests := []struct {
		name string
		h    []Op
		ref  []Event
		want string
	}{
		{"key outlives its lease", []Op{lput("lease/a", 2), lread("lease/a")}, ref, "still present"},
		{"no final read", []Op{lput("lease/a", 2)}, ref, "no successful final read"},
		{"expiry without a delete event", []Op{lput("lease/a", 2), lread()}, ref[:2], "no DELETE event"},
		{"acknowledged lease put missing", []Op{lput("lease/c", 9), lread()}, ref, "missing from the watch history"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckLeases(tt.h, tt.ref)
			if !errors.Is(err, ErrLease) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrLease containing %q", err, tt.want)
			}
		})
	}
}

func TestResolveUnknown(t *testing.T) {
	h := []Op{
		put(0, "k", "a", 0, 1, OK, 2),
		put(1, "k", "b", 2, 3, Info, 0), // applied at 3 (in the reference)
		put(2, "k", "c", 2, 3, Info, 0), // never applied
		cas(3, "k", 3, "d", 4, 5, Info, false, 0),
		get(4, "k", "d", 6, 7, 4),
	}
	ref := []Event{ev("k", "a", 2, 2, 1), ev("k", "b", 3, 2, 2), ev("k", "d", 4, 2, 3)}
	got := ResolveUnknown(h, ref)
	if len(got) != 4 {
		t.Fatalf("got %d ops, want 4 (the unapplied unknown write dropped)", len(got))
	}
	if got[1].Rev != 3 || got[2].Rev != 4 || !got[2].Succeeded {
		t.Fatalf("resolved ops: %+v, %+v", got[1], got[2])
	}
	if _, err := CheckRegister(got, 10*time.Second); err != nil {
		t.Fatalf("resolved history: %v", err)
	}
	// A write the reference places at a revision the reads contradict.
	lying := []Event{ev("k", "a", 2, 2, 1), ev("k", "b", 5, 2, 2), ev("k", "d", 4, 2, 3)}
	if _, err := CheckRegister(ResolveUnknown(h, lying), 10*time.Second); !errors.Is(err, ErrNotLinearizable) {
		t.Fatalf("contradicting reference: got %v, want ErrNotLinearizable", err)
	}
}
