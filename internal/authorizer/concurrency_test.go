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
// time of its latest decision.
func instance(f *fixture) (a *authorizer.Authorizer, last *time.Time) {
	last = new(time.Time)
	cfg := authorizer.Defaults
	cfg.Table = f.tbl.Name
	return authorizer.New(cfg, f.db, func() time.Time { *last = time.Now(); return *last }, slog.New(slog.DiscardHandler)), last
}

// hammer runs `instances` goroutines, each its own authorizer (its own
// caches, as a Lambda execution environment has), against one key until
// stop says so. It returns the decision time of every admission, read from
// the instance's own clock.
func hammer(t *testing.T, f *fixture, value string, stop func(attempts int64) bool) (admitted []time.Time, attempts int64) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var tries atomic.Int64
	for range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, last := instance(f)
			for !stop(tries.Add(1)) {
				if a.Authorize(context.Background(), request(value)).IsAuthorized {
					mu.Lock()
					admitted = append(admitted, *last)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return admitted, tries.Load()
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
	admitted, attempts := hammer(t, f, value, func(n int64) bool { return n > 3000 })
	t.Logf("%d instances, %d attempts: %d admitted", instances, attempts, len(admitted))
	if len(admitted) != 50 {
		t.Fatalf("admitted %d, want exactly the burst of 50", len(admitted))
	}
	if day, _ := stored(t, f, keyID, planID); day != 50 {
		t.Fatalf("day counter %d, want 50", day)
	}
}

func TestConcurrentInstancesAdmitExactlyTheQuota(t *testing.T) {
	f := setup(t)
	f.clock.Set(time.Now())
	keyID, value, planID := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 500, Period: plans.Month}})
	admitted, attempts := hammer(t, f, value, func(n int64) bool { return n > 3000 })
	t.Logf("%d instances, %d attempts: %d admitted", instances, attempts, len(admitted))
	if len(admitted) != 500 {
		t.Fatalf("admitted %d, want exactly the quota of 500", len(admitted))
	}
	if day, quota := stored(t, f, keyID, planID); day != 500 || quota != 500 {
		t.Fatalf("stored counters day=%d quota=%d, want 500", day, quota)
	}
}

// TestConcurrentInstancesKeepTheRate runs a key at its rate for a few
// seconds. Every window of admissions must fit the bucket: at most
// burst + rate·width requests, which is the token bucket's own bound.
func TestConcurrentInstancesKeepTheRate(t *testing.T) {
	f := setup(t)
	f.clock.Set(time.Now())
	const rate, burst, quota = 100.0, 20, 300
	keyID, value, planID := f.keyInPlan(plans.Plan{Throttle: throttle(rate, burst), Quota: &plans.Quota{Limit: quota, Period: plans.Month}})
	start := time.Now()
	admitted, attempts := hammer(t, f, value, func(int64) bool { return time.Since(start) > 4*time.Second })
	t.Logf("%d instances, %d attempts in %s: %d admitted", instances, attempts, time.Since(start).Round(time.Millisecond), len(admitted))
	if len(admitted) != quota {
		t.Fatalf("admitted %d, want the quota of %d (the rate allows %d in 4 s)", len(admitted), quota, burst+int(4*rate))
	}
	slices.SortFunc(admitted, func(a, b time.Time) int { return a.Compare(b) })
	conforms(t, admitted, rate, burst)
	span := admitted[len(admitted)-1].Sub(admitted[0])
	// It must not under-admit much either: the quota ran out near when the
	// rate says it should, (quota - burst) / rate = 2.8 s.
	if span > 3500*time.Millisecond {
		t.Errorf("the quota took %s to spend; at %v/s it needs 2.8 s", span, rate)
	}
	if day, q := stored(t, f, keyID, planID); day != quota || q != quota {
		t.Fatalf("stored counters day=%d quota=%d, want %d", day, q, quota)
	}
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
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Fatalf("decision took %s with a 300ms deadline", took)
	}
}

// TestLoweringAShardedQuotaUnderLoad lowers the quota of a key spread over
// four shards while instances spend it: the key must end with exactly the
// new limit admitted, no more (the shards' counts had drifted apart) and
// no less (nothing stranded in a shard).
func TestLoweringAShardedQuotaUnderLoad(t *testing.T) {
	f := setup(t)
	f.clock.Set(time.Now())
	ctx := context.Background()
	keyID, value, planID := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 1000, Period: plans.Month},
		Tags: map[string]string{plans.ShardTag: "4"}})
	var admitted atomic.Int64
	lowered := make(chan error, 1)
	go func() {
		for admitted.Load() < 300 {
			time.Sleep(time.Millisecond)
		}
		_, err := f.tbl.UpdatePlan(ctx, planID, func(p *plans.Plan) error { p.Quota.Limit = 400; return nil })
		lowered <- err
	}()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, _ := instance(f)
			for range 250 {
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
