package admin_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// These tests run admin operations with DynamoDB failing under them, through
// a FaultProxy in front of DynamoDB Local, and check that every operation
// either succeeds or answers an error that says to try again, and that,
// once the same call has been repeated, the plans and keys agree
// (store.VerifyPlan, store.VerifyKey) and decisions follow the change: a
// real authorizer admits and denies what the plan now says.

// faultFixture serves the admin functions through a FaultProxy.
type faultFixture struct {
	*fixture
	proxy  *dynamotest.FaultProxy
	direct *store.Table // the same table without faults, for checks and decisions
	plans  []string
	keys   []string
	values map[string]string // key id -> value
}

// faultBackoff is the most the client waits between retries. Lambda's
// client waits up to admin.ClientMaxBackoff; these tests use the same
// retryer and attempts with a short wait, to keep the suite fast.
const faultBackoff = 5 * time.Millisecond

func setupFaults(t *testing.T) *faultFixture {
	t.Helper()
	proxy := dynamotest.NewFaultProxy(t)
	clk := &clock{t: now}
	direct := dynamotest.Store(t, dynamotest.Client(t), clk.Now)
	// Built as the admin functions build theirs (admin.FromEnv), so that
	// the SDK's own retryer meets the faults.
	db, err := store.NewClient(context.Background(), admin.ClientAttempts, faultBackoff, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(proxy.URL)
		o.Region = "us-east-1"
		o.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
	})
	if err != nil {
		t.Fatal(err)
	}
	f := setupOn(t, &store.Table{DB: db, Name: direct.Name, Now: clk.Now}, clk)
	return &faultFixture{fixture: f, proxy: proxy, direct: direct, values: map[string]string{}}
}

func (f *faultFixture) newPlan(in obj) string {
	id := f.createPlan(in)
	f.plans = append(f.plans, id)
	return id
}

func (f *faultFixture) newKey(plan string) string {
	id, value := f.createKey("k")
	f.keys, f.values[id] = append(f.keys, id), value
	if plan != "" {
		f.ok("plans", obj{"action": "CreateUsagePlanKey", "usagePlanId": plan, "keyId": id, "keyType": "API_KEY"})
	}
	return id
}

// verify fails the test if any plan or key disagrees with another.
func (f *faultFixture) verify(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var bad []string
	for _, id := range f.plans {
		b, err := f.direct.VerifyPlan(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		bad = append(bad, b...)
	}
	for _, id := range f.keys {
		b, err := f.direct.VerifyKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		bad = append(bad, b...)
	}
	if len(bad) > 0 {
		t.Fatalf("plans and keys disagree:\n  %s", strings.Join(bad, "\n  "))
	}
}

// admits counts how many requests to stage a fresh authorizer admits for a
// key, up to most.
func (f *faultFixture) admits(key, stage string, most int) int {
	a := newAuthorizer(f.direct, f.clock, 0)
	n := 0
	for n < most && callStage(a, f.values[key], stage) {
		n++
	}
	return n
}

// target picks calls: those of an operation whose JSON body mentions
// every mark.
type target struct {
	name  string
	op    string
	marks []string
}

func (tg target) match(c dynamotest.Call) bool {
	if c.Op != tg.op {
		return false
	}
	for _, m := range tg.marks {
		if !strings.Contains(string(c.Body), m) {
			return false
		}
	}
	return true
}

// faulting gives fault to the first n calls that tg matches, every one if
// n is 0.
func faulting(tg target, fault dynamotest.Fault, n int) dynamotest.Rule {
	var seen atomic.Int64
	return func(c dynamotest.Call) dynamotest.Fault {
		if tg.match(c) && (n == 0 || seen.Add(1) <= int64(n)) {
			return fault
		}
		return dynamotest.Pass
	}
}

var writeOps = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "TransactWriteItems": true, "BatchWriteItem": true}

// cutAt is a crash at the n-th write: that write meets how (ErrorBefore:
// not applied; ErrorAfter: applied, its answer lost), and every call after
// it fails, as for a Lambda that timed out. writes counts the writes.
func cutAt(n int64, how dynamotest.Fault, writes *atomic.Int64) dynamotest.Rule {
	return func(c dynamotest.Call) dynamotest.Fault {
		if writes.Load() >= n {
			return dynamotest.ErrorBefore
		}
		if writeOps[c.Op] && writes.Add(1) == n {
			return how
		}
		return dynamotest.Pass
	}
}

