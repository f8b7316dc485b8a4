package authorizer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/decisionlog"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
	"github.com/tollgate-dev/tollgate/ratelimit"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// clock is a settable clock shared by a fixture's authorizers and store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// logBuffer collects log lines from any number of goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines(t testing.TB) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func (b *logBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

type fixture struct {
	t     testing.TB
	db    *dynamodb.Client
	tbl   *store.Table
	calls *dynamotest.Counter
	clock *clock
	logs  *logBuffer
}

// June 17 2025 is a Tuesday.
var noon = time.Date(2025, 6, 17, 12, 0, 0, 0, time.UTC)

func setup(t testing.TB) *fixture {
	t.Helper()
	calls := &dynamotest.Counter{}
	db := dynamotest.Client(t, calls.Install, authorizer.Instrument)
	clk := &clock{t: noon}
	return &fixture{t: t, db: db, tbl: dynamotest.Store(t, db, clk.Now), calls: calls, clock: clk, logs: &logBuffer{}}
}

func (f *fixture) newKey(enabled bool, customerID string) (id, value string) {
	f.t.Helper()
	value, _ = keys.Generate()
	k := &store.Key{ID: keys.NewID(), Name: "test", Enabled: enabled, CustomerID: customerID, Hash: keys.Hash(value)}
	if err := f.tbl.CreateKey(context.Background(), k); err != nil {
		f.t.Fatal(err)
	}
	return k.ID, value
}

func (f *fixture) newPlan(p plans.Plan) string {
	f.t.Helper()
	p.ID, p.Name = keys.NewID(), "test"
	if p.APIStages == nil {
		p.APIStages = []plans.APIStage{{APIID: "api1", Stage: "prod"}}
	}
	rec := &store.Plan{Plan: p}
	if _, ok := p.Tags[plans.ShardTag]; ok {
		n, err := p.Shards()
		if err != nil {
			f.t.Fatal(err)
		}
		rec.Shards = n
	}
	if err := f.tbl.CreatePlan(context.Background(), rec); err != nil {
		f.t.Fatal(err)
	}
	return p.ID
}

func (f *fixture) assign(planID, keyID string) {
	f.t.Helper()
	if err := f.tbl.Assign(context.Background(), planID, keyID); err != nil {
		f.t.Fatal(err)
	}
}

// keyInPlan is a key assigned to a new plan.
func (f *fixture) keyInPlan(p plans.Plan) (keyID, value, planID string) {
	keyID, value = f.newKey(true, "")
	planID = f.newPlan(p)
	f.assign(planID, keyID)
	return keyID, value, planID
}

func (f *fixture) authorizer(mods ...func(*authorizer.Config)) *authorizer.Authorizer {
	cfg := authorizer.Defaults
	// A long deadline: a machine busy with other work starves DynamoDB
	// Local, and these tests expect every decision made. Tests about the
	// deadline set their own.
	cfg.Table, cfg.Deadline = f.tbl.Name, 5*time.Second
	cfg.LogAllDecisions = true // tests read each decision's reason from its line
	for _, m := range mods {
		m(&cfg)
	}
	return authorizer.New(cfg, f.db, f.clock.Now, slog.New(slog.NewJSONHandler(f.logs, nil)))
}

func request(value string) events.APIGatewayV2CustomAuthorizerV2Request {
	ev := events.APIGatewayV2CustomAuthorizerV2Request{
		Version:  "2.0",
		Type:     "REQUEST",
		RouteKey: "GET /items",
		RawPath:  "/items",
		Headers:  map[string]string{"user-agent": "test"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			APIID: "api1", Stage: "prod", RouteKey: "GET /items", RequestID: "req-1",
		},
	}
	if value != "" {
		ev.Headers["x-api-key"] = value
	}
	return ev
}

func (f *fixture) lastReason() string {
	var last map[string]any
	for _, l := range f.logs.lines(f.t) {
		if l["msg"] == "decision" {
			last = l
		}
	}
	if last == nil {
		f.t.Fatal("no decision logged")
	}
	r, _ := last["reason"].(string)
	return r
}

var throttle = func(rate float64, burst int) *plans.Throttle {
	return &plans.Throttle{RateLimit: rate, BurstLimit: burst}
}

