package admin_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

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

type fixture struct {
	t        testing.TB
	tbl      *store.Table
	clock    *clock
	handlers map[string]*admin.Handler
}

// now is 2026-11-21T12:00:00Z, a Saturday.
var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func setup(t testing.TB) *fixture {
	t.Helper()
	clk := &clock{t: now}
	return setupOn(t, dynamotest.Store(t, dynamotest.Client(t), clk.Now), clk)
}

// setupOn serves the admin functions over tbl.
func setupOn(t testing.TB, tbl *store.Table, clk *clock) *fixture {
	t.Helper()
	svc := &admin.Service{Store: tbl, Now: clk.Now, Log: slog.New(slog.DiscardHandler)}
	f := &fixture{t: t, tbl: tbl, clock: clk, handlers: map[string]*admin.Handler{}}
	for _, fn := range admin.Functions {
		h, err := admin.New(fn, svc)
		if err != nil {
			t.Fatal(err)
		}
		f.handlers[fn] = h
	}
	return f
}

// raw invokes a function with a raw payload.
func (f *fixture) raw(fn, payload string) (map[string]any, *admin.Error) {
	out, e := f.handlers[fn].Handle(context.Background(), []byte(payload))
	if e != nil {
		return nil, e
	}
	b, err := json.Marshal(out)
	if err != nil {
		f.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		f.t.Fatal(err)
	}
	return m, nil
}

// call invokes a function with a payload built from v.
func (f *fixture) call(fn string, v any) (map[string]any, *admin.Error) {
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.raw(fn, string(b))
}

// ok invokes and fails the test on an error.
func (f *fixture) ok(fn string, v any) map[string]any {
	f.t.Helper()
	out, e := f.call(fn, v)
	if e != nil {
		f.t.Fatalf("%s %v: %v", fn, v, e)
	}
	return out
}

// fails invokes and checks the error's type and that its message contains
// each of words.
func (f *fixture) fails(fn string, v any, typ string, words ...string) *admin.Error {
	f.t.Helper()
	out, e := f.call(fn, v)
	if e == nil {
		f.t.Fatalf("%s %v: succeeded with %v, want %s", fn, v, out, typ)
	}
	if e.Type != typ {
		f.t.Fatalf("%s %v: %v, want %s", fn, v, e, typ)
	}
	for _, w := range words {
		if !strings.Contains(e.Message, w) {
			f.t.Fatalf("%s %v: message %q does not mention %q", fn, v, e.Message, w)
		}
	}
	return e
}

type obj = map[string]any

func (f *fixture) createKey(name string) (id, value string) {
	f.t.Helper()
	out := f.ok("keys", obj{"action": "CreateApiKey", "name": name})
	return out["id"].(string), out["value"].(string)
}

func (f *fixture) createPlan(extra obj) string {
	f.t.Helper()
	in := obj{"action": "CreateUsagePlan", "name": "plan"}
	for k, v := range extra {
		in[k] = v
	}
	return f.ok("plans", in)["id"].(string)
}

func stages(names ...string) []obj {
	var out []obj
	for _, n := range names {
		out = append(out, obj{"apiId": "api1", "stage": n})
	}
	return out
}

func TestPayloadErrors(t *testing.T) {
	f := setup(t)
	tests := []struct {
		name, fn, payload string
		words             []string
	}{
		{"not JSON", "keys", `{"action": "GetApiKeys",`, []string{"not valid JSON"}},
		{"empty", "keys", ``, []string{"empty"}},
		{"not an object", "plans", `[1, 2]`, []string{"JSON object"}},
		{"no action", "keys", `{"name": "x"}`, []string{`"action"`, "CreateApiKey", "ImportApiKeys"}},
		{"unknown action", "keys", `{"action": "CreateApiKeys"}`, []string{"unknown action", "CreateApiKey"}},
		{"action of another function", "keys", `{"action": "GetUsage"}`, []string{"usage function", "functions/usage"}},
		{"plan action on keys", "keys", `{"action": "CreateUsagePlan", "name": "x"}`, []string{"plans function"}},
		{"unknown field", "keys", `{"action": "CreateApiKey", "nmae": "x"}`, []string{`"nmae"`, "name, description, enabled"}},
		{"wrong type", "keys", `{"action": "CreateApiKey", "enabled": "yes"}`, []string{`"enabled"`, "true or false"}},
		{"wrong nested type", "plans", `{"action": "CreateUsagePlan", "name": "p", "throttle": {"burstLimit": 2.5}}`, []string{"throttle.burstLimit", "whole number"}},
		{"unknown nested field", "plans", `{"action": "CreateUsagePlan", "name": "p", "quota": {"limits": 5}}`, []string{`"limits"`}},
		{"trailing data", "keys", `{"action": "GetApiKeys"} {}`, []string{"after its JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, e := f.raw(tt.fn, tt.payload)
			if e == nil || e.Type != admin.BadRequest {
				t.Fatalf("got %v, want a BadRequestException", e)
			}
			for _, w := range tt.words {
				if !strings.Contains(e.Message, w) {
					t.Fatalf("message %q does not mention %q", e.Message, w)
				}
			}
		})
	}
}

