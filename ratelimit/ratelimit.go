// Package ratelimit gives a backend behind Tollgate's authorizer real 429
// responses and rate-limit headers.
//
// An HTTP API authorizer can only allow or deny (403). With ON_LIMIT=pass,
// Tollgate's authorizer allows requests over a limit and says so in its
// context; this package reads that context and answers them 429 with
// Retry-After and a body shaped like API Gateway's, without calling the
// backend's handler. Every other response gains headers that tell the client
// where it stands:
//
//	RateLimit-Policy: "throttle";q=20;w=2, "quota";q=5000;w=86400
//	RateLimit: "throttle";r=19;t=1, "quota";r=4999;t=43200
//
// These are the fields of the IETF HTTPAPI draft "RateLimit header fields
// for HTTP", revision 11 (draft-ietf-httpapi-ratelimit-headers-11). With
// WithLegacyHeaders, the widely used X-RateLimit-Limit, -Remaining and
// -Reset are added too.
//
// A plan in shadow (its tag tollgate:enforce, or the authorizer's
// ENFORCE=shadow) marks requests over a limit with Shadow as well: they
// never become 429s here. They reach the handler, with the headers.
//
// Lambda backends wrap their handler with Wrap; net/http backends behind an
// HTTP proxy integration use Middleware, with the authorizer's context
// mapped to request headers (Fields lists them; Tollgate's CDK construct
// adds that mapping).
package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Context keys the authorizer sets on every request it allows.
const (
	KeyAPIKeyID        = "apiKeyId"
	KeyUsagePlanID     = "usagePlanId"
	KeyCustomerID      = "customerId"
	KeyRateLimit       = "rateLimit"
	KeyBurstLimit      = "burstLimit"
	KeyTokensRemaining = "tokensRemaining"
	KeyNextTokenIn     = "nextTokenIn"
	KeyQuotaLimit      = "quotaLimit"
	KeyQuotaRemaining  = "quotaRemaining"
	KeyQuotaPeriod     = "quotaPeriod"
	KeyQuotaResetAt    = "quotaResetAt"
	KeyLimitExceeded   = "limitExceeded"
	KeyRetryAfter      = "retryAfter"
	KeyFailOpen        = "failOpen"
	KeyShadow          = "shadow"

	// Who called, when the authorizer validates JWTs (AUTH_MODE).
	KeyAuthMethod = "authMethod" // "key" or "jwt"
	KeyIdentity   = "identity"   // the token's identity claim, or ""
	KeyScopes     = "scopes"     // the token's scopes, space-separated
)

// ClaimPrefix starts the context key of each claim the authorizer copies
// from the token (JWT_CONTEXT_CLAIMS); ClaimKey names it.
const ClaimPrefix = "claim_"

// ClaimHeaderPrefix starts the request header that carries a claim;
// ClaimHeader names it.
const ClaimHeaderPrefix = "X-Tollgate-Claim-"

