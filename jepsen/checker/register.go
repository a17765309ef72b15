package checker

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// The register model: each key is an independent register holding a value
// and the revision that last modified it (etcd's mod_revision), so the model
// checks both what a read returns and that revisions only grow. Keys are
// independent, so the history is partitioned by key, which keeps porcupine's
// search small.
//
// An operation with an unknown outcome (info) is given an infinite return
// time: porcupine may linearize it anywhere after its invocation, including
// after everything else, which is the same as "it never happened". When it
// does take effect, its revision is unknown (-1) until a read reveals it.

// registerState is one key's state. ModRev -1 means "written by an op whose
// revision was never seen"; a key that does not exist has ModRev 0.
type registerState struct {
	Exists bool
	Value  string
	ModRev int64
}

type registerInput struct {
	F         string
	Value     string
	ExpectRev int64
}

type registerOutput struct {
	Unknown   bool
	Found     bool
	Value     string
	Succeeded bool
	Rev       int64
}

func revMatches(known, observed int64) bool { return known == -1 || known == observed }

func registerStep(st registerState, in registerInput, out registerOutput) (bool, registerState) {
	switch in.F {
	case FGet:
		if !out.Found {
			return !st.Exists, st
		}
		if !st.Exists || st.Value != out.Value || !revMatches(st.ModRev, out.Rev) {
			return false, st
		}
		return true, registerState{Exists: true, Value: st.Value, ModRev: out.Rev}
	case FPut:
		if out.Unknown && out.Rev > 0 {
			// Known to have been applied at out.Rev (ResolveUnknown).
			if st.ModRev != -1 && out.Rev <= st.ModRev {
				return false, st
			}
			return true, registerState{Exists: true, Value: in.Value, ModRev: out.Rev}
		}
		if out.Unknown {
			return true, registerState{Exists: true, Value: in.Value, ModRev: -1}
		}
		if st.ModRev != -1 && out.Rev <= st.ModRev {
			return false, st // revisions must grow
		}
		return true, registerState{Exists: true, Value: in.Value, ModRev: out.Rev}
	case FCAS:
		// A missing key compares as mod_revision 0, as in etcd.
		matches := revMatches(st.ModRev, in.ExpectRev)
		if out.Unknown && out.Rev > 0 {
			if !matches || (st.ModRev != -1 && out.Rev <= st.ModRev) {
				return false, st
			}
			return true, registerState{Exists: true, Value: in.Value, ModRev: out.Rev}
		}
		if out.Unknown {
			if matches {
				return true, registerState{Exists: true, Value: in.Value, ModRev: -1}
			}
			return true, st
		}
		if out.Succeeded {
			if !matches || (st.ModRev != -1 && out.Rev <= st.ModRev) {
				return false, st
			}
			return true, registerState{Exists: true, Value: in.Value, ModRev: out.Rev}
		}
		// A failed compare proves the revision differed (unless unknown).
		if st.ModRev != -1 && st.ModRev == in.ExpectRev {
			return false, st
		}
		return true, st
	}
	return false, st
}

// RegisterModel is the porcupine model of the register workload, partitioned
// by key. Inputs and outputs are built by RegisterOperations.
func RegisterModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range history {
				k := op.Metadata.(opMeta).Key
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			sort.Strings(keys)
			var out [][]porcupine.Operation
			for _, k := range keys {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() interface{} { return registerState{} },
		Step: func(state, input, output interface{}) (bool, interface{}) {
			return registerStep(state.(registerState), input.(registerInput), output.(registerOutput))
		},
		Equal: func(a, b interface{}) bool { return a.(registerState) == b.(registerState) },
		DescribeOperation: func(input, output interface{}) string {
			in, out := input.(registerInput), output.(registerOutput)
			res := ""
			switch {
			case out.Unknown && out.Rev > 0:
				res = fmt.Sprintf("unknown, applied @%d", out.Rev)
			case out.Unknown:
				res = "unknown"
			case in.F == FGet && !out.Found:
				res = "absent"
			case in.F == FGet:
				res = fmt.Sprintf("%s @%d", out.Value, out.Rev)
			case in.F == FCAS && !out.Succeeded:
				res = "compare failed"
			default:
				res = fmt.Sprintf("ok @%d", out.Rev)
			}
			switch in.F {
			case FGet:
				return "get() -> " + res
			case FPut:
				return fmt.Sprintf("put(%s) -> %s", in.Value, res)
			default:
				return fmt.Sprintf("cas(rev=%d, %s) -> %s", in.ExpectRev, in.Value, res)
			}
		},
		DescribeState: func(state interface{}) string {
			st := state.(registerState)
			if !st.Exists {
				return "absent"
			}
			return fmt.Sprintf("%s @%d", st.Value, st.ModRev)
		},
		DescribeOperationMetadata: func(info interface{}) string {
			m := info.(opMeta)
			return fmt.Sprintf("key %s, client %d on %s", m.Key, m.Process, m.Node)
		},
	}
}