func TestDenyReasons(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, open, _ := f.keyInPlan(plans.Plan{})
	disabledID, disabled := f.newKey(false, "")
	f.assign(f.newPlan(plans.Plan{}), disabledID)
	_, unassigned := f.newKey(true, "")
	_, throttled, _ := f.keyInPlan(plans.Plan{Throttle: throttle(1, 1)})
	_, spent, _ := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 1, Period: plans.Day}})
	unknown, _ := keys.Generate()
	typo := []byte(open)
	typo[10] ^= 1
	otherStage := request(open)
	otherStage.RequestContext.Stage = "dev"
	otherAPI := request(open)
	otherAPI.RequestContext.APIID = "api2"

	a := f.authorizer()
	a.Authorize(ctx, request(throttled))
	a.Authorize(ctx, request(spent))
	tests := []struct {
		name string
		ev   events.APIGatewayV2CustomAuthorizerV2Request
		want string
	}{
		{"missing key", request(""), authorizer.ReasonMissingKey},
		{"empty header", func() events.APIGatewayV2CustomAuthorizerV2Request {
			e := request("")
			e.Headers["x-api-key"] = ""
			return e
		}(), authorizer.ReasonMissingKey},
		{"typo", request(string(typo)), authorizer.ReasonMalformedKey},
		{"garbage", request("hello"), authorizer.ReasonMalformedKey},
		{"unknown", request(unknown), authorizer.ReasonUnknownKey},
		{"disabled", request(disabled), authorizer.ReasonDisabledKey},
		{"no plan", request(unassigned), authorizer.ReasonNoPlan},
		{"plan lacks the stage", otherStage, authorizer.ReasonNoPlan},
		{"plan lacks the API", otherAPI, authorizer.ReasonNoPlan},
		{"throttled", request(throttled), authorizer.ReasonThrottled},
		{"quota spent", request(spent), authorizer.ReasonQuotaExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.calls.Reset()
			resp := a.Authorize(ctx, tt.ev)
			if resp.IsAuthorized || resp.Context != nil {
				t.Fatalf("response = %+v, want a bare denial", resp)
			}
			if got := f.lastReason(); got != tt.want {
				t.Fatalf("reason = %q, want %q", got, tt.want)
			}
			if (tt.want == authorizer.ReasonMissingKey || tt.want == authorizer.ReasonMalformedKey) && f.calls.Get("") != 0 {
				t.Fatalf("%d DynamoDB calls for a key that cannot exist", f.calls.Get(""))
			}
		})
	}
	if resp := a.Authorize(ctx, request(open)); !resp.IsAuthorized {
		t.Fatalf("the valid key was denied: %s", f.lastReason())
	}
}

func TestAllowContext(t *testing.T) {
	f := setup(t)
	keyID, value := f.newKey(true, "cust-42")
	planID := f.newPlan(plans.Plan{Throttle: throttle(10, 5), Quota: &plans.Quota{Limit: 100, Period: plans.Month}})
	f.assign(planID, keyID)
	resp := f.authorizer().Authorize(context.Background(), request(value))
	if !resp.IsAuthorized {
		t.Fatalf("denied: %s", f.lastReason())
	}
	want := map[string]any{
		"apiKeyId": keyID, "usagePlanId": planID, "customerId": "cust-42",
		"rateLimit": 10.0, "burstLimit": 5, "tokensRemaining": int64(4), "nextTokenIn": 0.1,
		"quotaLimit": int64(100), "quotaRemaining": int64(99), "quotaPeriod": "MONTH", "quotaResetAt": "2025-07-01T00:00:00Z",
		"limitExceeded": "", "retryAfter": 0.0, "failOpen": false, "shadow": false,
		"authMethod": "key", "identity": "", "scopes": "",
	}
	for k, v := range want {
		if resp.Context[k] != v {
			t.Errorf("context[%s] = %#v, want %#v", k, resp.Context[k], v)
		}
	}
	if len(resp.Context) != len(want) {
		t.Errorf("context has extra fields: %v", resp.Context)
	}
	out, _ := json.Marshal(resp)
	if strings.Contains(string(out), value) || strings.Contains(f.logs.String(), value) {
		t.Fatal("the key's value leaked into the response or the log")
	}
	if strings.Contains(f.logs.String(), keys.Hash(value)) {
		t.Fatal("the key's hash leaked into the log")
	}
}

