package mvcc

import (
	"bytes"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// CheckTxn validates a txn before it is proposed, as etcd's gRPC layer does:
//
//   - ErrTooManyOps when a txn's compares or either branch has more than
//     maxOps entries; a nested txn gets the budget left after its parent's
//     largest list (etcd's checkTxnRequest);
//   - ErrEmptyKey, ErrValueProvided, ErrLeaseProvided for malformed ops;
//   - ErrDuplicateKey when one branch, nested txns included, puts a key
//     twice or puts a key that a delete of the same branch covers (etcd's
//     checkIntervals). The then and else branches of a nested txn may put
//     the same key. As in etcd, a delete whose range_end is "\x00" (from
//     key) is not treated as covering anything.
func CheckTxn(r *pb.TxnRequest, maxOps int) error {
	if err := checkTxnRequest(r, maxOps); err != nil {
		return err
	}
	if _, _, err := checkIntervals(r.Success); err != nil {
		return err
	}
	if _, _, err := checkIntervals(r.Failure); err != nil {
		return err
	}
	return nil
}

func checkTxnRequest(r *pb.TxnRequest, maxOps int) error {
	opc := max(len(r.Compare), len(r.Success), len(r.Failure))
	if opc > maxOps {
		return ErrTooManyOps
	}
	for _, c := range r.Compare {
		if c == nil || len(c.Key) == 0 {
			return ErrEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if tv, ok := op.GetRequest().(*pb.RequestOp_RequestTxn); ok && tv.RequestTxn != nil {
				if err := checkTxnRequest(tv.RequestTxn, maxOps-opc); err != nil {
					return err
				}
				continue
			}
			if err := validateOp(op); err != nil {
				return err
			}
		}
	}
	return nil
}

// interval is a half-open key interval [begin, end) where an empty end is
// +infinity, as etcd's adt.StringAffineComparable orders them.
type interval struct{ begin, end []byte }

// coversPoint reports whether the interval meets the point interval
// [k, k+"\x00").
func (iv interval) coversPoint(k []byte) bool {
	return bytes.Compare(iv.begin, k) <= 0 && (len(iv.end) == 0 || bytes.Compare(k, iv.end) < 0)
}

func anyCovers(dels []interval, k []byte) bool {
	for _, iv := range dels {
		if iv.coversPoint(k) {
			return true
		}
	}
	return false
}

// checkIntervals returns the keys put and the intervals deleted by ops and
// their nested txns, or ErrDuplicateKey.
func checkIntervals(ops []*pb.RequestOp) (map[string]struct{}, []interval, error) {
	var dels []interval
	for _, op := range ops {
		tv, ok := op.GetRequest().(*pb.RequestOp_RequestDeleteRange)
		if !ok || tv.RequestDeleteRange == nil {
			continue
		}
		d := tv.RequestDeleteRange
		if len(d.RangeEnd) != 0 {
			dels = append(dels, interval{begin: d.Key, end: d.RangeEnd})
		} else {
			dels = append(dels, interval{begin: d.Key, end: append(bytes.Clone(d.Key), 0)})
		}
	}

	puts := make(map[string]struct{})
	for _, op := range ops {
		tv, ok := op.GetRequest().(*pb.RequestOp_RequestTxn)
		if !ok || tv.RequestTxn == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(tv.RequestTxn.Success)
		if err != nil {
			return nil, nil, err
		}
		putsElse, delsElse, err := checkIntervals(tv.RequestTxn.Failure)
		if err != nil {
			return nil, nil, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || anyCovers(dels, []byte(k)) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, dup := puts[k]; dup {
				if _, inThen := putsThen[k]; !inThen {
					return nil, nil, ErrDuplicateKey
				}
			}
			if anyCovers(dels, []byte(k)) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}

	for _, op := range ops {
		tv, ok := op.GetRequest().(*pb.RequestOp_RequestPut)
		if !ok || tv.RequestPut == nil {
			continue
		}
		k := string(tv.RequestPut.Key)
		if _, dup := puts[k]; dup || anyCovers(dels, tv.RequestPut.Key) {
			return nil, nil, ErrDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
