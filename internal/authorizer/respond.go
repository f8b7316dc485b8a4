package authorizer

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/decisionlog"
	"github.com/tollgate-dev/tollgate/internal/meter"
	"github.com/tollgate-dev/tollgate/ratelimit"
)

// fields are an allow's context: who called and where the caller stands,
// under the keys package ratelimit defines. They never hold the key's
// value. Every key is always present, with an empty value when it does not
// apply, so that a parameter mapping always overwrites its header: limits
// that do not apply read 0 (rate and burst, as in API Gateway) or -1
// (remaining counts), and strings read "".
type fields struct {
	keyID, planID, customerID string
	rate                      float64
	burst                     int
	tokens                    int64
	nextToken                 float64
	quotaLimit, quotaLeft     int64
	period, resetAt           string
	limitedBy                 string
	retryAfter                float64
	failOpen, shadow          bool
	authMethod                string // "key" or "jwt"
	identity, scopes          string
	claims                    []string // JWT_CONTEXT_CLAIMS' values, or nil for all ""
}

func (d *decision) fields() fields {
	f := fields{planID: d.planID, tokens: -1, quotaLimit: -1, quotaLeft: -1, limitedBy: d.limitedBy, failOpen: d.failedOpen, shadow: d.shadow}
	if d.key != nil {
		f.keyID, f.customerID = d.key.ID, d.key.CustomerID
	}
	f.authMethod = "key"
	if t := d.token; t != nil {
		f.authMethod, f.identity, f.scopes, f.claims = "jwt", t.Identity, t.Scopes, t.Claims
	}
	if d.failedOpen {
		return f
	}
	l := d.limits
	if l.bucket != nil {
		f.rate, f.burst = l.rate, l.burst
		f.tokens, f.nextToken = max(d.res.TokensRemaining, 0), seconds(d.res.NextToken)
	}
	if q := l.quota; q != nil {
		f.quotaLimit, f.quotaLeft = q.Limit, max(q.Limit-d.res.Used, 0)
		f.period = l.period
		f.resetAt = l.resetAt
	}
	if d.limitedBy != "" {
		f.retryAfter = seconds(d.res.RetryAfter)
	}
	return f
}

// response is the simple response API Gateway expects. claimKeys are the
// context keys of JWT_CONTEXT_CLAIMS, set on every allow like every key.
func (d *decision) response(claimKeys []string) events.APIGatewayV2CustomAuthorizerSimpleResponse {
	if !d.allow {
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false}
	}
	f := d.fields()
	ctx := map[string]any{
		ratelimit.KeyAPIKeyID: f.keyID, ratelimit.KeyUsagePlanID: f.planID, ratelimit.KeyCustomerID: f.customerID,
		ratelimit.KeyRateLimit: f.rate, ratelimit.KeyBurstLimit: f.burst, ratelimit.KeyTokensRemaining: f.tokens, ratelimit.KeyNextTokenIn: f.nextToken,
		ratelimit.KeyQuotaLimit: f.quotaLimit, ratelimit.KeyQuotaRemaining: f.quotaLeft, ratelimit.KeyQuotaPeriod: f.period, ratelimit.KeyQuotaResetAt: f.resetAt,
		ratelimit.KeyLimitExceeded: f.limitedBy, ratelimit.KeyRetryAfter: f.retryAfter, ratelimit.KeyFailOpen: f.failOpen,
		ratelimit.KeyAuthMethod: f.authMethod, ratelimit.KeyIdentity: f.identity, ratelimit.KeyScopes: f.scopes,
		ratelimit.KeyShadow: f.shadow,
	}
	for i, k := range claimKeys {
		ctx[k] = f.claim(i)
	}
	return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: ctx}
}

func (f *fields) claim(i int) string {
	if i < len(f.claims) {
		return f.claims[i]
	}
	return ""
}

