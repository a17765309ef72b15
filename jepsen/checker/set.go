package checker

import (
	"fmt"
	"sort"
	"strings"
)

// SetResult counts the set workload's adds by fate.
type SetResult struct {
	Acked     int // ok adds
	Present   int // acked adds seen by every final read
	Lost      []string
	Recovered int // unknown-outcome adds that turned out present
	Reads     int // final reads checked
}

// CheckSet checks the set workload: every acknowledged add (ok) must be in
// every final read, and a final read may hold only keys some client tried to
// add (ok or unknown; never a failed one). Final reads (f = read, ok) are
// expected after the cluster is healed; there must be at least one.
func CheckSet(history []Op) (SetResult, error) {
	var res SetResult
	attempted := map[string]Outcome{}
	for _, o := range history {
		if o.F != FAdd {
			continue
		}
		attempted[o.Key] = o.Type
		if o.Type == OK {
			res.Acked++
		}
	}
	var reads [][]string
	var nodes []string
	for _, o := range history {
		if o.F == FRead && o.Type == OK {
			reads = append(reads, o.Values)
			nodes = append(nodes, o.Node)
		}
	}
	res.Reads = len(reads)
	if len(reads) == 0 {
		return res, fmt.Errorf("%w: no successful final read of the set, cannot tell whether acknowledged adds survived", ErrLostWrite)
	}
	var problems []string
	lost := map[string]bool{}
	recovered := map[string]bool{}
	for i, vals := range reads {
		present := map[string]bool{}
		for _, v := range vals {
			present[v] = true
			switch t, ok := attempted[v]; {
			case !ok:
				problems = append(problems, fmt.Sprintf("%v: final read on %s holds %q, which no client added", ErrPhantomWrite, nodes[i], v))
			case t == Fail:
				problems = append(problems, fmt.Sprintf("%v: final read on %s holds %q, whose add failed", ErrPhantomWrite, nodes[i], v))
			case t == Info:
				recovered[v] = true
			}
		}
		for k, t := range attempted {
			if t == OK && !present[k] {
				lost[k] = true
			}
		}
	}
	for k := range lost {
		res.Lost = append(res.Lost, k)
	}
	sort.Strings(res.Lost)
	res.Present = res.Acked - len(res.Lost)
	res.Recovered = len(recovered)
	if len(res.Lost) > 0 {
		show := res.Lost
		if len(show) > 10 {
			show = show[:10]
		}
		problems = append([]string{fmt.Sprintf("%v: %d of %d acknowledged adds missing from a final read (%s)", ErrLostWrite, len(res.Lost), res.Acked, strings.Join(show, ", "))}, problems...)
	}
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], fmt.Sprintf("... and %d more", len(problems)-5))
		}
		return res, fmt.Errorf("set: %s", strings.Join(problems, "; "))
	}
	return res, nil
}

// CheckHashes checks that every member reported the same HashKV at the same
// revision. hashes maps member name to hash; errs maps member name to the
// error that member returned instead (which is a failure: the check could
// not be made).
func CheckHashes(rev int64, hashes map[string]uint32, errs map[string]string) error {
	var names []string
	for n := range hashes {
		names = append(names, n)
	}
	for n := range errs {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Errorf("%w: no member answered", ErrHashMismatch)
	}
	var parts []string
	distinct := map[uint32]bool{}
	for _, n := range names {
		if e, ok := errs[n]; ok {
			parts = append(parts, fmt.Sprintf("%s: error %s", n, e))
			continue
		}
		distinct[hashes[n]] = true
		parts = append(parts, fmt.Sprintf("%s=%08x", n, hashes[n]))
	}
	if len(errs) > 0 || len(distinct) != 1 {
		return fmt.Errorf("%w at revision %d: %s", ErrHashMismatch, rev, strings.Join(parts, ", "))
	}
	return nil
}
