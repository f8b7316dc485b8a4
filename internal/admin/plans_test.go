package admin_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func TestCreateUsagePlanValidates(t *testing.T) {
	f := setup(t)
	out := f.ok("plans", obj{"action": "CreateUsagePlan", "name": "Basic", "description": "d",
		"apiStages": []obj{{"apiId": "api1", "stage": "prod", "throttle": obj{"/items/{id}/GET": obj{"rateLimit": 0.5, "burstLimit": 1}}}},
		"throttle":  obj{"rateLimit": 1, "burstLimit": 2}, "quota": obj{"limit": 5, "offset": 1, "period": "DAY"}, "tags": obj{"tier": "basic"}})
	want := `{"apiStages":[{"apiId":"api1","stage":"prod","throttle":{"/items/{id}/GET":{"burstLimit":1,"rateLimit":0.5}}}],"description":"d","id":"` + out["id"].(string) +
		`","name":"Basic","quota":{"limit":5,"offset":1,"period":"DAY"},"tags":{"tier":"basic"},"throttle":{"burstLimit":2,"rateLimit":1}}`
	if got, _ := json.Marshal(out); string(got) != want {
		t.Fatalf("CreateUsagePlan =\n%s\nwant\n%s", got, want)
	}
	bad := []struct {
		name  string
		in    obj
		words []string
	}{
		{"no name", obj{}, []string{"name is required"}},
		{"long name", obj{"name": string(make([]byte, 1025))}, []string{"1024"}},
		{"negative rate", obj{"name": "p", "throttle": obj{"rateLimit": -1, "burstLimit": 1}}, []string{"throttle.rateLimit"}},
		{"negative burst", obj{"name": "p", "throttle": obj{"rateLimit": 0, "burstLimit": -1}}, []string{"throttle.burstLimit"}},
		{"rate with no burst", obj{"name": "p", "throttle": obj{"rateLimit": 5}}, []string{"burstLimit must be at least 1"}},
		{"no period", obj{"name": "p", "quota": obj{"limit": 5}}, []string{"quota.period"}},
		{"bad period", obj{"name": "p", "quota": obj{"limit": 5, "period": "YEAR"}}, []string{"DAY, WEEK or MONTH"}},
		{"negative limit", obj{"name": "p", "quota": obj{"limit": -1, "period": "DAY"}}, []string{"quota.limit"}},
		{"offset above limit", obj{"name": "p", "quota": obj{"limit": 5, "offset": 6, "period": "DAY"}}, []string{"quota.offset"}},
		{"stage without apiId", obj{"name": "p", "apiStages": []obj{{"stage": "prod"}}}, []string{"apiId and stage"}},
		{"stage twice", obj{"name": "p", "apiStages": []obj{{"apiId": "a", "stage": "s"}, {"apiId": "a", "stage": "s"}}}, []string{"twice"}},
		{"bad route key", obj{"name": "p", "apiStages": []obj{{"apiId": "a", "stage": "s", "throttle": obj{"GET /items": obj{"rateLimit": 1, "burstLimit": 1}}}}}, []string{"/path/METHOD"}},
		{"bad route throttle", obj{"name": "p", "apiStages": []obj{{"apiId": "a", "stage": "s", "throttle": obj{"/items/GET": obj{"rateLimit": 1}}}}}, []string{`throttle["/items/GET"]`, "burstLimit"}},
		{"bad tag", obj{"name": "p", "tags": obj{"": "x"}}, []string{"tag key"}},
		{"shards not a number", obj{"name": "p", "tags": obj{"tollgate:shards": "many"}}, []string{"tollgate:shards", "1 to 16"}},
		{"too many shards", obj{"name": "p", "tags": obj{"tollgate:shards": "17"}}, []string{"tollgate:shards", "1 to 16"}},
		{"bad alert thresholds", obj{"name": "p", "tags": obj{"tollgate:alerts": "80,120"}}, []string{"tollgate:alerts", "1 to 100"}},
		{"shards above burst", obj{"name": "p", "throttle": obj{"rateLimit": 10, "burstLimit": 3}, "tags": obj{"tollgate:shards": "4"}},
			[]string{"burstLimit must be at least 4"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			tt.in["action"] = "CreateUsagePlan"
			f.fails("plans", tt.in, admin.BadRequest, tt.words...)
		})
	}
}