// A scenario is an admin operation on a plan and keys it sets up.
type scenario struct {
	name    string
	setup   func(f *faultFixture) *trial
	deletes bool // a repeat may find the resource gone: NotFoundException
	// repair is UpdateUsagePlan's repair (no patch operations) for plan
	// changes: the cut tests run it before repeating the call.
	repair bool
}

// trial is a scenario set up: the call, where to inject faults, and what
// must hold once the call succeeded.
type trial struct {
	fn      string
	in      obj
	plan    string
	targets []target
	check   func(t *testing.T)
}

func stageAdmits(t *testing.T, f *faultFixture, keys []string, stage string, want bool) {
	t.Helper()
	for _, k := range keys {
		if got := f.admits(k, stage, 1) == 1; got != want {
			t.Fatalf("key %s on stage %s: admitted %v, want %v", k, stage, got, want)
		}
	}
}

func planPK(id string) string { return `"` + store.PartitionPlan + id + `"` }

var scenarios = []scenario{
	{name: "UpdateUsagePlan add stage", repair: true, setup: func(f *faultFixture) *trial {
		plan := f.newPlan(obj{"apiStages": stages("prod")})
		keys := []string{f.newKey(plan), f.newKey(plan)}
		return &trial{
			fn: "plans", plan: plan,
			in: obj{"action": "UpdateUsagePlan", "usagePlanId": plan, "patchOperations": []obj{{"op": "add", "path": "/apiStages", "value": "api1:beta"}}},
			targets: []target{
				{"the plan's write", "PutItem", []string{planPK(plan)}},
				{"a claim", "TransactWriteItems", []string{"K#S#api1:beta"}},
			},
			check: func(t *testing.T) {
				stageAdmits(t, f, keys, "beta", true)
				stageAdmits(t, f, keys, "prod", true)
			},
		}
	}},
	{name: "UpdateUsagePlan remove stage", repair: true, setup: func(f *faultFixture) *trial {
		plan := f.newPlan(obj{"apiStages": stages("prod", "beta")})
		keys := []string{f.newKey(plan), f.newKey(plan)}
		return &trial{
			fn: "plans", plan: plan,
			in: obj{"action": "UpdateUsagePlan", "usagePlanId": plan, "patchOperations": []obj{{"op": "remove", "path": "/apiStages", "value": "api1:beta"}}},
			targets: []target{
				{"the plan's write", "PutItem", []string{planPK(plan)}},
				{"a claim's release", "TransactWriteItems", []string{"K#S#api1:beta"}},
			},
			check: func(t *testing.T) {
				stageAdmits(t, f, keys, "beta", false)
				stageAdmits(t, f, keys, "prod", true)
			},
		}
	}},
	{name: "UpdateUsagePlan lower a sharded quota", repair: true, setup: func(f *faultFixture) *trial {
		// Each key's 3 requests go to one shard (an instance's home
		// shard), past its share of the lowered limit, 2 of 4: without the
		// caps, the other shard would still admit its 2.
		plan := f.newPlan(obj{"apiStages": stages("prod"), "quota": obj{"limit": 8, "period": "DAY"}, "tags": obj{"tollgate:shards": "2"}})
		keys := []string{f.newKey(plan), f.newKey(plan)}
		for _, k := range keys {
			if n := f.admits(k, "prod", 3); n != 3 {
				f.t.Fatalf("warm-up: %d of 3 admitted", n)
			}
		}
		return &trial{
			fn: "plans", plan: plan,
			in: obj{"action": "UpdateUsagePlan", "usagePlanId": plan, "patchOperations": []obj{{"op": "replace", "path": "/quota/limit", "value": "4"}}},
			targets: []target{
				{"the plan's write", "PutItem", []string{planPK(plan)}},
				{"the claim on capping", "UpdateItem", []string{planPK(plan), "rt"}},
				{"a freeze or thaw", "TransactWriteItems", []string{store.PartitionMeter}},
			},
			check: func(t *testing.T) {
				// Exactly what the lowered quota leaves: 4 - 3.
				for _, k := range keys {
					if n := f.admits(k, "prod", 10); n != 1 {
						t.Fatalf("key %s: %d more admitted after lowering the quota from 8 to 4 with 3 used, want 1", k, n)
					}
				}
			},
		}
	}},
	{name: "CreateUsagePlanKey", setup: func(f *faultFixture) *trial {
		plan := f.newPlan(obj{"apiStages": stages("prod", "beta")})
		key := f.newKey("")
		return &trial{
			fn: "plans", plan: plan,
			in:      obj{"action": "CreateUsagePlanKey", "usagePlanId": plan, "keyId": key, "keyType": "API_KEY"},
			targets: []target{{"the assignment", "TransactWriteItems", []string{`"M#` + key + `"`}}},
			check: func(t *testing.T) {
				stageAdmits(t, f, []string{key}, "prod", true)
				stageAdmits(t, f, []string{key}, "beta", true)
			},
		}
	}},
	{name: "DeleteUsagePlanKey", setup: func(f *faultFixture) *trial {
		plan := f.newPlan(obj{"apiStages": stages("prod")})
		key := f.newKey(plan)
		return &trial{
			fn: "plans", plan: plan,
			in:      obj{"action": "DeleteUsagePlanKey", "usagePlanId": plan, "keyId": key},
			targets: []target{{"the removal", "TransactWriteItems", []string{`"M#` + key + `"`}}},
			check: func(t *testing.T) {
				stageAdmits(t, f, []string{key}, "prod", false)
				if out := f.ok("plans", obj{"action": "GetUsagePlanKeys", "usagePlanId": plan}); len(out["items"].([]any)) != 0 {
					t.Fatalf("the plan still lists %v", out["items"])
				}
			},
		}
	}},
	{name: "DeleteApiKey", deletes: true, setup: func(f *faultFixture) *trial {
		plan := f.newPlan(obj{"apiStages": stages("prod"), "tags": obj{"tollgate:shards": "2"}})
		key := f.newKey(plan)
		f.admits(key, "prod", 1)
		return &trial{
			fn: "keys", plan: plan,
			in: obj{"action": "DeleteApiKey", "apiKey": key},
			targets: []target{
				{"the delete", "TransactWriteItems", []string{`"KEY#` + key + `"`}},
				{"the clean-up", "DeleteItem", []string{key}},
			},
			check: func(t *testing.T) {
				stageAdmits(t, f, []string{key}, "prod", false)
				f.fails("keys", obj{"action": "GetApiKey", "apiKey": key}, admin.NotFound)
			},
		}
	}},
	{name: "DeleteUsagePlan", deletes: true, setup: func(f *faultFixture) *trial {
		plan := f.newPlan(nil)
		return &trial{
			fn: "plans", plan: plan,
			in:      obj{"action": "DeleteUsagePlan", "usagePlanId": plan},
			targets: []target{{"the delete", "TransactWriteItems", []string{planPK(plan)}}},
			check: func(t *testing.T) {
				f.fails("plans", obj{"action": "GetUsagePlan", "usagePlanId": plan}, admin.NotFound)
			},
		}
	}},
	{name: "UpdateUsage on a sharded plan", setup: func(f *faultFixture) *trial {
		plan := f.newPlan(obj{"apiStages": stages("prod"), "quota": obj{"limit": 8, "period": "DAY"}, "tags": obj{"tollgate:shards": "4"}})
		key := f.newKey(plan)
		f.admits(key, "prod", 2)
		return &trial{
			fn: "usage", plan: plan,
			in:      obj{"action": "UpdateUsage", "usagePlanId": plan, "keyId": key, "patchOperations": []obj{{"op": "replace", "path": "/remaining", "value": "5"}}},
			targets: []target{{"a shard's write", "UpdateItem", []string{store.PartitionMeter + key}}},
			check: func(t *testing.T) {
				if n := f.admits(key, "prod", 20); n != 5 {
					t.Fatalf("%d admitted after setting the remaining quota to 5, want 5", n)
				}
			},
		}
	}},
}