type opMeta struct {
	Key     string
	Process int
	Node    string
}

// RegisterOperations turns the register ops of a history (get, put, cas)
// into porcupine operations: failed ops are dropped (they did not happen),
// unknown ones get an infinite return time.
func RegisterOperations(history []Op) []porcupine.Operation {
	var ops []porcupine.Operation
	for _, o := range history {
		if o.F != FGet && o.F != FPut && o.F != FCAS {
			continue
		}
		if o.Type == Fail || (o.Type == Info && o.F == FGet) {
			continue
		}
		op := porcupine.Operation{
			ClientId: o.Process,
			Input:    registerInput{F: o.F, Value: o.Value, ExpectRev: o.ExpectRev},
			Call:     o.Call,
			Return:   o.Return,
			Metadata: opMeta{Key: o.Key, Process: o.Process, Node: o.Node},
		}
		if o.Type == Info {
			op.Output = registerOutput{Unknown: true, Rev: o.Rev}
			op.Return = math.MaxInt64
		} else {
			op.Output = registerOutput{Found: o.Found, Value: o.Value, Succeeded: o.Succeeded, Rev: o.Rev}
		}
		ops = append(ops, op)
	}
	return ops
}

// ResolveUnknown uses the reference history (a complete, already checked
// watch from revision 1) to settle register writes whose outcome the client
// never learnt: a write whose unique value is in the reference was applied
// at that revision (it stays info, with Rev set, so porcupine must place it
// and knows its revision); one whose value is absent never happened and is
// dropped. Each pending-forever op multiplies porcupine's search, so after
// crashes of every member this is the difference between a verdict and a
// timeout. As in etcd's robustness tests, a store whose watch history lies
// about such writes is still caught: reads then contradict it.
func ResolveUnknown(history []Op, ref []Event) []Op {
	applied := map[string]int64{}
	for _, e := range ref {
		if e.Type == "PUT" {
			applied[e.Key+"\x00"+e.Value] = e.ModRev
		}
	}
	out := make([]Op, 0, len(history))
	for _, o := range history {
		if o.Type == Info && (o.F == FPut || o.F == FCAS) {
			rev, ok := applied[o.Key+"\x00"+o.Value]
			if !ok {
				continue
			}
			o.Rev = rev
			o.Succeeded = o.F == FCAS
		}
		out = append(out, o)
	}
	return out
}

// RegisterResult is the outcome of CheckRegister; Info feeds Visualize.
type RegisterResult struct {
	Result porcupine.CheckResult
	Info   porcupine.LinearizationInfo
	Ops    int
}

// CheckRegister checks the register ops of history for linearizability
// within timeout. It returns ErrNotLinearizable naming the keys whose
// histories cannot be linearized, or ErrCheckTimeout when porcupine gave up
// (Unknown is never a pass).
func CheckRegister(history []Op, timeout time.Duration) (RegisterResult, error) {
	model := RegisterModel()
	ops := RegisterOperations(history)
	res, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	rr := RegisterResult{Result: res, Info: info, Ops: len(ops)}
	switch res {
	case porcupine.Ok:
		return rr, nil
	case porcupine.Unknown:
		return rr, fmt.Errorf("%w after %v over %d operations", ErrCheckTimeout, timeout, len(ops))
	}
	// Name the keys: check each partition on its own.
	var bad []string
	for _, part := range model.Partition(ops) {
		k := part[0].Metadata.(opMeta).Key
		if porcupine.CheckOperationsTimeout(model, part, timeout) == porcupine.Illegal {
			bad = append(bad, k)
		}
	}
	return rr, fmt.Errorf("%w: register history of key(s) %s has no valid linearization (see porcupine.html)", ErrNotLinearizable, strings.Join(bad, ", "))
}

// VisualizeRegister writes porcupine's HTML visualization of a result.
func VisualizeRegister(w io.Writer, rr RegisterResult) error {
	return porcupine.Visualize(RegisterModel(), rr.Info, w)
}
