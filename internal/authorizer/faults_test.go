package authorizer_test

import (
	"context"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/decisionlog"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/meter"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// Fault tests: authorizer instances reach DynamoDB Local through a proxy
// that fails a share of the meter's writes, in each of the ways DynamoDB
// and the network fail. Whatever the fault, no key may admit more than its
// plan allows, and once the instances have reconciled what they lost, the
// usage counted must equal the requests admitted.

// slack is what a decision may take beyond its deadline in these tests: on
// a machine whose cores are busy with other work a goroutine can wait a
// second or more to run. A decision its deadline did not bound would show
// anyway: a hung call never ends, and a late one would be admitted.
const slack = 5 * time.Second

// faultRun is instances, each with a DynamoDB client of its own built as
// functions/authorizer builds its client, all behind one FaultProxy.
type faultRun struct {
	f         *fixture
	proxy     *dynamotest.FaultProxy
	instances []*authorizer.Authorizer
	deadline  time.Duration
}

func newFaultRun(t *testing.T, instances int, mods ...func(*authorizer.Config)) *faultRun {
	t.Helper()
	f := setup(t)
	r := &faultRun{f: f, proxy: dynamotest.NewFaultProxy(t)}
	cfg := authorizer.Defaults
	cfg.Table = f.tbl.Name
	// Every request goes to DynamoDB: no denial is repeated from memory.
	cfg.DenyTTL = 0
	for _, m := range mods {
		m(&cfg)
	}
	r.deadline = cfg.Deadline
	for range instances {
		db, err := store.NewClient(context.Background(), 5, 100*time.Millisecond, authorizer.Instrument, func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(r.proxy.URL)
			o.Region = "us-east-1"
			o.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
			o.DisableValidateResponseChecksum = true
		})
		if err != nil {
			t.Fatal(err)
		}
		// The fixture's clock stands still at noon: the throttle key's
		// bucket never refills, and the quota's day never ends.
		r.instances = append(r.instances, authorizer.New(cfg, db, f.clock.Now, slog.New(slog.NewJSONHandler(f.logs, nil))))
	}
	return r
}

// tally is what one key's decisions came to.
type tally struct {
	decisions, admitted, failedOpen, errors int
	slowest                                 time.Duration
}

