package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	client "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/fifo"

	"github.com/skiffhq/skiff/agent/crilog"
)

// The agent writes containers' logs itself: the shim writes a container's
// stdout and stderr into two FIFOs under <data dir>/fifo/logs, and the
// agent copies them into the CRI-format log file. This is what containerd's
// CRI plugin does in its own process, and it costs a few goroutines per
// container where a logger process (Config.LoggerBinary) costs a process
// start and several MB of memory.
//
// While the agent is down, output waits in the FIFOs (the shim keeps them
// open for as long as the container runs); a container that writes more
// than a pipe holds blocks until the agent is back, which picks the FIFOs
// of running containers up again (reattachLogs). Output still in a FIFO
// when its container exits while the agent is down is lost, as with
// containerd's own restarts.

// logModeAgent is LabelLogMode's value on containers whose logs the agent
// copies.
const logModeAgent = "agent"

// logDrainWait bounds how long deleting a container waits for the rest of
// its output to reach the log file.
const logDrainWait = 5 * time.Second

// logCopies are the running log copies of one FIFO directory, by
// container ID. Runtimes of one process on the same data dir share them
// (see acquireLogCopies), so a FIFO never gets two readers that would
// split its output between them.
type logCopies struct {
	dir    string
	base   context.Context
	cancel context.CancelFunc
	refs   int // under sharedLogCopies.mu

	mu   sync.Mutex
	jobs map[string]*logCopy
	wg   sync.WaitGroup
}

var sharedLogCopies = struct {
	mu sync.Mutex
	m  map[string]*logCopies
}{m: map[string]*logCopies{}}

// acquireLogCopies returns the log copies of dir, shared with other
// runtimes of this process on the same directory; release gives it back.
func acquireLogCopies(dir string) *logCopies {
	sharedLogCopies.mu.Lock()
	defer sharedLogCopies.mu.Unlock()
	l, ok := sharedLogCopies.m[dir]
	if !ok {
		base, cancel := context.WithCancel(context.Background())
		l = &logCopies{dir: dir, base: base, cancel: cancel, jobs: map[string]*logCopy{}}
		sharedLogCopies.m[dir] = l
	}
	l.refs++
	return l
}

// release drops one runtime's hold; the last one cuts every copy
// (containers keep running, and their output waits in the FIFOs for the
// next agent).
func (l *logCopies) release() {
	sharedLogCopies.mu.Lock()
	l.refs--
	last := l.refs == 0
	if last {
		delete(sharedLogCopies.m, l.dir)
	}
	sharedLogCopies.mu.Unlock()
	if !last {
		return
	}
	l.cancel()
	l.mu.Lock()
	jobs := l.jobs
	l.jobs = map[string]*logCopy{}
	l.mu.Unlock()
	for _, job := range jobs {
		l.cut(job, 0)
	}
	l.wg.Wait()
}

type logCopy struct {
	cancel  context.CancelFunc
	streams []io.ReadWriteCloser
	done    chan struct{}
}

func (l *logCopies) paths(id string) (stdout, stderr string) {
	return filepath.Join(l.dir, id+".out"), filepath.Join(l.dir, id+".err")
}

// creator is the cio.Creator of a container whose logs the agent copies:
// the copy starts before the task, so the shim finds both FIFOs open.
func (l *logCopies) creator(id, logPath string) cio.Creator {
	return func(string) (cio.IO, error) {
		if err := l.start(id, logPath); err != nil {
			return nil, err
		}
		stdout, stderr := l.paths(id)
		return &fifoLogIO{cfg: cio.Config{Stdout: stdout, Stderr: stderr}}, nil
	}
}

// start copies the container's FIFOs (made if missing) into logPath until
// the shim closes them. A container already being copied is left alone.
func (l *logCopies) start(id, logPath string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.jobs[id]; ok {
		return nil
	}
	for _, d := range []string{l.dir, filepath.Dir(logPath)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open log %s: %w", logPath, err)
	}
	ctx, cancel := context.WithCancel(l.base)
	job := &logCopy{cancel: cancel, done: make(chan struct{})}
	stdout, stderr := l.paths(id)
	for _, p := range []string{stdout, stderr} {
		// O_NONBLOCK: return now; reads wait until the shim opens its end.
		rc, err := fifo.OpenFifo(ctx, p, syscall.O_RDONLY|syscall.O_CREAT|syscall.O_NONBLOCK, 0o600)
		if err != nil {
			cancel()
			for _, s := range job.streams {
				s.Close()
			}
			f.Close()
			return fmt.Errorf("open log FIFO %s: %w", p, err)
		}
		job.streams = append(job.streams, rc)
	}
	w := crilog.NewWriter(f)
	var copies sync.WaitGroup
	for i, stream := range []string{"stdout", "stderr"} {
		copies.Add(1)
		go func(r io.Reader) {
			defer copies.Done()
			_ = w.Copy(stream, r)
		}(job.streams[i])
	}
	l.jobs[id] = job
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		copies.Wait()
		for _, s := range job.streams {
			s.Close()
		}
		f.Close()
		close(job.done)
	}()
	return nil
}

// stop ends the copy of a container that is being deleted: it waits up to
// wait for the output still in the FIFOs (the shim closes them once the
// container's processes are gone), then cuts the copy and removes the FIFOs.
func (l *logCopies) stop(id string, wait time.Duration) {
	l.mu.Lock()
	job, ok := l.jobs[id]
	delete(l.jobs, id)
	l.mu.Unlock()
	if ok {
		l.cut(job, wait)
	}
	stdout, stderr := l.paths(id)
	_ = os.Remove(stdout)
	_ = os.Remove(stderr)
}

func (l *logCopies) cut(job *logCopy, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-job.done:
	case <-t.C:
	}
	job.cancel()
	for _, s := range job.streams {
		s.Close()
	}
	<-job.done
}

// reattachLogs resumes copying the logs of containers that an earlier agent
// started and that still run.
func (r *Runtime) reattachLogs(ctx context.Context) error {
	ctx = r.ns(ctx)
	ctrs, err := r.client.Containers(ctx, fmt.Sprintf("labels.%q==%s", LabelLogMode, logModeAgent))
	if err != nil {
		return fmt.Errorf("list containers to resume their logs: %w", err)
	}
	for _, c := range ctrs {
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue // no task: nothing writes
		}
		st, err := task.Status(ctx)
		if err != nil || st.Status == client.Stopped {
			continue // the shim has closed the FIFOs
		}
		// The listing brought the labels: no second read of the container.
		info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			return fmt.Errorf("resume the log of %s: %w", c.ID(), err)
		}
		if err := r.logs.start(c.ID(), info.Labels[LabelLogPath]); err != nil {
			return fmt.Errorf("resume the log of %s: %w", c.ID(), err)
		}
	}
	return nil
}

// fifoLogIO is the task's side of the agent's log copy: the paths the shim
// writes to. The copy itself belongs to logCopies, not to the task handle.
type fifoLogIO struct{ cfg cio.Config }

func (i *fifoLogIO) Config() cio.Config { return i.cfg }
func (i *fifoLogIO) Cancel()            {}
func (i *fifoLogIO) Wait()              {}
func (i *fifoLogIO) Close() error       { return nil }