func TestInvokeReturnsTheErrorType(t *testing.T) {
	f := setup(t)
	_, err := f.handlers["keys"].Invoke(context.Background(), []byte(`{"action":"GetApiKey","apiKey":"nope"}`))
	b, _ := json.Marshal(err)
	var got struct{ ErrorType, ErrorMessage string }
	json.Unmarshal(b, &got)
	if got.ErrorType != admin.NotFound || !strings.Contains(got.ErrorMessage, "nope") {
		t.Fatalf("Invoke error = %s", b)
	}
}

func TestCreateApiKey(t *testing.T) {
	f := setup(t)
	out := f.ok("keys", obj{"action": "CreateApiKey", "name": "acme", "description": "d", "customerId": "c-1", "tags": obj{"team": "a"}})
	value, _ := out["value"].(string)
	if keys.Check(value) != nil || !strings.HasPrefix(value, keys.Prefix) {
		t.Fatalf("generated value %q", value)
	}
	for field, want := range map[string]any{"name": "acme", "description": "d", "customerId": "c-1", "enabled": true, "createdDate": "2026-11-21T12:00:00+00:00"} {
		if out[field] != want {
			t.Errorf("%s = %v, want %v", field, out[field], want)
		}
	}
	if sk, ok := out["stageKeys"].([]any); !ok || len(sk) != 0 {
		t.Errorf("stageKeys = %v, want []", out["stageKeys"])
	}
	got := f.ok("keys", obj{"action": "GetApiKey", "apiKey": out["id"]})
	if _, leaked := got["value"]; leaked {
		t.Fatal("GetApiKey returned the value")
	}
	if got["name"] != "acme" {
		t.Fatalf("GetApiKey = %v", got)
	}

	own := f.ok("keys", obj{"action": "CreateApiKey", "value": "apikey1234abcdefghij0123456789", "enabled": false})
	if own["value"] != "apikey1234abcdefghij0123456789" || own["enabled"] != false {
		t.Fatalf("own value: %v", own)
	}
	f.fails("keys", obj{"action": "CreateApiKey", "value": "apikey1234abcdefghij0123456789"}, admin.Conflict, own["id"].(string))
	f.fails("keys", obj{"action": "CreateApiKey", "value": "short"}, admin.BadRequest, "value", "20 to 128")
	f.fails("keys", obj{"action": "CreateApiKey", "value": keys.Prefix + strings.Repeat("a", 28)}, admin.BadRequest, "checksum")
	f.fails("keys", obj{"action": "CreateApiKey", "name": strings.Repeat("n", 1025)}, admin.BadRequest, "name", "1024")
	f.fails("keys", obj{"action": "CreateApiKey", "tags": obj{"aws:x": "y"}}, admin.BadRequest, "aws:")
	f.fails("keys", obj{"action": "CreateApiKey", "tags": obj{"a": "b!"}}, admin.BadRequest, "tags may contain")
	f.fails("keys", obj{"action": "CreateApiKey", "stageKeys": []string{"api/prod"}}, admin.BadRequest, "CreateUsagePlanKey")
	f.fails("keys", obj{"action": "GetApiKey", "apiKey": out["id"], "includeValue": true}, admin.BadRequest, "hash", "CreateApiKey")
	f.fails("keys", obj{"action": "GetApiKeys", "includeValues": true}, admin.BadRequest, "hash")
	f.fails("keys", obj{"action": "GetApiKey", "apiKey": "nope"}, admin.NotFound, "nope")
	f.fails("keys", obj{"action": "GetApiKey"}, admin.BadRequest, "apiKey")
}

