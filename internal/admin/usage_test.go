package admin_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func (f *fixture) authorizer(denyTTL time.Duration) *authorizer.Authorizer {
	return newAuthorizer(f.tbl, f.clock, denyTTL)
}

// newAuthorizer is an authorizer instance over tbl. These tests check what
// admin changes do to decisions, not how fast decisions are: the deadline
// is long, so that a machine busy with other work cannot turn a decision
// into a fail-closed denial.
func newAuthorizer(tbl *store.Table, clk *clock, denyTTL time.Duration) *authorizer.Authorizer {
	cfg := authorizer.Defaults
	cfg.Table, cfg.DenyTTL, cfg.Deadline = tbl.Name, denyTTL, time.Minute
	return authorizer.New(cfg, tbl.DB, clk.Now, slog.New(slog.DiscardHandler))
}

func call(a *authorizer.Authorizer, value string) bool { return callStage(a, value, "prod") }

// callStage asks a for a decision on a request to API api1's stage.
func callStage(a *authorizer.Authorizer, value, stage string) bool {
	return a.Authorize(context.Background(), events.APIGatewayV2CustomAuthorizerV2Request{
		RouteKey: "GET /x", Headers: map[string]string{"x-api-key": value},
		RequestContext: events.APIGatewayV2HTTPRequestContext{APIID: "api1", Stage: stage, RouteKey: "GET /x"},
	}).IsAuthorized
}

func day(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s+"T10:00:00Z")
	return t
}

// TestUsageIsExact drives a key through a week of decisions and an
// extension, and checks GetUsage's pairs day by day, for a plan with one
// meter item per key and for one with four shards.
func TestUsageIsExact(t *testing.T) {
	for _, tc := range []struct {
		name string
		tags obj
	}{
		{"one item", nil},
		{"four shards", obj{"tollgate:shards": "4"}},
	} {
		t.Run(tc.name, func(t *testing.T) { usageIsExact(t, tc.tags) })
	}
}

func usageIsExact(t *testing.T, tags obj) {
	f := setup(t)
	f.clock.Set(day("2026-11-16")) // a Monday
	plan := f.createPlan(obj{"apiStages": stages("prod"), "quota": obj{"limit": 10, "period": "WEEK"}, "tags": tags})
	key, value := f.createKey("k")
	f.ok("plans", obj{"action": "CreateUsagePlanKey", "usagePlanId": plan, "keyId": key, "keyType": "API_KEY"})
	a := f.authorizer(0)
	admit := func(date string, n int) {
		f.clock.Set(day(date))
		for i := range n {
			if !call(a, value) {
				t.Fatalf("%s: request %d denied", date, i+1)
			}
		}
	}
	admit("2026-11-16", 3)
	admit("2026-11-18", 2)
	ext := f.ok("usage", obj{"action": "UpdateUsage", "usagePlanId": plan, "keyId": key,
		"patchOperations": []obj{{"op": "replace", "path": "/remaining", "value": "20"}}})
	if got, _ := json.Marshal(ext["items"]); string(got) != `{"`+key+`":[[2,20]]}` {
		t.Fatalf("UpdateUsage = %s", got)
	}
	admit("2026-11-19", 1)
	f.clock.Set(day("2026-11-21"))

	out := f.ok("usage", obj{"action": "GetUsage", "usagePlanId": plan, "startDate": "2026-11-15", "endDate": "2026-11-21"})
	want := `[[0,10],[3,7],[0,7],[2,20],[1,19],[0,19],[0,19]]`
	if got, _ := json.Marshal(out["items"].(obj)[key]); string(got) != want {
		t.Fatalf("GetUsage = %s, want %s (Sun..Sat: the previous week untouched, 3 used, carried, 2 used then extended to 20, 1 used, carried, today)", got, want)
	}
	if out["usagePlanId"] != plan || out["startDate"] != "2026-11-15" || out["endDate"] != "2026-11-21" {
		t.Fatalf("GetUsage = %v", out)
	}

	csv := f.ok("usage", obj{"action": "GetUsage", "usagePlanId": plan, "keyId": key, "startDate": "2026-11-18", "endDate": "2026-11-19", "format": "csv"})
	if csv["body"] != "keyId,date,used,remaining\n"+key+",2026-11-18,2,20\n"+key+",2026-11-19,1,19\n" {
		t.Fatalf("CSV export = %q", csv["body"])
	}
}