// ClaimKey is the context key that carries a claim: claim_ and the claim's
// name, with every character other than a letter, digit or underscore
// replaced by an underscore (custom:tenant → claim_custom_tenant), so that
// parameter mappings can name it.
func ClaimKey(claim string) string {
	var b strings.Builder
	b.WriteString(ClaimPrefix)
	for _, r := range claim {
		if r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// ClaimHeader is the request header that carries a claim's context key:
// X-Tollgate-Claim- and the claim's name as ClaimKey writes it, with
// hyphens for underscores (claim_custom_tenant → X-Tollgate-Claim-custom-tenant).
func ClaimHeader(claim string) string {
	return ClaimHeaderPrefix + strings.ReplaceAll(strings.TrimPrefix(ClaimKey(claim), ClaimPrefix), "_", "-")
}

// Field is one context key and the request header an HTTP integration's
// parameter mapping carries it in.
type Field struct {
	Key    string
	Header string
}

// Fields are every context key with its header. The authorizer sets all of
// them on every allow, so a mapping that overwrites these headers always
// replaces whatever a client sent.
var Fields = []Field{
	{KeyAPIKeyID, "X-Tollgate-Api-Key-Id"},
	{KeyUsagePlanID, "X-Tollgate-Usage-Plan-Id"},
	{KeyCustomerID, "X-Tollgate-Customer-Id"},
	{KeyRateLimit, "X-Tollgate-Rate-Limit"},
	{KeyBurstLimit, "X-Tollgate-Burst-Limit"},
	{KeyTokensRemaining, "X-Tollgate-Tokens-Remaining"},
	{KeyNextTokenIn, "X-Tollgate-Next-Token-In"},
	{KeyQuotaLimit, "X-Tollgate-Quota-Limit"},
	{KeyQuotaRemaining, "X-Tollgate-Quota-Remaining"},
	{KeyQuotaPeriod, "X-Tollgate-Quota-Period"},
	{KeyQuotaResetAt, "X-Tollgate-Quota-Reset-At"},
	{KeyLimitExceeded, "X-Tollgate-Limit-Exceeded"},
	{KeyRetryAfter, "X-Tollgate-Retry-After"},
	{KeyFailOpen, "X-Tollgate-Fail-Open"},
	{KeyShadow, "X-Tollgate-Shadow"},
	{KeyAuthMethod, "X-Tollgate-Auth-Method"},
	{KeyIdentity, "X-Tollgate-Identity"},
	{KeyScopes, "X-Tollgate-Scopes"},
}

// Limits a request can exceed, as LimitExceeded names them.
const (
	Throttle = "throttle"
	Quota    = "quota"
)

// Decision is the authorizer's decision on an allowed request.
type Decision struct {
	APIKeyID    string
	UsagePlanID string
	CustomerID  string

	// The token bucket. RateLimit 0 means there is none; TokensRemaining
	// is then -1.
	RateLimit       float64
	BurstLimit      int64
	TokensRemaining int64
	NextTokenIn     time.Duration

	// The quota. QuotaLimit -1 means there is none.
	QuotaLimit     int64
	QuotaRemaining int64
	QuotaPeriod    string // DAY, WEEK or MONTH
	QuotaResetAt   time.Time

	// LimitExceeded is Throttle or Quota when the authorizer let an
	// over-limit request through (ON_LIMIT=pass), and RetryAfter says when
	// a retry could succeed.
	LimitExceeded string
	RetryAfter    time.Duration

	// FailOpen is true when the authorizer allowed the request because it
	// could not reach DynamoDB; nothing else is then known.
	FailOpen bool

	// AuthMethod is "jwt" when the caller presented a valid token, "key"
	// when an API key alone identified it ("" from an authorizer older
	// than JWT support). Identity is the token's identity claim, Scopes
	// its scopes, and Claims the claims copied into the context
	// (JWT_CONTEXT_CLAIMS), by their name as ClaimKey writes it without
	// its prefix; read one with Claim.
	AuthMethod string
	Identity   string
	Scopes     []string
	Claims     map[string]string

	// Shadow is true when the request is over a limit (LimitExceeded) of a
	// plan whose limits are watched, not enforced: it must not be refused.
	Shadow bool
}

// Claim returns a claim the authorizer copied into the context, by the
// claim's name ("tenant", "custom:tenant"), or "". Names are matched as
// header names are, without regard to case, since mapped headers lose it.
func (d Decision) Claim(name string) string {
	want := strings.TrimPrefix(ClaimKey(name), ClaimPrefix)
	if v, ok := d.Claims[want]; ok {
		return v
	}
	for k, v := range d.Claims {
		if strings.EqualFold(k, want) {
			return v
		}
	}
	return ""
}

// Refused reports whether the request is to be answered 429: it is over a
// limit, and its plan enforces its limits rather than run in shadow.
func (d Decision) Refused() bool { return d.LimitExceeded != "" && !d.Shadow }

// ErrNoDecision means the request carries no decision of Tollgate's: the
// route has no Tollgate authorizer, or the parameter mapping is missing.
var ErrNoDecision = errors.New("ratelimit: the request carries no Tollgate authorizer context")

// FromLambda reads a decision from requestContext.authorizer.lambda of a
// payload 2.0 event. Numbers may arrive as JSON numbers or strings.
func FromLambda(ctx map[string]any) (Decision, error) {
	d, err := parse(func(key string) (string, bool) {
		v, ok := ctx[key]
		if !ok || v == nil {
			return "", false
		}
		switch v := v.(type) {
		case string:
			return v, true
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64), true
		case json.Number:
			return v.String(), true
		case bool:
			return strconv.FormatBool(v), true
		case int, int64:
			return fmt.Sprint(v), true
		}
		return fmt.Sprint(v), true
	})
	for k, v := range ctx {
		if name, ok := strings.CutPrefix(k, ClaimPrefix); ok && name != "" && d.APIKeyID != "" {
			if d.Claims == nil {
				d.Claims = map[string]string{}
			}
			d.Claims[name] = fmt.Sprint(v)
		}
	}
	return d, err
}

// FromHeaders reads a decision from the headers Fields names.
func FromHeaders(h http.Header) (Decision, error) {
	index := make(map[string]string, len(Fields))
	for _, f := range Fields {
		index[f.Key] = f.Header
	}
	d, err := parse(func(key string) (string, bool) {
		vs, ok := h[http.CanonicalHeaderKey(index[key])]
		if !ok || len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	})
	for name, vs := range h {
		claim, ok := strings.CutPrefix(http.CanonicalHeaderKey(name), ClaimHeaderPrefix)
		if ok && claim != "" && len(vs) > 0 && d.APIKeyID != "" {
			if d.Claims == nil {
				d.Claims = map[string]string{}
			}
			d.Claims[strings.ReplaceAll(strings.ToLower(claim), "-", "_")] = vs[0]
		}
	}
	return d, err
}

// parse reads every field through get. A decision must name its key, unless
// it failed open; anything present must be well formed.
func parse(get func(string) (string, bool)) (Decision, error) {
	var d Decision
	var errs []error
	str := func(key string) string { v, _ := get(key); return v }
	num := func(key string, def float64) float64 {
		v, ok := get(key)
		if !ok || v == "" {
			return def
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			errs = append(errs, fmt.Errorf("%s is %q, not a number", key, v))
			return def
		}
		return f
	}
	flag := func(key string) bool {
		v, ok := get(key)
		if !ok || v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s is %q, not true or false", key, v))
		}
		return b
	}
	d.FailOpen, d.Shadow = flag(KeyFailOpen), flag(KeyShadow)
	d.APIKeyID, d.UsagePlanID, d.CustomerID = str(KeyAPIKeyID), str(KeyUsagePlanID), str(KeyCustomerID)
	if d.APIKeyID == "" && !d.FailOpen {
		return Decision{}, ErrNoDecision
	}
	d.RateLimit = num(KeyRateLimit, 0)
	d.BurstLimit = int64(num(KeyBurstLimit, 0))
	d.TokensRemaining = int64(num(KeyTokensRemaining, -1))
	d.NextTokenIn = seconds(num(KeyNextTokenIn, 0))
	d.QuotaLimit = int64(num(KeyQuotaLimit, -1))
	d.QuotaRemaining = int64(num(KeyQuotaRemaining, -1))
	d.QuotaPeriod = str(KeyQuotaPeriod)
	if v := str(KeyQuotaResetAt); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s is %q, not an RFC 3339 time", KeyQuotaResetAt, v))
		}
		d.QuotaResetAt = t
	}
	switch d.LimitExceeded = str(KeyLimitExceeded); d.LimitExceeded {
	case "", Throttle, Quota:
	default:
		errs = append(errs, fmt.Errorf("%s is %q, not %q or %q", KeyLimitExceeded, d.LimitExceeded, Throttle, Quota))
		d.LimitExceeded = ""
	}
	d.RetryAfter = seconds(num(KeyRetryAfter, 0))
	switch d.AuthMethod = str(KeyAuthMethod); d.AuthMethod {
	case "", "key", "jwt":
	default:
		errs = append(errs, fmt.Errorf("%s is %q, not \"key\" or \"jwt\"", KeyAuthMethod, d.AuthMethod))
		d.AuthMethod = ""
	}
	d.Identity = str(KeyIdentity)
	if s := str(KeyScopes); strings.TrimSpace(s) != "" {
		d.Scopes = strings.Fields(s)
	}
	if len(errs) > 0 {
		return d, fmt.Errorf("ratelimit: garbled authorizer context: %w", errors.Join(errs...))
	}
	return d, nil
}