// subtest is a named subtest.
type subtest struct {
	name string
	run  func(t *testing.T)
}

// runAll runs subtests a few at a time. They spend their time waiting on
// DynamoDB Local, and t.Parallel would run only GOMAXPROCS of them at once.
func runAll(t *testing.T, tests []subtest) {
	const workers = 6
	next := make(chan subtest)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range next {
				t.Run(st.name, st.run)
			}
		}()
	}
	for _, st := range tests {
		next <- st
	}
	close(next)
	wg.Wait()
}

// adminFaults are the faults the admin operations meet: DynamoDB failing
// before it applies a write (HTTP 500, throttling, an endpoint that refuses
// connections) and after (HTTP 500, a reset connection).
var adminFaults = []dynamotest.Fault{dynamotest.ErrorBefore, dynamotest.Throttle, dynamotest.ThroughputExceeded,
	dynamotest.Refuse, dynamotest.ErrorAfter, dynamotest.ResetAfter}

// retryable is the error an operation may answer when DynamoDB fails
// under it: send the same call again.
// callUnderFault calls fn with fault on tg's writes, once (which the SDK's
// retry must absorb) or always (which must end in fault's retryable error
// type). It returns what the call answered; the test goes on from there.
func (f *faultFixture) callUnderFault(t *testing.T, tg target, fault dynamotest.Fault, always bool, fn string, in any) (map[string]any, *admin.Error) {
	t.Helper()
	times := 1
	if always {
		times = 0
	}
	f.proxy.SetRule(faulting(tg, fault, times))
	out, e := f.call(fn, in)
	f.proxy.SetRule(nil)
	if f.proxy.Faults()[fault] == 0 {
		t.Fatalf("the fault never met a call: the target matches nothing")
	}
	if e != nil {
		if !always {
			t.Fatalf("one %s, which the SDK retries, failed the call: %v", fault, e)
		}
		if e.Type != retryable(fault) {
			t.Fatalf("answered %v, want a %s", e, retryable(fault))
		}
	}
	return out, e
}