func TestUsageWithoutQuotaAndErrors(t *testing.T) {
	f := setup(t)
	plan := f.createPlan(obj{"apiStages": stages("prod")})
	key, value := f.createKey("k")
	f.ok("plans", obj{"action": "CreateUsagePlanKey", "usagePlanId": plan, "keyId": key, "keyType": "API_KEY"})
	call(f.authorizer(0), value)
	out := f.ok("usage", obj{"action": "GetUsage", "usagePlanId": plan, "keyId": key, "startDate": "2026-11-20", "endDate": "2026-11-21"})
	if got, _ := json.Marshal(out["items"]); string(got) != `{"`+key+`":[[0,-1],[1,-1]]}` {
		t.Fatalf("usage without a quota = %s", got)
	}
	get := obj{"action": "GetUsage", "usagePlanId": plan, "startDate": "2026-11-20", "endDate": "2026-11-21"}
	with := func(k string, v any) obj {
		m := obj{}
		for a, b := range get {
			m[a] = b
		}
		m[k] = v
		return m
	}
	f.fails("usage", with("startDate", "20 Nov 2026"), admin.BadRequest, "startDate", "YYYY-MM-DD")
	f.fails("usage", with("endDate", "2026-11-19"), admin.BadRequest, "before startDate")
	f.fails("usage", with("startDate", "2024-01-01"), admin.BadRequest, "at most 366")
	f.fails("usage", with("format", "xml"), admin.BadRequest, "csv")
	f.fails("usage", with("usagePlanId", "nope"), admin.NotFound)
	f.fails("usage", with("keyId", "nope"), admin.NotFound)
	update := func(ops []obj) obj {
		return obj{"action": "UpdateUsage", "usagePlanId": plan, "keyId": key, "patchOperations": ops}
	}
	f.fails("usage", update([]obj{{"op": "replace", "path": "/remaining", "value": "5"}}), admin.BadRequest, "no quota")
	f.fails("usage", update([]obj{{"op": "add", "path": "/remaining", "value": "5"}}), admin.BadRequest, "/remaining")
	f.fails("usage", update([]obj{{"op": "replace", "path": "/remaining", "value": "-1"}}), admin.BadRequest, "0 or more")
}

// TestAdminChangesReachTheAuthorizer makes each change through the admin
// API and checks the authorizer's next decision.
func TestAdminChangesReachTheAuthorizer(t *testing.T) {
	f := setup(t)
	plan := f.createPlan(obj{"apiStages": stages("prod"), "quota": obj{"limit": 100, "period": "DAY"}})
	key, value := f.createKey("k")
	assign := obj{"action": "CreateUsagePlanKey", "usagePlanId": plan, "keyId": key, "keyType": "API_KEY"}
	f.ok("plans", assign)
	a := f.authorizer(0)
	if !call(a, value) {
		t.Fatal("warm-up denied")
	}
	patchKey := func(v string) obj {
		return obj{"action": "UpdateApiKey", "apiKey": key, "patchOperations": []obj{{"op": "replace", "path": "/enabled", "value": v}}}
	}
	patchPlan := func(path, v string) obj {
		return obj{"action": "UpdateUsagePlan", "usagePlanId": plan, "patchOperations": []obj{{"op": "replace", "path": path, "value": v}}}
	}
	steps := []struct {
		name  string
		fn    string
		in    obj
		allow bool
	}{
		{"disable the key", "keys", patchKey("false"), false},
		{"enable it", "keys", patchKey("true"), true},
		{"cut the quota to what is used", "plans", patchPlan("/quota/limit", "2"), false},
		{"extend the remaining quota", "usage", obj{"action": "UpdateUsage", "usagePlanId": plan, "keyId": key,
			"patchOperations": []obj{{"op": "replace", "path": "/remaining", "value": "1"}}}, true},
		{"the extension is spent", "usage", nil, false},
		{"raise the quota", "plans", patchPlan("/quota/limit", "100"), true},
		{"take the key out of the plan", "plans", obj{"action": "DeleteUsagePlanKey", "usagePlanId": plan, "keyId": key}, false},
		{"put it back", "plans", assign, true},
		{"delete the key", "keys", obj{"action": "DeleteApiKey", "apiKey": key}, false},
	}
	for _, s := range steps {
		if s.in != nil {
			f.ok(s.fn, s.in)
		}
		if got := call(a, value); got != s.allow {
			t.Fatalf("after %q: allowed = %v, want %v", s.name, got, s.allow)
		}
	}
}
