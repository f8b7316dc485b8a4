package authorizer_test

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

const instances = 40

// instance is an Authorizer with caches of its own, as a Lambda execution
// environment has, on the real clock; last is the time it last read, the
// time of its latest decision. Its deadline is long: these tests are about
// concurrency, and a machine whose cores are busy with other work starves
// DynamoDB Local. (Exactness holds at any deadline; the fault tests show
// it at short ones.)
func instance(f *fixture) (a *authorizer.Authorizer, last *time.Time) {
	last = new(time.Time)
	cfg := authorizer.Defaults
	cfg.Table, cfg.Deadline = f.tbl.Name, 5*time.Second
	return authorizer.New(cfg, f.db, func() time.Time { *last = time.Now(); return *last }, slog.New(slog.DiscardHandler)), last
}

// outcomes records decisions made from many goroutines: when each admission
// was decided, by its instance's clock, and how many decisions ended in an
// error.
type outcomes struct {
	mu       sync.Mutex
	admitted []time.Time
	errors   int
}

// decide has a decide on value and records the outcome; last is a's
// clock's latest reading, the decision's time.
func (r *outcomes) decide(a *authorizer.Authorizer, last *time.Time, value string) {
	resp, sum := a.Decide(context.Background(), request(value))
	r.mu.Lock()
	defer r.mu.Unlock()
	if resp.IsAuthorized {
		r.admitted = append(r.admitted, *last)
	}
	if sum.Reason == authorizer.ReasonError {
		r.errors++
	}
}

// hammered is what a hammer saw.
type hammered struct {
	outcomes
	attempts  int64
	instances []*authorizer.Authorizer
}

// hammer runs `instances` goroutines, each its own authorizer (its own
// caches, as a Lambda execution environment has), against one key until
// stop says so.
func hammer(t testing.TB, f *fixture, value string, stop func(attempts int64) bool) *hammered {
	t.Helper()
	var wg sync.WaitGroup
	var tries atomic.Int64
	h := &hammered{}
	for range instances {
		a, last := instance(f)
		h.instances = append(h.instances, a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop(tries.Add(1)) {
				h.decide(a, last, value)
			}
		}()
	}
	wg.Wait()
	h.attempts = tries.Load()
	reconcile(t, h.instances)
	return h
}

// reconcile has every instance settle the writes it lost, as its next
// decisions would, so that the usage stored can be compared with the
// admissions.
func reconcile(t testing.TB, instances []*authorizer.Authorizer) {
	t.Helper()
	for _, a := range instances {
		if _, err := a.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// stored returns the meter item's day and quota counters.
func stored(t *testing.T, f *fixture, keyID, planID string) (day, quota int64) {
	out, err := f.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &f.tbl.Name, ConsistentRead: aws.Bool(true),
		Key: itemKey(store.MeterPK(keyID), store.MeterSK(planID))})
	if err != nil {
		t.Fatal(err)
	}
	for name := range out.Item {
		switch name[0] {
		case 'd':
			n, _ := store.Int(out.Item, name)
			day += n
		case 'q':
			n, _ := store.Int(out.Item, name)
			quota += n
		}
	}
	return day, quota
}

func TestConcurrentInstancesAdmitExactlyTheBurst(t *testing.T) {
	f := setup(t)
	f.clock.Set(time.Now())
	// One token every 1000 s: nothing refills during the test.
	keyID, value, planID := f.keyInPlan(plans.Plan{Throttle: throttle(0.001, 50)})
	h := hammer(t, f, value, func(n int64) bool { return n > 3000 })
	t.Logf("%d instances, %d attempts: %d admitted, %d errors", instances, h.attempts, len(h.admitted), h.errors)
	if len(h.admitted) > 50 {
		t.Fatalf("admitted %d, more than the burst of 50", len(h.admitted))
	}
	if day, _ := stored(t, f, keyID, planID); day != int64(len(h.admitted)) {
		t.Fatalf("day counter %d, admitted %d", day, len(h.admitted))
	}
	// Every token is taken, but for those a decision that ended in an
	// error may hold: its write may have landed and not been given back
	// in time, or only partly (see package meter).
	if len(h.admitted) < 50-h.errors {
		t.Fatalf("admitted %d; the burst is 50, and %d decisions ended in errors", len(h.admitted), h.errors)
	}
}

func TestConcurrentInstancesAdmitExactlyTheQuota(t *testing.T) {
	f := setup(t)
	f.clock.Set(time.Now())
	keyID, value, planID := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 500, Period: plans.Month}})
	h := hammer(t, f, value, func(n int64) bool { return n > 3000 })
	t.Logf("%d instances, %d attempts: %d admitted, %d errors", instances, h.attempts, len(h.admitted), h.errors)
	if len(h.admitted) > 500 {
		t.Fatalf("admitted %d, more than the quota of 500", len(h.admitted))
	}
	if day, quota := stored(t, f, keyID, planID); day != int64(len(h.admitted)) || quota != day {
		t.Fatalf("stored counters day=%d quota=%d, admitted %d", day, quota, len(h.admitted))
	}
	if len(h.admitted) < 500-h.errors {
		t.Fatalf("admitted %d; the quota is 500, and %d decisions ended in errors", len(h.admitted), h.errors)
	}
}

