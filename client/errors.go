package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// Reasons carried in Status.reason; the same words as Kubernetes'
// metav1.StatusReason so that messages and client logic carry over.
const (
	ReasonNotFound         = "NotFound"
	ReasonAlreadyExists    = "AlreadyExists"
	ReasonConflict         = "Conflict"
	ReasonInvalid          = "Invalid"
	ReasonBadRequest       = "BadRequest"
	ReasonForbidden        = "Forbidden"
	ReasonUnauthorized     = "Unauthorized"
	ReasonExpired          = "Expired"
	ReasonInternalError    = "InternalError"
	ReasonMethodNotAllowed = "MethodNotAllowed"
	ReasonTimeout          = "Timeout"
	ReasonUnavailable      = "ServiceUnavailable"
)

// StatusError is an error of the cluster API: a gRPC code and a Status
// detail shaped like Kubernetes' metav1.Status. The API server returns it
// from handlers (it implements GRPCStatus, so gRPC carries it as is) and the
// client turns every failed call back into one (FromError).
type StatusError struct {
	Code   codes.Code
	Status *skiffv1.Status
}

func (e *StatusError) Error() string { return e.Status.GetMessage() }

// GRPCStatus lets gRPC send the error with its Status detail.
func (e *StatusError) GRPCStatus() *status.Status {
	st := status.New(e.Code, e.Status.GetMessage())
	if withDetails, err := st.WithDetails(e.Status); err == nil {
		return withDetails
	}
	return st
}

// Reason is the Kubernetes reason of the error.
func (e *StatusError) Reason() string { return e.Status.GetReason() }

// FromError returns err as a *StatusError: unchanged if it is one, decoded
// from its gRPC status otherwise (transport failures become
// ServiceUnavailable, deadline and cancellation Timeout). nil stays nil.
func FromError(err error) *StatusError {
	if err == nil {
		return nil
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se
	}
	st, ok := status.FromError(err)
	if !ok {
		return &StatusError{Code: codes.Unknown, Status: &skiffv1.Status{Message: err.Error(), Reason: ReasonInternalError, Code: http.StatusInternalServerError}}
	}
	for _, d := range st.Details() {
		if s, ok := d.(*skiffv1.Status); ok {
			return &StatusError{Code: st.Code(), Status: s}
		}
	}
	reason, code := ReasonInternalError, int32(http.StatusInternalServerError)
	switch st.Code() {
	case codes.Unavailable:
		reason, code = ReasonUnavailable, http.StatusServiceUnavailable
	case codes.DeadlineExceeded, codes.Canceled:
		reason, code = ReasonTimeout, http.StatusGatewayTimeout
	case codes.Unauthenticated:
		reason, code = ReasonUnauthorized, http.StatusUnauthorized
	case codes.PermissionDenied:
		reason, code = ReasonForbidden, http.StatusForbidden
	case codes.NotFound:
		reason, code = ReasonNotFound, http.StatusNotFound
	case codes.InvalidArgument:
		reason, code = ReasonBadRequest, http.StatusBadRequest
	}
	return &StatusError{Code: st.Code(), Status: &skiffv1.Status{Message: st.Message(), Reason: reason, Code: code}}
}

// ReasonOf is the Kubernetes reason of err, or "" for nil.
func ReasonOf(err error) string {
	if err == nil {
		return ""
	}
	return FromError(err).Reason()
}

// IsNotFound, IsAlreadyExists, ... test the reason of any error.
func IsNotFound(err error) bool      { return ReasonOf(err) == ReasonNotFound }
func IsAlreadyExists(err error) bool { return ReasonOf(err) == ReasonAlreadyExists }
func IsConflict(err error) bool      { return ReasonOf(err) == ReasonConflict }
func IsInvalid(err error) bool       { return ReasonOf(err) == ReasonInvalid }
func IsBadRequest(err error) bool    { return ReasonOf(err) == ReasonBadRequest }
func IsForbidden(err error) bool     { return ReasonOf(err) == ReasonForbidden }
func IsUnauthorized(err error) bool  { return ReasonOf(err) == ReasonUnauthorized }

// IsExpired reports a resourceVersion too old for the store's history (HTTP
// 410 Gone in Kubernetes): relist and watch from the new list's version.
func IsExpired(err error) bool { return ReasonOf(err) == ReasonExpired }

func newStatus(c codes.Code, httpCode int32, reason, msg string, d *skiffv1.StatusDetails) *StatusError {
	return &StatusError{Code: c, Status: &skiffv1.Status{Message: msg, Reason: reason, Code: httpCode, Details: d}}
}

