package admin_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
)

// TestAPlanWriteLandingAfterTheRepair: UpdateUsagePlan adding or removing
// a stage is cut by its timeout while DynamoDB still holds its plan write,
// and the repair (UpdateUsagePlan with no patch operations) runs before
// that write lands. The held write is conditional on the version the cut
// call read, and the repair moves the version, so it cannot land after
// the repair and leave the plan's stages and its keys' claims disagreeing
// with nobody to settle them. (If on a busy machine it lands before the
// repair reads the plan, the repair finishes it.) Either way plans and keys
// agree with no further call, and the call repeated converges.
func TestAPlanWriteLandingAfterTheRepair(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		op     string
		stages []string // the plan's before the call
		beta   bool     // whether beta admits once the call is repeated
	}{
		{"add", []string{"prod"}, true},
		{"remove", []string{"prod", "beta"}, false},
	} {
		t.Run(c.op, func(t *testing.T) {
			t.Parallel()
			f := setupFaults(t)
			plan := f.newPlan(obj{"apiStages": stages(c.stages...)})
			keys := []string{f.newKey(plan), f.newKey(plan)}
			f.proxy.Delay = 3 * time.Second
			// The function times out once DynamoDB has the plan's write.
			ctx, timeout := context.WithCancel(context.Background())
			write := faulting(target{"the plan's write", "PutItem", []string{planPK(plan)}}, dynamotest.Late, 1)
			f.proxy.SetRule(func(call dynamotest.Call) dynamotest.Fault {
				fault := write(call)
				if fault == dynamotest.Late {
					timeout()
				}
				return fault
			})
			in := obj{"action": "UpdateUsagePlan", "usagePlanId": plan, "patchOperations": []obj{{"op": c.op, "path": "/apiStages", "value": "api1:beta"}}}
			payload, _ := json.Marshal(in)
			_, e := f.handlers["plans"].Handle(ctx, payload)
			timeout()
			f.proxy.SetRule(nil)
			if e == nil || f.proxy.Faults()[dynamotest.Late] != 1 {
				t.Fatalf("answered %v with faults %v; want the call cut while its plan write was held", e, f.proxy.Faults())
			}
			f.ok("plans", obj{"action": "UpdateUsagePlan", "usagePlanId": plan})
			f.proxy.WaitLate()

			f.verify(t)
			p, err := f.direct.Plan(context.Background(), plan)
			if err != nil {
				t.Fatal(err)
			}
			landed := len(p.APIStages) != len(c.stages)
			t.Logf("the held write landed: %v", landed)
			stageAdmits(t, f, keys, "beta", landed == c.beta)
			stageAdmits(t, f, keys, "prod", true)

			f.ok("plans", in)
			f.verify(t)
			stageAdmits(t, f, keys, "beta", c.beta)
		})
	}
}