func TestUnlimitedPlanContext(t *testing.T) {
	f := setup(t)
	_, value, _ := f.keyInPlan(plans.Plan{})
	resp := f.authorizer().Authorize(context.Background(), request(value))
	want := map[string]any{"rateLimit": 0.0, "burstLimit": 0, "tokensRemaining": int64(-1), "nextTokenIn": 0.0, "quotaLimit": int64(-1), "quotaRemaining": int64(-1),
		"quotaPeriod": "", "quotaResetAt": "", "customerId": "", "limitExceeded": "", "retryAfter": 0.0, "failOpen": false}
	for k, v := range want {
		if resp.Context[k] != v {
			t.Errorf("context[%s] = %#v, want %#v", k, resp.Context[k], v)
		}
	}
	// Usage is still counted for GetUsage.
	f.calls.Reset()
	f.authorizer().Authorize(context.Background(), request(value))
	if f.calls.Get("UpdateItem") != 1 {
		t.Errorf("an unlimited plan still meters: want 1 UpdateItem, got %v", f.calls.Snapshot())
	}
}

func TestKeySources(t *testing.T) {
	f := setup(t)
	_, value, _ := f.keyInPlan(plans.Plan{})
	tests := []struct {
		name   string
		source string
		set    func(*events.APIGatewayV2CustomAuthorizerV2Request)
		allow  bool
	}{
		{"default header", "", func(e *events.APIGatewayV2CustomAuthorizerV2Request) { e.Headers["x-api-key"] = value }, true},
		{"header in another case", "", func(e *events.APIGatewayV2CustomAuthorizerV2Request) { e.Headers["X-Api-Key"] = value }, true},
		{"custom header", "header:X-Client-Key", func(e *events.APIGatewayV2CustomAuthorizerV2Request) { e.Headers["x-client-key"] = value }, true},
		{"custom header ignores x-api-key", "header:x-client-key", func(e *events.APIGatewayV2CustomAuthorizerV2Request) { e.Headers["x-api-key"] = value }, false},
		{"query", "query:api_key", func(e *events.APIGatewayV2CustomAuthorizerV2Request) {
			e.QueryStringParameters = map[string]string{"api_key": value}
		}, true},
		{"query is case-sensitive", "query:api_key", func(e *events.APIGatewayV2CustomAuthorizerV2Request) {
			e.QueryStringParameters = map[string]string{"API_KEY": value}
		}, false},
		{"two keys in one header", "", func(e *events.APIGatewayV2CustomAuthorizerV2Request) { e.Headers["x-api-key"] = value + "," + value }, false},
		{"header name JSON tags cannot hold", "header:x-api'key", func(e *events.APIGatewayV2CustomAuthorizerV2Request) { e.Headers["X-API'KEY"] = value }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"TABLE_NAME": f.tbl.Name, "API_KEY_SOURCE": tt.source, "LOG_DECISIONS": "all"}
			cfg, err := authorizer.FromEnv(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			a := authorizer.New(cfg, f.db, f.clock.Now, slog.New(slog.NewJSONHandler(f.logs, nil)))
			ev := request("")
			tt.set(&ev)
			if got := a.Authorize(context.Background(), ev).IsAuthorized; got != tt.allow {
				t.Fatalf("allowed = %v, want %v (%s)", got, tt.allow, f.lastReason())
			}
			// The Lambda entry point decodes events its own way.
			payload, _ := json.Marshal(ev)
			out, err := a.Invoke(context.Background(), payload)
			var resp events.APIGatewayV2CustomAuthorizerSimpleResponse
			if err != nil || json.Unmarshal(out, &resp) != nil || resp.IsAuthorized != tt.allow {
				t.Fatalf("Invoke = %s, %v; want allowed = %v (%s)", out, err, tt.allow, f.lastReason())
			}
		})
	}
}

func TestOnLimitPass(t *testing.T) {
	f := setup(t)
	_, value, _ := f.keyInPlan(plans.Plan{Throttle: throttle(0.5, 1), Quota: &plans.Quota{Limit: 2, Period: plans.Day}})
	a := f.authorizer(func(c *authorizer.Config) { c.PassOnLimit = true })
	ctx := context.Background()
	if resp := a.Authorize(ctx, request(value)); !resp.IsAuthorized || resp.Context["limitExceeded"] != "" {
		t.Fatalf("first request: %+v", resp)
	}
	resp := a.Authorize(ctx, request(value))
	if !resp.IsAuthorized || resp.Context["limitExceeded"] != "throttle" || resp.Context["retryAfter"] != 2.0 || resp.Context["tokensRemaining"] != int64(0) || resp.Context["nextTokenIn"] != 2.0 {
		t.Fatalf("throttled request: %+v", resp.Context)
	}
	f.clock.Add(2 * time.Second)
	a.Authorize(ctx, request(value))
	f.clock.Add(2 * time.Second)
	resp = a.Authorize(ctx, request(value))
	// Noon to midnight.
	if !resp.IsAuthorized || resp.Context["limitExceeded"] != "quota" || resp.Context["retryAfter"] != 43196.0 || resp.Context["quotaRemaining"] != int64(0) {
		t.Fatalf("over-quota request: %+v", resp.Context)
	}
	// Passing a request over a limit does not count it.
	if usage := f.dayCount(t, value); usage != 2 {
		t.Fatalf("admitted count = %d, want 2", usage)
	}
}

