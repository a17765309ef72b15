package controller

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed CronJob schedule: five fields (minute hour
// day-of-month month day-of-week) of *, ?, numbers, names (JAN, MON),
// ranges (1-5), lists (1,15) and steps (*/10, 0-30/5, 5/15), or a
// descriptor (@hourly, @daily, @midnight, @weekly, @monthly, @yearly,
// @annually, "@every 90s"). As in cron (and Kubernetes), when both
// day-of-month and day-of-week are restricted, a day matching either runs.
type Schedule struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	domAny, dowAny                bool   // the field was * or ?
	every                         time.Duration
}

type cronField struct {
	name   string
	lo, hi int
	names  map[string]int
}

var cronFields = [5]cronField{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}},
	{"day of week", 0, 7, map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}},
}

var cronDescriptors = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// ParseSchedule parses a CronJob schedule.
func ParseSchedule(spec string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		dur, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil || dur < time.Second {
			return nil, fmt.Errorf("schedule %q: @every needs a duration of at least 1s", spec)
		}
		return &Schedule{every: dur.Truncate(time.Second)}, nil
	}
	if exp, ok := cronDescriptors[spec]; ok {
		spec = exp
	} else if strings.HasPrefix(spec, "@") {
		return nil, fmt.Errorf("schedule %q: unknown descriptor", spec)
	}
	parts := strings.Fields(spec)
	if len(parts) != 5 {
		return nil, fmt.Errorf("schedule %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", spec, len(parts))
	}
	s := &Schedule{}
	dst := [5]*uint64{&s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	for i, p := range parts {
		bits, err := parseCronField(p, cronFields[i])
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %s field %q: %w", spec, cronFields[i].name, p, err)
		}
		*dst[i] = bits
	}
	s.domAny = parts[2] == "*" || parts[2] == "?"
	s.dowAny = parts[4] == "*" || parts[4] == "?"
	if s.dow&(1<<7) != 0 { // 7 is Sunday too
		s.dow |= 1
	}
	return s, nil
}

func parseCronField(f string, spec cronField) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(f, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("step %q must be a positive number", stepStr)
			}
			step = n
		}
		lo, hi := spec.lo, spec.hi
		switch {
		case rng == "*" || rng == "?":
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = cronValue(a, spec); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = cronValue(b, spec); err != nil {
					return 0, err
				}
				if hi < lo {
					return 0, fmt.Errorf("range %q ends before it starts", rng)
				}
			} else if hasStep {
				hi = spec.hi // "5/15": from 5 to the end, every 15
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func cronValue(s string, spec cronField) (int, error) {
	if v, ok := spec.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < spec.lo || v > spec.hi {
		return 0, fmt.Errorf("%d is out of range %d-%d", v, spec.lo, spec.hi)
	}
	return v, nil
}

// Next is the first time the schedule fires strictly after t, in t's
// location; the zero time if it never does (such as 30 February).
func (s *Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		return t.Truncate(time.Second).Add(s.every)
	}
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	// Eight years cover every day-of-month/day-of-week combination,
	// leap days included; past that the schedule never fires.
	limit := t.Year() + 8
	for t.Year() <= limit {
		if s.month&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
			continue
		}
		if s.hour&(1<<uint(t.Hour())) == 0 {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
			continue
		}
		if s.minute&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

func (s *Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	switch {
	case s.domAny && s.dowAny:
		return true
	case s.domAny:
		return dow
	case s.dowAny:
		return dom
	}
	return dom || dow
}
