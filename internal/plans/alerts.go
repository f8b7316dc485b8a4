package plans

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AlertTag is the plan tag that sets the quota thresholds, in percent of
// the period's limit, at which the notifier puts an event: "50/80/100", or
// "off" for none. AWS tag values allow no commas, hence the slashes.
const AlertTag = "tollgate:alerts"

// DefaultThresholds are the thresholds of a plan without AlertTag, unless
// the notifier is configured otherwise (ALERT_THRESHOLDS).
var DefaultThresholds = []int{80, 100}

// ParseThresholds reads percentages from 1 to 100 separated by "/" or ",",
// or "off" for none. The result is sorted, without repeats.
func ParseThresholds(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return []int{}, nil
	}
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == ',' }) {
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(f), "%")))
		if err != nil || n < 1 || n > 100 {
			return nil, fmt.Errorf("thresholds are whole percentages from 1 to 100 separated by /, such as 50/80/100, or off; %q is not one", strings.TrimSpace(f))
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("thresholds are whole percentages from 1 to 100 separated by /, such as 50/80/100, or off; %q has none", s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Thresholds are the plan's alert thresholds: its AlertTag, or def.
func (p *Plan) Thresholds(def []int) ([]int, error) {
	v, ok := p.Tags[AlertTag]
	if !ok {
		return def, nil
	}
	t, err := ParseThresholds(v)
	if err != nil {
		return nil, fmt.Errorf("tag %s: %w", AlertTag, err)
	}
	return t, nil
}

// ThresholdCount is the quota count at which a key reaches pct percent of
// limit: the least count that is at least pct% of it, and at least 1.
func ThresholdCount(pct int, limit int64) int64 {
	return max(1, (int64(pct)*limit+99)/100)
}

// ParseWindow is the quota period a window id names (D20250601,
// W20250602, M202506). ok is false for an id it cannot parse.
func ParseWindow(id string) (w Window, period string, ok bool) {
	end, ok := PeriodEnd(id)
	if !ok {
		return Window{}, "", false
	}
	switch id[0] {
	case 'D':
		return Window{Start: end.AddDate(0, 0, -1), End: end, ID: id}, Day, true
	case 'W':
		start := end.AddDate(0, 0, -7)
		if start.Weekday() != time.Monday {
			return Window{}, "", false
		}
		return Window{Start: start, End: end, ID: id}, Week, true
	default:
		return Window{Start: end.AddDate(0, -1, 0), End: end, ID: id}, Month, true
	}
}