func retryable(fault dynamotest.Fault) string {
	if fault == dynamotest.Throttle || fault == dynamotest.ThroughputExceeded {
		return admin.TooManyRequests
	}
	return admin.ServiceUnavailable
}

// TestAdminOperationsUnderFaults runs each operation with each fault on
// every attempt of a call that matters (the call may fail, with an error
// that says to try again; then the same call again must succeed), and
// each fault that applies the write once (the SDK's retry meets the write
// it already made, and the call must succeed). Either way, plans and keys
// must then agree, and decisions follow the change. A fault that leaves
// the write unapplied, once, is the SDK's plain retry, the same for every
// call; it is not repeated here.
func TestAdminOperationsUnderFaults(t *testing.T) {
	t.Parallel()
	var tests []subtest
	for _, sc := range scenarios {
		probe := sc.setup(setupFaults(t))
		for ti := range probe.targets {
			for _, fault := range adminFaults {
				for _, always := range []bool{false, true} {
					mode := "once"
					if always {
						mode = "always"
					} else if !fault.Applies() {
						continue
					}
					name := fmt.Sprintf("%s/%s/%s/%s", sc.name, probe.targets[ti].name, fault, mode)
					tests = append(tests, subtest{name, func(t *testing.T) {
						f := setupFaults(t)
						c := sc.setup(f)
						_, e := f.callUnderFault(t, c.targets[ti], fault, always, c.fn, c.in)
						if e != nil {
							if _, e := f.call(c.fn, c.in); e != nil && !(sc.deletes && e.Type == admin.NotFound) {
								t.Fatalf("the same call again: %v", e)
							}
						}
						f.verify(t)
						c.check(t)
					}})
				}
			}
		}
	}
	runAll(t, tests)
}

// TestAdminOperationsCutHalfWay stops each operation at each of its writes,
// as a Lambda timeout or crash would: before the write, or after it was
// applied. Then the next call must finish the job: UpdateUsagePlan's repair
// (no patch operations), which must leave plans and keys in agreement, and
// the same call again, which must succeed with the change in place.
func TestAdminOperationsCutHalfWay(t *testing.T) {
	t.Parallel()
	var tests []subtest
	for _, sc := range scenarios {
		// How many writes the operation makes when nothing fails.
		var writes atomic.Int64
		f := setupFaults(t)
		c := sc.setup(f)
		f.proxy.SetRule(cutAt(1<<40, dynamotest.Pass, &writes))
		f.ok(c.fn, c.in)
		total := writes.Load()
		if total == 0 {
			t.Fatalf("%s: no writes counted", sc.name)
		}
		for n := int64(1); n <= total; n++ {
			for _, how := range []dynamotest.Fault{dynamotest.ErrorBefore, dynamotest.ErrorAfter} {
				tests = append(tests, subtest{fmt.Sprintf("%s/write %d of %d/%s", sc.name, n, total, how), func(t *testing.T) {
					f := setupFaults(t)
					c := sc.setup(f)
					var writes atomic.Int64
					f.proxy.SetRule(cutAt(n, how, &writes))
					_, e := f.call(c.fn, c.in)
					f.proxy.SetRule(nil)
					if e != nil && e.Type != admin.ServiceUnavailable {
						t.Fatalf("cut short: answered %v, want a %s", e, admin.ServiceUnavailable)
					}
					if sc.repair {
						f.ok("plans", obj{"action": "UpdateUsagePlan", "usagePlanId": c.plan})
						f.verify(t)
					}
					if _, e := f.call(c.fn, c.in); e != nil && !(sc.deletes && e.Type == admin.NotFound) {
						t.Fatalf("the same call again: %v", e)
					}
					f.verify(t)
					c.check(t)
				}})
			}
		}
	}
	runAll(t, tests)
}