func qualified(gr schema.GroupResource) string {
	if gr.Group == "" {
		return gr.Resource
	}
	return gr.Resource + "." + gr.Group
}

// NewNotFound: pods "web" not found.
func NewNotFound(gr schema.GroupResource, name string) *StatusError {
	return newStatus(codes.NotFound, http.StatusNotFound, ReasonNotFound,
		fmt.Sprintf("%s %q not found", qualified(gr), name),
		&skiffv1.StatusDetails{Name: name, Group: gr.Group, Kind: gr.Resource})
}

// NewAlreadyExists: pods "web" already exists.
func NewAlreadyExists(gr schema.GroupResource, name string) *StatusError {
	return newStatus(codes.AlreadyExists, http.StatusConflict, ReasonAlreadyExists,
		fmt.Sprintf("%s %q already exists", qualified(gr), name),
		&skiffv1.StatusDetails{Name: name, Group: gr.Group, Kind: gr.Resource})
}

// NewConflict is a failed optimistic-concurrency check or precondition. It
// travels as codes.Aborted: the caller should read again and retry.
func NewConflict(gr schema.GroupResource, name string, why string) *StatusError {
	return newStatus(codes.Aborted, http.StatusConflict, ReasonConflict,
		fmt.Sprintf("Operation cannot be fulfilled on %s %q: %s", qualified(gr), name, why),
		&skiffv1.StatusDetails{Name: name, Group: gr.Group, Kind: gr.Resource})
}

// StaleResourceVersion is the why of NewConflict for a stale resourceVersion.
const StaleResourceVersion = "the object has been modified; please apply your changes to the latest version and try again"

// NewInvalid: Pod "web" is invalid: spec.containers[0].image: Required value.
// Each field error becomes a cause with its field path.
func NewInvalid(gk schema.GroupKind, name string, errs field.ErrorList) *StatusError {
	d := &skiffv1.StatusDetails{Name: name, Group: gk.Group, Kind: gk.Kind}
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		d.Causes = append(d.Causes, &skiffv1.StatusCause{Type: string(e.Type), Message: e.ErrorBody(), Field: e.Field})
		msgs = append(msgs, e.Error())
	}
	kind := gk.Kind
	if gk.Group != "" {
		kind += "." + gk.Group
	}
	msg := fmt.Sprintf("%s %q is invalid", kind, name)
	switch len(msgs) {
	case 0:
	case 1:
		msg += ": " + msgs[0]
	default:
		msg += ": [" + strings.Join(msgs, ", ") + "]"
	}
	return newStatus(codes.InvalidArgument, http.StatusUnprocessableEntity, ReasonInvalid, msg, d)
}

// NewBadRequest is a malformed request (undecodable body, bad selector).
func NewBadRequest(msg string) *StatusError {
	return newStatus(codes.InvalidArgument, http.StatusBadRequest, ReasonBadRequest, msg, nil)
}

// NewForbidden: namespaces "default" is forbidden: this namespace may not be deleted.
func NewForbidden(gr schema.GroupResource, name string, why string) *StatusError {
	return newStatus(codes.PermissionDenied, http.StatusForbidden, ReasonForbidden,
		fmt.Sprintf("%s %q is forbidden: %s", qualified(gr), name, why),
		&skiffv1.StatusDetails{Name: name, Group: gr.Group, Kind: gr.Resource})
}

// NewUnauthorized is a call without valid credentials.
func NewUnauthorized(msg string) *StatusError {
	return newStatus(codes.Unauthenticated, http.StatusUnauthorized, ReasonUnauthorized, msg, nil)
}

// NewExpired is a resourceVersion older than the store's compacted history.
func NewExpired(msg string) *StatusError {
	return newStatus(codes.OutOfRange, http.StatusGone, ReasonExpired, msg, nil)
}

// NewMethodNotAllowed is a verb the resource does not support.
func NewMethodNotAllowed(msg string) *StatusError {
	return newStatus(codes.Unimplemented, http.StatusMethodNotAllowed, ReasonMethodNotAllowed, msg, nil)
}

// NewInternal wraps an unexpected server error.
func NewInternal(err error) *StatusError {
	return newStatus(codes.Internal, http.StatusInternalServerError, ReasonInternalError,
		"Internal error occurred: "+err.Error(), nil)
}

// NewUnavailable is a dependency (the store) not answering.
func NewUnavailable(msg string) *StatusError {
	return newStatus(codes.Unavailable, http.StatusServiceUnavailable, ReasonUnavailable, msg, nil)
}

// WithMessage replaces the message of e (used for resource-type errors).
func (e *StatusError) WithMessage(msg string) *StatusError {
	e.Status.Message = msg
	return e
}
