package authorizer_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
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
// and its latency); errors against a table that does not exist. It fails if
// a dashboard metric is missing from the log.
func BenchmarkLogBytes(b *testing.B) {
	const minutes = 3 // whole intervals: bytes per decision do not depend on how many
	cases := []struct {
		name  string
		rates []float64
		setup func(f *fixture, cfg *authorizer.Config) (store.API, func(i int) string)
	}{
		{"allowed", []float64{1, 10, 100}, func(f *fixture, cfg *authorizer.Config) (store.API, func(int) string) {
			_, value, _ := f.keyInPlan(plans.Plan{Throttle: throttle(1e6, 1_000_000), Quota: &plans.Quota{Limit: 1 << 40, Period: plans.Month}})
			return f.db, func(int) string { return value }
		}},
		{"flooded-key", []float64{100}, func(f *fixture, cfg *authorizer.Config) (store.API, func(int) string) {
			_, value, _ := f.keyInPlan(plans.Plan{Throttle: throttle(1, 1)}) // 1/s admitted, the rest denied from memory
			return f.db, func(int) string { return value }
		}},
		{"malformed-keys", []float64{100}, func(f *fixture, cfg *authorizer.Config) (store.API, func(int) string) {
			return f.db, func(i int) string { return fmt.Sprintf("garbage-%d", i) }
		}},
		{"errors", []float64{1}, func(f *fixture, cfg *authorizer.Config) (store.API, func(int) string) {
			_, value, _ := f.keyInPlan(plans.Plan{})
			cfg.Table = "no-such-table"
			return f.db, func(int) string { return value }
		}},
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
						checkDashboardMetrics(b, w.all.String(), tc.name == "malformed-keys")
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

// checkDashboardMetrics fails if the log lacks a metric the dashboard
// reads; without DynamoDB calls there is no DynamoDB latency to report.
func checkDashboardMetrics(b *testing.B, log string, noCalls bool) {
	data, err := decisionlog.Extract([]byte(log))
	if err != nil {
		b.Fatal(err)
	}
	produced := map[string]bool{}
	for _, d := range data {
		produced[d.Name+"/{"+d.DimensionNames()+"}"] = true
	}
	for _, m := range dashboardMetrics(b) {
		if !produced[m] && !(noCalls && m == "DynamoDBLatency/{}") {
			b.Fatalf("the log lacks %s, which the dashboard reads", m)
		}
	}
}