// appendResponse appends the response as JSON, as json.Marshal would write
// response() but without building the map: this is every decision's path.
func (d *decision) appendResponse(b []byte, claimKeys []string) []byte {
	if !d.allow {
		return append(b, `{"isAuthorized":false}`...)
	}
	f := d.fields()
	b = append(b, `{"isAuthorized":true,"context":{`...)
	b = appendString(b, ratelimit.KeyAPIKeyID, f.keyID, false)
	b = appendString(b, ratelimit.KeyUsagePlanID, f.planID, true)
	b = appendString(b, ratelimit.KeyCustomerID, f.customerID, true)
	b = appendFloat(b, ratelimit.KeyRateLimit, f.rate)
	b = appendInt(b, ratelimit.KeyBurstLimit, int64(f.burst))
	b = appendInt(b, ratelimit.KeyTokensRemaining, f.tokens)
	b = appendFloat(b, ratelimit.KeyNextTokenIn, f.nextToken)
	b = appendInt(b, ratelimit.KeyQuotaLimit, f.quotaLimit)
	b = appendInt(b, ratelimit.KeyQuotaRemaining, f.quotaLeft)
	b = appendString(b, ratelimit.KeyQuotaPeriod, f.period, true)
	b = appendString(b, ratelimit.KeyQuotaResetAt, f.resetAt, true)
	b = appendString(b, ratelimit.KeyLimitExceeded, f.limitedBy, true)
	b = appendFloat(b, ratelimit.KeyRetryAfter, f.retryAfter)
	b = append(b, `,"`+ratelimit.KeyFailOpen+`":`...)
	b = strconv.AppendBool(b, f.failOpen)
	b = append(b, `,"`+ratelimit.KeyShadow+`":`...)
	b = strconv.AppendBool(b, f.shadow)
	b = appendString(b, ratelimit.KeyAuthMethod, f.authMethod, true)
	b = appendString(b, ratelimit.KeyIdentity, f.identity, true)
	b = appendString(b, ratelimit.KeyScopes, f.scopes, true)
	for i, k := range claimKeys {
		b = appendString(b, k, f.claim(i), true)
	}
	return append(b, "}}"...)
}

