package admin_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/admin"
)

func keyARN(id string) string  { return "arn:aws:apigateway:eu-west-3::/apikeys/" + id }
func planARN(id string) string { return "arn:aws:apigateway:us-east-1::/usageplans/" + id }

func TestKeyTags(t *testing.T) {
	f := setup(t)
	id, _ := f.createKey("k")
	arn := keyARN(id)
	tags := func() obj { return f.ok("keys", obj{"action": "GetTags", "resourceArn": arn})["tags"].(obj) }
	if got := tags(); len(got) != 0 {
		t.Fatalf("a new key's tags: %v", got)
	}
	if out := f.ok("keys", obj{"action": "TagResource", "resourceArn": arn, "tags": obj{"team": "a", "env": "prod"}}); len(out) != 0 {
		t.Fatalf("TagResource = %v, want {}", out)
	}
	f.ok("keys", obj{"action": "TagResource", "resourceArn": arn, "tags": obj{"team": "b"}})
	if got := tags(); len(got) != 2 || got["team"] != "b" || got["env"] != "prod" {
		t.Fatalf("tags after two TagResource: %v", got)
	}
	f.ok("keys", obj{"action": "UntagResource", "resourceArn": arn, "tagKeys": []string{"env", "never-set"}})
	if got := f.ok("keys", obj{"action": "GetApiKey", "apiKey": id})["tags"].(obj); len(got) != 1 || got["team"] != "b" {
		t.Fatalf("GetApiKey's tags after UntagResource: %v", got)
	}
	// The region is not checked; the partition may be another.
	f.ok("keys", obj{"action": "GetTags", "resourceArn": "arn:aws-cn:apigateway:cn-north-1::/apikeys/" + id, "limit": 10, "position": "x"})

	f.fails("keys", obj{"action": "TagResource", "resourceArn": arn, "tags": obj{"tollgate:enforce": "shadow"}}, admin.BadRequest, "usage plans' tags")
	f.fails("keys", obj{"action": "CreateApiKey", "tags": obj{"tollgate:x": "y"}}, admin.BadRequest, "reserved")
	f.fails("keys", obj{"action": "TagResource", "resourceArn": arn, "tags": obj{"aws:x": "y"}}, admin.BadRequest, "aws:")
	f.fails("keys", obj{"action": "TagResource", "resourceArn": arn, "tags": obj{}}, admin.BadRequest, "tags is empty")
	f.fails("keys", obj{"action": "UntagResource", "resourceArn": arn}, admin.BadRequest, "tagKeys is empty")
	many := obj{}
	for i := range 50 {
		many[fmt.Sprintf("t%d", i)] = "v"
	}
	f.fails("keys", obj{"action": "TagResource", "resourceArn": arn, "tags": many}, admin.BadRequest, "at most 50")
	f.fails("keys", obj{"action": "TagResource", "resourceArn": keyARN("nope"), "tags": obj{"a": "b"}}, admin.NotFound, "nope")
	f.fails("keys", obj{"action": "GetTags", "resourceArn": keyARN("nope")}, admin.NotFound, "nope")
}