// dayCount is the day counter of the key's only plan, today.
func (f *fixture) dayCount(t *testing.T, value string) int64 {
	t.Helper()
	k, err := f.tbl.KeyByHash(context.Background(), keys.Hash(value))
	if err != nil {
		t.Fatal(err)
	}
	var planID string
	for _, p := range k.Stages {
		planID = p
	}
	out, err := f.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &f.tbl.Name, ConsistentRead: boolp(true),
		Key: itemKey(store.MeterPK(k.ID), store.MeterSK(planID))})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := store.Int(out.Item, store.PrefixDay+f.clock.Now().UTC().Format("20060102"))
	return n
}

func TestFailMode(t *testing.T) {
	for _, open := range []bool{false, true} {
		f := setup(t)
		_, value, _ := f.keyInPlan(plans.Plan{})
		// A client whose every call fails as an unreachable endpoint would.
		broken := dynamotest.Client(t, authorizer.Instrument, func(o *dynamodb.Options) {
			o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
				return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("fail", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, errors.New("connection refused")
				}), middleware.After)
			})
		})
		cfg := authorizer.Defaults
		cfg.Table, cfg.FailOpen, cfg.Deadline = f.tbl.Name, open, 200*time.Millisecond
		a := authorizer.New(cfg, broken, f.clock.Now, slog.New(slog.NewJSONHandler(f.logs, nil)))
		start := time.Now()
		resp := a.Authorize(context.Background(), request(value))
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("decision took %s with a 200ms deadline", took)
		}
		if resp.IsAuthorized != open || f.lastReason() != authorizer.ReasonError {
			t.Errorf("FAIL_MODE open=%v: authorized=%v reason=%s", open, resp.IsAuthorized, f.lastReason())
		}
		if open && resp.Context["failOpen"] != true {
			t.Errorf("fail-open context = %v", resp.Context)
		}
	}
}

func TestRouteOverrides(t *testing.T) {
	f := setup(t)
	_, value, _ := f.keyInPlan(plans.Plan{
		Throttle: throttle(1, 1),
		Quota:    &plans.Quota{Limit: 4, Period: plans.Day},
		APIStages: []plans.APIStage{{APIID: "api1", Stage: "prod", Throttle: map[string]plans.Throttle{
			"/items/{id}/GET": {RateLimit: 1, BurstLimit: 2},
		}}},
	})
	a := f.authorizer()
	route := func(rk string) events.APIGatewayV2CustomAuthorizerV2Request {
		ev := request(value)
		ev.RouteKey, ev.RequestContext.RouteKey = rk, rk
		return ev
	}
	steps := []struct {
		route string
		allow bool
		burst any
	}{
		{"GET /items", true, 1},         // the plan's bucket of 1
		{"GET /items", false, nil},      // ...empty
		{"GET /items/{id}", true, 2},    // the override's own bucket of 2
		{"GET /items/{id}", true, 2},    //
		{"GET /items/{id}", false, nil}, // ...empty
		{"POST /items/{id}", true, 1},   // another method: the plan's bucket, refilled below
	}
	for i, s := range steps {
		if s.route == "POST /items/{id}" {
			f.clock.Add(time.Second)
		}
		resp := a.Authorize(context.Background(), route(s.route))
		if resp.IsAuthorized != s.allow {
			t.Fatalf("step %d (%s): allowed=%v, want %v (%s)", i, s.route, resp.IsAuthorized, s.allow, f.lastReason())
		}
		if s.allow && resp.Context["burstLimit"] != s.burst {
			t.Fatalf("step %d: burstLimit %v, want %v", i, resp.Context["burstLimit"], s.burst)
		}
	}
	// The quota of 4 is shared across routes.
	f.clock.Add(10 * time.Second)
	if resp := a.Authorize(context.Background(), route("GET /items/{id}")); resp.IsAuthorized || f.lastReason() != authorizer.ReasonQuotaExceeded {
		t.Fatalf("fifth request: allowed=%v reason=%s, want quota_exceeded", resp.IsAuthorized, f.lastReason())
	}
}

