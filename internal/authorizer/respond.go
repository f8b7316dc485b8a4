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
func (a *Authorizer) logDecision(ctx context.Context, ev *events.APIGatewayV2CustomAuthorizerV2Request, d *decision, stats *callStats, latency time.Duration) {
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.Bool("allow", d.allow),
		slog.String("reason", d.reason),
		slog.String("apiId", ev.RequestContext.APIID),
		slog.String("stage", ev.RequestContext.Stage),
		slog.String("routeKey", ev.RouteKey),
		slog.String("requestId", ev.RequestContext.RequestID),
	)
	if d.key != nil {
		attrs = append(attrs, slog.String("apiKeyId", d.key.ID))
	}
	if d.planID != "" {
		attrs = append(attrs, slog.String("usagePlanId", d.planID))
	}
	if d.limitedBy != "" {
		attrs = append(attrs, slog.String("limitExceeded", d.limitedBy))
	}
	if d.reason == ReasonThrottled || d.reason == ReasonQuotaExceeded {
		attrs = append(attrs, slog.Float64("retryAfter", seconds(d.res.RetryAfter)))
	}
	attrs = append(attrs,
		slog.Int("ddbCalls", stats.calls),
		slog.Float64("ddbMs", ms(stats.dur)),
		slog.Float64("latencyMs", ms(latency)),
	)
	level := slog.LevelInfo
	if d.err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", d.err.Error()), slog.Bool("failOpen", d.failedOpen))
	}
	a.log.LogAttrs(ctx, level, "decision", attrs...)
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
