package authorizer

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// response is the simple response API Gateway expects. The context tells
// the backend who called and where the caller stands; it never holds the
// key's value. Limits that do not apply read 0 (rate and burst, as in API
// Gateway) or -1 (remaining counts), and quotaResetAt is empty, so that
// parameter mappings always find a value.
func (d *decision) response() events.APIGatewayV2CustomAuthorizerSimpleResponse {
	if !d.allow {
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false}
	}
	c := map[string]any{}
	if d.key != nil {
		c["apiKeyId"] = d.key.ID
		if d.key.CustomerID != "" {
			c["customerId"] = d.key.CustomerID
		}
	}
	if d.planID != "" {
		c["usagePlanId"] = d.planID
	}
	if d.failedOpen {
		c["failOpen"] = true
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: c}
	}
	l := d.limits
	if l.bucket != nil {
		c["rateLimit"], c["burstLimit"], c["tokensRemaining"] = l.rate, l.burst, max(d.res.TokensRemaining, 0)
	} else {
		c["rateLimit"], c["burstLimit"], c["tokensRemaining"] = 0, 0, -1
	}
	if q := l.quota; q != nil {
		c["quotaLimit"], c["quotaRemaining"] = q.Limit, max(q.Limit-d.res.Used, 0)
		c["quotaResetAt"] = time.UnixMicro(q.Reset).UTC().Format(time.RFC3339)
	} else {
		c["quotaLimit"], c["quotaRemaining"], c["quotaResetAt"] = -1, -1, ""
	}
	if d.limitedBy != "" {
		c["limitExceeded"] = d.limitedBy
		c["retryAfter"] = seconds(d.res.RetryAfter)
	}
	return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: c}
}

// seconds rounds up to the millisecond, so a client that waits that long is
// never early.
func seconds(d time.Duration) float64 {
	return math.Ceil(float64(d)/float64(time.Millisecond)) / 1000
}

// logDecision writes one line per decision. It never logs the key's value.
// The line is also a CloudWatch Embedded Metric Format record, so metrics
// cost no API call: Decisions, Throttled and QuotaExceeded by outcome and
// reason and by usage plan, and DynamoDB calls and latencies.
func (a *Authorizer) logDecision(ctx context.Context, ev *events.APIGatewayV2CustomAuthorizerV2Request, d *decision, stats *callStats, latency time.Duration) {
	outcome, plan := "deny", d.planID
	if d.allow {
		outcome = "allow"
	}
	if plan == "" {
		plan = "none"
	}
	attrs := make([]slog.Attr, 0, 24)
	attrs = append(attrs,
		slog.Bool("allow", d.allow),
		slog.String("outcome", outcome),
		slog.String("reason", d.reason),
		slog.String("usagePlanId", plan),
		slog.String("apiId", ev.RequestContext.APIID),
		slog.String("stage", ev.RequestContext.Stage),
		slog.String("routeKey", ev.RouteKey),
		slog.String("requestId", ev.RequestContext.RequestID),
	)
	if d.key != nil {
		attrs = append(attrs, slog.String("apiKeyId", d.key.ID))
	}
	if d.limitedBy != "" {
		attrs = append(attrs, slog.String("limitExceeded", d.limitedBy))
	}
	if d.reason == ReasonThrottled || d.reason == ReasonQuotaExceeded {
		attrs = append(attrs, slog.Float64("retryAfter", seconds(d.res.RetryAfter)))
	}
	attrs = append(attrs,
		slog.Int("Decisions", 1),
		slog.Int("Throttled", count(d.reason == ReasonThrottled)),
		slog.Int("QuotaExceeded", count(d.reason == ReasonQuotaExceeded)),
		slog.Int("DynamoDBCalls", stats.calls),
		slog.Float64("DynamoDBLatency", ms(stats.dur)),
		slog.Float64("Latency", ms(latency)),
		slog.Group("_aws",
			slog.Int64("Timestamp", time.Now().UnixMilli()),
			slog.Any("CloudWatchMetrics", a.metrics)),
	)
	level := slog.LevelInfo
	if d.err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", d.err.Error()), slog.Bool("failOpen", d.failedOpen))
	}
	a.log.LogAttrs(ctx, level, "decision", attrs...)
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func count(b bool) int {
	if b {
		return 1
	}
	return 0
}

// metricDirectives tells CloudWatch which fields of a decision line are
// metrics, in namespace ns, and by which dimensions. Per-key dimensions
// are left out on purpose: they would make a metric per key.
func metricDirectives(ns string) []map[string]any {
	metric := func(name, unit string) map[string]string { return map[string]string{"Name": name, "Unit": unit} }
	return []map[string]any{
		{
			"Namespace":  ns,
			"Dimensions": [][]string{{"outcome", "reason"}, {"usagePlanId"}},
			"Metrics":    []map[string]string{metric("Decisions", "Count"), metric("Throttled", "Count"), metric("QuotaExceeded", "Count")},
		},
		{
			"Namespace":  ns,
			"Dimensions": [][]string{{}},
			"Metrics":    []map[string]string{metric("DynamoDBCalls", "Count"), metric("DynamoDBLatency", "Milliseconds"), metric("Latency", "Milliseconds")},
		},
	}
}
