package gossip

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Where the cluster's gossip encryption key lives: a Secret the first
// server creates (create-if-absent, so concurrent servers agree on one)
// and that agents read through the API with their credentials.
const (
	KeySecretNamespace = "kube-system"
	KeySecretName      = "skiff-gossip-key"
	KeySecretDataKey   = "key"
	// KeySize is the size of the keys NewKey makes (AES-256).
	KeySize = 32
)

// NewKey makes a random AES-256 gossip key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("gossip: making a key: %w", err)
	}
	return k, nil
}

// ValidKey checks that key is a usable AES key (16, 24 or 32 bytes).
func ValidKey(key []byte) error {
	switch len(key) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("%w: gossip key must be 16, 24 or 32 bytes, not %d", ErrInvalidConfig, len(key))
}

// IsAddrInUse reports whether Start failed because its port is taken.
// memberlist formats its listen errors with %v, so the cause is not
// wrapped and errors.Is cannot find it.
func IsAddrInUse(err error) bool {
	return err != nil && (errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), syscall.EADDRINUSE.Error()))
}