// drive sends each key value its number of requests, the keys in turn,
// from `workers` goroutines, worker i deciding on instance i mod
// len(instances), and tallies them by key value.
func (r *faultRun) drive(t *testing.T, requests map[string]int, workers int) map[string]*tally {
	t.Helper()
	work := make(chan string)
	go func() {
		left := maps.Clone(requests)
		for len(left) > 0 {
			for v := range left {
				work <- v
				if left[v]--; left[v] == 0 {
					delete(left, v)
				}
			}
		}
		close(work)
	}()
	var mu sync.Mutex
	tallies := map[string]*tally{}
	for v := range requests {
		tallies[v] = &tally{}
	}
	// Each instance decides one request at a time, as its Authorizer would
	// make them; taking turns here lets a decision be timed alone.
	turns := make([]sync.Mutex, len(r.instances))
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, turn := r.instances[i%len(r.instances)], &turns[i%len(r.instances)]
			for v := range work {
				turn.Lock()
				start := time.Now()
				resp, sum := a.Decide(context.Background(), request(v))
				took := time.Since(start)
				turn.Unlock()
				mu.Lock()
				tl := tallies[v]
				tl.decisions++
				tl.slowest = max(tl.slowest, took)
				switch {
				case sum.Reason == authorizer.ReasonError && resp.IsAuthorized:
					tl.failedOpen++
				case sum.Reason == authorizer.ReasonError:
					tl.errors++
				case resp.IsAuthorized:
					tl.admitted++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return tallies
}

// settle ends the faults, waits for writes held back to land, and has
// every instance reconcile what it lost. It returns what became of the
// lost writes, from the decisions' metrics and the reconciling.
func (r *faultRun) settle(t *testing.T) meter.LateWrites {
	t.Helper()
	r.proxy.SetRule(nil)
	r.proxy.WaitLate()
	var sum meter.LateWrites
	for i, a := range r.instances {
		l, err := a.Reconcile(context.Background())
		if err != nil {
			t.Fatalf("instance %d reconciling: %v", i, err)
		}
		if n := a.Pending(); n != 0 {
			t.Fatalf("instance %d still remembers %d lost writes", i, n)
		}
		sum = addLate(sum, l)
	}
	// And from the decisions' metrics, as CloudWatch would extract them.
	for _, a := range r.instances {
		a.Flush(context.Background())
	}
	data, err := decisionlog.Extract([]byte(r.f.logs.String()))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range data {
		if d.DimensionNames() != "usagePlanId" { // each count is also by outcome and reason
			continue
		}
		n := int(d.Sum)
		switch d.Name {
		case authorizer.MetricLateWritesPending:
			sum.Pending += n
		case authorizer.MetricLateWritesRefunded:
			sum.Refunded += n
		case authorizer.MetricLateWritesFenced:
			sum.Fenced += n
		case authorizer.MetricLateWritesUnreconciled:
			sum.Unreconciled += n
		}
	}
	return sum
}

func addLate(a, b meter.LateWrites) meter.LateWrites {
	return meter.LateWrites{Pending: a.Pending + b.Pending, Refunded: a.Refunded + b.Refunded,
		Fenced: a.Fenced + b.Fenced, Unreconciled: a.Unreconciled + b.Unreconciled}
}

// meterState is what GetUsage reports of a key today, and its bucket's
// tokens spent, read from the meter item.
func (r *faultRun) meterState(t *testing.T, keyID, planID string, T time.Duration) (used, remaining, spent int64) {
	t.Helper()
	now := r.f.clock.Now().UTC()
	month, day := now.Format("200601"), now.Format("20060102")
	u, err := r.f.tbl.Usage(context.Background(), keyID, planID, 1, month, month)
	if err != nil {
		t.Fatal(err)
	}
	used, remaining = u[0].Used[day], -1
	if rem, ok := u[0].Remaining[day]; ok {
		remaining = rem
	}
	if T > 0 {
		out, err := r.f.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &r.f.tbl.Name, ConsistentRead: aws.Bool(true),
			Key: itemKey(store.MeterPK(keyID), store.MeterSK(planID))})
		if err != nil {
			t.Fatal(err)
		}
		tat, _ := store.Int(out.Item, store.AttrTAT)
		if d := time.Duration(tat-now.UnixMicro()) * time.Microsecond; d > 0 {
			spent = int64((d + T - 1) / T)
		}
	}
	return used, remaining, spent
}

