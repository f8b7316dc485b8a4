package decisionlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/decisionlog"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

var start = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func setup(cfg decisionlog.Config, level slog.Level) (*decisionlog.Logger, *bytes.Buffer, *fakeClock) {
	var buf bytes.Buffer
	clk := &fakeClock{t: start}
	if cfg.Namespace == "" {
		cfg.Namespace = "Tollgate"
	}
	cfg.Counts = append(cfg.Counts, "Throttled", "QuotaExceeded")
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))
	return decisionlog.New(cfg, log), &buf, clk
}

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func record(l *decisionlog.Logger, clk *fakeClock, d *decisionlog.Decision) {
	d.At = clk.t
	l.Record(context.Background(), d)
}

func allowed(plan string) *decisionlog.Decision {
	return &decisionlog.Decision{Kind: decisionlog.Counted, Allow: true, Reason: "ok", PlanID: plan, KeyID: "k1",
		APIID: "api", Stage: "prod", RouteKey: "GET /", RequestID: "r",
		DynamoDBCalls: 1, DynamoDBLatency: 4 * time.Millisecond, Latency: 5 * time.Millisecond}
}

func throttled(key string) *decisionlog.Decision {
	return &decisionlog.Decision{Kind: decisionlog.Repeated, Reason: "throttled", PlanID: "p1", KeyID: key,
		APIID: "api", Stage: "prod", Counts: []decisionlog.Count{{Name: "Throttled", N: 1}}, Latency: 10 * time.Microsecond}
}

// sum adds up a metric's values by one dimension set ("" for none).
func sum(t *testing.T, log []byte, metric, dims string) (total float64, samples int64) {
	t.Helper()
	data, err := decisionlog.Extract(log)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range data {
		if d.Name == metric && d.DimensionNames() == dims {
			total += d.Sum
			samples += d.Samples
		}
	}
	return total, samples
}

func TestAllowsAreCountedOncePerInterval(t *testing.T) {
	l, buf, clk := setup(decisionlog.Config{}, slog.LevelInfo)
	ctx := context.Background()
	for i := range 600 {
		clk.t = start.Add(time.Duration(i) * 100 * time.Millisecond) // one minute at 10/s
		d := allowed("p1")
		if i%2 == 1 {
			d.PlanID = "p2"
		}
		record(l, clk, d)
	}
	if buf.Len() != 0 {
		t.Fatalf("allowed decisions logged before the interval ended:\n%s", buf)
	}
	clk.t = start.Add(time.Minute)
	record(l, clk, allowed("p1")) // finds the interval over
	got := lines(t, buf)
	if len(got) != 2 {
		t.Fatalf("%d lines for a minute of two plans' allows, want one metrics record per plan:\n%s", len(got), buf)
	}
	if got[0]["msg"] != "metrics" || got[0]["_aws"].(map[string]any)["Timestamp"] != float64(start.UnixMilli()) {
		t.Errorf("record = %v, want metrics stamped with the interval's start", got[0])
	}
	for _, tt := range []struct {
		metric, dims string
		want         float64
	}{
		{"Decisions", "outcome,reason", 600}, {"Decisions", "usagePlanId", 600}, {"DynamoDBCalls", "", 600},
	} {
		if got, _ := sum(t, buf.Bytes(), tt.metric, tt.dims); got != tt.want {
			t.Errorf("%s by %q = %v, want %v", tt.metric, tt.dims, got, tt.want)
		}
	}
	for _, count := range []string{"Throttled", "QuotaExceeded"} {
		if _, n := sum(t, buf.Bytes(), count, "usagePlanId"); n != 0 || strings.Contains(buf.String(), count) {
			t.Errorf("allows' records carry %s, which did not happen: a metric CloudWatch would bill for nothing", count)
		}
	}
	if total, n := sum(t, buf.Bytes(), "Latency", ""); n != 600 || total < 2999 || total > 3001 {
		t.Errorf("Latency: %d samples summing %v ms, want 600 of 5 ms", n, total)
	}
	l.Flush(ctx)
	if total, _ := sum(t, buf.Bytes(), "Decisions", "usagePlanId"); total != 601 {
		t.Errorf("after Flush, %v decisions counted, want 601", total)
	}
	n := buf.Len()
	l.Flush(ctx)
	if buf.Len() != n {
		t.Error("a second Flush wrote again")
	}
}

