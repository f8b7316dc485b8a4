package authorizer_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/decisionlog"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// countingWriter counts the bytes and lines written to it.
type countingWriter struct {
	bytes, lines int
	all          strings.Builder
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.bytes += len(p)
	w.lines += strings.Count(string(p), "\n")
	w.all.Write(p)
	return len(p), nil
}

// dashboardMetrics are the metrics, as "Name by {dimensions}", that the
// construct's dashboard and alarms read: infra's template test keeps the
// list equal to what they read.
func dashboardMetrics(b *testing.B) []string {
	list, err := os.ReadFile("../../infra/testdata/dashboard-metrics.txt")
	if err != nil {
		b.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(list), " by ", "/"))
}

// BenchmarkLogBytes measures the application log bytes an instance writes
// per decision, with the default decision log (summary, one-minute
// intervals) and with LOG_DECISIONS=all, over three minutes of a clock that
// the benchmark moves: one instance deciding `rate` requests a second,
// evenly. Every case is decided against DynamoDB Local, so that the metrics
// records carry what they carry on AWS (an allowed decision's DynamoDB call
// and its latency); errors against a table that does not exist. A record
// carries only the counts that happened, so each case says which of the
// dashboard's metrics its log must produce, and no others; together the
// cases produce them all.
func BenchmarkLogBytes(b *testing.B) {
	const minutes = 3 // whole intervals: bytes per decision do not depend on how many
	// Every decision is counted, and an interval's first record carries the
	// call count and latencies.
	always := []string{"Decisions/{outcome,reason}", "Decisions/{usagePlanId}", "DynamoDBCalls/{}", "Latency/{}"}
	const called = "DynamoDBLatency/{}" // only if a decision called DynamoDB
	inShadow := map[string]string{plans.EnforceTag: plans.Shadow}
	cases := []struct {
		name     string
		rates    []float64
		produces []string // the dashboard's metrics its log has, beside always's
		setup    func(f *fixture, cfg *authorizer.Config) (store.API, func(i int) string)
	}{
		{"allowed", []float64{1, 10, 100}, []string{called}, func(f *fixture, cfg *authorizer.Config) (store.API, func(int) string) {
			_, value, _ := f.keyInPlan(plans.Plan{Throttle: throttle(1e6, 1_000_000), Quota: &plans.Quota{Limit: 1 << 40, Period: plans.Month}})
			return f.db, func(int) string { return value }
		}},
		{"flooded-key", []float64{100}, []string{called, "Throttled/{usagePlanId}"}, func(f *fixture, cfg *authorizer.Config) (store.API, func(int) string) {
			_, value, _ := f.keyInPlan(plans.Plan{Throttle: throttle(1, 1)}) // 1/s admitted, the rest denied from memory
			return f.db, func(int) string { return value }
		}},
		{"spent-quota", []float64{100}, []string{called, "QuotaExceeded/{usagePlanId}"}, func(f *fixture, cfg *authorizer.Config) (store.API, func(int) string) {
			_, value, _ := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 60, Period: plans.Month}}) // the rest denied from memory
			return f.db, func(int) string { return value }
		}},
		{"shadow-flood", []float64{100}, []string{called, "ShadowThrottled/{usagePlanId}", "ShadowQuotaExceeded/{usagePlanId}"},
			func(f *fixture, cfg *authorizer.Config) (store.API, func(int) string) {
				// A plan in shadow: 1/s admitted until the quota is spent,
				// after 2 minutes; every request let through.
				_, value, _ := f.keyInPlan(plans.Plan{Throttle: throttle(1, 1), Quota: &plans.Quota{Limit: 120, Period: plans.Month}, Tags: inShadow})
				return f.db, func(int) string { return value }
			}},
		{"malformed-keys", []float64{100}, nil, func(f *fixture, cfg *authorizer.Config) (store.API, func(int) string) {
			return f.db, func(i int) string { return fmt.Sprintf("garbage-%d", i) }
		}},
		{"errors", []float64{1}, []string{called}, func(f *fixture, cfg *authorizer.Config) (store.API, func(int) string) {
			_, value, _ := f.keyInPlan(plans.Plan{})
			cfg.Table = "no-such-table"
			return f.db, func(int) string { return value }
		}},
	}
	all := map[string]bool{}
	for _, tc := range cases {
		for _, m := range append(always, tc.produces...) {
			all[m] = true
		}
	}
	// Only faults produce it: TestGivenUpWritesReachTheAlarm does.
	all["LateWritesUnreconciled/{}"] = true
	for _, m := range dashboardMetrics(b) {
		if !all[m] {
			b.Fatalf("no case produces %s, which the dashboard reads", m)
		}
	}
	for _, tc := range cases {
		for _, rate := range tc.rates {
			for _, mode := range []string{"summary", "all"} {
				b.Run(fmt.Sprintf("%s/rate=%g/log=%s", tc.name, rate, mode), func(b *testing.B) {
					for b.Loop() {
						f := setup(b)
						start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
						f.clock.Set(start)
						cfg := authorizer.Defaults
						cfg.Table, cfg.LogAllDecisions = f.tbl.Name, mode == "all"
						db, value := tc.setup(f, &cfg)
						var w countingWriter
						a := authorizer.New(cfg, db, f.clock.Now, slog.New(slog.NewJSONHandler(&w, nil)))
						n := int(rate * 60 * minutes)
						allowed := 0
						for i := range n {
							f.clock.Set(start.Add(time.Duration(float64(i) / rate * float64(time.Second))))
							if a.Authorize(context.Background(), request(value(i))).IsAuthorized {
								allowed++
							}
						}
						a.Flush(context.Background())
						checkDashboardMetrics(b, w.all.String(), append(always, tc.produces...))
						b.ReportMetric(float64(w.bytes)/float64(n), "bytes/decision")
						b.ReportMetric(float64(w.lines)/float64(n), "lines/decision")
						b.ReportMetric(float64(allowed)/float64(n), "allowed/decision")
						b.ReportMetric(0, "ns/op")
					}
				})
			}
		}
	}
}

// checkDashboardMetrics fails unless the dashboard's metrics that the log
// produces are exactly want: none missing, and no count that did not
// happen.
func checkDashboardMetrics(b *testing.B, log string, want []string) {
	data, err := decisionlog.Extract([]byte(log))
	if err != nil {
		b.Fatal(err)
	}
	produced := map[string]bool{}
	for _, d := range data {
		produced[d.Name+"/{"+d.DimensionNames()+"}"] = true
	}
	for _, m := range dashboardMetrics(b) {
		if produced[m] != slices.Contains(want, m) {
			b.Fatalf("the log has %s: %v, want %v", m, produced[m], !produced[m])
		}
	}
}