func TestGetApiKeysPages(t *testing.T) {
	f := setup(t)
	want := map[string]bool{}
	for i := range 60 {
		name := "beta"
		if i%3 == 0 {
			name = "alpha"
		}
		id, _ := f.createKey(name)
		want[id] = true
		if i%10 == 0 {
			f.ok("keys", obj{"action": "UpdateApiKey", "apiKey": id, "patchOperations": []obj{{"op": "replace", "path": "/customerId", "value": "vip"}}})
		}
	}
	seen := map[string]bool{}
	position, last := "", ""
	for pages := 0; ; pages++ {
		out := f.ok("keys", obj{"action": "GetApiKeys", "limit": 25, "position": position})
		for _, it := range out["items"].([]any) {
			id := it.(obj)["id"].(string)
			if seen[id] || id <= last {
				t.Fatalf("page %d: %s repeated or out of order", pages, id)
			}
			seen[id], last = true, id
		}
		p, more := out["position"].(string)
		if !more {
			break
		}
		position = p
	}
	if len(seen) != len(want) {
		t.Fatalf("paged through %d keys, want %d", len(seen), len(want))
	}
	alpha := f.ok("keys", obj{"action": "GetApiKeys", "nameQuery": "alp", "limit": 500})
	if n := len(alpha["items"].([]any)); n != 20 {
		t.Fatalf("nameQuery alp: %d keys, want 20", n)
	}
	vip := f.ok("keys", obj{"action": "GetApiKeys", "customerId": "vip", "limit": 500})
	if n := len(vip["items"].([]any)); n != 6 {
		t.Fatalf("customerId vip: %d keys, want 6", n)
	}
	f.fails("keys", obj{"action": "GetApiKeys", "position": "garbage"}, admin.BadRequest, "position")
	f.fails("keys", obj{"action": "GetApiKeys", "limit": 0}, admin.BadRequest, "limit")
	f.fails("keys", obj{"action": "GetApiKeys", "limit": 501}, admin.BadRequest, "limit")
}

func TestUpdateApiKey(t *testing.T) {
	f := setup(t)
	id, _ := f.createKey("k")
	patch := func(ops ...obj) obj { return obj{"action": "UpdateApiKey", "apiKey": id, "patchOperations": ops} }
	out := f.ok("keys", patch(
		obj{"op": "replace", "path": "/name", "value": "renamed"},
		obj{"op": "replace", "path": "/description", "value": "new"},
		obj{"op": "replace", "path": "/enabled", "value": "FALSE"},
		obj{"op": "replace", "path": "/customerId", "value": "c"},
	))
	if out["name"] != "renamed" || out["description"] != "new" || out["enabled"] != false || out["customerId"] != "c" {
		t.Fatalf("UpdateApiKey = %v", out)
	}
	f.fails("keys", patch(obj{"op": "replace", "path": "/enabled", "value": "nope"}), admin.BadRequest, `"true" or "false"`)
	f.fails("keys", patch(obj{"op": "replace", "path": "/enabled", "value": false}), admin.BadRequest, "patchOperations[0].value", "string")
	f.fails("keys", patch(obj{"op": "add", "path": "/name", "value": "x"}), admin.BadRequest, "replace")
	f.fails("keys", patch(obj{"op": "replace", "path": "/value", "value": "x"}), admin.BadRequest, "cannot change")
	f.fails("keys", patch(obj{"op": "replace", "path": "/stages", "value": "x"}), admin.BadRequest, "/name, /description")
	f.fails("keys", patch(obj{"op": "replace", "path": "/name"}), admin.BadRequest, "needs a value")
	f.fails("keys", patch(), admin.BadRequest, "patchOperations is empty")
	f.fails("keys", obj{"action": "UpdateApiKey", "apiKey": "nope", "patchOperations": []obj{{"op": "replace", "path": "/name", "value": "x"}}}, admin.NotFound)
	// A failed patch changes nothing.
	f.fails("keys", patch(obj{"op": "replace", "path": "/name", "value": "half"}, obj{"op": "replace", "path": "/bogus", "value": "x"}), admin.BadRequest)
	if got := f.ok("keys", obj{"action": "GetApiKey", "apiKey": id}); got["name"] != "renamed" {
		t.Fatalf("a rejected patch was half-applied: %v", got)
	}
}

func TestDeleteApiKey(t *testing.T) {
	f := setup(t)
	id, _ := f.createKey("k")
	plan := f.createPlan(obj{"apiStages": stages("prod")})
	f.ok("plans", obj{"action": "CreateUsagePlanKey", "usagePlanId": plan, "keyId": id, "keyType": "API_KEY"})
	if out := f.ok("keys", obj{"action": "DeleteApiKey", "apiKey": id}); len(out) != 0 {
		t.Fatalf("DeleteApiKey = %v, want {}", out)
	}
	f.fails("keys", obj{"action": "GetApiKey", "apiKey": id}, admin.NotFound)
	f.fails("keys", obj{"action": "DeleteApiKey", "apiKey": id}, admin.NotFound)
	if out := f.ok("plans", obj{"action": "GetUsagePlanKeys", "usagePlanId": plan}); len(out["items"].([]any)) != 0 {
		t.Fatalf("the deleted key is still in its plan: %v", out)
	}
	f.ok("plans", obj{"action": "UpdateUsagePlan", "usagePlanId": plan, "patchOperations": []obj{{"op": "remove", "path": "/apiStages", "value": "api1:prod"}}})
	f.ok("plans", obj{"action": "DeleteUsagePlan", "usagePlanId": plan})
}