func TestFloodCollapses(t *testing.T) {
	l, buf, clk := setup(decisionlog.Config{}, slog.LevelInfo)
	ctx := context.Background()
	for i := range 5000 {
		clk.t = start.Add(time.Duration(i) * 10 * time.Millisecond) // 100/s for 50 s
		record(l, clk, throttled("k1"))
		if i%100 == 0 {
			record(l, clk, throttled("k2"))
		}
	}
	l.Flush(ctx)
	var repeats []map[string]any
	for _, line := range lines(t, buf) {
		if line["msg"] == "decisions" {
			repeats = append(repeats, line)
		}
	}
	if len(repeats) != 2 || repeats[0]["apiKeyId"] != "k1" || repeats[0]["count"] != 5000.0 || repeats[1]["count"] != 50.0 {
		t.Fatalf("repeated denials: %v, want one line per key with its count", repeats)
	}
	if got, _ := sum(t, buf.Bytes(), "Throttled", "outcome,reason"); got != 5050 {
		t.Errorf("Throttled = %v, want 5050", got)
	}
	if _, n := sum(t, buf.Bytes(), "DynamoDBLatency", ""); n != 0 {
		t.Errorf("%d DynamoDB latency samples for denials that made no call, want none", n)
	}
	if per := float64(buf.Len()) / 5050; per > 1 {
		t.Errorf("%.2f bytes per flooded denial", per)
	}
}

// TestRecordsCarryOnlyCountsThatHappened: each record declares and
// carries Decisions and the counts that are not 0 for its outcome, reason
// and plan, in the interval's records and in a line written alone.
func TestRecordsCarryOnlyCountsThatHappened(t *testing.T) {
	l, buf, clk := setup(decisionlog.Config{}, slog.LevelInfo)
	ctx := context.Background()
	record(l, clk, allowed("p1"))
	record(l, clk, throttled("k1"))
	record(l, clk, throttled("k1"))
	over := throttled("k2")
	over.Reason, over.PlanID, over.Counts = "quota_exceeded", "p2", []decisionlog.Count{{Name: "QuotaExceeded", N: 1}}
	record(l, clk, over)
	record(l, clk, &decisionlog.Decision{Kind: decisionlog.Alone, Reason: "error", PlanID: "p1", Level: slog.LevelError})
	l.Flush(ctx)
	want := map[string][]string{ // reason → the counts its record carries, beside Decisions
		"ok": nil, "throttled": {"Throttled"}, "quota_exceeded": {"QuotaExceeded"}, "error": nil,
	}
	got := lines(t, buf)
	if len(got) != 4+2 { // the error's line, three records, two keys' repeated lines
		t.Fatalf("%d lines, want 6:\n%s", len(got), buf)
	}
	for _, line := range got {
		if line["msg"] == "decisions" {
			continue
		}
		reason := line["reason"].(string)
		var declared []string
		for _, dir := range line["_aws"].(map[string]any)["CloudWatchMetrics"].([]any) {
			dir := dir.(map[string]any)
			if len(dir["Dimensions"].([]any)[0].([]any)) == 0 {
				continue // the metrics without dimensions
			}
			for _, m := range dir["Metrics"].([]any) {
				declared = append(declared, m.(map[string]any)["Name"].(string))
			}
		}
		if w := append([]string{"Decisions"}, want[reason]...); strings.Join(declared, ",") != strings.Join(w, ",") {
			t.Errorf("%s: the record declares %v, want %v", reason, declared, w)
		}
		for _, c := range []string{"Throttled", "QuotaExceeded"} {
			if _, ok := line[c]; ok != slices.Contains(want[reason], c) {
				t.Errorf("%s: the record has %s: %v, want it only if it happened", reason, c, ok)
			}
		}
	}
	for _, tt := range []struct {
		metric string
		want   float64
	}{{"Decisions", 5}, {"Throttled", 2}, {"QuotaExceeded", 1}} {
		if got, _ := sum(t, buf.Bytes(), tt.metric, "usagePlanId"); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.metric, got, tt.want)
		}
	}
}

