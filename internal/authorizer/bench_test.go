package authorizer_test

// Benchmarks. `make bench` runs them and BENCHMARKS.md explains the
// figures. Those against DynamoDB Local measure the design (calls per
// decision, and ratios against a baseline run alongside), not AWS's
// latencies.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// cannedMeter answers UpdateItem with the answer it last got from the real
// table once frozen, so that a decision's CPU cost can be measured alone.
type cannedMeter struct {
	store.API
	mu     sync.Mutex
	frozen bool
	last   *dynamodb.UpdateItemOutput
}

func (c *cannedMeter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return c.last, nil
	}
	out, err := c.API.UpdateItem(ctx, in, opts...)
	if err == nil {
		c.last = out
	}
	return out, err
}

// sampleEvent is events/authorizer/header-key.json carrying value, for the
// stage the fixtures' plans cover.
func sampleEvent(b *testing.B, value string) []byte {
	return sampleEventWith(b, map[string]any{"x-api-key": value})
}

// sampleEventWith is the sample with headers set (nil values removed).
func sampleEventWith(b *testing.B, headers map[string]any) []byte {
	raw, err := os.ReadFile("../../events/authorizer/header-key.json")
	if err != nil {
		b.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		b.Fatal(err)
	}
	h := ev["headers"].(map[string]any)
	for k, v := range headers {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	ev["requestContext"].(map[string]any)["apiId"] = "api1"
	out, _ := json.Marshal(ev)
	return out
}

// BenchmarkDecisionCPU is one admission from event bytes to response bytes,
// log line included, with the meter's write answered from memory: parsing,
// hashing the key, finding plan and route, the GCRA and quota arithmetic,
// and building the response.
func BenchmarkDecisionCPU(b *testing.B) {
	f := setup(b)
	f.clock.Set(time.Now())
	_, value, _ := f.keyInPlan(plans.Plan{Throttle: throttle(1e6, 1_000_000), Quota: &plans.Quota{Limit: 1 << 40, Period: plans.Month}})
	db := &cannedMeter{API: f.db}
	cfg := authorizer.Defaults
	cfg.Table = f.tbl.Name
	a := authorizer.New(cfg, db, time.Now, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	payload := sampleEvent(b, value)
	ctx := context.Background()
	check := func() {
		out, err := a.Invoke(ctx, payload)
		if err != nil || string(out[:20]) != `{"isAuthorized":true` {
			b.Fatalf("decision: %s, %v", out, err)
		}
	}
	check() // loads the key and plan
	db.frozen = true
	check()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		a.Invoke(ctx, payload)
	}
}

// reportCPU reports the process's CPU time (user and system) per
// operation as cpu-ns/op: on a machine busy with other work, ns/op counts
// the time spent waiting for a core too, and this does not.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
	}
}

// A scenario is a load on DynamoDB Local: a plan, and how many keys in it.
type scenario struct {
	name string
	plan plans.Plan
	keys int
}

var scenarios = []scenario{
	{"under-limit", plans.Plan{Throttle: throttle(1e6, 1_000_000)}, 1},
	{"saturated", plans.Plan{Throttle: throttle(1, 1)}, 1},
	{"distinct-keys", plans.Plan{Throttle: throttle(100, 100)}, 10_000},
	{"quota-exhausted", plans.Plan{Quota: &plans.Quota{Limit: 1, Period: plans.Month}}, 1},
}

// deal deals keys out to instances. Each instance serves its own slice of
// many keys, as instances do once warm: warming every instance for every
// key would only time the warm-up.
func deal(all []string, instances int) [][]string {
	out := make([][]string, instances)
	for i := range out {
		if len(all) == 1 {
			out[i] = all
			continue
		}
		for j := i; j < len(all); j += instances {
			out[i] = append(out[i], all[j])
		}
	}
	return out
}

// manyKeys makes n keys in a new plan, through the store as the admin
// functions do, 32 at a time.
func manyKeys(b *testing.B, f *fixture, p plans.Plan, n int) []string {
	ctx := context.Background()
	planID := f.newPlan(p)
	values := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range values {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			v, _ := keys.Generate()
			k := &store.Key{ID: keys.NewID(), Enabled: true, Hash: keys.Hash(v)}
			if err := f.tbl.CreateKey(ctx, k); err != nil {
				b.Error(err)
				return
			}
			if err := f.tbl.Assign(ctx, planID, k.ID); err != nil {
				b.Error(err)
				return
			}
			values[i] = v
		}()
	}
	wg.Wait()
	return values
}