func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	if s > float64(math.MaxInt64/int64(time.Second)) {
		return math.MaxInt64
	}
	return time.Duration(s * float64(time.Second))
}

// Header names.
const (
	HeaderRateLimitPolicy = "RateLimit-Policy"
	HeaderRateLimit       = "RateLimit"
	HeaderRetryAfter      = "Retry-After"
	HeaderLegacyLimit     = "X-RateLimit-Limit"
	HeaderLegacyRemaining = "X-RateLimit-Remaining"
	HeaderLegacyReset     = "X-RateLimit-Reset"
)

// policy is one quota policy as the draft sees it.
type policy struct {
	name   string
	quota  int64 // q
	window int64 // w, seconds; 0 if unknown
	left   int64 // r
	reset  int64 // t, seconds
}

// policies are the decision's limits: the bucket ("throttle"; its window is
// the time to refill it from empty) and the quota ("quota"; its window is
// the period).
func (d Decision) policies(now time.Time) []policy {
	var out []policy
	if d.RateLimit > 0 {
		p := policy{name: Throttle, quota: d.BurstLimit, left: max(d.TokensRemaining, 0),
			window: max(1, ceilSeconds(time.Duration(float64(d.BurstLimit)/d.RateLimit*float64(time.Second)))),
			reset:  ceilSeconds(d.NextTokenIn)}
		if d.LimitExceeded == Throttle {
			p.left, p.reset = 0, ceilSeconds(d.RetryAfter)
		}
		out = append(out, p)
	}
	if d.QuotaLimit >= 0 {
		p := policy{name: Quota, quota: d.QuotaLimit, left: max(d.QuotaRemaining, 0),
			window: periodSeconds(d.QuotaPeriod, d.QuotaResetAt)}
		if !d.QuotaResetAt.IsZero() {
			p.reset = ceilSeconds(d.QuotaResetAt.Sub(now))
		}
		if d.LimitExceeded == Quota {
			p.left = 0
		}
		out = append(out, p)
	}
	return out
}

