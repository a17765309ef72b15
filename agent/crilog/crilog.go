// Package crilog writes container output in the Kubernetes CRI log format,
// one record per line:
//
//	<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>
//
// F marks a full line, P a partial one (a line longer than MaxLine, or
// output that ended without a newline). The agent's log copies write it
// (agent/runtime/logcopy.go); Main runs it as the logger binary a containerd
// shim starts per container (fds 3 and 4 are the container's stdout and
// stderr; closing fd 5 says the logger is ready), for containers started by
// agents before the log copies.
package crilog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/runtime/v2/logging"
)

// Arg is the first argument the shim passes to the logger binary; the
// second is the log file path. A binary serving several roles dispatches on
// os.Args[1] == Arg.
const Arg = "cri-logger"

// MaxLine is the longest record content; longer lines are split into P
// records, as the kubelet does (16 KiB).
const MaxLine = 16 * 1024

// Main runs the logger for the log file path and exits; call it from main
// when os.Args[1] == Arg.
func Main(path string) {
	logging.Run(func(ctx context.Context, cfg *logging.Config, ready func() error) error {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return err
		}
		defer f.Close()
		w := NewWriter(f)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = w.Copy("stdout", cfg.Stdout) }()
		go func() { defer wg.Done(); _ = w.Copy("stderr", cfg.Stderr) }()
		if err := ready(); err != nil {
			return err
		}
		wg.Wait()
		return nil
	})
}

// Writer serialises records of several streams into one file.
type Writer struct {
	mu  sync.Mutex
	out io.Writer
	now func() time.Time
}

// NewWriter writes records to out.
func NewWriter(out io.Writer) *Writer { return &Writer{out: out, now: time.Now} }

// readChunk is how much Copy reads at a time. A copy blocks in Read for
// most of its life, holding this buffer: the agent runs two per container,
// so it is kept small, and only a line still being assembled (up to
// MaxLine) costs more.
const readChunk = 2048

// Copy reads stream r until EOF and writes one record per line.
func (w *Writer) Copy(stream string, r io.Reader) error {
	buf := make([]byte, readChunk)
	var line []byte // the start of a line whose newline has not come yet
	for {
		n, err := r.Read(buf)
		data := buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i >= 0 && len(line)+i < MaxLine {
				if werr := w.record(stream, "F", append(line, data[:i]...)); werr != nil {
					return werr
				}
				line, data = line[:0], data[i+1:]
				continue
			}
			// No newline within the record's room: fill the line, and cut
			// a partial record once it holds MaxLine.
			take := min(len(data), MaxLine-len(line))
			line, data = append(line, data[:take]...), data[take:]
			if len(line) == MaxLine {
				if werr := w.record(stream, "P", line); werr != nil {
					return werr
				}
				line = line[:0]
			}
		}
		if len(line) == 0 && cap(line) > readChunk {
			line = nil // a long line's buffer is not kept while waiting
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			if len(line) > 0 {
				// Output ended without a newline: the line is complete.
				return w.record(stream, "F", line)
			}
			return nil
		default:
			if len(line) > 0 {
				// Cut off (the agent stopping): keep what was read. The
				// rest of the line comes to the next reader.
				_ = w.record(stream, "P", line)
			}
			return err
		}
	}
}

func (w *Writer) record(stream, tag string, content []byte) error {
	buf := make([]byte, 0, len(content)+64)
	buf = w.now().UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ')
	buf = append(buf, tag...)
	buf = append(buf, ' ')
	buf = append(buf, content...)
	buf = append(buf, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.out.Write(buf)
	return err
}