func TestQuotaOffsetAppliesToTheFirstPeriod(t *testing.T) {
	f := setup(t)
	_, value, _ := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 5, Offset: 3, Period: plans.Day}})
	a := f.authorizer()
	count := func() int {
		n := 0
		for range 8 {
			if a.Authorize(context.Background(), request(value)).IsAuthorized {
				n++
			}
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("first day admitted %d, want 5 - 3 = 2", n)
	}
	f.clock.Add(24 * time.Hour)
	if n := count(); n != 5 {
		t.Fatalf("second day admitted %d, want 5", n)
	}
}

func TestQuotaPeriodBoundaries(t *testing.T) {
	tests := []struct {
		period string
		last   time.Time // the last instant of a period
	}{
		{plans.Day, time.Date(2025, 6, 17, 23, 59, 59, 999999000, time.UTC)},
		{plans.Week, time.Date(2025, 6, 22, 23, 59, 59, 999999000, time.UTC)}, // Sunday
		{plans.Month, time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.UTC)},
		{plans.Month, time.Date(2025, 4, 30, 23, 59, 59, 999999000, time.UTC)},
		{plans.Month, time.Date(2025, 12, 31, 23, 59, 59, 999999000, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.period+" "+tt.last.Format("2006-01-02"), func(t *testing.T) {
			f := setup(t)
			f.clock.Set(tt.last.Add(-time.Hour))
			_, value, _ := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 2, Period: tt.period}})
			a := f.authorizer()
			f.clock.Set(tt.last)
			for i, want := range []bool{true, true, false} {
				if got := a.Authorize(context.Background(), request(value)).IsAuthorized; got != want {
					t.Fatalf("request %d at the period's end: %v, want %v", i, got, want)
				}
			}
			f.clock.Add(time.Microsecond)
			resp := a.Authorize(context.Background(), request(value))
			if !resp.IsAuthorized {
				t.Fatalf("first request of the next period denied: %s", f.lastReason())
			}
			if want := tt.last.Add(time.Microsecond).Format(time.RFC3339); resp.Context["quotaResetAt"] == want {
				t.Fatalf("quotaResetAt still names the old period's end")
			}
		})
	}
}

func TestAdminChangesApplyOnTheNextDecision(t *testing.T) {
	t.Run("one item", func(t *testing.T) { adminChangesApply(t, nil) })
	t.Run("four shards", func(t *testing.T) { adminChangesApply(t, map[string]string{plans.ShardTag: "4"}) })
}

func adminChangesApply(t *testing.T, tags map[string]string) {
	f := setup(t)
	ctx := context.Background()
	keyID, value, planID := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 100, Period: plans.Day}, Tags: tags})
	// DenyTTL 0: grants are seen at once too, so the test can flip back.
	a := f.authorizer(func(c *authorizer.Config) { c.DenyTTL = 0 })
	warm := a.Authorize(ctx, request(value))
	if !warm.IsAuthorized {
		t.Fatal("warm-up denied")
	}
	steps := []struct {
		name   string
		change func() error
		allow  bool
		reason string
	}{
		{"disable the key", func() error {
			_, err := f.tbl.UpdateKey(ctx, keyID, func(k *store.Key) error { k.Enabled = false; return nil })
			return err
		}, false, authorizer.ReasonDisabledKey},
		{"enable it again", func() error {
			_, err := f.tbl.UpdateKey(ctx, keyID, func(k *store.Key) error { k.Enabled = true; return nil })
			return err
		}, true, authorizer.ReasonOK},
		{"lower the quota below its use", func() error {
			_, err := f.tbl.UpdatePlan(ctx, planID, func(p *plans.Plan) error { p.Quota.Limit = 2; return nil })
			return err
		}, false, authorizer.ReasonQuotaExceeded},
		{"raise it", func() error {
			_, err := f.tbl.UpdatePlan(ctx, planID, func(p *plans.Plan) error { p.Quota.Limit = 100; return nil })
			return err
		}, true, authorizer.ReasonOK},
		{"add a throttle", func() error {
			_, err := f.tbl.UpdatePlan(ctx, planID, func(p *plans.Plan) error { p.Throttle = throttle(0.001, 1); return nil })
			return err
		}, true, authorizer.ReasonOK},
		{"its bucket is now empty", func() error { return nil }, false, authorizer.ReasonThrottled},
		{"drop the stage from the plan", func() error {
			_, err := f.tbl.UpdatePlan(ctx, planID, func(p *plans.Plan) error { p.APIStages = nil; p.Throttle = nil; return nil })
			return err
		}, false, authorizer.ReasonNoPlan},
		{"give it back", func() error {
			_, err := f.tbl.UpdatePlan(ctx, planID, func(p *plans.Plan) error {
				p.APIStages = []plans.APIStage{{APIID: "api1", Stage: "prod"}}
				return nil
			})
			return err
		}, true, authorizer.ReasonOK},
		{"remove the key from the plan", func() error { return f.tbl.Unassign(ctx, planID, keyID) }, false, authorizer.ReasonNoPlan},
		{"add it again", func() error { return f.tbl.Assign(ctx, planID, keyID) }, true, authorizer.ReasonOK},
		{"delete the key", func() error { return f.tbl.DeleteKey(ctx, keyID) }, false, authorizer.ReasonUnknownKey},
	}
	for _, s := range steps {
		if err := s.change(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		resp := a.Authorize(ctx, request(value))
		if resp.IsAuthorized != s.allow || f.lastReason() != s.reason {
			lines := f.logs.lines(t)
			t.Fatalf("after %q: allowed=%v reason=%s, want %v %s (%v)", s.name, resp.IsAuthorized, f.lastReason(), s.allow, s.reason, lines[len(lines)-1]["error"])
		}
	}
}