// TestHotPlansAreSharded checks the shard count CreateUsagePlan chooses
// and shows, and that an update cannot leave a shard without a token.
func TestHotPlansAreSharded(t *testing.T) {
	f := setup(t)
	for _, tt := range []struct {
		throttle obj
		tags     obj
		want     any // the tag in the answer; nil for none
	}{
		{obj{"rateLimit": 100, "burstLimit": 50}, nil, nil},
		{obj{"rateLimit": 1200, "burstLimit": 400}, nil, "4"},
		{obj{"rateLimit": 1e6, "burstLimit": 5000}, obj{"team": "a"}, "16"},
		{obj{"rateLimit": 2000, "burstLimit": 400}, obj{"tollgate:shards": "2"}, "2"},
		{obj{"rateLimit": 10, "burstLimit": 10}, obj{"tollgate:shards": "3"}, "3"},
	} {
		out := f.ok("plans", obj{"action": "CreateUsagePlan", "name": "p", "throttle": tt.throttle, "tags": tt.tags})
		tags, _ := out["tags"].(obj)
		if got := tags["tollgate:shards"]; got != tt.want {
			t.Errorf("throttle %v, tags %v: tollgate:shards = %v, want %v", tt.throttle, tt.tags, got, tt.want)
		}
		if tt.tags["team"] != nil && tags["team"] != "a" {
			t.Errorf("the user's tags were lost: %v", tags)
		}
	}
	id := f.createPlan(obj{"throttle": obj{"rateLimit": 1200, "burstLimit": 400}})
	f.fails("plans", obj{"action": "UpdateUsagePlan", "usagePlanId": id, "patchOperations": []obj{{"op": "replace", "path": "/throttle/burstLimit", "value": "3"}}},
		admin.BadRequest, "burstLimit must be at least 4")
	// Lowering the rate keeps the shards: they never change.
	out := f.ok("plans", obj{"action": "UpdateUsagePlan", "usagePlanId": id, "patchOperations": []obj{{"op": "replace", "path": "/throttle/rateLimit", "value": "10"}}})
	if tags, _ := out["tags"].(obj); tags["tollgate:shards"] != "4" {
		t.Errorf("after an update: tags %v", out["tags"])
	}
}

func TestGetUsagePlans(t *testing.T) {
	f := setup(t)
	var ids []string
	for range 7 {
		ids = append(ids, f.createPlan(obj{"apiStages": stages(fmt.Sprint("s", len(ids)))}))
	}
	seen := map[string]bool{}
	position := ""
	for {
		out := f.ok("plans", obj{"action": "GetUsagePlans", "limit": 3, "position": position})
		for _, it := range out["items"].([]any) {
			seen[it.(obj)["id"].(string)] = true
		}
		p, more := out["position"].(string)
		if !more {
			break
		}
		position = p
	}
	if len(seen) != 7 {
		t.Fatalf("paged through %d plans, want 7", len(seen))
	}
	key, _ := f.createKey("k")
	f.ok("plans", obj{"action": "CreateUsagePlanKey", "usagePlanId": ids[2], "keyId": key, "keyType": "API_KEY"})
	f.ok("plans", obj{"action": "CreateUsagePlanKey", "usagePlanId": ids[5], "keyId": key, "keyType": "API_KEY"})
	out := f.ok("plans", obj{"action": "GetUsagePlans", "keyId": key})
	if items := out["items"].([]any); len(items) != 2 {
		t.Fatalf("plans of the key: %v", items)
	}
	f.fails("plans", obj{"action": "GetUsagePlans", "keyId": "nope"}, admin.NotFound)
	f.fails("plans", obj{"action": "GetUsagePlan", "usagePlanId": "nope"}, admin.NotFound, "nope")
}

