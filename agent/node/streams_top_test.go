package node

import (
	"strings"
	"testing"
	"time"
)

func TestParseCPUStat(t *testing.T) {
	at := time.Unix(100, 0)
	// user nice system idle iowait irq softirq steal guest guest_nice
	busy, _, err := parseCPUStat("cpu  100 5 50 1000 20 3 2 1 40 4", at)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(100 + 5 + 50 + 3 + 2 + 1); busy != want {
		t.Errorf("busy ticks = %d, want %d (idle, iowait and guest left out)", busy, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5", "cpu 1 2 x 4 5", "cpu 1 2"} {
		if _, _, err := parseCPUStat(bad, at); err == nil || !strings.Contains(err.Error(), "/proc/stat") {
			t.Errorf("parseCPUStat(%q) error = %v, want one naming /proc/stat", bad, err)
		}
	}
}

func TestParseMeminfoWorkingSet(t *testing.T) {
	got, err := parseMeminfoWorkingSet("MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    600 kB\n")
	if err != nil || got != 400*1024 {
		t.Errorf("working set = %d, %v; want %d", got, err, 400*1024)
	}
	if _, err := parseMeminfoWorkingSet("MemTotal: 1000 kB\n"); err == nil {
		t.Error("meminfo without MemAvailable: no error")
	}
	if _, err := parseMeminfoWorkingSet("MemTotal: lots kB\nMemAvailable: 1 kB\n"); err == nil || !strings.Contains(err.Error(), "MemTotal") {
		t.Errorf("bad MemTotal: error %v", err)
	}
}

func TestMillicoresAndWindow(t *testing.T) {
	for _, tc := range []struct {
		used, over time.Duration
		want       int64
	}{
		{time.Second, time.Second, 1000},
		{250 * time.Millisecond, time.Second, 250},
		{3 * time.Second, 2 * time.Second, 1500},
		{1499 * time.Microsecond, time.Second, 1}, // rounded to nearest
		{time.Second, 0, 0},
	} {
		if got := millicores(tc.used, tc.over); got != tc.want {
			t.Errorf("millicores(%v, %v) = %d, want %d", tc.used, tc.over, got, tc.want)
		}
	}
	if w, err := topWindow(0); err != nil || w != defaultTopWindow {
		t.Errorf("topWindow(0) = %v, %v", w, err)
	}
	if w, err := topWindow(250); err != nil || w != 250*time.Millisecond {
		t.Errorf("topWindow(250) = %v, %v", w, err)
	}
	for _, bad := range []int32{-1, 10001} {
		if _, err := topWindow(bad); err == nil {
			t.Errorf("topWindow(%d): no error", bad)
		}
	}
}
