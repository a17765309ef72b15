package runner

import (
	"fmt"
	"html"
	"io"
	"math"
	"time"

	"github.com/skiffhq/skiff/jepsen/checker"
	"github.com/skiffhq/skiff/jepsen/nemesis"
)

// Plot writes an SVG: every operation's latency (dot at its completion
// time, log scale, coloured by outcome), acknowledged operations per second
// (line, right axis) and the fault windows (shaded, labelled).
func Plot(w io.Writer, history []checker.Op, faults []nemesis.Event, total time.Duration, title string) error {
	const (
		width, height = 1000.0, 420.0
		left, right   = 60.0, 60.0
		top, bottom   = 40.0, 50.0
	)
	pw, ph := width-left-right, height-top-bottom
	end := float64(total)
	for _, op := range history {
		if op.Return > 0 && float64(op.Return) > end {
			end = float64(op.Return)
		}
	}
	for _, f := range faults {
		end = math.Max(end, float64(f.End))
	}
	if end <= 0 {
		end = 1
	}
	x := func(ns float64) float64 { return left + pw*ns/end }
	// Latency axis: 100µs .. 10s, log.
	minL, maxL := math.Log10(1e5), math.Log10(1e10)
	y := func(ns float64) float64 {
		v := math.Log10(math.Max(ns, 1e5))
		v = math.Min(v, maxL)
		return top + ph*(1-(v-minL)/(maxL-minL))
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%.0f" y="20" font-size="14">%s</text>`+"\n", left, html.EscapeString(title))
	for i, f := range faults {
		fill := "#f4b400"
		if f.Err != "" {
			fill = "#999999"
		}
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.25"><title>%s</title></rect>`+"\n",
			x(float64(f.Start)), top, math.Max(1, x(float64(f.End))-x(float64(f.Start))), ph, fill, html.EscapeString(f.Fault+": "+f.Detail+" "+f.Err))
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" fill="#555">%s</text>`+"\n", x(float64(f.Start))+2, top+12+float64(i%3)*12, html.EscapeString(f.Fault))
	}
	// Axes and grid.
	fmt.Fprintf(w, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	for e := 5; e <= 10; e++ {
		yy := y(math.Pow(10, float64(e)))
		label := time.Duration(math.Pow(10, float64(e))).String()
		fmt.Fprintf(w, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left, left+pw, yy, yy, left-4, yy+4, label)
	}
	step := math.Max(1, math.Ceil(end/1e9/10))
	for s := 0.0; s*1e9 <= end; s += step {
		xx := x(s * 1e9)
		fmt.Fprintf(w, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#333"/><text x="%.1f" y="%.0f" text-anchor="middle">%.0fs</text>`+"\n", xx, xx, top+ph, top+ph+4, xx, top+ph+16, s)
	}
	fmt.Fprintf(w, `<text x="14" y="%.0f" transform="rotate(-90 14 %.0f)" text-anchor="middle">latency (log)</text>`+"\n", top+ph/2, top+ph/2)
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" transform="rotate(90 %.0f %.0f)" text-anchor="middle" fill="#1a73e8">acknowledged ops/s</text>`+"\n", width-14, top+ph/2, width-14, top+ph/2)
	// Dots.
	colour := map[checker.Outcome]string{checker.OK: "#0b8043", checker.Fail: "#d93025", checker.Info: "#e37400"}
	for _, op := range history {
		if op.F == checker.FRead {
			continue
		}
		fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="1.5" fill="%s" fill-opacity="0.6"/>`+"\n", x(float64(op.Return)), y(float64(op.Return-op.Call)), colour[op.Type])
	}
	// Throughput per second.
	buckets := make([]int, int(end/1e9)+1)
	for _, op := range history {
		if op.Type == checker.OK && op.F != checker.FRead {
			if b := int(float64(op.Return) / 1e9); b >= 0 && b < len(buckets) {
				buckets[b]++
			}
		}
	}
	peak := 1
	for _, b := range buckets {
		peak = max(peak, b)
	}
	fmt.Fprintf(w, `<polyline fill="none" stroke="#1a73e8" stroke-width="1.5" points="`)
	for i, b := range buckets {
		fmt.Fprintf(w, "%.1f,%.1f ", x((float64(i)+0.5)*1e9), top+ph*(1-float64(b)/float64(peak)))
	}
	fmt.Fprintln(w, `"/>`)
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" fill="#1a73e8">%d</text><text x="%.0f" y="%.0f" fill="#1a73e8">0</text>`+"\n", left+pw+4, top+10, peak, left+pw+4, top+ph)
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f"><tspan fill="#0b8043">● ok</tspan>  <tspan fill="#e37400">● unknown (info)</tspan>  <tspan fill="#d93025">● failed</tspan>  <tspan fill="#f4b400">■ fault window</tspan></text>`+"\n", left, height-10)
	_, err := fmt.Fprintln(w, "</svg>")
	return err
}
