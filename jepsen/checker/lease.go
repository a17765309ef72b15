package checker

import (
	"fmt"
	"strings"
)

// CheckLeases checks the lease workload: once every lease has been revoked
// or has expired, no key attached to one may remain (the final lease read,
// taken after waiting past the TTL, must be empty), and every acknowledged
// put with a lease must appear in the reference history at its revision and
// be deleted by a later DELETE event (the expiry or revocation is an event
// watchers see). ref may be nil when no reference could be read; then only
// the final read is checked.
func CheckLeases(history []Op, ref []Event) error {
	var final *Op
	for i, o := range history {
		if o.F == FLeaseRead && o.Type == OK {
			final = &history[i]
		}
	}
	if final == nil {
		return fmt.Errorf("%w: no successful final read of the lease keys", ErrLease)
	}
	if len(final.Values) > 0 {
		show := final.Values
		if len(show) > 10 {
			show = show[:10]
		}
		return fmt.Errorf("%w: %d keys attached to revoked or expired leases still present on %s (%s)", ErrLease, len(final.Values), final.Node, strings.Join(show, ", "))
	}
	if ref == nil {
		return nil
	}
	lastDelete := map[string]int64{}
	putAt := map[string]int64{}
	for _, e := range ref {
		switch e.Type {
		case "DELETE":
			lastDelete[e.Key] = e.ModRev
		case "PUT":
			putAt[fmt.Sprintf("%s@%d", e.Key, e.ModRev)] = e.ModRev
		}
	}
	for _, o := range history {
		if o.F != FLeasePut || o.Type != OK {
			continue
		}
		if _, ok := putAt[fmt.Sprintf("%s@%d", o.Key, o.Rev)]; !ok {
			return fmt.Errorf("%w: acknowledged put of %s with lease %x at revision %d is missing from the watch history", ErrLease, o.Key, o.Lease, o.Rev)
		}
		if lastDelete[o.Key] <= o.Rev {
			return fmt.Errorf("%w: %s (lease %x, put at revision %d) is gone but no DELETE event followed it", ErrLease, o.Key, o.Lease, o.Rev)
		}
	}
	return nil
}
