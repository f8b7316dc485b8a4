package admin_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// The operations the issue found exact under faults (CreateApiKey,
// UpdateApiKey; CreateUsagePlanKey and UpdateUsage are scenarios of
// faults_test.go), and CreateUsagePlan, join the fault tests, so that they
// stay exact. Each is one transaction, which the SDK retries with its
// idempotency token; when every attempt fails, a create reads back (the
// value's hash, the plan's change token) to tell whether it landed.

func init() {
	scenarios = append(scenarios, scenario{name: "UpdateApiKey disabling a key", setup: func(f *faultFixture) *trial {
		plan := f.newPlan(obj{"apiStages": stages("prod")})
		key := f.newKey(plan)
		return &trial{
			fn: "keys", plan: plan,
			in:      obj{"action": "UpdateApiKey", "apiKey": key, "patchOperations": []obj{{"op": "replace", "path": "/enabled", "value": "false"}}},
			targets: []target{{"the update", "TransactWriteItems", []string{`"` + store.PartitionKey + key + `"`}}},
			check: func(t *testing.T) {
				stageAdmits(t, f, []string{key}, "prod", false)
				if got := f.ok("keys", obj{"action": "GetApiKey", "apiKey": key}); got["enabled"] != false {
					t.Fatalf("GetApiKey: enabled %v, want false", got["enabled"])
				}
			},
		}
	}})
}

// creates are the operations that make a resource, each with a mark that
// only its transaction's body holds.
var creates = []struct {
	name  string
	fn    string
	in    obj
	mark  string
	value bool // the key's value is given: a repeat finds it taken
}{
	{"CreateApiKey", "keys", obj{"action": "CreateApiKey", "name": "new"}, `"` + store.PartitionHash, false},
	{"CreateApiKey with a value", "keys", obj{"action": "CreateApiKey", "name": "new", "value": "own-value-0123456789abcdef"}, `"` + store.PartitionHash, true},
	{"CreateUsagePlan", "plans", obj{"action": "CreateUsagePlan", "name": "new", "apiStages": stages("beta")}, `"` + store.PartitionPlan, false},
}

// created returns the ids of the keys, or of the plans named "new", that
// the table holds.
func (f *faultFixture) created(fn string) []string {
	list := map[string]string{"keys": "GetApiKeys", "plans": "GetUsagePlans"}[fn]
	var ids []string
	for _, it := range f.ok(fn, obj{"action": list})["items"].([]any) {
		if it := it.(obj); it["name"] == "new" {
			ids = append(ids, it["id"].(string))
		}
	}
	return ids
}

// works checks that what a create answered is in the table and whole: a
// key's value admits it once the key is in a plan; a plan admits its keys
// on its stage.
func (f *faultFixture) works(t *testing.T, fn string, out obj) {
	t.Helper()
	id := out["id"].(string)
	switch fn {
	case "keys":
		f.keys, f.values[id] = append(f.keys, id), out["value"].(string)
		f.ok("plans", obj{"action": "CreateUsagePlanKey", "usagePlanId": f.plans[0], "keyId": id, "keyType": "API_KEY"})
		stageAdmits(t, f, []string{id}, "prod", true)
	case "plans":
		f.plans = append(f.plans, id)
		stageAdmits(t, f, []string{f.newKey(id)}, "beta", true)
	}
	f.verify(t)
}

// TestCreatesUnderFaults creates a key (with a generated value, and with a
// value of its own) and a plan with each fault on its transaction: once
// (the SDK's retry meets the write it already made, and the call must
// succeed) and on every attempt (the call may fail, saying to try again;
// then the same call again must succeed). Either way exactly one is
// created, whole, with the value answered; a repeat of a create with a
// value answers ConflictException naming the key.
func TestCreatesUnderFaults(t *testing.T) {
	t.Parallel()
	var tests []subtest
	for _, c := range creates {
		for _, fault := range adminFaults {
			for _, always := range []bool{false, true} {
				mode := "once"
				if always {
					mode = "always"
				} else if !fault.Applies() {
					continue
				}
				tests = append(tests, subtest{fmt.Sprintf("%s/%s/%s", c.name, fault, mode), func(t *testing.T) {
					f := setupFaults(t)
					f.newPlan(obj{"apiStages": stages("prod")})
					out, e := f.callUnderFault(t, target{c.name, "TransactWriteItems", []string{c.mark}}, fault, always, c.fn, c.in)
					if e != nil {
						out = f.ok(c.fn, c.in)
					}
					if ids := f.created(c.fn); len(ids) != 1 || ids[0] != out["id"] {
						t.Fatalf("created %v; the call answered %v", ids, out["id"])
					}
					f.works(t, c.fn, out)
					if c.value {
						f.fails(c.fn, c.in, admin.Conflict, out["id"].(string))
					}
				}})
			}
		}
	}
	runAll(t, tests)
}

// TestCreatesCutHalfWay stops each create at its transaction, before it is
// applied or just after, with every later call failing, as a Lambda timeout
// would: the call cannot tell whether it landed, and says to try again.
// Then nothing is half-made. Sent again, a create with a value of its own
// names the key the first call made; without one it makes another, as
// API Gateway's would (docs/admin-faults.md).
func TestCreatesCutHalfWay(t *testing.T) {
	t.Parallel()
	var tests []subtest
	for _, c := range creates {
		for _, how := range []dynamotest.Fault{dynamotest.ErrorBefore, dynamotest.ErrorAfter} {
			tests = append(tests, subtest{fmt.Sprintf("%s/%s", c.name, how), func(t *testing.T) {
				f := setupFaults(t)
				f.newPlan(obj{"apiStages": stages("prod")})
				var cut atomic.Bool
				tg := target{c.name, "TransactWriteItems", []string{c.mark}}
				f.proxy.SetRule(func(call dynamotest.Call) dynamotest.Fault {
					switch {
					case cut.Load():
						return dynamotest.ErrorBefore
					case tg.match(call):
						cut.Store(true)
						return how
					}
					return dynamotest.Pass
				})
				_, e := f.call(c.fn, c.in)
				f.proxy.SetRule(nil)
				if e == nil || e.Type != admin.ServiceUnavailable {
					t.Fatalf("cut short: answered %v, want a %s", e, admin.ServiceUnavailable)
				}
				first := f.created(c.fn)
				if want := map[bool]int{false: 0, true: 1}[how.Applies()]; len(first) != want {
					t.Fatalf("%d created by the call cut short, want %d", len(first), want)
				}
				for _, id := range first {
					if c.fn == "keys" {
						f.keys = append(f.keys, id)
					} else {
						f.plans = append(f.plans, id)
					}
				}
				f.verify(t)
				if c.value && len(first) == 1 {
					f.fails(c.fn, c.in, admin.Conflict, first[0])
					f.values[first[0]] = c.in["value"].(string)
					f.ok("plans", obj{"action": "CreateUsagePlanKey", "usagePlanId": f.plans[0], "keyId": first[0], "keyType": "API_KEY"})
					stageAdmits(t, f, first, "prod", true)
					f.verify(t)
					return
				}
				f.works(t, c.fn, f.ok(c.fn, c.in))
				if n := len(f.created(c.fn)); n != len(first)+1 {
					t.Fatalf("%d created in all, want %d", n, len(first)+1)
				}
			}})
		}
	}
	runAll(t, tests)
}
