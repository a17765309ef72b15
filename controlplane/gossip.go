package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/gossip"
)

// startGossip makes sure the cluster's gossip key exists (the first server
// creates it; the others read the same), then joins this member to the
// gossip pool. Gossip is a hint for the node lifecycle controller, so a
// pool that cannot start is logged, not fatal — unless its address was
// chosen explicitly and is taken.
func (cp *ControlPlane) startGossip(ctx context.Context, c *client.Client) error {
	cfg := *cp.cfg.Gossip
	if cfg.NodeName == "" {
		cfg.NodeName = cp.cfg.Store.Name
	}
	if cfg.Role == "" {
		cfg.Role = gossip.RoleServer
	}
	if cfg.Logger == nil {
		cfg.Logger = cp.log.With("component", "gossip")
	}
	// Like the API server's bootstrap, the key needs a quorum: a member
	// restarted without one waits for it here (until ctx ends) rather
	// than fail.
	for attempt := 1; ; attempt++ {
		key, err := EnsureGossipKey(ctx, c)
		if err == nil {
			cfg.SecretKey = key
			break
		}
		if errors.Is(err, gossip.ErrInvalidConfig) {
			return fmt.Errorf("gossip key: %w", err)
		}
		cp.log.Info("gossip key not readable yet (no quorum?); retrying", "attempt", attempt, "err", err)
		t := time.NewTimer(cp.cfg.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("gossip key: %w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
	pool, err := gossip.Start(cfg)
	if err != nil && cp.cfg.GossipPortFallback && gossip.IsAddrInUse(err) {
		cp.log.Warn("default gossip port is taken (another member on this host?); using a free port instead, choose one with --listen-gossip",
			"wanted", net.JoinHostPort(cfg.BindAddr, fmt.Sprint(cfg.BindPort)))
		cfg.BindPort, cfg.AdvertisePort = 0, 0
		pool, err = gossip.Start(cfg)
	}
	if err != nil {
		return fmt.Errorf("%w (choose the address with --listen-gossip and --advertise-gossip, or run without gossip: --disable-gossip)", err)
	}
	cp.mu.Lock()
	cp.pool = pool
	cp.mu.Unlock()
	cp.log.Info("joined gossip", "name", cfg.NodeName, "addr", pool.LocalAddr(), "join", cfg.Join)
	return nil
}

// Gossip is this member's gossip pool, nil without Config.Gossip.
func (cp *ControlPlane) Gossip() *gossip.Pool {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.pool
}

// leaveGossip says goodbye to the pool (others see Left at once).
func (cp *ControlPlane) leaveGossip() {
	cp.mu.Lock()
	pool := cp.pool
	cp.pool = nil
	cp.mu.Unlock()
	if pool != nil {
		if err := pool.Leave(2 * time.Second); err != nil {
			cp.log.Debug("gossip leave", "err", err)
		}
	}
}

// EnsureGossipKey returns the cluster's gossip key, creating it when this
// is the first server: a create that loses to another server's reads the
// winner's, so every member ends up with the same key.
func EnsureGossipKey(ctx context.Context, c *client.Client) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		var s corev1.Secret
		err := c.Get(ctx, gossip.KeySecretNamespace, gossip.KeySecretName, &s)
		if err == nil {
			key := s.Data[gossip.KeySecretDataKey]
			if err := gossip.ValidKey(key); err != nil {
				return nil, fmt.Errorf("secret %s/%s: %w (delete it to have a new key made)", gossip.KeySecretNamespace, gossip.KeySecretName, err)
			}
			return key, nil
		}
		if !client.IsNotFound(err) || attempt > 2 {
			return nil, err
		}
		key, err := gossip.NewKey()
		if err != nil {
			return nil, err
		}
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: gossip.KeySecretNamespace, Name: gossip.KeySecretName,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "skiff"}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{gossip.KeySecretDataKey: key},
		}
		err = c.Create(ctx, &s)
		if err == nil {
			return key, nil
		}
		if !client.IsAlreadyExists(err) {
			return nil, err
		}
	}
}
