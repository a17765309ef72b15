package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	client "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"golang.org/x/sys/unix"
)

// Exec runs a command in the named container's current instance, streaming
// its output to opts.Stdout/Stderr as it comes, and returns its exit code.
// Cancelling ctx kills the process.
func (r *Runtime) Exec(ctx context.Context, uid, name string, opts ExecOptions) (int, error) {
	ctx = r.ns(ctx)
	if len(opts.Cmd) == 0 {
		return -1, fmt.Errorf("%w: exec needs a command", ErrInvalidInput)
	}
	cs, err := r.containersOf(ctx, uid, name)
	if err != nil {
		return -1, err
	}
	if len(cs) == 0 {
		return -1, fmt.Errorf("%w: pod %s container %s", ErrContainerNotFound, uid, name)
	}
	c := cs[0]
	task, err := c.Task(ctx, nil)
	if err != nil {
		return -1, fmt.Errorf("container %s is not running: %w", name, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return -1, err
	}
	pspec := *spec.Process
	pspec.Args = opts.Cmd
	pspec.Terminal = opts.TTY

	var b [6]byte
	_, _ = rand.Read(b[:])
	execID := "exec-" + hex.EncodeToString(b[:])

	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	// Callers often pass one writer for both streams; containerd copies
	// them from two goroutines.
	var mu sync.Mutex
	stdout, stderr = &lockedWriter{mu: &mu, w: stdout}, &lockedWriter{mu: &mu, w: stderr}
	// The process's stdin is closed when the caller's reader ends; closing
	// our end of the FIFO alone would not reach the process.
	var stdin io.Reader
	stdinDone := make(chan struct{})
	var once sync.Once
	if opts.Stdin != nil {
		stdin = &eofNotifier{r: opts.Stdin, done: func() { once.Do(func() { close(stdinDone) }) }}
	}
	cioOpts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr), cio.WithFIFODir(filepath.Join(r.cfg.DataDir, "fifo"))}
	if opts.TTY {
		cioOpts = append(cioOpts, cio.WithTerminal)
	}
	// wrap prefers the caller's deadline or cancellation over the RPC error
	// it caused.
	wrap := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("exec in %s: %w", name, err)
	}
	// Creating and starting are not cancelled half-way: a Start cut short
	// on the client can still run the process in the shim after our
	// cleanup, leaving it behind. They are quick; ctx is checked after.
	opCtx, opCancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer opCancel()
	proc, err := task.Exec(opCtx, execID, &pspec, cio.NewCreator(cioOpts...))
	if err != nil {
		return -1, wrap(err)
	}
	// cleanup kills the process if it may run and deletes it, on a context
	// of its own: the caller's may be the reason we are here.
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := proc.Delete(cctx); err == nil {
			return // it had exited, or never started
		}
		gone, werr := proc.Wait(cctx)
		_ = proc.Kill(cctx, unix.SIGKILL)
		if werr == nil {
			select {
			case <-gone:
			case <-cctx.Done():
			}
		}
		_, _ = proc.Delete(cctx)
	}
	defer cleanup()
	exited, err := proc.Wait(ctx)
	if err != nil {
		return -1, wrap(err)
	}
	if err := proc.Start(opCtx); err != nil {
		return -1, wrap(err)
	}
	if ctx.Err() != nil {
		return -1, ctx.Err() // cleanup kills it
	}
	if opts.TTY && opts.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-opts.Resize:
					if !ok {
						return
					}
					_ = proc.Resize(ctx, uint32(sz.Width), uint32(sz.Height))
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	if opts.Stdin != nil {
		go func() {
			select {
			case <-stdinDone:
				_ = proc.CloseIO(ctx, client.WithStdinCloser)
			case <-ctx.Done():
			}
		}()
	}
	select {
	case st := <-exited:
		if ctx.Err() != nil {
			return -1, ctx.Err() // the wait ended because ctx did
		}
		proc.IO().Wait() // all output copied out
		code, _, err := st.Result()
		return int(code), err
	case <-ctx.Done():
		return -1, ctx.Err() // cleanup kills it
	}
}

type eofNotifier struct {
	r    io.Reader
	done func()
}

func (e *eofNotifier) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.done()
	}
	return n, err
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
