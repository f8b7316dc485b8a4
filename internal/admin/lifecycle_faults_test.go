package admin_test

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// The key lifecycle's writes join the fault tests (faults_test.go): under
// every fault and cut, the call either succeeds or says to try again, the
// same call repeated succeeds, keys and plans agree, and decisions follow.
func init() {
	scenarios = append(scenarios,
		scenario{name: "RotateApiKey with clientToken", setup: func(f *faultFixture) *trial {
			plan := f.newPlan(obj{"apiStages": stages("prod")})
			key := f.newKey(plan)
			return &trial{
				fn: "keys", plan: plan,
				// A repeat replaces the value the first call made, which
				// nobody received, and keeps the old value's grace period.
				in:      obj{"action": "RotateApiKey", "apiKey": key, "gracePeriod": 3600, "clientToken": "deploy-1"},
				targets: []target{{"the rotation", "TransactWriteItems", []string{`"KEY#` + key + `"`}}},
				check: func(t *testing.T) {
					stageAdmits(t, f, []string{key}, "prod", true) // the old value, in its grace period
				},
			}
		}},
		scenario{name: "RotateApiKey to an own value", setup: func(f *faultFixture) *trial {
			plan := f.newPlan(obj{"apiStages": stages("prod")})
			key := f.newKey(plan)
			own := "rotated0123456789abcdef-" + key
			return &trial{
				fn: "keys", plan: plan,
				in:      obj{"action": "RotateApiKey", "apiKey": key, "gracePeriod": 0, "value": own},
				targets: []target{{"the rotation", "TransactWriteItems", []string{`"KEY#` + key + `"`}}},
				check: func(t *testing.T) {
					stageAdmits(t, f, []string{key}, "prod", false) // the old value: no grace period
					f.values[key] = own
					stageAdmits(t, f, []string{key}, "prod", true)
				},
			}
		}},
		scenario{name: "TagResource switching a plan to enforce", repair: true, setup: func(f *faultFixture) *trial {
			plan := f.newPlan(obj{"apiStages": stages("prod"), "quota": obj{"limit": 1, "period": "DAY"}, "tags": obj{"tollgate:enforce": "shadow"}})
			keys := []string{f.newKey(plan), f.newKey(plan)}
			for _, k := range keys {
				if n := f.admits(k, "prod", 3); n != 3 {
					f.t.Fatalf("warm-up in shadow: %d of 3 allowed", n)
				}
			}
			return &trial{
				fn: "plans", plan: plan,
				in:      obj{"action": "TagResource", "resourceArn": "arn:aws:apigateway:us-east-1::/usageplans/" + plan, "tags": obj{"tollgate:enforce": "enforce"}},
				targets: []target{{"the plan's write", "PutItem", []string{planPK(plan)}}, {"a meter's sync", "UpdateItem", []string{store.PartitionMeter}}},
				check: func(t *testing.T) {
					stageAdmits(t, f, keys, "prod", false) // over the quota, now refused
				},
			}
		}},
	)
}

// A rotation that fails with a generated value and no clientToken says
// that sending it again is a second rotation; with a clientToken the
// usual advice, to send the same request again, holds.
func TestRotationFailureSaysWhetherToRepeat(t *testing.T) {
	f := setupFaults(t)
	key := f.newKey("")
	f.proxy.SetRule(func(c dynamotest.Call) dynamotest.Fault {
		if c.Op == "TransactWriteItems" {
			return dynamotest.ErrorBefore
		}
		return dynamotest.Pass
	})
	e := f.fails("keys", obj{"action": "RotateApiKey", "apiKey": key, "gracePeriod": 60}, admin.ServiceUnavailable, "rotates again", "clientToken")
	t.Log(e.Message)
	e = f.fails("keys", obj{"action": "RotateApiKey", "apiKey": key, "gracePeriod": 60, "clientToken": "t"}, admin.ServiceUnavailable, "send the same request again")
	if strings.Contains(e.Message, "rotates again") {
		t.Fatalf("with a clientToken: %s", e.Message)
	}
	f.proxy.SetRule(nil)
}
