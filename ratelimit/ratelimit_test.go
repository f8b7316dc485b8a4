package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func TestHeaders(t *testing.T) {
	tests := []struct {
		name         string
		d            Decision
		policy, rate string
		legacy       [3]string // limit, remaining, reset
	}{
		{
			name:   "throttle only",
			d:      Decision{APIKeyID: "k", RateLimit: 10, BurstLimit: 20, TokensRemaining: 19, NextTokenIn: 100 * time.Millisecond, QuotaLimit: -1},
			policy: `"throttle";q=20;w=2`, rate: `"throttle";r=19;t=1`,
			legacy: [3]string{"20", "19", "1795262401"},
		},
		{
			name:   "fractional rate: a token every 2 s, so w is 2 s for a bucket of 1",
			d:      Decision{APIKeyID: "k", RateLimit: 0.5, BurstLimit: 1, TokensRemaining: 0, NextTokenIn: 1250 * time.Millisecond, QuotaLimit: -1},
			policy: `"throttle";q=1;w=2`, rate: `"throttle";r=0;t=2`,
			legacy: [3]string{"1", "0", "1795262402"},
		},
		{
			name:   "a rate above the burst refills within a second",
			d:      Decision{APIKeyID: "k", RateLimit: 3, BurstLimit: 1, TokensRemaining: 0, NextTokenIn: 333 * time.Millisecond, QuotaLimit: -1},
			policy: `"throttle";q=1;w=1`, rate: `"throttle";r=0;t=1`,
		},
		{
			name: "quota only: t counts to the reset, rounded up",
			d: Decision{APIKeyID: "k", TokensRemaining: -1, QuotaLimit: 5000, QuotaRemaining: 4999, QuotaPeriod: "DAY",
				QuotaResetAt: now.Add(12*time.Hour + 500*time.Millisecond)},
			policy: `"quota";q=5000;w=86400`, rate: `"quota";r=4999;t=43201`,
			legacy: [3]string{"5000", "4999", "1795305601"},
		},
		{
			name: "a month's window is that month's length",
			d: Decision{APIKeyID: "k", TokensRemaining: -1, QuotaLimit: 10, QuotaRemaining: 3, QuotaPeriod: "MONTH",
				QuotaResetAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
			policy: `"quota";q=10;w=2592000`, rate: `"quota";r=3;t=820800`,
		},
		{
			name: "both, the legacy trio follows the tighter",
			d: Decision{APIKeyID: "k", RateLimit: 100, BurstLimit: 50, TokensRemaining: 49, NextTokenIn: 10 * time.Millisecond,
				QuotaLimit: 1000, QuotaRemaining: 3, QuotaPeriod: "WEEK", QuotaResetAt: now.Add(time.Hour)},
			policy: `"throttle";q=50;w=1, "quota";q=1000;w=604800`, rate: `"throttle";r=49;t=1, "quota";r=3;t=3600`,
			legacy: [3]string{"1000", "3", "1795266000"},
		},
		{
			name:   "throttled: nothing left until the retry",
			d:      Decision{APIKeyID: "k", RateLimit: 1, BurstLimit: 2, TokensRemaining: 0, LimitExceeded: Throttle, RetryAfter: 1500 * time.Millisecond, NextTokenIn: 1500 * time.Millisecond, QuotaLimit: -1},
			policy: `"throttle";q=2;w=2`, rate: `"throttle";r=0;t=2`,
		},
		{
			name: "over quota",
			d: Decision{APIKeyID: "k", TokensRemaining: -1, QuotaLimit: 5, QuotaRemaining: 0, QuotaPeriod: "DAY",
				QuotaResetAt: now.Add(time.Minute), LimitExceeded: Quota, RetryAfter: time.Minute},
			policy: `"quota";q=5;w=86400`, rate: `"quota";r=0;t=60`,
		},
		{name: "no limits", d: Decision{APIKeyID: "k", TokensRemaining: -1, QuotaLimit: -1}},
		{name: "failed open", d: Decision{FailOpen: true, RateLimit: 1, BurstLimit: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.d.Headers(now, true)
			one := func(name string) string {
				if vs := h[name]; len(vs) > 0 {
					return vs[0]
				}
				return ""
			}
			if got := one(HeaderRateLimitPolicy); got != tt.policy {
				t.Errorf("RateLimit-Policy = %q, want %q", got, tt.policy)
			}
			if got := one(HeaderRateLimit); got != tt.rate {
				t.Errorf("RateLimit = %q, want %q", got, tt.rate)
			}
			if tt.legacy[0] != "" {
				got := [3]string{one(HeaderLegacyLimit), one(HeaderLegacyRemaining), one(HeaderLegacyReset)}
				if got != tt.legacy {
					t.Errorf("X-RateLimit-* = %v, want %v", got, tt.legacy)
				}
			}
			if without := tt.d.Headers(now, false); len(without[HeaderLegacyLimit]) != 0 {
				t.Error("legacy headers without asking for them")
			}
		})
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	for in, want := range map[time.Duration]int64{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 43200 * time.Second: 43200} {
		if got := (Decision{RetryAfter: in}).RetryAfterSeconds(); got != want {
			t.Errorf("RetryAfterSeconds(%s) = %d, want %d", in, got, want)
		}
	}
}

// lambdaContext is the authorizer's context as a Lambda integration gets it:
// JSON numbers are float64.
func lambdaContext(over map[string]any) map[string]any {
	c := map[string]any{
		"apiKeyId": "key1", "usagePlanId": "plan1", "customerId": "",
		"rateLimit": 1.0, "burstLimit": 2.0, "tokensRemaining": 1.0, "nextTokenIn": 0.4,
		"quotaLimit": 5.0, "quotaRemaining": 4.0, "quotaPeriod": "DAY", "quotaResetAt": "2026-11-22T00:00:00Z",
		"limitExceeded": "", "retryAfter": 0.0, "failOpen": false, "shadow": false,
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestParse(t *testing.T) {
	d, err := FromLambda(lambdaContext(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Decision{APIKeyID: "key1", UsagePlanID: "plan1", RateLimit: 1, BurstLimit: 2, TokensRemaining: 1, NextTokenIn: 400 * time.Millisecond,
		QuotaLimit: 5, QuotaRemaining: 4, QuotaPeriod: "DAY", QuotaResetAt: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("FromLambda = %+v\nwant %+v", d, want)
	}
	// Strings for numbers, as a header mapping delivers them.
	s, err := FromLambda(lambdaContext(map[string]any{"rateLimit": "1", "burstLimit": "2", "tokensRemaining": "1", "nextTokenIn": "0.4",
		"quotaLimit": "5", "quotaRemaining": "4", "retryAfter": "0", "failOpen": "false", "shadow": "false"}))
	if err != nil || !reflect.DeepEqual(s, want) {
		t.Fatalf("FromLambda with strings = %+v, %v", s, err)
	}
	// Absent limits mean none.
	bare, err := FromLambda(map[string]any{"apiKeyId": "k"})
	if err != nil || bare.TokensRemaining != -1 || bare.QuotaLimit != -1 || bare.RateLimit != 0 {
		t.Fatalf("bare = %+v, %v", bare, err)
	}
	garbled := []struct {
		ctx  map[string]any
		want string
	}{
		{lambdaContext(map[string]any{"rateLimit": "fast"}), "rateLimit"},
		{lambdaContext(map[string]any{"quotaResetAt": "tomorrow"}), "quotaResetAt"},
		{lambdaContext(map[string]any{"limitExceeded": "both"}), "limitExceeded"},
		{lambdaContext(map[string]any{"failOpen": "perhaps"}), "failOpen"},
		{lambdaContext(map[string]any{"shadow": "maybe"}), "shadow"},
	}
	for _, g := range garbled {
		if _, err := FromLambda(g.ctx); err == nil || !strings.Contains(err.Error(), g.want) {
			t.Errorf("garbled %s: %v", g.want, err)
		}
	}
	for _, missing := range []map[string]any{nil, {}, lambdaContext(map[string]any{"apiKeyId": nil})} {
		if _, err := FromLambda(missing); !errors.Is(err, ErrNoDecision) {
			t.Errorf("FromLambda(%v) = %v, want ErrNoDecision", missing, err)
		}
	}
	if d, err := FromLambda(map[string]any{"failOpen": true}); err != nil || !d.FailOpen {
		t.Errorf("a failed-open context: %+v, %v", d, err)
	}
}

func TestFromHeaders(t *testing.T) {
	h := http.Header{}
	for key, v := range map[string]string{
		KeyAPIKeyID: "key1", KeyUsagePlanID: "plan1", KeyCustomerID: "", KeyRateLimit: "1", KeyBurstLimit: "2",
		KeyTokensRemaining: "1", KeyNextTokenIn: "0.4", KeyQuotaLimit: "5", KeyQuotaRemaining: "4", KeyQuotaPeriod: "DAY",
		KeyQuotaResetAt: "2026-11-22T00:00:00Z", KeyLimitExceeded: "quota", KeyRetryAfter: "0", KeyFailOpen: "false", KeyShadow: "true",
	} {
		for _, f := range Fields {
			if f.Key == key {
				h.Set(f.Header, v)
			}
		}
	}
	d, err := FromHeaders(h)
	if err != nil || d.APIKeyID != "key1" || d.QuotaRemaining != 4 || d.NextTokenIn != 400*time.Millisecond || !d.Shadow || d.Refused() {
		t.Fatalf("FromHeaders = %+v, %v", d, err)
	}
	if _, err := FromHeaders(http.Header{}); !errors.Is(err, ErrNoDecision) {
		t.Fatalf("no headers: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range Fields {
		if seen[f.Header] || !strings.HasPrefix(f.Header, "X-Tollgate-") {
			t.Errorf("header %q repeated or outside X-Tollgate-", f.Header)
		}
		seen[f.Header] = true
	}
	if len(Fields) != 18 {
		t.Errorf("%d fields: the authorizer and the mappings must agree on every one", len(Fields))
	}
}

func request(ctx map[string]any) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{RequestContext: events.APIGatewayV2HTTPRequestContext{
		Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: ctx},
	}}
}

func TestWrap(t *testing.T) {
	called := 0
	handler := func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		called++
		d, ok := FromContext(ctx)
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: d.APIKeyID + map[bool]string{true: "", false: "none"}[ok],
			Headers: map[string]string{"RateLimit": "mine"}}, nil
	}
	var reported []error
	h := Wrap(handler, WithClock(func() time.Time { return now }), WithLegacyHeaders(), OnError(func(err error) { reported = append(reported, err) }))

	resp, _ := h(context.Background(), request(lambdaContext(nil)))
	if called != 1 || resp.StatusCode != 200 || resp.Body != "key1" {
		t.Fatalf("allowed request: %+v", resp)
	}
	if resp.Headers["RateLimit"] != "mine" || resp.Headers["RateLimit-Policy"] != `"throttle";q=2;w=2, "quota";q=5;w=86400` || resp.Headers["X-RateLimit-Remaining"] != "1" {
		t.Fatalf("allowed request's headers: %v", resp.Headers)
	}

	resp, _ = h(context.Background(), request(lambdaContext(map[string]any{"limitExceeded": "throttle", "retryAfter": 0.25, "tokensRemaining": 0.0})))
	if called != 1 || resp.StatusCode != 429 || resp.Body != `{"message":"Too Many Requests"}` || resp.Headers["Retry-After"] != "1" {
		t.Fatalf("throttled request: called=%d %+v", called, resp)
	}
	if resp.Headers["RateLimit"] != `"throttle";r=0;t=1, "quota";r=4;t=43200` {
		t.Fatalf("throttled request's RateLimit: %q", resp.Headers["RateLimit"])
	}
	resp, _ = h(context.Background(), request(lambdaContext(map[string]any{"limitExceeded": "quota", "retryAfter": 43200.0, "quotaRemaining": 0.0})))
	if called != 1 || resp.StatusCode != 429 || resp.Body != `{"message":"Limit Exceeded"}` || resp.Headers["Retry-After"] != "43200" {
		t.Fatalf("over-quota request: %+v", resp)
	}

	// In shadow, over a limit is no 429: the handler answers, with the
	// headers, and sees the decision.
	resp, _ = h(context.Background(), request(lambdaContext(map[string]any{"limitExceeded": "quota", "retryAfter": 43200.0, "quotaRemaining": 0.0, "shadow": true})))
	if called != 2 || resp.StatusCode != 200 || resp.Headers["Retry-After"] != "" || resp.Headers["RateLimit-Policy"] == "" {
		t.Fatalf("shadow request: called=%d %+v", called, resp)
	}

	// Garbled or missing context reaches the handler untouched.
	for _, req := range []events.APIGatewayV2HTTPRequest{request(lambdaContext(map[string]any{"rateLimit": "fast"})), request(nil), {}} {
		resp, err := h(context.Background(), req)
		if err != nil || resp.StatusCode != 200 || resp.Body != "none" || resp.Headers["RateLimit-Policy"] != "" {
			t.Fatalf("garbled context: %+v, %v", resp, err)
		}
	}
	if called != 5 || len(reported) != 3 {
		t.Fatalf("handler called %d times, %d errors reported", called, len(reported))
	}
	resp, _ = h(context.Background(), request(map[string]any{"failOpen": true}))
	if resp.StatusCode != 200 || resp.Headers["RateLimit-Policy"] != "" {
		t.Fatalf("failed-open request: %+v", resp)
	}
}

func TestMiddleware(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := FromContext(r.Context())
		w.Write([]byte("hello " + d.APIKeyID))
	})
	h := Middleware(next, WithClock(func() time.Time { return now }))
	req := func(extra map[string]string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Tollgate-Api-Key-Id", "key1")
		r.Header.Set("X-Tollgate-Quota-Limit", "5")
		r.Header.Set("X-Tollgate-Quota-Remaining", "2")
		r.Header.Set("X-Tollgate-Quota-Period", "DAY")
		r.Header.Set("X-Tollgate-Quota-Reset-At", "2026-11-22T00:00:00Z")
		for k, v := range extra {
			r.Header.Set(k, v)
		}
		return r
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req(nil))
	if w.Code != 200 || w.Body.String() != "hello key1" || w.Header()["RateLimit"][0] != `"quota";r=2;t=43200` {
		t.Fatalf("allowed: %d %q %v", w.Code, w.Body, w.Header())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req(map[string]string{"X-Tollgate-Limit-Exceeded": "quota", "X-Tollgate-Retry-After": "43199.5"}))
	if w.Code != 429 || w.Body.String() != `{"message":"Limit Exceeded"}` || w.Header().Get("Retry-After") != "43200" {
		t.Fatalf("over quota: %d %q %v", w.Code, w.Body, w.Header())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req(map[string]string{"X-Tollgate-Limit-Exceeded": "quota", "X-Tollgate-Retry-After": "43199.5", "X-Tollgate-Shadow": "true"}))
	if w.Code != 200 || w.Body.String() != "hello key1" || w.Header().Get("Retry-After") != "" || w.Header()["RateLimit"][0] != `"quota";r=0;t=43200` {
		t.Fatalf("over quota in shadow: %d %q %v", w.Code, w.Body, w.Header())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 200 || w.Body.String() != "hello " || len(w.Header()["RateLimit"]) != 0 {
		t.Fatalf("no context: %d %q", w.Code, w.Body)
	}
}

func TestCallerFields(t *testing.T) {
	d, err := FromLambda(lambdaContext(map[string]any{"authMethod": "jwt", "identity": "auth0|5f7c", "scopes": "items:read items:write",
		"claim_tenant": "acme", "claim_custom_tier": "gold"}))
	if err != nil {
		t.Fatal(err)
	}
	if d.AuthMethod != "jwt" || d.Identity != "auth0|5f7c" || !reflect.DeepEqual(d.Scopes, []string{"items:read", "items:write"}) {
		t.Fatalf("FromLambda = %+v", d)
	}
	if d.Claim("tenant") != "acme" || d.Claim("custom:tier") != "gold" || d.Claim("absent") != "" {
		t.Fatalf("claims = %v", d.Claims)
	}
	// Through a header mapping, as the construct's DecisionHeaders maps them.
	h := http.Header{}
	for _, f := range Fields {
		if v, ok := lambdaContext(map[string]any{"authMethod": "jwt", "identity": "alice", "scopes": "a"})[f.Key]; ok {
			h.Set(f.Header, fmt.Sprint(v))
		}
	}
	h.Set(ClaimHeader("custom:tier"), "gold")
	h.Set(ClaimHeader("tenantId"), "acme")
	d, err = FromHeaders(h)
	if err != nil || d.Identity != "alice" || d.Claim("custom:tier") != "gold" || d.Claim("tenantId") != "acme" {
		t.Fatalf("FromHeaders = %+v, %v", d, err)
	}
	if got := ClaimHeader("custom:tier"); got != "X-Tollgate-Claim-custom-tier" {
		t.Errorf("ClaimHeader = %q", got)
	}
	if _, err := FromLambda(lambdaContext(map[string]any{"authMethod": "basic"})); err == nil {
		t.Error("an unknown authMethod was accepted")
	}
}