func TestUpdateUsagePlanPaths(t *testing.T) {
	f := setup(t)
	id := f.createPlan(obj{"apiStages": stages("prod"), "throttle": obj{"rateLimit": 1, "burstLimit": 1}, "quota": obj{"limit": 10, "period": "DAY"}})
	patch := func(ops ...obj) obj {
		return obj{"action": "UpdateUsagePlan", "usagePlanId": id, "patchOperations": ops}
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	steps := []struct {
		op    obj
		field string
		want  string
	}{
		{obj{"op": "replace", "path": "/name", "value": "Gold"}, "name", `"Gold"`},
		{obj{"op": "replace", "path": "/description", "value": "more"}, "description", `"more"`},
		{obj{"op": "replace", "path": "/throttle/rateLimit", "value": "2.5"}, "throttle", `{"burstLimit":1,"rateLimit":2.5}`},
		{obj{"op": "replace", "path": "/throttle/burstLimit", "value": "5"}, "throttle", `{"burstLimit":5,"rateLimit":2.5}`},
		{obj{"op": "replace", "path": "/quota/limit", "value": "100"}, "quota", `{"limit":100,"offset":0,"period":"DAY"}`},
		{obj{"op": "replace", "path": "/quota/period", "value": "week"}, "quota", `{"limit":100,"offset":0,"period":"WEEK"}`},
		{obj{"op": "replace", "path": "/quota/offset", "value": "7"}, "quota", `{"limit":100,"offset":7,"period":"WEEK"}`},
		{obj{"op": "add", "path": "/apiStages", "value": "api1:beta"}, "apiStages", `[{"apiId":"api1","stage":"prod"},{"apiId":"api1","stage":"beta"}]`},
		{obj{"op": "replace", "path": "/apiStages/api1:prod/throttle/~1items~1{id}~1GET/burstLimit", "value": "4"}, "apiStages",
			`[{"apiId":"api1","stage":"prod","throttle":{"/items/{id}/GET":{"burstLimit":4,"rateLimit":0}}},{"apiId":"api1","stage":"beta"}]`},
		{obj{"op": "replace", "path": "/apiStages/api1:prod/throttle//items/{id}/GET/rateLimit", "value": "3"}, "apiStages",
			`[{"apiId":"api1","stage":"prod","throttle":{"/items/{id}/GET":{"burstLimit":4,"rateLimit":3}}},{"apiId":"api1","stage":"beta"}]`},
		{obj{"op": "replace", "path": "/apiStages/api1:beta/throttle", "value": `{"//GET":{"rateLimit":1,"burstLimit":1}}`}, "apiStages",
			`[{"apiId":"api1","stage":"prod","throttle":{"/items/{id}/GET":{"burstLimit":4,"rateLimit":3}}},{"apiId":"api1","stage":"beta","throttle":{"//GET":{"burstLimit":1,"rateLimit":1}}}]`},
		{obj{"op": "remove", "path": "/apiStages/api1:prod/throttle//items/{id}/GET"}, "apiStages",
			`[{"apiId":"api1","stage":"prod"},{"apiId":"api1","stage":"beta","throttle":{"//GET":{"burstLimit":1,"rateLimit":1}}}]`},
		{obj{"op": "remove", "path": "/apiStages/api1:beta/throttle"}, "apiStages", `[{"apiId":"api1","stage":"prod"},{"apiId":"api1","stage":"beta"}]`},
		{obj{"op": "remove", "path": "/apiStages", "value": "api1:beta"}, "apiStages", `[{"apiId":"api1","stage":"prod"}]`},
		{obj{"op": "remove", "path": "/throttle"}, "throttle", `null`},
		{obj{"op": "remove", "path": "/quota"}, "quota", `null`},
		{obj{"op": "replace", "path": "/quota/limit", "value": "5"}, "quota", `{"limit":5,"offset":0,"period":""}`},
	}
	for i, s := range steps {
		if i == len(steps)-1 {
			// A quota needs its period: the last step must fail and change nothing.
			f.fails("plans", patch(s.op), admin.BadRequest, "quota.period")
			continue
		}
		out := f.ok("plans", patch(s.op))
		if got := js(out[s.field]); got != s.want {
			t.Fatalf("after %v: %s = %s, want %s", s.op, s.field, got, s.want)
		}
	}
	bad := []struct {
		op    obj
		typ   string
		words []string
	}{
		{obj{"op": "replace", "path": "/id", "value": "x"}, admin.BadRequest, []string{"does not support"}},
		{obj{"op": "replace", "path": "/throttle/rateLimit", "value": "fast"}, admin.BadRequest, []string{"number"}},
		{obj{"op": "replace", "path": "/throttle/burstLimit", "value": "1.5"}, admin.BadRequest, []string{"whole number"}},
		{obj{"op": "replace", "path": "/apiStages/api1:prod/throttle//new/GET/rateLimit", "value": "1"}, admin.BadRequest, []string{"burstLimit must be at least 1", "same patchOperations"}},
		{obj{"op": "add", "path": "/apiStages", "value": "api1prod"}, admin.BadRequest, []string{"apiId:stage"}},
		{obj{"op": "replace", "path": "/apiStages/api1:nope/throttle//x/GET/rateLimit", "value": "1"}, admin.NotFound, []string{"add it first"}},
		{obj{"op": "replace", "path": "/apiStages/api1:prod/throttle//x/FETCH/rateLimit", "value": "1"}, admin.BadRequest, []string{"route throttle key"}},
		{obj{"op": "replace", "path": "/apiStages/api1:prod/throttle", "value": "not json"}, admin.BadRequest, []string{"JSON object"}},
	}
	for _, b := range bad {
		f.fails("plans", patch(b.op), b.typ, b.words...)
	}
	// Adding a stage the plan has, removing one it lacks, or no patch at
	// all changes nothing, and succeeds: a repeated call converges.
	before := f.ok("plans", obj{"action": "GetUsagePlan", "usagePlanId": id})
	for _, op := range [][]obj{
		{{"op": "add", "path": "/apiStages", "value": "api1:prod"}},
		{{"op": "remove", "path": "/apiStages", "value": "api1:nope"}},
		{},
	} {
		if out := f.ok("plans", patch(op...)); js(out) != js(before) {
			t.Fatalf("%v changed the plan: %s, was %s", op, js(out), js(before))
		}
	}
	f.fails("plans", obj{"action": "UpdateUsagePlan", "usagePlanId": "nope", "patchOperations": []obj{{"op": "replace", "path": "/name", "value": "x"}}}, admin.NotFound)
}

func TestUsagePlanKeys(t *testing.T) {
	f := setup(t)
	plan := f.createPlan(obj{"apiStages": stages("prod", "beta")})
	other := f.createPlan(obj{"apiStages": stages("beta")})
	key, _ := f.createKey("alpha-key")
	assign := func(plan, key string) obj {
		return obj{"action": "CreateUsagePlanKey", "usagePlanId": plan, "keyId": key, "keyType": "API_KEY"}
	}
	out := f.ok("plans", assign(plan, key))
	if out["id"] != key || out["type"] != "API_KEY" || out["name"] != "alpha-key" {
		t.Fatalf("CreateUsagePlanKey = %v", out)
	}
	f.fails("plans", assign(other, key), admin.Conflict, plan, "api1:beta")
	if again := f.ok("plans", assign(plan, key)); again["id"] != key {
		t.Fatalf("CreateUsagePlanKey again = %v", again)
	}
	f.fails("plans", obj{"action": "CreateUsagePlanKey", "usagePlanId": plan, "keyId": key}, admin.BadRequest, "keyType")
	f.fails("plans", assign("nope", key), admin.NotFound, "nope")
	f.fails("plans", assign(plan, "nope"), admin.NotFound, "nope")
	if got := f.ok("plans", obj{"action": "GetUsagePlanKey", "usagePlanId": plan, "keyId": key}); got["id"] != key {
		t.Fatalf("GetUsagePlanKey = %v", got)
	}
	f.fails("plans", obj{"action": "GetUsagePlanKey", "usagePlanId": other, "keyId": key}, admin.NotFound, "not in")
	f.fails("plans", obj{"action": "GetUsagePlanKey", "usagePlanId": plan, "keyId": key, "keyType": "API_KEY"}, admin.BadRequest, "keyType")
	second, _ := f.createKey("beta-key")
	f.ok("plans", assign(plan, second))
	if got := f.ok("plans", obj{"action": "GetUsagePlanKeys", "usagePlanId": plan}); len(got["items"].([]any)) != 2 {
		t.Fatalf("GetUsagePlanKeys = %v", got)
	}
	if got := f.ok("plans", obj{"action": "GetUsagePlanKeys", "usagePlanId": plan, "nameQuery": "beta"}); len(got["items"].([]any)) != 1 {
		t.Fatalf("GetUsagePlanKeys nameQuery = %v", got)
	}
	f.fails("plans", obj{"action": "DeleteUsagePlan", "usagePlanId": plan}, admin.Conflict, "DeleteUsagePlanKey")
	f.ok("plans", obj{"action": "DeleteUsagePlanKey", "usagePlanId": plan, "keyId": key})
	f.ok("plans", obj{"action": "DeleteUsagePlanKey", "usagePlanId": plan, "keyId": key}) // again: nothing to do
	f.fails("plans", obj{"action": "DeleteUsagePlanKey", "usagePlanId": plan, "keyId": "nope"}, admin.NotFound, "nope")
	f.fails("plans", obj{"action": "DeleteUsagePlanKey", "usagePlanId": "nope", "keyId": key}, admin.NotFound, "nope")
	// The stage is free now: the other plan may take it.
	f.ok("plans", assign(other, key))

	// Ten plans per key, as in API Gateway.
	limited, _ := f.createKey("busy")
	for i := range store.MaxPlansPerKey {
		f.ok("plans", assign(f.createPlan(obj{"apiStages": stages(fmt.Sprint("s", i))}), limited))
	}
	f.fails("plans", assign(f.createPlan(nil), limited), admin.LimitExceeded, "10")
}

func TestDeleteUsagePlan(t *testing.T) {
	f := setup(t)
	id := f.createPlan(obj{"apiStages": stages("prod")})
	f.fails("plans", obj{"action": "DeleteUsagePlan", "usagePlanId": id}, admin.Conflict, "path /apiStages")
	f.ok("plans", obj{"action": "UpdateUsagePlan", "usagePlanId": id, "patchOperations": []obj{{"op": "remove", "path": "/apiStages", "value": "api1:prod"}}})
	f.ok("plans", obj{"action": "DeleteUsagePlan", "usagePlanId": id})
	f.fails("plans", obj{"action": "GetUsagePlan", "usagePlanId": id}, admin.NotFound)
	f.fails("plans", obj{"action": "DeleteUsagePlan", "usagePlanId": id}, admin.NotFound)
}

func TestRacingAssignmentsThroughTheAPI(t *testing.T) {
	f := setup(t)
	key, _ := f.createKey("k")
	a, b := f.createPlan(obj{"apiStages": stages("prod")}), f.createPlan(obj{"apiStages": stages("prod")})
	var wg sync.WaitGroup
	errs := make([]*admin.Error, 2)
	for i, p := range []string{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.call("plans", obj{"action": "CreateUsagePlanKey", "usagePlanId": p, "keyId": key, "keyType": "API_KEY"})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("racing assignments: %v and %v; want exactly one to win", errs[0], errs[1])
	}
	for _, e := range errs {
		if e != nil && e.Type != admin.Conflict {
			t.Fatalf("the loser got %v, want a ConflictException", e)
		}
	}
}

// TestEmptyAPIStagesAreShown checks that a plan without stages carries
// "apiStages": [] in every answer, as API Gateway's do: scripts read
// plan["apiStages"].
func TestEmptyAPIStagesAreShown(t *testing.T) {
	f := setup(t)
	id := f.createPlan(nil)
	answers := map[string]obj{
		"CreateUsagePlan": f.ok("plans", obj{"action": "CreateUsagePlan", "name": "bare"}),
		"GetUsagePlan":    f.ok("plans", obj{"action": "GetUsagePlan", "usagePlanId": id}),
		"GetUsagePlans":   f.ok("plans", obj{"action": "GetUsagePlans"})["items"].([]any)[0].(obj),
		"UpdateUsagePlan": f.ok("plans", obj{"action": "UpdateUsagePlan", "usagePlanId": id,
			"patchOperations": []obj{{"op": "replace", "path": "/name", "value": "renamed"}}}),
	}
	for action, out := range answers {
		if stages, ok := out["apiStages"].([]any); !ok || len(stages) != 0 {
			t.Errorf("%s: apiStages = %#v, want []", action, out["apiStages"])
		}
	}
}
