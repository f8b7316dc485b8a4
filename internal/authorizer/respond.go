package authorizer

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/ratelimit"
)

// response is the simple response API Gateway expects. An allow's context
// tells the backend who called and where the caller stands, under the keys
// package ratelimit defines; it never holds the key's value. Every key is
// always present, with an empty value when it does not apply, so that a
// parameter mapping always overwrites its header: limits that do not apply
// read 0 (rate and burst, as in API Gateway) or -1 (remaining counts), and
// strings read "".
func (d *decision) response() events.APIGatewayV2CustomAuthorizerSimpleResponse {
	if !d.allow {
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false}
	}
	c := map[string]any{
		ratelimit.KeyAPIKeyID: "", ratelimit.KeyUsagePlanID: d.planID, ratelimit.KeyCustomerID: "",
		ratelimit.KeyRateLimit: 0, ratelimit.KeyBurstLimit: 0, ratelimit.KeyTokensRemaining: -1, ratelimit.KeyNextTokenIn: 0.0,
		ratelimit.KeyQuotaLimit: -1, ratelimit.KeyQuotaRemaining: -1, ratelimit.KeyQuotaPeriod: "", ratelimit.KeyQuotaResetAt: "",
		ratelimit.KeyLimitExceeded: d.limitedBy, ratelimit.KeyRetryAfter: 0.0, ratelimit.KeyFailOpen: d.failedOpen,
	}
	if d.key != nil {
		c[ratelimit.KeyAPIKeyID], c[ratelimit.KeyCustomerID] = d.key.ID, d.key.CustomerID
	}
	if d.failedOpen {
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: c}
	}
	l := d.limits
	if l.bucket != nil {
		c[ratelimit.KeyRateLimit], c[ratelimit.KeyBurstLimit] = l.rate, l.burst
		c[ratelimit.KeyTokensRemaining], c[ratelimit.KeyNextTokenIn] = max(d.res.TokensRemaining, 0), seconds(d.res.NextToken)
	}
	if q := l.quota; q != nil {
		c[ratelimit.KeyQuotaLimit], c[ratelimit.KeyQuotaRemaining] = q.Limit, max(q.Limit-d.res.Used, 0)
		c[ratelimit.KeyQuotaPeriod] = l.period
		c[ratelimit.KeyQuotaResetAt] = time.UnixMicro(q.Reset).UTC().Format(time.RFC3339)
	}
	if d.limitedBy != "" {
		c[ratelimit.KeyRetryAfter] = seconds(d.res.RetryAfter)
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
