package controller

import (
	"testing"
	"time"
)

func TestScheduleNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// 2026-01-01 is a Thursday.
	cases := []struct {
		spec, from, want string
	}{
		{"* * * * *", "2026-01-01 10:00:30", "2026-01-01 10:01:00"},
		{"*/15 * * * *", "2026-01-01 10:01:00", "2026-01-01 10:15:00"},
		{"*/15 * * * *", "2026-01-01 10:45:00", "2026-01-01 11:00:00"},
		{"5/20 * * * *", "2026-01-01 10:06:00", "2026-01-01 10:25:00"},
		{"0-30/10 9 * * *", "2026-01-01 09:31:00", "2026-01-02 09:00:00"},
		{"0 9-17 * * MON-FRI", "2026-01-02 17:00:00", "2026-01-05 09:00:00"}, // Friday evening → Monday
		{"30 2 1,15 * *", "2026-01-01 03:00:00", "2026-01-15 02:30:00"},
		{"0 0 * * 7", "2026-01-01 00:00:00", "2026-01-04 00:00:00"},  // 7 is Sunday
		{"0 0 13 * 5", "2026-01-01 00:00:00", "2026-01-02 00:00:00"}, // day-of-month OR day-of-week
		{"0 0 1 feb *", "2026-01-01 00:00:00", "2026-02-01 00:00:00"},
		{"0 0 29 2 *", "2026-01-01 00:00:00", "2028-02-29 00:00:00"},
		{"@hourly", "2026-01-01 10:00:00", "2026-01-01 11:00:00"},
		{"@daily", "2026-01-01 10:00:00", "2026-01-02 00:00:00"},
		{"@weekly", "2026-01-01 10:00:00", "2026-01-04 00:00:00"},
		{"@monthly", "2026-01-01 10:00:00", "2026-02-01 00:00:00"},
		{"@yearly", "2026-01-01 10:00:00", "2027-01-01 00:00:00"},
		{"@every 90s", "2026-01-01 10:00:00", "2026-01-01 10:01:30"},
		{"0 0 30 2 *", "2026-01-01 00:00:00", "0001-01-01 00:00:00"}, // never
	}
	for _, tc := range cases {
		t.Run(tc.spec+" after "+tc.from, func(t *testing.T) {
			s, err := ParseSchedule(tc.spec)
			if err != nil {
				t.Fatalf("ParseSchedule: %v", err)
			}
			if got, want := s.Next(at(tc.from)), at(tc.want); !got.Equal(want) {
				t.Errorf("Next = %v, want %v", got, want)
			}
		})
	}
}

func TestParseScheduleRejects(t *testing.T) {
	for _, spec := range []string{"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
		"* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "x * * * *", "@fortnightly", "@every 0s"} {
		if _, err := ParseSchedule(spec); err == nil {
			t.Errorf("ParseSchedule(%q) = nil error, want one", spec)
		}
	}
}