func TestGrantsAreSeenWithinDenyTTL(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	keyID, value := f.newKey(true, "")
	planID := f.newPlan(plans.Plan{})
	a := f.authorizer() // DenyTTL 1s
	if a.Authorize(ctx, request(value)).IsAuthorized {
		t.Fatal("unassigned key allowed")
	}
	f.assign(planID, keyID)
	f.calls.Reset()
	if a.Authorize(ctx, request(value)).IsAuthorized || f.calls.Get("") != 0 {
		t.Fatalf("within DenyTTL the cached denial should stand, without DynamoDB calls (%d)", f.calls.Get(""))
	}
	f.clock.Add(time.Second)
	if !a.Authorize(ctx, request(value)).IsAuthorized {
		t.Fatalf("after DenyTTL the new assignment is not seen: %s", f.lastReason())
	}
}

func TestCallsPerDecision(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, under, _ := f.keyInPlan(plans.Plan{Throttle: throttle(1000, 100), Quota: &plans.Quota{Limit: 1_000_000, Period: plans.Month}})
	_, saturated, _ := f.keyInPlan(plans.Plan{Throttle: throttle(1, 5)})
	a := f.authorizer()
	a.Authorize(ctx, request(under))
	a.Authorize(ctx, request(saturated))

	const n = 200
	f.calls.Reset()
	for range n {
		f.clock.Add(2 * time.Millisecond) // 500/s, under the 1000/s limit
		if !a.Authorize(ctx, request(under)).IsAuthorized {
			t.Fatalf("under-limit key denied: %s", f.lastReason())
		}
	}
	perDecision := float64(f.calls.Get("")) / n
	t.Logf("under limit: %.3f DynamoDB calls per decision (%v)", perDecision, f.calls.Snapshot())
	if perDecision != 1 || f.calls.Get("UpdateItem") != n {
		t.Errorf("under limit: %.3f calls per decision, want exactly 1 UpdateItem each", perDecision)
	}

	f.calls.Reset()
	allowed := 0
	for range n {
		f.clock.Add(10 * time.Millisecond) // 100/s offered to a 1/s key
		if a.Authorize(ctx, request(saturated)).IsAuthorized {
			allowed++
		}
	}
	perDecision = float64(f.calls.Get("")) / n
	t.Logf("saturated: %.3f DynamoDB calls per decision, %d of %d allowed", perDecision, allowed, n)
	if perDecision > 1.05 {
		t.Errorf("saturated: %.3f calls per decision, want at most 1.05", perDecision)
	}
	if allowed > 5+2 { // burst 5 plus 2 s of refill at 1/s
		t.Errorf("saturated key allowed %d times in 2s", allowed)
	}
}