func TestPlanTags(t *testing.T) {
	f := setup(t)
	id := f.createPlan(obj{"apiStages": stages("prod"), "tags": obj{"tier": "gold"}})
	arn := planARN(id)
	version := func() int64 {
		p, err := f.tbl.Plan(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return p.Version
	}
	before := version()
	f.ok("plans", obj{"action": "TagResource", "resourceArn": arn, "tags": obj{"tollgate:enforce": "shadow"}})
	if got := f.ok("plans", obj{"action": "GetUsagePlan", "usagePlanId": id})["tags"].(obj); got["tollgate:enforce"] != "shadow" || got["tier"] != "gold" {
		t.Fatalf("GetUsagePlan's tags: %v", got)
	}
	// The plan's version moves, so that decisions see the change next time.
	if v := version(); v != before+1 {
		t.Fatalf("plan version %d after tagging, want %d", v, before+1)
	}
	f.ok("plans", obj{"action": "UntagResource", "resourceArn": arn, "tagKeys": []string{"tollgate:enforce"}})
	if got := f.ok("plans", obj{"action": "GetTags", "resourceArn": arn})["tags"].(obj); len(got) != 1 {
		t.Fatalf("tags after UntagResource: %v", got)
	}

	// tollgate:shards is fixed when the plan is created: restating it is
	// fine, changing or removing it is not.
	sharded := f.createPlan(obj{"throttle": obj{"rateLimit": 1200, "burstLimit": 100}})
	if got := f.ok("plans", obj{"action": "GetTags", "resourceArn": planARN(sharded)})["tags"].(obj); got["tollgate:shards"] != "4" {
		t.Fatalf("a 1,200/s plan's tags: %v", got)
	}
	f.ok("plans", obj{"action": "TagResource", "resourceArn": planARN(sharded), "tags": obj{"tollgate:shards": "4"}})
	f.fails("plans", obj{"action": "TagResource", "resourceArn": planARN(sharded), "tags": obj{"tollgate:shards": "8"}}, admin.BadRequest, "cannot change", "4 meter item")
	f.fails("plans", obj{"action": "UntagResource", "resourceArn": planARN(sharded), "tagKeys": []string{"tollgate:shards"}}, admin.BadRequest, "cannot change")
	f.fails("plans", obj{"action": "TagResource", "resourceArn": arn, "tags": obj{"tollgate:shards": "2"}}, admin.BadRequest, "cannot change", "1 meter item")

	// tollgate:alerts is the notifier's: its thresholds are checked.
	f.ok("plans", obj{"action": "TagResource", "resourceArn": arn, "tags": obj{"tollgate:alerts": "50/80/100"}})
	f.fails("plans", obj{"action": "TagResource", "resourceArn": arn, "tags": obj{"tollgate:alerts": "80/120"}}, admin.BadRequest, "tollgate:alerts", "1 to 100")

	for _, bad := range []obj{
		{"tollgate:enforce": "maybe"},
		{"tollgate:enforce": "Shadow"},
		{"tollgate:mode": "shadow"},
		{"Tollgate:Enforce": "shadow"},
	} {
		f.fails("plans", obj{"action": "TagResource", "resourceArn": arn, "tags": bad}, admin.BadRequest, "tollgate:")
		f.fails("plans", obj{"action": "CreateUsagePlan", "name": "p", "tags": bad}, admin.BadRequest, "tollgate:")
	}
	f.fails("plans", obj{"action": "TagResource", "resourceArn": planARN("nope"), "tags": obj{"a": "b"}}, admin.NotFound, "nope")
}

func TestTagResourceARNs(t *testing.T) {
	f := setup(t)
	keyID, _ := f.createKey("k")
	planID := f.createPlan(nil)
	cases := []struct {
		fn, arn string
		words   []string
	}{
		{"keys", planARN(planID), []string{"usage plans' tags", "plans function", "functions/plans"}},
		{"plans", keyARN(keyID), []string{"API keys' tags", "keys function", "functions/keys"}},
		{"keys", "arn:aws:apigateway:us-east-1::/restapis/a1b2c3", []string{"usageplans", "apikeys", "not restapis"}},
		{"keys", "", []string{"resourceArn is required"}},
		{"keys", "a1b2c3", []string{"resourceArn must be"}},
		{"keys", "arn:aws:execute-api:us-east-1::/apikeys/x", []string{"resourceArn must be"}},
		{"plans", "arn:aws:apigateway:us-east-1:123456789012:/usageplans/x", []string{"resourceArn must be"}},
		{"plans", "arn:aws:apigateway:us-east-1::/usageplans/x/keys", []string{"resourceArn must be"}},
		{"plans", "arn:aws:apigateway:us-east-1::/usageplans/", []string{"resourceArn must be"}},
	}
	for _, c := range cases {
		for _, action := range []obj{
			{"action": "GetTags"},
			{"action": "TagResource", "tags": obj{"a": "b"}},
			{"action": "UntagResource", "tagKeys": []string{"a"}},
		} {
			action["resourceArn"] = c.arn
			f.fails(c.fn, action, admin.BadRequest, c.words...)
		}
	}
}
