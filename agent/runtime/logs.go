package runtime

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/skiffhq/skiff/agent/crilog"
)

// Logs writes a container's log to stdout/stderr by stream: the current
// instance's, or with previous the instance before it (`logs --previous`).
// Logs outlive agent and containerd restarts; they go with RemovePod.
func (r *Runtime) Logs(ctx context.Context, uid, name string, previous bool, opts crilog.ReadOptions, stdout, stderr io.Writer) error {
	ps, err := r.PodStatus(ctx, uid)
	if err != nil {
		return err
	}
	c, ok := ps.Container(name)
	if !ok {
		return fmt.Errorf("%w: pod %s/%s container %s", ErrContainerNotFound, ps.Namespace, ps.Name, name)
	}
	path := c.LogPath
	if previous {
		if c.RestartCount == 0 {
			return fmt.Errorf("%w: previous terminated container %q in pod %s/%s not found",
				ErrContainerNotFound, name, ps.Namespace, ps.Name)
		}
		path = r.LogPath(uid, name, c.RestartCount-1)
		opts.Follow = false
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%w: log of %s in %s/%s: %v", ErrContainerNotFound, name, ps.Namespace, ps.Name, err)
	}
	return crilog.Read(ctx, path, opts, stdout, stderr)
}
