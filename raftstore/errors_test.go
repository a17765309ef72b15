package raftstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"

	"github.com/skiffhq/skiff/raftstore/mvcc"
)

// Every mvcc error a request can produce maps to etcd's own error, same
// code and message (clients match on both), wrapped or not.
func TestToGRPCErrorMapsMVCCErrors(t *testing.T) {
	cases := []struct {
		err  error
		want error
	}{
		{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
		{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
		{mvcc.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
		{mvcc.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
		{mvcc.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
		{mvcc.ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
		{mvcc.ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},
		{mvcc.ErrValueProvided, rpctypes.ErrGRPCValueProvided},
		{mvcc.ErrLeaseProvided, rpctypes.ErrGRPCLeaseProvided},
		{mvcc.ErrInvalidSortOption, rpctypes.ErrGRPCInvalidSortOption},
	}
	for _, c := range cases {
		for _, err := range []error{c.err, fmt.Errorf("txn op 3: %w", c.err)} {
			got, want := status.Convert(toGRPCError(err)), status.Convert(c.want)
			if got.Code() != want.Code() || got.Message() != want.Message() {
				t.Errorf("toGRPCError(%v) = %v %q, want %v %q", err, got.Code(), got.Message(), want.Code(), want.Message())
			}
		}
	}
}

// A txn whose op is malformed is refused with etcd's error, as etcd 3.4
// does (checked with its etcdctl/clientv3 against etcd-server): the message
// is what clients compare with rpctypes.ErrEmptyKey and friends.
func TestTxnMalformedOpsAnswerEtcdErrors(t *testing.T) {
	s := startMember(t, testConfig(t, "m0"))
	waitLeader(t, s)
	c := newClient(t, s)
	ctx := testCtx(t)
	kv := pb.NewKVClient(c.ActiveConnection())
	put := func(r *pb.PutRequest) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: r}}
	}
	cases := []struct {
		name string
		op   *pb.RequestOp
		want error
	}{
		{"put empty key", put(&pb.PutRequest{Value: []byte("v")}), rpctypes.ErrGRPCEmptyKey},
		{"get empty key", &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{}}}, rpctypes.ErrGRPCEmptyKey},
		{"delete empty key", &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{}}}, rpctypes.ErrGRPCEmptyKey},
		{"ignore_value with value", put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v"), IgnoreValue: true}), rpctypes.ErrGRPCValueProvided},
		{"ignore_lease with lease", put(&pb.PutRequest{Key: []byte("k"), Lease: 5, IgnoreLease: true}), rpctypes.ErrGRPCLeaseProvided},
		{"range with sort target 99", &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k"), SortTarget: 99}}}, rpctypes.ErrGRPCInvalidSortOption},
	}
	for _, tc := range cases {
		_, err := kv.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{tc.op}})
		got, want := status.Convert(err), status.Convert(tc.want)
		if got.Code() != want.Code() || got.Message() != want.Message() {
			t.Errorf("%s: got %v %q, want %v %q", tc.name, got.Code(), got.Message(), want.Code(), want.Message())
		}
	}
	// clientv3 turns the status into its rpctypes error by the message.
	if _, err := c.Txn(ctx).Then(clientv3.OpPut("", "v")).Commit(); !errors.Is(err, rpctypes.ErrEmptyKey) {
		t.Errorf("clientv3 txn put of the empty key: got %v, want rpctypes.ErrEmptyKey", err)
	}
}

// retryUnknown runs op until it succeeds, again when it failed with an
// outcome-unknown or no-leader error (a leader change on a loaded machine;
// test election timeouts are 200ms). Only for ops that may run twice.
func retryUnknown(t *testing.T, ctx context.Context, what string, op func() error) {
	t.Helper()
	for {
		err := op()
		if err == nil {
			return
		}
		if !isLeaderChange(err) || ctx.Err() != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

func isLeaderChange(err error) bool {
	return errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) || errors.Is(err, rpctypes.ErrNoLeader) ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrLeaderChanged)
}