// TestConcurrentInstancesKeepTheRate runs a key at its rate for a few
// seconds. Every window of admissions must fit the bucket: at most
// burst + rate·width requests, which is the token bucket's own bound.
// How close it comes to the rate depends on how fast DynamoDB Local
// answers, which depends on the machine's other work: BenchmarkKeepTheRate
// measures that.
func TestConcurrentInstancesKeepTheRate(t *testing.T) {
	f := setup(t)
	f.clock.Set(time.Now())
	keyID, value, planID := f.keyInPlan(ratePlan)
	start := time.Now()
	h := hammer(t, f, value, func(int64) bool { return time.Since(start) > 4*time.Second })
	t.Logf("%d instances, %d attempts in %s: %d admitted, %d errors; the quota took %s to spend (2.8 s at the rate)",
		instances, h.attempts, time.Since(start).Round(time.Millisecond), len(h.admitted), h.errors, spent(h.admitted).Round(time.Millisecond))
	if len(h.admitted) > rateQuota {
		t.Fatalf("admitted %d, more than the quota of %d", len(h.admitted), rateQuota)
	}
	conforms(t, h.admitted, rateLimit, rateBurst)
	if day, q := stored(t, f, keyID, planID); day != int64(len(h.admitted)) || q != day {
		t.Fatalf("stored counters day=%d quota=%d, admitted %d", day, q, len(h.admitted))
	}
}

// ratePlan allows 100/s with a burst of 20, and 300 a month: at the rate,
// the quota is spent in (300 - 20) / 100 = 2.8 s.
const rateLimit, rateBurst, rateQuota = 100.0, 20, 300

var ratePlan = plans.Plan{Throttle: throttle(rateLimit, rateBurst), Quota: &plans.Quota{Limit: rateQuota, Period: plans.Month}}

// spent sorts admissions and returns the time from the first to the last.
func spent(admitted []time.Time) time.Duration {
	if len(admitted) == 0 {
		return 0
	}
	slices.SortFunc(admitted, func(a, b time.Time) int { return a.Compare(b) })
	return admitted[len(admitted)-1].Sub(admitted[0])
}

// TestDeadlineBoundsAHangingDynamoDB points an authorizer at a server that
// accepts connections and never answers.
func TestDeadlineBoundsAHangingDynamoDB(t *testing.T) {
	f := setup(t)
	_, value, _ := f.keyInPlan(plans.Plan{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	hanging := dynamotest.Client(t, authorizer.Instrument, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String("http://" + l.Addr().String())
	})
	cfg := authorizer.Defaults
	cfg.Table, cfg.Deadline = f.tbl.Name, 300*time.Millisecond
	a := authorizer.New(cfg, hanging, f.clock.Now, slog.New(slog.NewJSONHandler(f.logs, nil)))
	start := time.Now()
	resp := a.Authorize(context.Background(), request(value))
	took := time.Since(start)
	if resp.IsAuthorized || f.lastReason() != authorizer.ReasonError {
		t.Fatalf("allowed=%v reason=%s, want a fail-closed denial", resp.IsAuthorized, f.lastReason())
	}
	if took < 250*time.Millisecond || took > cfg.Deadline+slack {
		t.Fatalf("decision took %s with a 300ms deadline", took)
	}
}

// TestLoweringAShardedQuotaUnderLoad lowers the quota of a key spread over
// four shards while instances spend it: the key must end with exactly the
// new limit admitted, no more (the shards' counts had drifted apart) and
// no less (nothing stranded in a shard). The lowering starts at 300
// admitted; the instances spend on while it runs, up to 350, and wait
// there if it has not returned yet, so that a machine too busy to finish
// it quickly does not let them spend past the new limit before it lands.
func TestLoweringAShardedQuotaUnderLoad(t *testing.T) {
	f := setup(t)
	f.clock.Set(time.Now())
	ctx := context.Background()
	keyID, value, planID := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 1000, Period: plans.Month},
		Tags: map[string]string{plans.ShardTag: "4"}})
	var admitted atomic.Int64
	var done atomic.Bool // the lowering returned
	lowered := make(chan error, 1)
	go func() {
		for admitted.Load() < 300 {
			time.Sleep(time.Millisecond)
		}
		_, err := f.tbl.UpdatePlan(ctx, planID, func(p *plans.Plan) error { p.Quota.Limit = 400; return nil })
		done.Store(true)
		lowered <- err
	}()
	var wg sync.WaitGroup
	var fleet []*authorizer.Authorizer
	for range 8 {
		a, _ := instance(f)
		fleet = append(fleet, a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 250 {
				for admitted.Load() >= 350 && !done.Load() {
					time.Sleep(time.Millisecond)
				}
				if a.Authorize(ctx, request(value)).IsAuthorized {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if err := <-lowered; err != nil {
		t.Fatal(err)
	}
	// A decision that failed may hold a unit until its instance reconciles.
	reconcile(t, fleet)
	// Instances that denied for the quota may have cached it: wait it out.
	time.Sleep(authorizer.Defaults.DenyTTL)
	a := f.authorizer(func(c *authorizer.Config) { c.DenyTTL = 0 })
	for a.Authorize(ctx, request(value)).IsAuthorized {
		admitted.Add(1)
	}
	if n := admitted.Load(); n != 400 {
		t.Fatalf("admitted %d, want exactly the lowered quota of 400", n)
	}
	if day, _ := stored(t, f, keyID, planID); day > 400 {
		t.Fatalf("shard 0 counted %d", day)
	}
	// Raising it again lifts the caps the lowering set: exactly 100 more.
	if _, err := f.tbl.UpdatePlan(ctx, planID, func(p *plans.Plan) error { p.Quota.Limit = 500; return nil }); err != nil {
		t.Fatal(err)
	}
	more := 0
	for a.Authorize(ctx, request(value)).IsAuthorized {
		more++
	}
	if more != 100 {
		t.Fatalf("after raising the quota from 400 to 500: %d more admitted, want 100", more)
	}
}