// TestMeteringUnderFaults: 8 instances driven from 16 goroutines, a key
// with a quota of 150 a day (450 requests) and a key with a bucket of 50
// that does not refill (150 requests), while 15 % of the meter's writes
// meet a fault.
func TestMeteringUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("drives thousands of decisions through faults")
	}
	const (
		quota, burst = 150, 50
		share        = 0.15
	)
	cases := []struct {
		name     string
		faults   []dynamotest.Fault // one of them, at random
		deadline time.Duration      // the decision's DYNAMODB_DEADLINE
		failOpen bool
	}{
		{"before-apply", []dynamotest.Fault{dynamotest.ErrorBefore, dynamotest.Throttle, dynamotest.ThroughputExceeded}, time.Second, false},
		{"error-after", []dynamotest.Fault{dynamotest.ErrorAfter}, time.Second, false},
		{"reset-after", []dynamotest.Fault{dynamotest.ResetAfter}, time.Second, false},
		// Applied 1 s after the decision gave up.
		{"late", []dynamotest.Fault{dynamotest.Late}, 300 * time.Millisecond, false},
		{"hang", []dynamotest.Fault{dynamotest.Hang}, 300 * time.Millisecond, false},
		{"late/fail-open", []dynamotest.Fault{dynamotest.Late}, 300 * time.Millisecond, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // much of it is waiting out deadlines and delays
			r := newFaultRun(t, 8, func(cfg *authorizer.Config) { cfg.Deadline, cfg.FailOpen = c.deadline, c.failOpen })
			r.proxy.Delay = time.Second
			quotaKey, quotaValue, quotaPlan := r.f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: quota, Period: plans.Day}})
			bucketKey, bucketValue, bucketPlan := r.f.keyInPlan(plans.Plan{Throttle: throttle(0.001, burst)})
			r.proxy.SetRule(func(call dynamotest.Call) dynamotest.Fault {
				if call.Op == "UpdateItem" && rand.Float64() < share {
					return c.faults[rand.IntN(len(c.faults))]
				}
				return dynamotest.Pass
			})
			tallies := r.drive(t, map[string]int{quotaValue: 3 * quota, bucketValue: 3 * burst}, 16)
			faults := 0
			for _, f := range c.faults {
				faults += r.proxy.Faults()[f]
			}
			late := r.settle(t)
			t.Logf("lost writes: %+v", late)
			// Every write remembered was settled: none was given up on.
			if late.Pending != late.Refunded+late.Fenced || late.Unreconciled != 0 || c.failOpen && late.Pending != 0 {
				t.Errorf("lost writes %+v: want every one pending refunded or fenced (and none under FAIL_MODE=open)", late)
			}

			T := 1000 * time.Second // the bucket's: one token every 1,000 s
			for _, k := range []struct {
				name          string
				id, plan      string
				tally         *tally
				limit         int
				T             time.Duration
				remainingKept bool
			}{
				{"quota key", quotaKey, quotaPlan, tallies[quotaValue], quota, 0, true},
				{"bucket key", bucketKey, bucketPlan, tallies[bucketValue], burst, T, false},
			} {
				tl := k.tally
				used, remaining, spent := r.meterState(t, k.id, k.plan, k.T)
				t.Logf("%s: %d decisions: %d admitted, %d failed open, %d errors (%d faults in all); used %d, remaining %d, tokens spent %d; slowest %s",
					k.name, tl.decisions, tl.admitted, tl.failedOpen, tl.errors, faults, used, remaining, spent, tl.slowest.Round(time.Millisecond))
				if tl.admitted > k.limit {
					t.Errorf("%s: admitted %d, over the limit of %d", k.name, tl.admitted, k.limit)
				}
				if c.failOpen {
					// Allowed without a count: counted if their write landed.
					if used < int64(tl.admitted) || used > int64(tl.admitted+tl.failedOpen) {
						t.Errorf("%s: used %d; want %d admitted plus at most the %d failed open", k.name, used, tl.admitted, tl.failedOpen)
					}
				} else if used != int64(tl.admitted) {
					t.Errorf("%s: used %d, admitted %d", k.name, used, tl.admitted)
				}
				if k.remainingKept && remaining != int64(k.limit)-used {
					t.Errorf("%s: remaining %d, want the limit %d less used %d", k.name, remaining, k.limit, used)
				}
				if k.T > 0 && spent < used {
					t.Errorf("%s: %d tokens spent for %d counted", k.name, spent, used)
				}
				if bound := c.deadline + slack; tl.slowest > bound {
					t.Errorf("%s: a decision took %s; the deadline is %s", k.name, tl.slowest, c.deadline)
				}
			}
			// Utilisation, counting out decisions that ended in errors: a
			// write that landed holds a quota unit until it is reconciled.
			if tl := tallies[quotaValue]; !c.failOpen && tl.admitted < quota-tl.errors {
				t.Errorf("quota key: admitted %d; with %d errors, at least %d", tl.admitted, tl.errors, quota-tl.errors)
			}
			if faults == 0 {
				t.Errorf("no %s injected", c.faults)
			}
		})
	}
}