// A decider makes decisions for one instance.
type decider interface {
	decide(ctx context.Context, value string) bool
}

type tollgate struct{ a *authorizer.Authorizer }

func (t tollgate) decide(ctx context.Context, value string) bool {
	return t.a.Authorize(ctx, request(value)).IsAuthorized
}

// warm makes one decider per instance and has each decide its keys once.
func warm(instances int, values [][]string, newDecider func() decider) []decider {
	deciders := make([]decider, instances)
	var wg sync.WaitGroup
	for i := range deciders {
		deciders[i] = newDecider()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, v := range values[i] {
				deciders[i].decide(context.Background(), v)
			}
		}()
	}
	wg.Wait()
	return deciders
}

// runDecisions times b.N decisions spread over the deciders, and reports
// decisions a second and DynamoDB calls a decision.
func runDecisions(b *testing.B, f *fixture, deciders []decider, values [][]string) {
	ctx := context.Background()
	f.calls.Reset()
	b.ResetTimer()
	start := time.Now()
	per := (b.N + len(deciders) - 1) / len(deciders)
	var wg sync.WaitGroup
	for i, d := range deciders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vs := values[i]
			for j := range per {
				d.decide(ctx, vs[j%len(vs)])
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	decisions := float64(per * len(deciders))
	b.ReportMetric(decisions/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(f.calls.Get(""))/decisions, "calls/decision")
	b.ReportMetric(0, "ns/op") // the rate says it; ns/op of a parallel run misleads
}

// BenchmarkDecisions runs Tollgate's authorizer and the baseline limiter
// side by side on each scenario, with 1, 8 and 32 instances. Instances
// live, warm, from one b.N to the next, as Lambda's do.
func BenchmarkDecisions(b *testing.B) {
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			f := setup(b)
			f.clock.Set(time.Now())
			all := manyKeys(b, f, sc.plan, sc.keys)
			kinds := []struct {
				name string
				new  func() decider
			}{
				{"tollgate", func() decider { a, _ := instance(f); return tollgate{a} }},
				{"baseline", func() decider { return &baseline{db: f.db, table: f.tbl.Name, plan: sc.plan} }},
			}
			for _, n := range []int{1, 8, 32} {
				values := deal(all, n)
				for _, k := range kinds {
					var deciders []decider
					b.Run(fmt.Sprintf("instances=%d/%s", n, k.name), func(b *testing.B) {
						if deciders == nil {
							deciders = warm(n, values, k.new)
						}
						runDecisions(b, f, deciders, values)
					})
				}
			}
		})
	}
}

// BenchmarkFlood is TestFloodedKeyCostsLittle's flood, reported: a key
// allowed 100/s offered 5,000/s by 64 instances.
func BenchmarkFlood(b *testing.B) {
	for b.Loop() {
		f := setup(b)
		f.clock.Set(time.Now())
		keyID, value, planID := f.keyInPlan(plans.Plan{Throttle: throttle(100, 50)})
		r := flood(b, f, value, 64, 5000, 6*time.Second)
		meter, _ := r.meterWrites(keyID, planID, 1)
		secs := r.elapsed.Seconds()
		b.ReportMetric(float64(r.offered)/secs, "offered/s")
		b.ReportMetric(float64(len(r.admitted))/secs, "admitted/s")
		b.ReportMetric(float64(meter)/secs, "writes/s")
		b.ReportMetric(float64(meter)/float64(len(r.admitted)), "writes/admission")
		b.ReportMetric(0, "ns/op")
	}
}

