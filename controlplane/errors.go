package controlplane

import (
	"errors"
	"syscall"
)

var (
	// ErrNoAPI: the member runs the store alone (Config.NoAPI), so there
	// is no API server to describe.
	ErrNoAPI = errors.New("controlplane: this member runs without the API server (--no-api)")

	// ErrStoreStopTimeout: Shutdown gave up waiting for the store member
	// to close.
	ErrStoreStopTimeout = errors.New("controlplane: the store did not stop in time")

	// errAddrInUse is the listen error of a taken port.
	errAddrInUse = syscall.EADDRINUSE
)
