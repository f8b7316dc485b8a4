package decisionlog

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// The names of the metrics beside Config.Counts: Decisions in every record,
// the others in an interval's first record and in a line written alone.
const (
	MetricDecisions       = "Decisions"
	MetricDynamoDBCalls   = "DynamoDBCalls"
	MetricDynamoDBLatency = "DynamoDBLatency"
	MetricLatency         = "Latency"
)

func outcome(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

func plan(id string) string {
	if id == "" {
		return "none"
	}
	return id
}

// metricsLevel is the level of metrics records: info, or the logger's
// minimum if higher, so that no level filter (LOG_LEVEL, or Lambda's
// application log level) drops the dashboard's metrics.
func (l *Logger) metricsLevel(ctx context.Context) slog.Level {
	for _, lv := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
		if l.log.Enabled(ctx, lv) {
			return lv
		}
	}
	return slog.LevelError
}

// directives tells CloudWatch which fields of a record are metrics, and by
// which dimensions: Decisions and the counts named, which are those the
// record carries; with plain, the metrics without dimensions too, among
// them the counts named in totals. Per-key dimensions are left out on
// purpose: they would make a metric per key.
func (l *Logger) directives(counts, totals []string, plain, withDynamo bool) []any {
	metrics := make([]map[string]string, 0, 1+len(counts))
	metrics = append(metrics, map[string]string{"Name": MetricDecisions, "Unit": "Count"})
	for _, c := range counts {
		metrics = append(metrics, map[string]string{"Name": c, "Unit": "Count"})
	}
	out := []any{map[string]any{
		"Namespace":  l.cfg.Namespace,
		"Dimensions": [][]string{{"outcome", "reason"}, {"usagePlanId"}},
		"Metrics":    metrics,
	}}
	if plain {
		none := make([]map[string]string, 0, 3+len(totals))
		for _, c := range totals {
			none = append(none, map[string]string{"Name": c, "Unit": "Count"})
		}
		none = append(none, map[string]string{"Name": MetricDynamoDBCalls, "Unit": "Count"})
		if withDynamo {
			none = append(none, map[string]string{"Name": MetricDynamoDBLatency, "Unit": "Milliseconds"})
		}
		none = append(none, map[string]string{"Name": MetricLatency, "Unit": "Milliseconds"})
		out = append(out, l.dimensionless(none))
	}
	return out
}

// dimensionless is the directive of metrics without dimensions.
func (l *Logger) dimensionless(metrics []map[string]string) map[string]any {
	return map[string]any{"Namespace": l.cfg.Namespace, "Dimensions": [][]string{{}}, "Metrics": metrics}
}

func emf(at time.Time, directives []any) slog.Attr {
	return slog.Attr{Key: "_aws", Value: slog.GroupValue(
		slog.Int64("Timestamp", at.UnixMilli()),
		slog.Any("CloudWatchMetrics", directives))}
}

func (h *histogram) attr(name string) slog.Attr {
	values, counts := h.values()
	return slog.Group(name,
		slog.Any("Values", values), slog.Any("Counts", counts),
		slog.Float64("Max", h.max), slog.Float64("Min", h.min),
		slog.Int64("Count", h.count), slog.Float64("Sum", h.sum))
}

// writeMetrics writes one EMF record per outcome, reason and plan seen in
// the interval starting at start; the first also carries the metrics
// without dimensions. A record carries Decisions and only the counts that
// happened: CloudWatch bills every metric it has seen by name and
// dimensions each month, and a count that is always 0 for a plan or a
// reason (Throttled for allows, the shadow counts for enforced plans, the
// rare late writes) would be billed for nothing. Then the totals of
// Config.Totals, if any is not 0, in a record of their own.
func (l *Logger) writeMetrics(ctx context.Context, start time.Time) {
	level := l.metricsLevel(ctx)
	for i, k := range l.agg.order {
		t := l.agg.tuples[k]
		attrs := make([]slog.Attr, 0, 10+len(l.cfg.Counts))
		attrs = append(attrs,
			slog.String("outcome", outcome(k.allow)),
			slog.String("reason", k.reason),
			slog.String("usagePlanId", plan(k.plan)),
			slog.Int64(MetricDecisions, t.decisions))
		counts := make([]string, 0, len(t.counts))
		for _, c := range l.cfg.Counts {
			if n := t.counts[c]; n != 0 {
				attrs = append(attrs, slog.Int64(c, n))
				counts = append(counts, c)
			}
		}
		withDynamo := l.agg.dynamo.count > 0 // no DynamoDB call, no latency sample: not a 0
		if i == 0 {
			attrs = append(attrs, slog.Int64(MetricDynamoDBCalls, l.agg.calls))
			if withDynamo {
				attrs = append(attrs, l.agg.dynamo.attr(MetricDynamoDBLatency))
			}
			attrs = append(attrs, l.agg.latency.attr(MetricLatency))
		}
		attrs = append(attrs, emf(start, l.directives(counts, nil, i == 0, withDynamo)))
		l.log.LogAttrs(ctx, level, "metrics", attrs...)
	}
	l.writeTotals(ctx, start, level)
}

