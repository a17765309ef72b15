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
	"bufio"
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

// Copy reads stream r until EOF and writes one record per line.
func (w *Writer) Copy(stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, MaxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			tag := "P"
			if line[len(line)-1] == '\n' {
				tag = "F"
				line = line[:len(line)-1]
			} else if errors.Is(err, io.EOF) {
				tag = "F" // output ended without a newline: the line is complete
			}
			if werr := w.record(stream, tag, line); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil
		default:
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
