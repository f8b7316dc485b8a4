package plans

import (
	"testing"
	"time"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindow(t *testing.T) {
	tests := []struct {
		name   string
		period string
		at     string
		start  string
		end    string
		id     string
	}{
		{"day, midday", Day, "2025-06-01T12:00:00Z", "2025-06-01T00:00:00Z", "2025-06-02T00:00:00Z", "D20250601"},
		{"day, first instant", Day, "2025-06-01T00:00:00Z", "2025-06-01T00:00:00Z", "2025-06-02T00:00:00Z", "D20250601"},
		{"day, last microsecond", Day, "2025-06-01T23:59:59.999999Z", "2025-06-01T00:00:00Z", "2025-06-02T00:00:00Z", "D20250601"},
		{"day, non-UTC input uses UTC", Day, "2025-06-01T23:30:00-02:00", "2025-06-02T00:00:00Z", "2025-06-03T00:00:00Z", "D20250602"},
		{"day, year end", Day, "2025-12-31T23:59:59Z", "2025-12-31T00:00:00Z", "2026-01-01T00:00:00Z", "D20251231"},
		{"day, leap day", Day, "2024-02-29T08:00:00Z", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z", "D20240229"},
		{"week, Monday midnight starts it", Week, "2025-06-02T00:00:00Z", "2025-06-02T00:00:00Z", "2025-06-09T00:00:00Z", "W20250602"},
		{"week, Sunday night ends the previous one", Week, "2025-06-01T23:59:59Z", "2025-05-26T00:00:00Z", "2025-06-02T00:00:00Z", "W20250526"},
		{"week, Wednesday", Week, "2025-06-04T10:00:00Z", "2025-06-02T00:00:00Z", "2025-06-09T00:00:00Z", "W20250602"},
		{"week, across a year", Week, "2026-01-01T00:00:00Z", "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z", "W20251229"},
		{"week, across a leap day", Week, "2024-03-01T00:00:00Z", "2024-02-26T00:00:00Z", "2024-03-04T00:00:00Z", "W20240226"},
		{"month, 31 days", Month, "2025-01-31T23:59:59Z", "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z", "M202501"},
		{"month, 28 days", Month, "2025-02-28T12:00:00Z", "2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z", "M202502"},
		{"month, leap February", Month, "2024-02-29T12:00:00Z", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z", "M202402"},
		{"month, 30 days", Month, "2025-04-30T23:59:59.999Z", "2025-04-01T00:00:00Z", "2025-05-01T00:00:00Z", "M202504"},
		{"month, first instant", Month, "2025-03-01T00:00:00Z", "2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z", "M202503"},
		{"month, December", Month, "2025-12-15T00:00:00Z", "2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z", "M202512"},
		{"century leap rule: 2100 has no Feb 29", Month, "2100-02-28T23:00:00Z", "2100-02-01T00:00:00Z", "2100-03-01T00:00:00Z", "M210002"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := Quota{Limit: 10, Period: tt.period}
			w := q.Window(ts(tt.at))
			if !w.Start.Equal(ts(tt.start)) || !w.End.Equal(ts(tt.end)) || w.ID != tt.id {
				t.Errorf("Window(%s) = [%s, %s) %s, want [%s, %s) %s", tt.at, w.Start, w.End, w.ID, tt.start, tt.end, tt.id)
			}
			end, ok := PeriodEnd(w.ID)
			if !ok || !end.Equal(w.End) {
				t.Errorf("PeriodEnd(%s) = %s, %v, want %s", w.ID, end, ok, w.End)
			}
		})
	}
}

func TestLimitInAppliesOffsetToFirstPeriodOnly(t *testing.T) {
	q := Quota{Limit: 1000, Offset: 200, Period: Month}
	since := ts("2025-06-17T09:00:00Z")
	tests := []struct {
		at   string
		want int64
	}{
		{"2025-06-17T09:00:00Z", 800},
		{"2025-06-30T23:59:59Z", 800},
		{"2025-07-01T00:00:00Z", 1000},
		{"2026-06-17T09:00:00Z", 1000},
	}
	for _, tt := range tests {
		if got := q.LimitIn(q.Window(ts(tt.at)), since); got != tt.want {
			t.Errorf("LimitIn at %s = %d, want %d", tt.at, got, tt.want)
		}
	}
	if got := q.LimitIn(q.Window(since), time.Time{}); got != 1000 {
		t.Errorf("LimitIn with no start = %d, want 1000", got)
	}
	week := Quota{Limit: 7, Offset: 7, Period: Week}
	if got := week.LimitIn(week.Window(ts("2025-06-08T23:59:59Z")), ts("2025-06-02T00:00:00Z")); got != 0 {
		t.Errorf("offset equal to the limit leaves %d, want 0", got)
	}
}

func TestPeriodEndRejectsGarbage(t *testing.T) {
	for _, id := range []string{"", "D", "X20250101", "D2025", "M20251", "W2025010x"} {
		if _, ok := PeriodEnd(id); ok {
			t.Errorf("PeriodEnd(%q) ok", id)
		}
	}
}