// TestTotalsWithoutDimensions: a count named in Config.Totals is also
// written without dimensions, summed over the interval's outcomes, reasons
// and plans, for an alarm that cannot know them; and on a line written
// alone, its own value. An interval without it writes no total.
func TestTotalsWithoutDimensions(t *testing.T) {
	l, buf, clk := setup(decisionlog.Config{Totals: []string{"Throttled"}}, slog.LevelInfo)
	ctx := context.Background()
	for range 2 {
		record(l, clk, throttled("k1")) // the first record's own: 2, by outcome, reason and plan
	}
	for range 3 {
		d := throttled("k2")
		d.PlanID = "p2"
		record(l, clk, d)
	}
	record(l, clk, allowed("p1"))
	record(l, clk, &decisionlog.Decision{Kind: decisionlog.Alone, Reason: "error", PlanID: "p1", Level: slog.LevelError,
		Counts: []decisionlog.Count{{Name: "Throttled", N: 1}}})
	l.Flush(ctx)
	for _, dims := range []string{"", "usagePlanId", "outcome,reason"} {
		if got, _ := sum(t, buf.Bytes(), "Throttled", dims); got != 6 {
			t.Errorf("Throttled by %q = %v, want 6", dims, got)
		}
	}
	if _, n := sum(t, buf.Bytes(), "QuotaExceeded", ""); n != 0 {
		t.Errorf("QuotaExceeded, not among Totals, written without dimensions %d times", n)
	}
	if got, _ := sum(t, buf.Bytes(), "DynamoDBCalls", ""); got != 1 {
		t.Errorf("DynamoDBCalls = %v, want 1: written once an interval, beside the totals", got)
	}

	// An interval in which nothing was throttled: no total, not even a 0.
	l, buf, clk = setup(decisionlog.Config{Totals: []string{"Throttled"}}, slog.LevelInfo)
	record(l, clk, allowed("p1"))
	l.Flush(ctx)
	if n := len(lines(t, buf)); n != 1 || strings.Contains(buf.String(), "Throttled") {
		t.Errorf("an interval without throttles: %d lines, want the allow's record alone:\n%s", n, buf)
	}
}

