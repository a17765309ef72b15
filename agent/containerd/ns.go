package containerd

import (
	"context"

	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/platforms"
)

// nsContext puts Skiff's namespace on ctx unless the caller chose one.
func (d *Daemon) nsContext(ctx context.Context) context.Context {
	if _, ok := namespaces.Namespace(ctx); ok {
		return ctx
	}
	return namespaces.WithNamespace(ctx, d.cfg.Namespace)
}

func platformMatcher() platforms.MatchComparer { return platforms.Default() }