// BenchmarkKeepTheRate is TestConcurrentInstancesKeepTheRate's hammer,
// reported: 40 instances spend a key's quota of 300 at 100/s with a burst
// of 20, which takes 2.8 s at the rate.
func BenchmarkKeepTheRate(b *testing.B) {
	for b.Loop() {
		f := setup(b)
		f.clock.Set(time.Now())
		_, value, _ := f.keyInPlan(ratePlan)
		start := time.Now()
		h := hammer(b, f, value, func(int64) bool { return time.Since(start) > 4*time.Second })
		took := spent(h.admitted)
		b.ReportMetric(float64(len(h.admitted)), "admitted")
		b.ReportMetric(took.Seconds(), "s-to-spend")
		b.ReportMetric(float64(len(h.admitted)-rateBurst)/took.Seconds()/rateLimit, "of-the-rate")
		b.ReportMetric(float64(h.errors), "errors")
		b.ReportMetric(0, "ns/op")
	}
}

// BenchmarkHotKey offers a key allowed 2,000/s as much as DynamoDB Local
// serves, on one meter item and spread over the shards its plan gets by
// default.
func BenchmarkHotKey(b *testing.B) {
	hot := plans.Plan{Throttle: throttle(2000, 400)}
	auto, _ := hot.Shards()
	for _, shards := range []int{1, auto} {
		b.Run("shards="+strconv.Itoa(shards), func(b *testing.B) {
			for b.Loop() {
				f := setup(b)
				f.clock.Set(time.Now())
				p := hot
				p.Tags = map[string]string{plans.ShardTag: strconv.Itoa(shards)}
				keyID, value, planID := f.keyInPlan(p)
				r := flood(b, f, value, 32, 4000, 3*time.Second)
				total, most := r.meterWrites(keyID, planID, shards)
				secs := r.elapsed.Seconds()
				b.ReportMetric(float64(len(r.admitted))/secs, "admitted/s")
				b.ReportMetric(float64(total)/secs, "writes/s")
				b.ReportMetric(float64(total)/float64(len(r.admitted)), "writes/admission")
				b.ReportMetric(float64(most)/secs, "busiest-item-writes/s")
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}

// BenchmarkDecisionCPUJWT is BenchmarkDecisionCPU in jwt mode: one
// admission from event bytes to response bytes, the meter's write answered
// from memory, for a token seen for the first time (its signature checked,
// RS256 with a 2048-bit key or ES256) and for a token the instance has
// verified before (the client reusing its token).
func BenchmarkDecisionCPUJWT(b *testing.B) {
	f := setup(b)
	f.clock.Set(time.Now())
	plan := f.newPlan(plans.Plan{Throttle: throttle(1e6, 1_000_000), Quota: &plans.Quota{Limit: 1 << 40, Period: plans.Month}})
	f.newKeyWith(plan, "alice")
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, c := range []struct {
		name  string
		key   crypto.Signer
		fresh bool
	}{
		{"repeated-token", nil, false},
		{"first-sight-RS256", nil, true},
		{"first-sight-ES256", ecKey, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			iss := f.issuer()
			if c.key != nil {
				iss = f.issuerWith(c.key)
			}
			iss.Now = time.Now
			// Distinct tokens, more than the token cache holds, so that
			// each decision checks a signature.
			pool := make([][]byte, 1)
			if c.fresh {
				pool = make([][]byte, 256)
			}
			for i := range pool {
				pool[i] = jwtEvent(b, token(b, iss, map[string]any{"sub": "alice", "jti": fmt.Sprint(i)}))
			}
			db := &cannedMeter{API: f.db}
			cfg := authorizer.Defaults
			cfg.Table = f.tbl.Name
			jwtMode(authorizer.AuthJWT, iss)(&cfg)
			cfg.JWT.ContextClaims = nil
			if c.fresh {
				cfg.JWT.CacheSize = 1
			}
			a := authorizer.New(cfg, db, time.Now, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			ctx := context.Background()
			check := func(payload []byte) {
				out, err := a.Invoke(ctx, payload)
				if err != nil || string(out[:20]) != `{"isAuthorized":true` {
					b.Fatalf("decision: %s, %v", out, err)
				}
			}
			check(pool[0]) // loads the keys, the identity's key and the plan
			db.frozen = true
			check(pool[len(pool)-1])
			b.ReportAllocs()
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				a.Invoke(ctx, pool[i%len(pool)])
				i++
			}
		})
	}
}

// jwtEvent is the sample event with a bearer token and no key.
func jwtEvent(b *testing.B, tok string) []byte {
	return sampleEventWith(b, map[string]any{"x-api-key": nil, "authorization": "Bearer " + tok})
}