// TestDecisionLog: by default, allows are only counted, in one metrics
// record per plan and reason per METRICS_INTERVAL; repeated denials get a
// line per key and reason per interval; the records carry the metrics of
// what happened, and no count that did not. With LOG_DECISIONS=all, every
// decision has its line.
func TestDecisionLog(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	keyID, value, planID := f.keyInPlan(plans.Plan{})
	a := f.authorizer(func(c *authorizer.Config) { c.LogAllDecisions = false })
	f.clock.Set(noon.Truncate(time.Minute))
	for range 10 {
		a.Authorize(ctx, request(value))
		a.Authorize(ctx, request("bad"))
		f.clock.Add(time.Second)
	}
	if lines := f.logs.lines(t); len(lines) != 0 {
		t.Fatalf("%d lines within the interval, want none yet: %v", len(lines), lines)
	}
	f.clock.Add(time.Minute)
	a.Authorize(ctx, request(value))
	lines := f.logs.lines(t)
	var records, repeats []map[string]any
	for _, l := range lines {
		switch l["msg"] {
		case "metrics":
			records = append(records, l)
		case "decisions":
			repeats = append(repeats, l)
		default:
			t.Errorf("unexpected line %v", l)
		}
	}
	if len(records) != 2 || len(repeats) != 1 {
		t.Fatalf("%d metrics records and %d repeat lines, want 2 (allow, malformed) and 1:\n%v", len(records), len(repeats), lines)
	}
	if r := repeats[0]; r["reason"] != authorizer.ReasonMalformedKey || r["count"] != 10.0 || r["usagePlanId"] != "none" {
		t.Errorf("repeated malformed keys: %v", r)
	}
	if r := records[0]; r["usagePlanId"] != planID || r["Decisions"] != 10.0 || r["DynamoDBCalls"] != 4.0+9 {
		t.Errorf("allow record: %v", r) // cold: hash, key, plan and meter; then one write each
	}
	data, err := decisionlog.Extract([]byte(f.logs.String()))
	if err != nil {
		t.Fatal(err)
	}
	produced := map[string]bool{}
	for _, d := range data {
		produced[d.Name+"/"+d.DimensionNames()] = true
	}
	for _, m := range []string{"Decisions/usagePlanId", "Decisions/outcome,reason", "DynamoDBCalls/", "DynamoDBLatency/", "Latency/"} {
		if !produced[m] {
			t.Errorf("no metric %s in %v", m, produced)
		}
	}
	// Nothing was throttled or over quota: no record carries those counts,
	// which CloudWatch would bill as metrics though always 0. (Every metric
	// the dashboard reads is produced by infra's template test and by
	// BenchmarkLogBytes, whose workloads throttle and exhaust.)
	for m := range produced {
		if !strings.HasPrefix(m, "Decisions/") && !strings.HasSuffix(m, "/") {
			t.Errorf("a count that did not happen is in the records: %s", m)
		}
	}
	if strings.Contains(f.logs.String(), keyID) {
		t.Error("an allowed decision's key id is logged by default")
	}

	f.logs.buf.Reset()
	all := f.authorizer()
	all.Authorize(ctx, request(value))
	all.Authorize(ctx, request("bad"))
	lines = f.logs.lines(t)
	if len(lines) != 2 {
		t.Fatalf("LOG_DECISIONS=all: %d lines for 2 decisions", len(lines))
	}
	for _, field := range []string{"allow", "outcome", "reason", "apiKeyId", "usagePlanId", "apiId", "stage", "routeKey", "requestId"} {
		if _, ok := lines[0][field]; !ok {
			t.Errorf("LOG_DECISIONS=all: line lacks %q: %v", field, lines[0])
		}
	}
	if lines[1]["usagePlanId"] != "none" || lines[1]["outcome"] != "deny" || lines[1]["reason"] != authorizer.ReasonMalformedKey {
		t.Errorf("denial's log line = %v", lines[1])
	}
}

func TestMalformedEventIsDenied(t *testing.T) {
	f := setup(t)
	a := f.authorizer()
	for _, payload := range []string{``, `{`, `[]`, `{"headers": 5}`, `{"requestContext": "x"}`, `null`} {
		out, err := a.Invoke(context.Background(), []byte(payload))
		if err != nil {
			t.Fatalf("Invoke(%q) error: %v", payload, err)
		}
		var resp events.APIGatewayV2CustomAuthorizerSimpleResponse
		if err := json.Unmarshal(out, &resp); err != nil || resp.IsAuthorized {
			t.Fatalf("Invoke(%q) = %s", payload, out)
		}
	}
}

func boolp(b bool) *bool { return &b }

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": store.S(pk), "sk": store.S(sk)}
}