// TestDynamoDBDownThenBack: DynamoDB refusing connections, not answering,
// or applying every write a second after a 300ms deadline. Every decision
// ends within its deadline, denied (or, with FAIL_MODE=open, allowed and
// marked failOpen); the same instances admit again as soon as DynamoDB is
// back; and the writes that landed late count nothing, but those of
// requests allowed by FAIL_MODE=open, which they rightly count.
func TestDynamoDBDownThenBack(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out deadlines")
	}
	for _, c := range []struct {
		fault     dynamotest.Fault
		op        string // the operations it meets; "" for all
		decisions int
		failOpen  bool
	}{
		{dynamotest.Refuse, "", 48, false},
		{dynamotest.Hang, "", 48, false},
		{dynamotest.Late, "UpdateItem", 96, false},
		{dynamotest.Late, "UpdateItem", 96, true},
	} {
		name := c.fault.String()
		if c.failOpen {
			name += "/fail-open"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const deadline = 300 * time.Millisecond
			r := newFaultRun(t, 8, func(cfg *authorizer.Config) { cfg.Deadline, cfg.FailOpen = deadline, c.failOpen })
			r.proxy.Delay = time.Second
			keyID, value, planID := r.f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 150, Period: plans.Day}})
			// admitOnce has each instance decide until it admits one request,
			// and returns how many decisions that took in all, and how many
			// were allowed by FAIL_MODE=open. (On a busy machine a decision
			// may miss its deadline, faults or not.)
			failedOpen := 0
			admitOnce := func() (decisions int) {
				for i, a := range r.instances {
					for n := 1; ; n++ {
						resp, sum := a.Decide(context.Background(), request(value))
						if sum.Reason == authorizer.ReasonOK {
							decisions += n
							break
						}
						if resp.IsAuthorized {
							failedOpen++
						}
						if n == 10 {
							t.Fatalf("instance %d: no admission in 10 decisions without a fault", i)
						}
					}
				}
				return decisions
			}
			// Warm: each instance has the key and plan in its cache.
			admitOnce()
			r.proxy.SetRule(dynamotest.Sometimes(c.op, 1, c.fault, rand.Float64))
			tl := r.drive(t, map[string]int{value: c.decisions}, 16)[value]
			ended := tl.errors
			if c.failOpen {
				ended = tl.failedOpen
			}
			if ended != c.decisions || tl.slowest > deadline+slack {
				t.Errorf("%d decisions: %d errors, %d failed open, the slowest %s; want every one ended by the deadline of %s", tl.decisions, tl.errors, tl.failedOpen, tl.slowest, deadline)
			}
			late := r.settle(t)
			if n := admitOnce(); n > len(r.instances) {
				t.Logf("%d decisions for one admission on each of %d instances after DynamoDB came back", n, len(r.instances))
			}
			r.settle(t)
			used, _, _ := r.meterState(t, keyID, planID, 0)
			t.Logf("%+v; used %d", late, used)
			admitted := int64(2 * len(r.instances))
			if c.failOpen {
				// Every late write lands (but one its instance's next write
				// overtook), and counts a request that was allowed.
				if late.Pending != 0 || used < admitted || used > admitted+int64(tl.failedOpen+failedOpen) {
					t.Errorf("used %d; %d admitted, and %d allowed by FAIL_MODE=open (counted if their write landed); %+v", used, admitted, tl.failedOpen+failedOpen, late)
				}
			} else if used != admitted {
				t.Errorf("used %d; %d were admitted", used, admitted)
			}
		})
	}
}

// TestGivenUpWritesReachTheAlarm: a lost write that the instance gives up
// on (it was not invoked again within half the prune age) is counted as
// LateWritesUnreconciled by plan and by outcome and reason, and without
// dimensions, which the construct's alarm of that name reads.
func TestGivenUpWritesReachTheAlarm(t *testing.T) {
	r := newFaultRun(t, 1)
	_, value, planID := r.f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 10, Period: plans.Day}})
	var lose atomic.Bool
	lose.Store(true)
	r.proxy.SetRule(func(call dynamotest.Call) dynamotest.Fault {
		if call.Op == "UpdateItem" && lose.Load() {
			return dynamotest.ErrorBefore // the meter cannot tell that it was not applied
		}
		return dynamotest.Pass
	})
	a, ctx := r.instances[0], context.Background()
	if resp, sum := a.Decide(ctx, request(value)); resp.IsAuthorized || sum.Reason != authorizer.ReasonError || a.Pending() != 1 {
		t.Fatalf("a lost meter write: allowed %v, reason %s, %d writes remembered; want a denial, and the write remembered",
			resp.IsAuthorized, sum.Reason, a.Pending())
	}
	lose.Store(false)
	r.f.clock.Add(meter.DefaultPruneAge) // past half of it: given up at the next decision
	if resp, _ := a.Decide(ctx, request(value)); !resp.IsAuthorized || a.Pending() != 0 {
		t.Fatalf("the next decision: allowed %v, %d writes remembered; want allowed, and the write given up", resp.IsAuthorized, a.Pending())
	}
	a.Flush(ctx)
	data, err := decisionlog.Extract([]byte(r.f.logs.String()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, d := range data {
		if d.Name == authorizer.MetricLateWritesUnreconciled {
			got[d.DimensionNames()] += d.Sum
			if d.Dimensions["usagePlanId"] != "" && d.Dimensions["usagePlanId"] != planID {
				t.Errorf("counted for plan %s, want %s", d.Dimensions["usagePlanId"], planID)
			}
		}
	}
	for _, dims := range []string{"", "usagePlanId", "outcome,reason"} {
		if got[dims] != 1 {
			t.Errorf("LateWritesUnreconciled by {%s} = %v, want 1", dims, got[dims])
		}
	}
}