// writeTotals writes the interval's sums of the counts in Config.Totals
// that are not 0, in a record of their own without dimensions. Not in the
// first record: that one carries its own outcome, reason and plan's value
// of a count under the count's name, and a field has one value.
func (l *Logger) writeTotals(ctx context.Context, start time.Time, level slog.Level) {
	var attrs []slog.Attr
	var metrics []map[string]string
	for _, c := range l.cfg.Totals {
		var n int64
		for _, t := range l.agg.tuples {
			n += t.counts[c]
		}
		if n != 0 {
			attrs = append(attrs, slog.Int64(c, n))
			metrics = append(metrics, map[string]string{"Name": c, "Unit": "Count"})
		}
	}
	if len(attrs) == 0 {
		return
	}
	attrs = append(attrs, emf(start, []any{l.dimensionless(metrics)}))
	l.log.LogAttrs(ctx, level, "metrics", attrs...)
}

// writeRepeats writes a line per repeated decision's key and reason, with
// its count in the interval.
func (l *Logger) writeRepeats(ctx context.Context) {
	for _, g := range l.agg.gorder {
		attrs := []slog.Attr{
			slog.String("outcome", outcome(g.allow)),
			slog.String("reason", g.reason),
			slog.String("usagePlanId", plan(g.planID)),
		}
		if g.keyID != "" {
			attrs = append(attrs, slog.String("apiKeyId", g.keyID))
		}
		attrs = append(attrs, slog.String("apiId", g.apiID), slog.String("stage", g.stage), slog.Int64("count", l.agg.groups[g]))
		if g.shadow {
			attrs = append(attrs, slog.Bool("shadow", true))
		}
		if g.overflow {
			attrs = append(attrs, slog.Bool("manyKeys", true))
		}
		l.log.LogAttrs(ctx, slog.LevelInfo, "decisions", attrs...)
	}
}

// decisionAttrs are a decision's own line's fields.
func decisionAttrs(d *Decision, extra int) []slog.Attr {
	attrs := make([]slog.Attr, 0, 9+len(d.Attrs)+extra)
	attrs = append(attrs,
		slog.Bool("allow", d.Allow),
		slog.String("outcome", outcome(d.Allow)),
		slog.String("reason", d.Reason),
		slog.String("usagePlanId", plan(d.PlanID)),
		slog.String("apiId", d.APIID),
		slog.String("stage", d.Stage),
		slog.String("routeKey", d.RouteKey),
		slog.String("requestId", d.RequestID),
	)
	if d.KeyID != "" {
		attrs = append(attrs, slog.String("apiKeyId", d.KeyID))
	}
	if d.Shadow {
		attrs = append(attrs, slog.Bool("shadow", true))
	}
	return append(attrs, d.Attrs...)
}

// writeDecision writes a decision's own line, without metrics.
func (l *Logger) writeDecision(ctx context.Context, d *Decision) {
	l.log.LogAttrs(ctx, d.Level, "decision", decisionAttrs(d, 0)...)
}

// writeAlone writes a decision's own line with its metrics in it: as in
// the interval's records, Decisions and the counts it has.
func (l *Logger) writeAlone(ctx context.Context, d *Decision, now time.Time) {
	attrs := decisionAttrs(d, 6+len(d.Counts))
	attrs = append(attrs, slog.Int(MetricDecisions, 1))
	var counts, totals []string
	for _, c := range l.cfg.Counts {
		var n int64
		for _, dc := range d.Counts {
			if dc.Name == c {
				n += dc.N
			}
		}
		if n != 0 {
			attrs = append(attrs, slog.Int64(c, n))
			counts = append(counts, c)
			if slices.Contains(l.cfg.Totals, c) {
				totals = append(totals, c) // one decision: its value is its total
			}
		}
	}
	attrs = append(attrs, slog.Int(MetricDynamoDBCalls, d.DynamoDBCalls))
	if d.DynamoDBCalls > 0 {
		attrs = append(attrs, slog.Float64(MetricDynamoDBLatency, ms(d.DynamoDBLatency)))
	}
	attrs = append(attrs, slog.Float64(MetricLatency, ms(d.Latency)), emf(now, l.directives(counts, totals, true, d.DynamoDBCalls > 0)))
	level := max(d.Level, l.metricsLevel(ctx))
	l.log.LogAttrs(ctx, level, "decision", attrs...)
}
