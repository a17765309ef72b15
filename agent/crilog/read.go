package crilog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Record is one parsed log record.
type Record struct {
	Time    time.Time
	Stream  string // stdout or stderr
	Partial bool   // P: the line continues in the next record
	Content []byte
}

// ParseRecord parses one line of a CRI log file (without its newline). A
// line that is not in the format (a file written by cio.LogFile) is
// returned whole as a full stdout record with a zero time.
func ParseRecord(line []byte) Record {
	raw := Record{Stream: "stdout", Content: line}
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return raw
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return raw
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || (string(stream) != "stdout" && string(stream) != "stderr") {
		return raw
	}
	tag, content, ok := bytes.Cut(rest, []byte{' '})
	if !ok && len(rest) == 1 {
		tag, content, ok = rest, nil, true // empty content
	}
	if !ok || (string(tag) != "F" && string(tag) != "P") {
		return raw
	}
	return Record{Time: t, Stream: string(stream), Partial: string(tag) == "P", Content: content}
}

// ReadOptions select what Read prints, as `kubectl logs` does.
type ReadOptions struct {
	Tail       int       // last N lines only; < 0 for all
	Since      time.Time // lines at or after this time only; zero for all
	Timestamps bool      // prefix each line with its RFC3339Nano time
	Follow     bool      // keep printing new lines until ctx is done
}

// line is a whole line reassembled from P records and the closing F record.
type line struct {
	time    time.Time
	stream  string
	content []byte
}

// Read prints the log file at path to stdout and stderr by stream, joining
// partial records into whole lines. With Follow it polls for more until ctx
// is cancelled (the caller cancels when the client goes or the container
// is gone for good).
func Read(ctx context.Context, path string, opts ReadOptions, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	pending := map[string]*line{}
	var lines []line
	var tail []byte // an unterminated last line, read again later

	emit := func(l line) error {
		if !opts.Since.IsZero() && !l.time.IsZero() && l.time.Before(opts.Since) {
			return nil
		}
		w := stdout
		if l.stream == "stderr" {
			w = stderr
		}
		var buf []byte
		if opts.Timestamps {
			buf = l.time.UTC().AppendFormat(buf, time.RFC3339Nano)
			buf = append(buf, ' ')
		}
		buf = append(buf, l.content...)
		buf = append(buf, '\n')
		_, err := w.Write(buf)
		return err
	}
	// readAvailable parses what the file holds now into whole lines.
	readAvailable := func(collect bool) error {
		for {
			b, err := br.ReadBytes('\n')
			if errors.Is(err, io.EOF) {
				tail = append(tail, b...)
				return nil
			}
			if err != nil {
				return err
			}
			if len(tail) > 0 {
				b = append(tail, b...)
				tail = nil
			}
			r := ParseRecord(bytes.TrimSuffix(b, []byte{'\n'}))
			p := pending[r.Stream]
			if p == nil {
				p = &line{time: r.Time, stream: r.Stream}
				pending[r.Stream] = p
			}
			p.content = append(p.content, r.Content...)
			if r.Partial {
				continue
			}
			delete(pending, r.Stream)
			if collect {
				lines = append(lines, *p)
			} else if err := emit(*p); err != nil {
				return err
			}
		}
	}
	if err := readAvailable(true); err != nil {
		return err
	}
	if opts.Tail >= 0 && len(lines) > opts.Tail {
		lines = lines[len(lines)-opts.Tail:]
	}
	for _, l := range lines {
		if err := emit(l); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := readAvailable(false); err != nil {
			return err
		}
	}
}
