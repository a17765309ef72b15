package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseSchedule checks a CronJob schedule: five fields (minute hour
// day-of-month month day-of-week) of *, numbers, names (JAN, MON), ranges
// (1-5), lists (1,15) and steps (*/10, 0-30/5), or one of the descriptors
// @yearly @annually @monthly @weekly @daily @midnight @hourly, or
// "@every <duration>". This is the standard cron syntax Kubernetes accepts.
// Time zones go in spec.timeZone, not in the schedule.
func ParseSchedule(s string) error {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return fmt.Errorf("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
	}
	if strings.HasPrefix(s, "@") {
		switch s {
		case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly":
			return nil
		}
		if d, ok := strings.CutPrefix(s, "@every "); ok {
			dur, err := time.ParseDuration(strings.TrimSpace(d))
			if err != nil {
				return fmt.Errorf("failed to parse duration %s: %v", d, err)
			}
			if dur <= 0 {
				return fmt.Errorf("duration %s must be positive", d)
			}
			return nil
		}
		return fmt.Errorf("unrecognized descriptor: %s", s)
	}
	fields := strings.Fields(s)
	if len(fields) != 5 {
		return fmt.Errorf("expected exactly 5 fields, found %d: %s", len(fields), s)
	}
	specs := []struct {
		name   string
		lo, hi int
		names  map[string]int
	}{
		{"minute", 0, 59, nil},
		{"hour", 0, 23, nil},
		{"day of month", 1, 31, nil},
		{"month", 1, 12, monthNames},
		{"day of week", 0, 7, dayNames},
	}
	for i, f := range fields {
		sp := specs[i]
		if err := parseCronField(f, sp.lo, sp.hi, sp.names, i == 2 || i == 4); err != nil {
			return fmt.Errorf("invalid %s field %q: %v", sp.name, f, err)
		}
	}
	return nil
}

var monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
	"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}

var dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

func parseCronField(f string, lo, hi int, names map[string]int, questionOK bool) error {
	for _, part := range strings.Split(f, ",") {
		rng, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n <= 0 {
				return fmt.Errorf("step %q must be a positive number", step)
			}
		}
		if rng == "*" || (questionOK && rng == "?") {
			continue
		}
		a, b, isRange := strings.Cut(rng, "-")
		start, err := cronValue(a, lo, hi, names)
		if err != nil {
			return err
		}
		end := start
		if isRange {
			if end, err = cronValue(b, lo, hi, names); err != nil {
				return err
			}
		}
		if end < start {
			return fmt.Errorf("beginning of range (%d) beyond end of range (%d)", start, end)
		}
	}
	return nil
}

func cronValue(s string, lo, hi int, names map[string]int) (int, error) {
	if v, ok := names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("%d is out of range [%d, %d]", v, lo, hi)
	}
	return v, nil
}