// Headers returns the rate-limit headers for the decision at now: the
// draft's RateLimit-Policy and RateLimit, and with legacy the X-RateLimit
// trio for the limit with the least remaining (Reset in epoch seconds, as
// GitHub sends it). A decision with no limits, or a failed-open one, has
// none. Names keep the draft's spelling ("RateLimit", not Go's canonical
// "Ratelimit"): index the result directly rather than with Get.
func (d Decision) Headers(now time.Time, legacy bool) http.Header {
	h := http.Header{}
	if d.FailOpen {
		return h
	}
	ps := d.policies(now)
	if len(ps) == 0 {
		return h
	}
	var pol, cur []string
	tightest := ps[0]
	for _, p := range ps {
		item := fmt.Sprintf("%q;q=%d", p.name, p.quota)
		if p.window > 0 {
			item += fmt.Sprintf(";w=%d", p.window)
		}
		pol = append(pol, item)
		cur = append(cur, fmt.Sprintf("%q;r=%d;t=%d", p.name, p.left, p.reset))
		if p.left < tightest.left {
			tightest = p
		}
	}
	h[HeaderRateLimitPolicy] = []string{strings.Join(pol, ", ")}
	h[HeaderRateLimit] = []string{strings.Join(cur, ", ")}
	if legacy {
		h[HeaderLegacyLimit] = []string{strconv.FormatInt(tightest.quota, 10)}
		h[HeaderLegacyRemaining] = []string{strconv.FormatInt(tightest.left, 10)}
		h[HeaderLegacyReset] = []string{strconv.FormatInt(now.Add(time.Duration(tightest.reset)*time.Second).Unix(), 10)}
	}
	return h
}

// RetryAfterSeconds is the Retry-After value for an over-limit decision:
// whole seconds, rounded up, at least 1.
func (d Decision) RetryAfterSeconds() int64 { return max(1, ceilSeconds(d.RetryAfter)) }

// TooManyRequests is the 429 body API Gateway sends: "Too Many Requests"
// for throttling and "Limit Exceeded" for a spent quota.
func (d Decision) TooManyRequests() string {
	if d.LimitExceeded == Quota {
		return `{"message":"Limit Exceeded"}`
	}
	return `{"message":"Too Many Requests"}`
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// periodSeconds is the length of the quota period that ends at reset.
func periodSeconds(period string, reset time.Time) int64 {
	switch period {
	case "DAY":
		return 86400
	case "WEEK":
		return 7 * 86400
	case "MONTH":
		if reset.IsZero() {
			return 0
		}
		start := reset.UTC().AddDate(0, -1, 0)
		return int64(reset.Sub(start) / time.Second)
	}
	return 0
}

// Option configures Wrap and Middleware.
type Option func(*options)

type options struct {
	legacy  bool
	now     func() time.Time
	onError func(error)
}

func newOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithLegacyHeaders adds X-RateLimit-Limit, -Remaining and -Reset.
func WithLegacyHeaders() Option { return func(o *options) { o.legacy = true } }

// WithClock sets the clock that turns quotaResetAt into seconds.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// OnError hears about requests whose authorizer context is missing or
// garbled. Such requests reach the handler unchanged, without rate-limit
// headers: the authorizer already allowed them, and a 500 here would hide
// the backend behind a bug in its wiring.
func OnError(f func(error)) Option { return func(o *options) { o.onError = f } }

type decisionKey struct{}

// FromContext returns the decision Middleware or Wrap stored in a request's
// context, if any.
func FromContext(ctx context.Context) (Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(Decision)
	return d, ok
}

// read parses a decision and reports a failure to the OnError hook.
func (o options) read(parse func() (Decision, error)) (Decision, bool) {
	d, err := parse()
	if err != nil {
		if o.onError != nil {
			o.onError(err)
		}
		return Decision{}, false
	}
	return d, true
}