func appendKey(b []byte, key string, comma bool) []byte {
	if comma {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendInt(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(appendKey(b, key, true), v, 10)
}

// appendFloat writes v as encoding/json does for the values a context
// holds: rates and seconds, finite and between 1e-6 and 1e21 or 0.
func appendFloat(b []byte, key string, v float64) []byte {
	b = appendKey(b, key, true)
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) || math.IsNaN(v) || math.IsInf(v, 0) {
		out, _ := json.Marshal(v)
		return append(b, out...)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendString writes a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced, as encoding/json does.
func appendString(b []byte, key, s string, comma bool) []byte {
	b = appendKey(b, key, comma)
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			b = append(b, `\u00`...)
			b = append(b, hex[c>>4], hex[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				b = append(b, `\ufffd`...)
			case r == '\u2028' || r == '\u2029':
				b = append(b, `\u202`...)
				b = append(b, hex[r&0xf])
			default:
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(b, '"')
}

const hex = "0123456789abcdef"

// seconds rounds up to the millisecond, so a client that waits that long is
// never early.
func seconds(d time.Duration) float64 {
	return math.Ceil(float64(d)/float64(time.Millisecond)) / 1000
}

// logDecision hands the decision to the decision log, which counts it in
// the interval's metrics (CloudWatch EMF: Decisions, Throttled and
// QuotaExceeded, and ShadowThrottled and ShadowQuotaExceeded for what a
// plan in shadow let through, by outcome and reason and by usage plan, and
// DynamoDB calls and latencies) and writes a line for it only when it is
// worth one. Lines never hold the key's value.
func (a *Authorizer) logDecision(ctx context.Context, at time.Time, r *request, d *decision, stats *callStats, latency time.Duration) {
	rec := decisionlog.Decision{
		At: at, Kind: decisionKind(d), Allow: d.allow, Reason: d.reason, PlanID: d.planID,
		APIID: r.apiID, Stage: r.stage, RouteKey: r.routeKey, RequestID: r.requestID,
		DynamoDBCalls: stats.calls, DynamoDBLatency: stats.dur, Latency: latency, Shadow: d.shadow,
	}
	if d.key != nil {
		rec.KeyID = d.key.ID
	}
	var counts [2]decisionlog.Count
	switch d.reason {
	case ReasonThrottled:
		counts[0] = decisionlog.Count{Name: pick(d.shadow, MetricShadowThrottled, MetricThrottled), N: 1}
		rec.Counts = counts[:1]
	case ReasonQuotaExceeded:
		counts[0] = decisionlog.Count{Name: pick(d.shadow, MetricShadowQuotaExceeded, MetricQuotaExceeded), N: 1}
		rec.Counts = counts[:1]
	}
	if l := d.late; l != (meter.LateWrites{}) {
		// The rare decisions that remembered or settled lost meter writes.
		for _, c := range [...]decisionlog.Count{{Name: MetricLateWritesPending, N: int64(l.Pending)}, {Name: MetricLateWritesRefunded, N: int64(l.Refunded)},
			{Name: MetricLateWritesFenced, N: int64(l.Fenced)}, {Name: MetricLateWritesUnreconciled, N: int64(l.Unreconciled)}} {
			if c.N > 0 {
				rec.Counts = append(rec.Counts, c)
			}
		}
	}
	if a.cfg.LogAllDecisions || rec.Kind != decisionlog.Counted {
		if a.tokens != nil {
			method := "key"
			if d.token != nil {
				method = "jwt"
			}
			rec.Attrs = append(rec.Attrs, slog.String("authMethod", method))
			if d.detail != "" {
				rec.Attrs = append(rec.Attrs, slog.String("detail", d.detail))
			}
		}
		if d.limitedBy != "" {
			rec.Attrs = append(rec.Attrs, slog.String("limitExceeded", d.limitedBy))
		}
		if d.reason == ReasonThrottled || d.reason == ReasonQuotaExceeded {
			rec.Attrs = append(rec.Attrs, slog.Float64("retryAfter", seconds(d.res.RetryAfter)))
		}
		if d.err != nil {
			rec.Level = slog.LevelError
			rec.Attrs = append(rec.Attrs, slog.String("error", d.err.Error()), slog.Bool("failOpen", d.failedOpen))
		}
	}
	a.dlog.Record(ctx, &rec)
}

func newDecisionLog(cfg Config, log *slog.Logger) *decisionlog.Logger {
	return decisionlog.New(decisionlog.Config{
		Namespace: cfg.MetricsNamespace,
		Interval:  cfg.MetricsInterval,
		All:       cfg.LogAllDecisions,
		Counts: []string{MetricThrottled, MetricQuotaExceeded, MetricShadowThrottled, MetricShadowQuotaExceeded,
			MetricLateWritesPending, MetricLateWritesRefunded, MetricLateWritesFenced, MetricLateWritesUnreconciled},
		// For the LateWritesUnreconciled alarm, whatever the decisions' reasons and plans.
		Totals: []string{MetricLateWritesUnreconciled},
	}, log)
}

// Flush writes the metrics counted so far. The function calls it when
// Lambda shuts the instance down.
func (a *Authorizer) Flush(ctx context.Context) { a.dlog.Flush(ctx) }

// The counts beside Decisions, by outcome and reason and by usage plan.
// Throttled and QuotaExceeded count what an enforced limit refused (or,
// with ON_LIMIT=pass, passed on to be refused); the Shadow ones what a
// plan in shadow let through. The LateWrites counts are what became of
// meter writes whose answer was lost (see package meter): remembered for
// reconciling, refunded, fenced, or given up on (each of which may have
// counted a denied request); the last also without dimensions, for its
// alarm.
const (
	MetricThrottled              = "Throttled"
	MetricQuotaExceeded          = "QuotaExceeded"
	MetricShadowThrottled        = "ShadowThrottled"
	MetricShadowQuotaExceeded    = "ShadowQuotaExceeded"
	MetricLateWritesPending      = "LateWritesPending"
	MetricLateWritesRefunded     = "LateWritesRefunded"
	MetricLateWritesFenced       = "LateWritesFenced"
	MetricLateWritesUnreconciled = "LateWritesUnreconciled"
)

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}

// decisionKind says how a decision is logged: allows under the limits are
// only counted; denials that floods repeat (limits, missing, malformed or
// unknown keys, tokens that fail verification) get a line per key and
// reason per interval; denials that point at a configuration (a disabled
// key, no plan, a verified token whose identity has no key or not this
// one) get a line at once as well; errors get a line each.
func decisionKind(d *decision) decisionlog.Kind {
	switch d.reason {
	case ReasonOK:
		return decisionlog.Counted
	case ReasonError:
		return decisionlog.Alone
	case ReasonDisabledKey, ReasonNoPlan, ReasonUnknownIdentity, ReasonIdentityMismatch:
		return decisionlog.Unusual
	default:
		return decisionlog.Repeated
	}
}
