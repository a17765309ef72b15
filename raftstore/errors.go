package raftstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/hashicorp/raft"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiffhq/skiff/raftstore/mvcc"
)

// toGRPCError maps store and raft errors to etcd's own gRPC errors (same
// codes and messages: clients match on them). Errors that already carry a
// gRPC status pass through.
func toGRPCError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, mvcc.ErrCompacted):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, mvcc.ErrFutureRev):
		return rpctypes.ErrGRPCFutureRev
	case errors.Is(err, mvcc.ErrLeaseNotFound):
		return rpctypes.ErrGRPCLeaseNotFound
	case errors.Is(err, mvcc.ErrKeyNotFound):
		return rpctypes.ErrGRPCKeyNotFound
	case errors.Is(err, mvcc.ErrDuplicateKey):
		return rpctypes.ErrGRPCDuplicateKey
	case errors.Is(err, mvcc.ErrTooManyOps):
		return rpctypes.ErrGRPCTooManyOps
	// These four wrap ErrUnsupported, so they must come before it: etcd
	// answers them with its own messages, which clients match on.
	case errors.Is(err, mvcc.ErrEmptyKey):
		return rpctypes.ErrGRPCEmptyKey
	case errors.Is(err, mvcc.ErrValueProvided):
		return rpctypes.ErrGRPCValueProvided
	case errors.Is(err, mvcc.ErrLeaseProvided):
		return rpctypes.ErrGRPCLeaseProvided
	case errors.Is(err, mvcc.ErrInvalidSortOption):
		return rpctypes.ErrGRPCInvalidSortOption
	case errors.Is(err, mvcc.ErrUnsupported):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return rpctypes.ErrGRPCCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return rpctypes.ErrGRPCDeadlineExceeded
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Nothing was appended: the caller may retry elsewhere.
		return rpctypes.ErrGRPCNotLeader
	case errors.Is(err, raft.ErrLeadershipLost):
		// The entry may still commit under the next leader: the outcome
		// is unknown, which this error says.
		return rpctypes.ErrGRPCTimeoutDueToLeaderFail
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return rpctypes.ErrGRPCTimeout
	case errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, errServerClosed):
		return rpctypes.ErrGRPCStopped
	}
	return status.Error(codes.Unknown, err.Error())
}

// ctxError turns a context's end into the matching gRPC status.
func ctxError(ctx context.Context) error {
	return status.FromContextError(ctx.Err()).Err()
}

var errServerClosed = errors.New("raftstore: server closed")

// unsupported is the InvalidArgument answer for a request field Skiff does
// not implement; it names the field so the caller knows what to drop.
func unsupported(field string) error {
	return status.Errorf(codes.InvalidArgument, "skiff: %s is not supported", field)
}

// memberIDFor derives a member id from the advertised peer address. Only the
// address is hashed (not the name) so that MemberAdd, which is given nothing
// but peer URLs, computes the same id the new member computes for itself.
func memberIDFor(peerAddr string) uint64 {
	h := fnv.New64a()
	h.Write([]byte("skiff-member\x00"))
	h.Write([]byte(peerAddr))
	id := h.Sum64()
	if id == 0 {
		id = 1
	}
	return id
}

func formatMemberID(id uint64) raft.ServerID { return raft.ServerID(strconv.FormatUint(id, 16)) }

func parseMemberID(id raft.ServerID) (uint64, error) {
	v, err := strconv.ParseUint(string(id), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("raft server id %q is not a skiff member id: %w", id, err)
	}
	return v, nil
}
