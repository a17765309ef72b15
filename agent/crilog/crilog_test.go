package crilog

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestWriterFormat(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	w.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC) }
	long := strings.Repeat("x", MaxLine+10)
	if err := w.Copy("stdout", strings.NewReader("one\ntwo\n"+long+"\nlast")); err != nil {
		t.Fatal(err)
	}
	if err := w.Copy("stderr", strings.NewReader("oops\n")); err != nil {
		t.Fatal(err)
	}
	ts := "2026-01-02T03:04:05.000006Z"
	want := []string{
		ts + " stdout F one",
		ts + " stdout F two",
		ts + " stdout P " + long[:MaxLine],
		ts + " stdout F " + long[MaxLine:],
		ts + " stdout F last",
		ts + " stderr F oops",
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d:\n%s", len(got), len(want), out.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d = %.80q, want %.80q", i, got[i], want[i])
		}
	}
}

// oldCopy is the line splitting Copy had when it read through a MaxLine
// bufio.Reader: the reference its chunked reads must agree with.
func oldCopy(w *Writer, stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, MaxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			tag := "P"
			if line[len(line)-1] == '\n' {
				tag, line = "F", line[:len(line)-1]
			} else if errors.Is(err, io.EOF) {
				tag = "F"
			}
			if werr := w.record(stream, tag, line); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// chunky hands out its data in reads of random sizes, as a pipe does.
type chunky struct {
	data []byte
	rng  *rand.Rand
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), 1+c.rng.IntN(3*MaxLine))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// Copy's records are the same as the bufio reference's for lines around
// every boundary (empty, MaxLine-1, MaxLine, MaxLine+1, several MaxLines,
// no final newline), whatever sizes the reads come in.
func TestCopyMatchesLineReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{0, 1, 5, readChunk - 1, readChunk, readChunk + 1, MaxLine - 1, MaxLine, MaxLine + 1, 2 * MaxLine, 2*MaxLine + 7, 3 * MaxLine}
	for round := 0; round < 200; round++ {
		var in bytes.Buffer
		for j := 0; j < 1+rng.IntN(12); j++ {
			n := lengths[rng.IntN(len(lengths))]
			if rng.IntN(3) == 0 {
				n = rng.IntN(3 * MaxLine)
			}
			for k := 0; k < n; k++ {
				in.WriteByte('a' + byte(k%26))
			}
			in.WriteByte('\n')
		}
		data := in.Bytes()
		if rng.IntN(2) == 0 {
			data = data[:len(data)-1-rng.IntN(min(len(data), 40))/2] // cut off the end
		}
		clock := func() time.Time { return time.Unix(0, 0) }
		var got, want bytes.Buffer
		gw, ww := NewWriter(&got), NewWriter(&want)
		gw.now, ww.now = clock, clock
		if err := gw.Copy("stdout", &chunky{data: data, rng: rng}); err != nil {
			t.Fatal(err)
		}
		if err := oldCopy(ww, "stdout", &chunky{data: data, rng: rng}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			g, w := strings.Split(got.String(), "\n"), strings.Split(want.String(), "\n")
			t.Fatalf("round %d (%d bytes in): %d records, want %d; first: %.60q vs %.60q", round, len(data), len(g), len(w), g[0], w[0])
		}
	}
}

// cutReader returns its data, then an error other than EOF (the agent's
// copy being cut off at shutdown).
type cutReader struct{ data []byte }

func (c *cutReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, errors.New("cut")
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

// A copy cut off in the middle of a line keeps the part it read as a
// partial record.
func TestCopyCutKeepsPartialLine(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	w.now = func() time.Time { return time.Unix(0, 0) }
	if err := w.Copy("stdout", &cutReader{data: []byte("whole\nhalf a li")}); err == nil {
		t.Fatal("Copy ended without the reader's error")
	}
	want := "1970-01-01T00:00:00Z stdout F whole\n1970-01-01T00:00:00Z stdout P half a li\n"
	if out.String() != want {
		t.Fatalf("records %q, want %q", out.String(), want)
	}
}