func TestManyKeysAreBounded(t *testing.T) {
	l, buf, clk := setup(decisionlog.Config{MaxGroups: 10}, slog.LevelInfo)
	ctx := context.Background()
	for i := range 100 {
		d := throttled("k" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		record(l, clk, d)
	}
	l.Flush(ctx)
	var repeats, overflow int
	for _, line := range lines(t, buf) {
		if line["msg"] == "decisions" {
			repeats++
			if line["manyKeys"] == true {
				overflow++
				if line["count"] != 90.0 {
					t.Errorf("overflow line counts %v, want 90", line["count"])
				}
			}
		}
	}
	if repeats != 11 || overflow != 1 {
		t.Errorf("%d lines, %d of them for many keys; want 10 keys and one for the rest", repeats, overflow)
	}
}

func TestUnusualDenialsShowAtOnce(t *testing.T) {
	l, buf, clk := setup(decisionlog.Config{}, slog.LevelInfo)
	d := &decisionlog.Decision{Kind: decisionlog.Unusual, Reason: "disabled_key", KeyID: "k1", APIID: "api", Stage: "prod", RequestID: "r1"}
	record(l, clk, d)
	got := lines(t, buf)
	if len(got) != 1 || got[0]["msg"] != "decision" || got[0]["reason"] != "disabled_key" || got[0]["requestId"] != "r1" {
		t.Fatalf("first unusual denial: %v, want its line at once", got)
	}
	if _, ok := got[0]["_aws"]; ok {
		t.Error("an unusual denial's line carries metrics: they are counted in the interval's record")
	}
	for range 10 {
		record(l, clk, d)
	}
	if n := len(lines(t, buf)); n != 1 {
		t.Errorf("%d lines after repeats, want them collapsed", n)
	}
	clk.t = start.Add(time.Minute)
	record(l, clk, d) // the next interval's first: at once again, after the last interval's records
	got = lines(t, buf)
	last := got[len(got)-1]
	if last["msg"] != "decision" {
		t.Errorf("next interval's first unusual denial not logged at once: %v", last)
	}
	for _, line := range got {
		if line["msg"] == "decisions" && line["count"] != 11.0 {
			t.Errorf("repeats = %v, want 11", line["count"])
		}
	}
}

func TestErrorsLogAtOnceWithTheirMetrics(t *testing.T) {
	l, buf, clk := setup(decisionlog.Config{}, slog.LevelInfo)
	ctx := context.Background()
	record(l, clk, &decisionlog.Decision{Kind: decisionlog.Alone, Reason: "error", PlanID: "p1", KeyID: "k1", Level: slog.LevelError,
		DynamoDBCalls: 3, Latency: time.Second, Attrs: []slog.Attr{slog.String("error", errors.New("timeout").Error())}})
	got := lines(t, buf)
	if len(got) != 1 || got[0]["level"] != "ERROR" || got[0]["error"] != "timeout" {
		t.Fatalf("error: %v", got)
	}
	if n, _ := sum(t, buf.Bytes(), "Decisions", "outcome,reason"); n != 1 {
		t.Errorf("the error's line counts %v decisions, want 1", n)
	}
	if n, _ := sum(t, buf.Bytes(), "DynamoDBCalls", ""); n != 3 {
		t.Errorf("the error's line counts %v DynamoDB calls, want 3", n)
	}
	l.Flush(ctx)
	if n, _ := sum(t, buf.Bytes(), "Decisions", "usagePlanId"); n != 1 {
		t.Errorf("the error was counted %v times, want once", n)
	}
}

func TestAllLogsEveryDecision(t *testing.T) {
	l, buf, clk := setup(decisionlog.Config{All: true}, slog.LevelInfo)
	ctx := context.Background()
	record(l, clk, allowed("p1"))
	record(l, clk, throttled("k1"))
	record(l, clk, throttled("k1"))
	got := lines(t, buf)
	if len(got) != 3 || got[0]["reason"] != "ok" || got[2]["reason"] != "throttled" || got[0]["apiKeyId"] != "k1" {
		t.Fatalf("LOG_DECISIONS=all: %v", got)
	}
	l.Flush(ctx)
	for _, line := range lines(t, buf) {
		if line["msg"] == "decisions" {
			t.Errorf("with a line per decision, repeats need no summary: %v", line)
		}
	}
	if n, _ := sum(t, buf.Bytes(), "Decisions", "usagePlanId"); n != 3 {
		t.Errorf("%v decisions counted, want 3", n)
	}
}

// TestMetricsSurviveLevelFilters: with LOG_LEVEL=warn (or Lambda's
// application log level at WARN) the metrics records still get through.
func TestMetricsSurviveLevelFilters(t *testing.T) {
	l, buf, clk := setup(decisionlog.Config{}, slog.LevelWarn)
	ctx := context.Background()
	record(l, clk, allowed("p1"))
	l.Flush(ctx)
	got := lines(t, buf)
	if len(got) != 1 || got[0]["level"] != "WARN" || got[0]["msg"] != "metrics" {
		t.Fatalf("metrics at LOG_LEVEL=warn: %v", got)
	}
}

func TestHistogramStaysValid(t *testing.T) {
	l, buf, clk := setup(decisionlog.Config{}, slog.LevelInfo)
	ctx := context.Background()
	for i := range 5000 {
		d := allowed("p1")
		d.Latency = time.Duration(float64(time.Nanosecond) * float64(i) * float64(i) * float64(i)) // 0 to over two minutes
		record(l, clk, d)
	}
	l.Flush(ctx)
	if _, err := decisionlog.Extract(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	// Percentiles from the bins are within a bin's width (20%).
	l, buf, clk = setup(decisionlog.Config{}, slog.LevelInfo)
	for i := 1; i <= 1000; i++ {
		d := allowed("p1")
		d.Latency = time.Duration(i) * time.Millisecond / 10 // 0.1 to 100 ms
		record(l, clk, d)
	}
	l.Flush(ctx)
	var rec struct{ Latency struct{ Values []float64 } }
	json.Unmarshal([]byte(strings.Split(buf.String(), "\n")[0]), &rec)
	var rec2 struct{ Latency struct{ Counts []int64 } }
	json.Unmarshal([]byte(strings.Split(buf.String(), "\n")[0]), &rec2)
	var seen int64
	for i, c := range rec2.Latency.Counts {
		seen += c
		if seen >= 990 { // p99
			if v := rec.Latency.Values[i]; v < 99*0.8 || v > 99*1.2 {
				t.Errorf("p99 from the bins = %v ms, want 99 within 20%%", v)
			}
			break
		}
	}
}
