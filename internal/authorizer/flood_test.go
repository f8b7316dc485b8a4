package authorizer_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// floodResult is what a flood saw.
type floodResult struct {
	outcomes
	offered int
	elapsed time.Duration
	writes  map[string]int // UpdateItem calls by item
	calls   int            // DynamoDB calls of every kind
	warmed  int            // admitted while warming up, before the flood
}

// flood offers one key `offered` requests a second in total, from workers
// instances (each its own Authorizer, as a Lambda execution environment
// is) with evenly paced arrivals, for d.
func flood(t testing.TB, f *fixture, value string, workers int, offered float64, d time.Duration) *floodResult {
	t.Helper()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		res = &floodResult{}
	)
	every := time.Duration(float64(workers) / offered * float64(time.Second))
	var start time.Time
	var warm sync.WaitGroup
	gate := make(chan struct{})
	var fleet []*authorizer.Authorizer
	for range workers {
		a, last := instance(f)
		fleet = append(fleet, a)
		warm.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Warm: the key and plan in cache, as in a flood's steady state.
			if a.Authorize(context.Background(), request(value)).IsAuthorized {
				mu.Lock()
				res.warmed++
				mu.Unlock()
			}
			warm.Done()
			<-gate
			next := start.Add(rand.N(every))
			n := 0
			for ; time.Since(start) < d; n++ {
				time.Sleep(time.Until(next))
				next = next.Add(every)
				res.decide(a, last, value)
			}
			mu.Lock()
			res.offered += n
			mu.Unlock()
		}()
	}
	warm.Wait()
	f.calls.Reset()
	start = time.Now()
	close(gate)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.writes = f.calls.Items()
	res.calls = f.calls.Get("")
	reconcile(t, fleet)
	slices.SortFunc(res.admitted, func(a, b time.Time) int { return a.Compare(b) })
	return res
}

// meterWrites adds up the writes to a key's meter items in a plan with n
// shards, and finds the most any one took.
func (r *floodResult) meterWrites(keyID, planID string, n int) (total, most int) {
	for i := range n {
		w := r.writes[dynamotest.ItemName(itemKey(store.ShardPK(keyID, i), store.MeterSK(planID)))]
		total, most = total+w, max(most, w)
	}
	return total, most
}

// conforms fails the test if any window of admissions holds more than
// the token bucket allows: burst + rate·width.
func conforms(t testing.TB, admitted []time.Time, rate float64, burst int) {
	t.Helper()
	T := time.Duration(float64(time.Second) / rate)
	for i := range admitted {
		for j := i + 1; j < len(admitted); j++ {
			// In whole µs, as the meter reads the clock: measured in ns, a
			// width can fall a fraction of a µs short of the meter's.
			width := time.Duration(admitted[j].UnixMicro()-admitted[i].UnixMicro()) * time.Microsecond
			if n, bound := j-i+1, burst+int(width/T); n > bound {
				t.Fatalf("%d admissions within %s; the bucket allows %d", n, width, bound)
			}
		}
	}
}

// TestFloodedKeyIsExact offers a key allowed 100/s fifty times that from
// 64 instances: it must admit no more than the bucket allows, and count
// what it admits. How close it comes to the rate, and at how many writes
// per admission, depends on how fast DynamoDB Local answers on a machine
// busy with other work: BenchmarkFlood measures that (about 2.6 writes per
// admission, at the rate).
func TestFloodedKeyIsExact(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood takes seconds")
	}
	f := setup(t)
	f.clock.Set(time.Now())
	const rate, burst = 100.0, 50
	keyID, value, planID := f.keyInPlan(plans.Plan{Throttle: throttle(rate, burst)})
	r := flood(t, f, value, 64, 5000, 6*time.Second)
	meter, _ := r.meterWrites(keyID, planID, 1)
	t.Logf("offered %d in %s: admitted %d (%.0f%% of the rate), %d errors, %d meter writes (%.2f per admission), %d DynamoDB calls",
		r.offered, r.elapsed.Round(time.Millisecond), len(r.admitted), 100*float64(len(r.admitted))/(rate*r.elapsed.Seconds()),
		r.errors, meter, float64(meter)/float64(len(r.admitted)), r.calls)
	conforms(t, r.admitted, rate, burst)
	if day, _ := stored(t, f, keyID, planID); day != int64(len(r.admitted)+r.warmed) {
		t.Errorf("day counter %d; admitted %d, and %d while warming up", day, len(r.admitted), r.warmed)
	}
}

// TestHotKeyIsSpreadOverShards runs a key allowed 1,200/s, more than one
// DynamoDB item takes, at what DynamoDB Local serves: its plan spreads it
// over shards, which must share the writes and together admit no more
// than the whole bucket allows.
func TestHotKeyIsSpreadOverShards(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood takes seconds")
	}
	f := setup(t)
	f.clock.Set(time.Now())
	const rate, burst = 1200.0, 400
	p := plans.Plan{Throttle: throttle(rate, burst)}
	n, _ := p.Shards()
	p.Tags = map[string]string{plans.ShardTag: strconv.Itoa(n)}
	keyID, value, planID := f.keyInPlan(p)
	r := flood(t, f, value, 32, 4000, 3*time.Second)
	total, most := r.meterWrites(keyID, planID, n)
	secs := r.elapsed.Seconds()
	t.Logf("%d shards; offered %d in %s: admitted %.0f/s; meter writes %.0f/s in all, %.0f/s on the busiest item",
		n, r.offered, r.elapsed.Round(time.Millisecond), float64(len(r.admitted))/secs, float64(total)/secs, float64(most)/secs)
	conforms(t, r.admitted, rate, burst)
	if n != 4 {
		t.Fatalf("a plan allowed %v/s gets %d shards, want 4", rate, n)
	}
	// Each instance has a random home shard, so the spread is only as even
	// as 32 instances over 4 shards fall; half the writes on one shard
	// would take something far less likely than chance.
	if most > total/2 {
		t.Errorf("the busiest shard took %d of %d writes; an even spread is %d", most, total, total/n)
	}
}
