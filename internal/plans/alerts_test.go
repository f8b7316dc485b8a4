package plans

import (
	"slices"
	"testing"
	"time"
)

func TestParseThresholds(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"80/100", []int{80, 100}, false},
		{"100/50/80/80", []int{50, 80, 100}, false},
		{"80,100", []int{80, 100}, false},
		{" 90% ", []int{90}, false},
		{"off", []int{}, false},
		{"OFF", []int{}, false},
		{"", nil, true},
		{"0/80", nil, true},
		{"101", nil, true},
		{"eighty", nil, true},
		{"80.5", nil, true},
	} {
		got, err := ParseThresholds(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("ParseThresholds(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	p := Plan{Tags: map[string]string{AlertTag: "50/100"}}
	if got, _ := p.Thresholds(DefaultThresholds); !slices.Equal(got, []int{50, 100}) {
		t.Errorf("tagged plan: %v", got)
	}
	if got, _ := (&Plan{}).Thresholds(DefaultThresholds); !slices.Equal(got, DefaultThresholds) {
		t.Errorf("untagged plan: %v", got)
	}
}

func TestThresholdCount(t *testing.T) {
	for _, tt := range []struct {
		pct   int
		limit int64
		want  int64
	}{
		{80, 5, 4}, {100, 5, 5}, {80, 1000, 800}, {80, 7, 6}, {1, 10, 1}, {50, 1, 1}, {100, 0, 1},
	} {
		if got := ThresholdCount(tt.pct, tt.limit); got != tt.want {
			t.Errorf("ThresholdCount(%d, %d) = %d, want %d", tt.pct, tt.limit, got, tt.want)
		}
	}
}

func TestParseWindow(t *testing.T) {
	q := Quota{Period: Week}
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for _, period := range []string{Day, Week, Month} {
		q.Period = period
		w := q.Window(now)
		got, p, ok := ParseWindow(w.ID)
		if !ok || p != period || !got.Start.Equal(w.Start) || !got.End.Equal(w.End) {
			t.Errorf("ParseWindow(%s) = %v %s %v, want %v", w.ID, got, p, ok, w)
		}
	}
	for _, bad := range []string{"", "X2026", "W20261118", "D2026"} {
		if _, _, ok := ParseWindow(bad); ok {
			t.Errorf("ParseWindow(%q) ok", bad)
		}
	}
}