// TestSampleEvents runs every sample in events/authorizer through the
// Lambda entry point: each must decode and get a decision.
func TestSampleEvents(t *testing.T) {
	f := setup(t)
	a := f.authorizer(func(c *authorizer.Config) { c.KeySource = authorizer.KeySource{Name: "x-api-key"} })
	files, _ := filepath.Glob("../../events/authorizer/*.json")
	if len(files) == 0 {
		t.Fatal("no samples in events/authorizer")
	}
	for _, file := range files {
		payload, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ev events.APIGatewayV2CustomAuthorizerV2Request
		if err := json.Unmarshal(payload, &ev); err != nil || ev.RequestContext.APIID == "" {
			t.Fatalf("%s is not a payload 2.0 authorizer event: %v", file, err)
		}
		out, err := a.Invoke(context.Background(), payload)
		if err != nil || !bytes.Contains(out, []byte(`"isAuthorized":false`)) {
			t.Fatalf("%s: %s, %v (samples carry placeholder keys, so they are denied)", file, out, err)
		}
	}
}

// TestEveryAllowCarriesEveryField checks the contract with package
// ratelimit and with parameter mappings: every allow, of every kind, has
// every key, and a backend reads it back as the same decision.
func TestEveryAllowCarriesEveryField(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, limited, _ := f.keyInPlan(plans.Plan{Throttle: throttle(1, 1), Quota: &plans.Quota{Limit: 10, Period: plans.Week}})
	_, unlimited, _ := f.keyInPlan(plans.Plan{})
	_, shadowed, _ := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 1, Period: plans.Day}, Tags: map[string]string{plans.EnforceTag: plans.Shadow}})
	pass := f.authorizer(func(c *authorizer.Config) { c.PassOnLimit = true })
	pass.Authorize(ctx, request(shadowed))
	open := authorizer.New(func() authorizer.Config {
		c := authorizer.Defaults
		c.Table, c.FailOpen, c.Deadline = "no-such-table", true, 100*time.Millisecond
		return c
	}(), f.db, f.clock.Now, slog.New(slog.DiscardHandler))

	cases := []struct {
		name string
		resp events.APIGatewayV2CustomAuthorizerSimpleResponse
		want func(ratelimit.Decision) bool
	}{
		{"allowed", pass.Authorize(ctx, request(limited)), func(d ratelimit.Decision) bool {
			return d.RateLimit == 1 && d.BurstLimit == 1 && d.TokensRemaining == 0 && d.NextTokenIn == time.Second &&
				d.QuotaLimit == 10 && d.QuotaRemaining == 9 && d.QuotaPeriod == "WEEK" && d.LimitExceeded == ""
		}},
		{"throttled but passed", pass.Authorize(ctx, request(limited)), func(d ratelimit.Decision) bool {
			return d.LimitExceeded == ratelimit.Throttle && d.RetryAfter == time.Second
		}},
		{"no limits", pass.Authorize(ctx, request(unlimited)), func(d ratelimit.Decision) bool {
			return d.RateLimit == 0 && d.TokensRemaining == -1 && d.QuotaLimit == -1 && d.QuotaResetAt.IsZero()
		}},
		{"failed open", open.Authorize(ctx, request(unlimited)), func(d ratelimit.Decision) bool { return d.FailOpen }},
		{"over quota in shadow", pass.Authorize(ctx, request(shadowed)), func(d ratelimit.Decision) bool {
			return d.LimitExceeded == ratelimit.Quota && d.Shadow && !d.Refused() && d.QuotaRemaining == 0
		}},
	}
	for _, c := range cases {
		if !c.resp.IsAuthorized {
			t.Fatalf("%s: denied", c.name)
		}
		for _, field := range ratelimit.Fields {
			if _, ok := c.resp.Context[field.Key]; !ok {
				t.Errorf("%s: context lacks %q", c.name, field.Key)
			}
		}
		if len(c.resp.Context) != len(ratelimit.Fields) {
			t.Errorf("%s: context has %d keys, ratelimit.Fields %d", c.name, len(c.resp.Context), len(ratelimit.Fields))
		}
		// As a Lambda integration receives it: through JSON.
		b, _ := json.Marshal(c.resp.Context)
		var got map[string]any
		json.Unmarshal(b, &got)
		d, err := ratelimit.FromLambda(got)
		if err != nil || !c.want(d) {
			t.Errorf("%s: the backend reads %+v, %v", c.name, d, err)
		}
	}
}
