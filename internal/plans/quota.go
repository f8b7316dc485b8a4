package plans

import "time"

// Quota periods.
const (
	Day   = "DAY"
	Week  = "WEEK"
	Month = "MONTH"
)

// Quota allows Limit requests per Period. Offset is, as API Gateway defines
// it today, the number of requests subtracted from Limit in the first
// period: the one in which the quota was set.
type Quota struct {
	Limit  int    `json:"limit"`
	Offset int    `json:"offset"`
	Period string `json:"period"`
}

// Window is one quota period, [Start, End) in UTC.
type Window struct {
	Start, End time.Time
	// ID names the period in attribute names: D20250601, W20250602 (the
	// Monday), M202506.
	ID string
}

// Window returns the period containing t. Periods are calendar periods in
// UTC: days from midnight, ISO weeks from Monday midnight, months from the
// first.
func (q *Quota) Window(t time.Time) Window {
	t = t.UTC()
	y, m, d := t.Date()
	switch q.Period {
	case Week:
		// Weekday counts from Sunday = 0; ISO weeks start on Monday.
		back := (int(t.Weekday()) + 6) % 7
		start := time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
		return Window{Start: start, End: start.AddDate(0, 0, 7), ID: "W" + start.Format("20060102")}
	case Month:
		start := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		return Window{Start: start, End: start.AddDate(0, 1, 0), ID: "M" + start.Format("200601")}
	default:
		start := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		return Window{Start: start, End: start.AddDate(0, 0, 1), ID: "D" + start.Format("20060102")}
	}
}

// LimitIn is the number of requests allowed in w for a quota set at since:
// Limit, less Offset if w is the period in which the quota was set.
func (q *Quota) LimitIn(w Window, since time.Time) int64 {
	if !since.IsZero() && !since.Before(w.Start) && since.Before(w.End) {
		return int64(q.Limit) - int64(q.Offset)
	}
	return int64(q.Limit)
}

// PeriodEnd returns the end of the period a window ID names, for clean-up
// of counters from past periods. ok is false for an ID it cannot parse.
func PeriodEnd(id string) (end time.Time, ok bool) {
	if len(id) < 2 {
		return time.Time{}, false
	}
	switch id[0] {
	case 'D', 'W':
		start, err := time.Parse("20060102", id[1:])
		if err != nil {
			return time.Time{}, false
		}
		if id[0] == 'W' {
			return start.AddDate(0, 0, 7), true
		}
		return start.AddDate(0, 0, 1), true
	case 'M':
		start, err := time.Parse("200601", id[1:])
		if err != nil {
			return time.Time{}, false
		}
		return start.AddDate(0, 1, 0), true
	}
	return time.Time{}, false
}
