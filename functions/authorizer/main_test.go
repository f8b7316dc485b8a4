package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/decisionlog"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/lambdatest"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// keyInPlan creates a key in a new plan p for api1/prod and returns its
// value.
func keyInPlan(t testing.TB, tbl *store.Table, p plans.Plan) string {
	t.Helper()
	ctx := context.Background()
	v, _ := keys.Generate()
	k := &store.Key{ID: keys.NewID(), Enabled: true, Hash: keys.Hash(v)}
	p.ID, p.Name = keys.NewID(), "binary"
	p.APIStages = []plans.APIStage{{APIID: "api1", Stage: "prod"}}
	if err := tbl.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := tbl.CreatePlan(ctx, &store.Plan{Plan: p}); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Assign(ctx, p.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBinary runs the authorizer built from this package as Lambda runs
// it: several processes, each one execution environment polling its own
// Runtime API, all against DynamoDB Local through a proxy that counts calls.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ctx := context.Background()
	bin, err := lambdatest.Build(".", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tbl := dynamotest.Store(t, dynamotest.Client(t), nil)
	proxy := dynamotest.NewProxy(t)

	const processes = 4
	// start starts the processes, reaching DynamoDB at endpoint.
	start := func(endpoint string, env ...string) []*lambdatest.Process {
		var procs []*lambdatest.Process
		for range processes {
			p, err := lambdatest.Start(bin, append([]string{"TABLE_NAME=" + tbl.Name, "AWS_ENDPOINT_URL_DYNAMODB=" + endpoint}, env...)...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Stop)
			procs = append(procs, p)
		}
		return procs
	}
	// A long deadline: these tests are not about it, and a machine busy
	// with other work starves DynamoDB Local.
	procs := start(proxy.URL, "DYNAMODB_DEADLINE=5s")

	newKey := func(p plans.Plan) string { return keyInPlan(t, tbl, p) }
	event := func(value string) []byte {
		b, _ := json.Marshal(events.APIGatewayV2CustomAuthorizerV2Request{
			Version: "2.0", Type: "REQUEST", RouteKey: "GET /items",
			Headers:        map[string]string{"x-api-key": value},
			RequestContext: events.APIGatewayV2HTTPRequestContext{APIID: "api1", Stage: "prod", RouteKey: "GET /items"},
		})
		return b
	}
	// drive invokes every process `per` times, concurrently, and counts
	// the allowed answers.
	drive := func(value string, per int) int {
		var allowed atomic.Int64
		var wg sync.WaitGroup
		payload := event(value)
		for _, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range per {
					out, err := p.Invoke(ctx, payload)
					if err != nil {
						t.Errorf("invoke: %v\n%s", err, p.Output())
						return
					}
					var resp events.APIGatewayV2CustomAuthorizerSimpleResponse
					if err := json.Unmarshal(out, &resp); err != nil {
						t.Errorf("response %q: %v", out, err)
						return
					}
					if resp.IsAuthorized {
						allowed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return int(allowed.Load())
	}

	// errorsLogged counts the decisions the processes have logged as
	// failed so far: each may hold one unit of a limit (see package meter).
	errorsLogged := func() int {
		n := 0
		for _, p := range procs {
			n += strings.Count(p.Output(), `"reason":"error"`)
		}
		return n
	}
	exact := func(t *testing.T, p plans.Plan, limit int) {
		before := errorsLogged()
		got := drive(newKey(p), 100)
		errors := errorsLogged() - before
		if got > limit || got < limit-errors {
			t.Fatalf("admitted %d of %d with %d errors, want the limit of %d", got, processes*100, errors, limit)
		}
	}
	t.Run("burst is exact", func(t *testing.T) {
		exact(t, plans.Plan{Throttle: &plans.Throttle{RateLimit: 0.001, BurstLimit: 30}}, 30)
	})
	t.Run("quota is exact", func(t *testing.T) {
		exact(t, plans.Plan{Quota: &plans.Quota{Limit: 150, Period: plans.Day}}, 150)
	})
	// Calls per decision, warm: after every instance has loaded the keys
	// and plans it meets.
	measure := func(values [][]string, per int) float64 {
		run := func(n int) {
			var wg sync.WaitGroup
			for i, p := range procs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range n {
						if _, err := p.Invoke(ctx, event(values[i][j%len(values[i])])); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		}
		run(3)
		proxy.Reset()
		run(per)
		return float64(proxy.Get("")) / float64(processes*per)
	}
	under := plans.Plan{Throttle: &plans.Throttle{RateLimit: 1e6, BurstLimit: 1e6}}
	t.Run("warm calls per decision, saturated key", func(t *testing.T) {
		v := newKey(plans.Plan{Throttle: &plans.Throttle{RateLimit: 0.001, BurstLimit: 5}})
		calls := measure([][]string{{v}, {v}, {v}, {v}}, 100)
		t.Logf("%.3f DynamoDB calls per decision (%v)", calls, proxy.Snapshot())
		if calls > 1.05 {
			t.Errorf("%.3f calls per decision, want at most 1.05", calls)
		}
	})
	t.Run("warm calls per decision, keys under their limits", func(t *testing.T) {
		// Every instance serves keys of its own at any moment, as when
		// many clients each stay under their limits.
		var values [][]string
		for range processes {
			values = append(values, []string{newKey(under), newKey(under)})
		}
		calls := measure(values, 100)
		t.Logf("%.3f DynamoDB calls per decision (%v)", calls, proxy.Snapshot())
		if calls > 1.05 {
			t.Errorf("%.3f calls per decision, want at most 1.05", calls)
		}
	})
	t.Run("calls per decision, one key under its limit in every instance at once", func(t *testing.T) {
		// The hard case: a decision overtaken by one that sampled its
		// clock later needs a second call. Two is the most there can be.
		v := newKey(under)
		calls := measure([][]string{{v}, {v}, {v}, {v}}, 100)
		t.Logf("%.3f DynamoDB calls per decision (%v)", calls, proxy.Snapshot())
		if calls > 2 {
			t.Errorf("%.3f calls per decision, more than the two a decision can take", calls)
		}
	})
	// Metrics are counted for a minute, and written when Lambda shuts the
	// instance down: SIGTERM, and SIGKILL about 500 ms later (2 s here, for
	// a busy machine).
	for _, p := range procs {
		p.Shutdown(2 * time.Second)
		data, err := decisionlog.Extract([]byte(p.Output()))
		if err != nil {
			t.Fatalf("%v\n%s", err, p.Output())
		}
		var decisions float64
		for _, d := range data {
			if d.Name == decisionlog.MetricDecisions && d.DimensionNames() == "usagePlanId" {
				decisions += d.Sum
			}
		}
		if decisions == 0 {
			t.Errorf("process wrote no metrics when shut down:\n%s", p.Output())
		}
	}

	t.Run("usage is exact when writes fail after they were applied", func(t *testing.T) {
		// Other processes, behind a proxy that answers 500 to 15 % of
		// UpdateItems after DynamoDB applied them; the SDK sends them again.
		faults := dynamotest.NewFaultProxy(t)
		faults.SetRule(dynamotest.Sometimes("UpdateItem", 0.15, dynamotest.ErrorAfter, rand.Float64))
		// Every request writes: denials are not repeated from memory. A
		// long deadline, as above: this test is about the SDK's retries.
		procs = start(faults.URL, "DENY_CACHE_TTL=0s", "DYNAMODB_DEADLINE=5s")
		const quota = 150
		value := newKey(plans.Plan{Quota: &plans.Quota{Limit: quota, Period: plans.Day}})
		admitted, requests := drive(value, 3*quota/processes), 3*quota/processes*processes
		faults.SetRule(nil)
		// One more decision each settles any write a process gave up on:
		// a decision that ends without an error has settled its item first.
		// On a busy machine one may still miss its deadline; then again.
		for round := 1; ; round++ {
			before := errorsLogged()
			admitted, requests = admitted+drive(value, 1), requests+processes
			if errorsLogged() == before {
				break
			}
			if round == 5 {
				t.Fatalf("decisions still ending in errors after %d rounds without faults", round)
			}
		}
		k, err := tbl.KeyByHash(ctx, keys.Hash(value))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		u, err := tbl.Usage(ctx, k.ID, k.Stages["api1:prod"], 1, now.Format("200601"), now.Format("200601"))
		if err != nil {
			t.Fatal(err)
		}
		used := u[0].Used[now.Format("20060102")]
		t.Logf("%d processes, %d requests, %d faults: %d admitted, %d used", processes, requests, faults.Faults()[dynamotest.ErrorAfter], admitted, used)
		if admitted > quota || used != int64(admitted) {
			t.Fatalf("admitted %d, used %d; want used equal to admitted, at most %d", admitted, used, quota)
		}
	})
}
