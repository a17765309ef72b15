// Package checker holds the jepsen checkers: pure functions over recorded
// histories that return nil or an error naming the guarantee broken
// ("not linearizable: key r2 ...", "lost 3 acknowledged writes ...",
// "watch revisions went backwards ..."). Nothing here does I/O, so every
// checker is unit-tested with hand-made good and bad histories.
//
// A history is a list of Ops, one per client operation, with its invocation
// and completion times (nanoseconds since the run's start) and its outcome,
// in Jepsen's vocabulary:
//
//	ok    the operation happened, with this result
//	fail  the operation certainly did not happen (reads that errored)
//	info  the outcome is unknown (a write that timed out may or may not
//	      have been applied, at any time after its invocation)
package checker

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
)

// Outcome of an operation.
type Outcome string

// Outcomes, as in Jepsen.
const (
	OK   Outcome = "ok"
	Fail Outcome = "fail"
	Info Outcome = "info"
)

// Operation kinds.
const (
	FGet  = "get"  // register read: Found, Value, Rev = the key's mod revision
	FPut  = "put"  // register write: Value; Rev = the write's revision
	FCAS  = "cas"  // Txn(If mod_revision(Key) == ExpectRev, Then Put Value); Succeeded, Rev
	FAdd  = "add"  // set workload: create Key (unique)
	FRead = "read" // set workload: final read of the set's prefix; Values = keys present

	FLeasePut  = "lput"   // lease workload: put Key=Value attached to Lease
	FRevoke    = "revoke" // lease workload: revoke Lease
	FLeaseRead = "lread"  // lease workload: final read of the lease prefix; Values = keys present
)

// Op is one client operation.
type Op struct {
	Process   int      `json:"process"`
	Node      string   `json:"node,omitempty"`
	F         string   `json:"f"`
	Key       string   `json:"key,omitempty"`
	Value     string   `json:"value,omitempty"`
	ExpectRev int64    `json:"expect_rev,omitempty"`
	Type      Outcome  `json:"type"`
	Found     bool     `json:"found,omitempty"`
	Succeeded bool     `json:"succeeded,omitempty"`
	Rev       int64    `json:"rev,omitempty"`
	Values    []string `json:"values,omitempty"`
	Lease     int64    `json:"lease,omitempty"`
	Call      int64    `json:"call"`
	Return    int64    `json:"return"`
	Error     string   `json:"error,omitempty"`
}

// IsWrite reports whether the op may change the store.
func (o Op) IsWrite() bool { return o.F == FPut || o.F == FCAS || o.F == FAdd || o.F == FLeasePut }

// Sentinel errors; checkers wrap them with the details.
var (
	ErrNotLinearizable = errors.New("not linearizable")
	ErrCheckTimeout    = errors.New("linearizability check timed out (Unknown): not a pass")
	ErrLostWrite       = errors.New("acknowledged write lost")
	ErrPhantomWrite    = errors.New("value present that no client wrote")
	ErrWatch           = errors.New("watch guarantee broken")
	ErrHashMismatch    = errors.New("members disagree on HashKV")
	ErrLease           = errors.New("lease guarantee broken")
)

// WriteJSONL writes ops as JSON lines.
func WriteJSONL(w io.Writer, ops []Op) error {
	enc := json.NewEncoder(w)
	for _, o := range ops {
		if err := enc.Encode(o); err != nil {
			return err
		}
	}
	return nil
}

// ReadJSONL reads ops written by WriteJSONL.
func ReadJSONL(r io.Reader) ([]Op, error) {
	var ops []Op
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var o Op
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			return nil, err
		}
		ops = append(ops, o)
	}
	return ops, sc.Err()
}
