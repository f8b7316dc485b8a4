package meter_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/meter"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

const second = int64(time.Second / time.Microsecond)

// t0 is 2025-06-01T00:00:00Z in µs.
var t0 = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

type fixture struct {
	m      *meter.Meter
	tbl    *store.Table
	calls  *dynamotest.Counter
	keyID  string
	planID string
	shards int
	kv, pv int64
}

// newFixture assigns a fresh key to a fresh plan through the store, as the
// admin functions do, and returns a meter over the same table.
func newFixture(t *testing.T) *fixture { return newShardedFixture(t, 1) }

// newShardedFixture is newFixture for a plan with the given shard count.
func newShardedFixture(t *testing.T, shards int) *fixture {
	t.Helper()
	ctx := context.Background()
	calls := &dynamotest.Counter{}
	db := dynamotest.Client(t, calls.Install)
	tbl := dynamotest.Store(t, db, nil)
	v, _ := keys.Generate()
	k := &store.Key{ID: keys.NewID(), Enabled: true, Hash: keys.Hash(v)}
	p := &store.Plan{Plan: plans.Plan{ID: keys.NewID(), Name: "p"}, Shards: shards}
	if err := tbl.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := tbl.CreatePlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Assign(ctx, p.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	k, _ = tbl.Key(ctx, k.ID)
	calls.Reset()
	return &fixture{
		m:     &meter.Meter{DB: db, Table: tbl.Name},
		tbl:   tbl,
		calls: calls,
		keyID: k.ID, planID: p.ID, shards: shards, kv: k.Version, pv: p.Version,
	}
}

func (f *fixture) state() *meter.State { return meter.NewState(f.keyID, f.planID, f.shards) }

func (f *fixture) take(t *testing.T, st *meter.State, now int64, b *meter.Bucket, q *meter.Quota) meter.Result {
	t.Helper()
	res, err := f.m.Take(context.Background(), &meter.Request{Now: now, KeyVersion: f.kv, PlanVersion: f.pv, Bucket: b, Quota: q}, st)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) item(t *testing.T, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := f.tbl.DB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &f.tbl.Name, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": store.S(store.MeterPK(f.keyID)), "sk": store.S(sk)}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func TestNewBucket(t *testing.T) {
	tests := []struct {
		rate     float64
		burst    int
		guard    time.Duration
		wantT    int64
		wantTau  int64
		wantBurs int64
	}{
		{1, 1, 0, 1_000_000, 0, 1},
		{0.5, 3, 0, 2_000_000, 4_000_000, 3},
		{100, 50, 0, 10_000, 490_000, 50},
		{3, 2, 0, 333_334, 333_334, 2}, // 333,333.3 µs rounds up: the rate only ever rounds down
		{33.3, 1, 0, 30_031, 0, 1},     // the reference's example
		{0.1, 1, 0, 10_000_000, 0, 1},  // exact for decimal fractions too
		{1e9, 5, 0, 1, 4, 5},           // above 1e6/s the µs clock is the limit
		{100, 50, 2 * time.Millisecond, 10_000, 488_000, 50},
		{100, 1, 2 * time.Millisecond, 10_000, -2_000, 1},
		{1e-300, 2, 0, 1 << 50, 1 << 50, 2},        // no rate at all, clamped
		{1e-9, 1 << 30, 0, 1e15, 1 << 60, 1 << 30}, // tolerance clamped
	}
	for _, tt := range tests {
		b := meter.NewBucket("tat", tt.rate, tt.burst, tt.guard)
		if b.T != tt.wantT || b.Tau != tt.wantTau || b.Burst != tt.wantBurs {
			t.Errorf("NewBucket(%g, %d, %s) = T %d, tau %d, burst %d; want %d, %d, %d",
				tt.rate, tt.burst, tt.guard, b.T, b.Tau, b.Burst, tt.wantT, tt.wantTau, tt.wantBurs)
		}
	}
}

// model is an exact token bucket: level counts µs-tokens (T of them make a
// token), fills by one a µs up to burst·T, and a request takes T.
type model struct {
	level, capacity, t, last int64
}

func (m *model) take(now int64) bool {
	m.level = min(m.capacity, m.level+(now-m.last))
	m.last = now
	if m.level >= m.t {
		m.level -= m.t
		return true
	}
	return false
}

// TestMatchesTokenBucket replays random arrivals against DynamoDB Local
// and an exact token bucket: every decision must agree.
func TestMatchesTokenBucket(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
		gap   int64 // mean µs between arrivals
	}{
		{1, 1, second},
		{0.5, 3, second},
		{10, 5, 50_000},
		{33.3, 7, 20_000},
		{1000, 20, 500},
	} {
		f := newFixture(t)
		b := meter.NewBucket("tat", tc.rate, tc.burst, 0)
		mdl := &model{capacity: b.Burst * b.T, t: b.T, level: b.Burst * b.T, last: t0}
		st := f.state()
		rng := rand.New(rand.NewPCG(uint64(tc.burst), 7))
		now := t0
		admitted := 0
		for i := range 300 {
			now += rng.Int64N(2 * tc.gap)
			// A new instance now and then: nothing cached, so it guesses.
			if i%37 == 0 {
				st = f.state()
			}
			got := f.take(t, st, now, &b, nil).Outcome == meter.Admitted
			if want := mdl.take(now); got != want {
				t.Fatalf("rate %g burst %d: arrival %d at +%dµs: admitted=%v, token bucket says %v", tc.rate, tc.burst, i, now-t0, got, want)
			}
			if got {
				admitted++
			}
		}
		if admitted == 0 || admitted == 300 {
			t.Errorf("rate %g burst %d: %d of 300 admitted: the sequence tests nothing", tc.rate, tc.burst, admitted)
		}
	}
}

func TestBurstOneAndFractionalRates(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		steps []struct {
			at    int64 // µs after t0
			admit bool
			retry time.Duration // for denials
		}
	}{
		{"burst 1 at 1/s", 1, 1, []struct {
			at    int64
			admit bool
			retry time.Duration
		}{{0, true, 0}, {0, false, time.Second}, {999_999, false, time.Microsecond}, {second, true, 0}, {second + 1, false, time.Second - time.Microsecond}}},
		{"0.5/s, burst 3", 0.5, 3, []struct {
			at    int64
			admit bool
			retry time.Duration
		}{{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, 2 * time.Second}, {2 * second, true, 0}, {2 * second, false, 2 * time.Second}, {8 * second, true, 0}, {8 * second, true, 0}, {8 * second, true, 0}, {8 * second, false, 2 * time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			b := meter.NewBucket("tat", tt.rate, tt.burst, 0)
			st := f.state()
			for i, s := range tt.steps {
				res := f.take(t, st, t0+s.at, &b, nil)
				if (res.Outcome == meter.Admitted) != s.admit {
					t.Fatalf("step %d at +%dµs: outcome %v, want admit=%v", i, s.at, res.Outcome, s.admit)
				}
				if !s.admit && res.RetryAfter != s.retry {
					t.Fatalf("step %d: RetryAfter %s, want %s", i, res.RetryAfter, s.retry)
				}
			}
		})
	}
}

func TestTokensRemaining(t *testing.T) {
	f := newFixture(t)
	b := meter.NewBucket("tat", 10, 5, 0) // a token every 100 ms
	st := f.state()
	for want := int64(4); want >= 0; want-- {
		if res := f.take(t, st, t0, &b, nil); res.TokensRemaining != want || res.NextToken != 100*time.Millisecond {
			t.Fatalf("TokensRemaining, NextToken = %d, %s; want %d, 100ms", res.TokensRemaining, res.NextToken, want)
		}
	}
	// 250 ms later two and a half tokens came back; one is taken. The half
	// token is whole in another 50 ms.
	if res := f.take(t, st, t0+250_000, &b, nil); res.Outcome != meter.Admitted || res.TokensRemaining != 1 || res.NextToken != 50*time.Millisecond {
		t.Fatalf("after 250ms: %+v, want admitted with 1 token left and the next in 50ms", res)
	}
}

func TestQuotaPeriods(t *testing.T) {
	f := newFixture(t)
	q := plans.Quota{Limit: 3, Period: plans.Day}
	quota := func(now int64) *meter.Quota {
		w := q.Window(time.UnixMicro(now))
		return &meter.Quota{Attr: store.PrefixQuota + w.ID, Limit: q.LimitIn(w, time.Time{}), Reset: w.End.UnixMicro()}
	}
	st := f.state()
	noon := t0 + 12*3600*second
	for i := int64(1); i <= 3; i++ {
		res := f.take(t, st, noon, nil, quota(noon))
		if res.Outcome != meter.Admitted || res.Used != i {
			t.Fatalf("request %d: %+v", i, res)
		}
	}
	res := f.take(t, st, noon, nil, quota(noon))
	if res.Outcome != meter.QuotaExceeded || res.RetryAfter != 12*time.Hour {
		t.Fatalf("4th request: %+v, want QuotaExceeded, retry in 12h", res)
	}
	// A new instance learns the same from DynamoDB's ALL_OLD.
	if res := f.take(t, f.state(), noon+1, nil, quota(noon+1)); res.Outcome != meter.QuotaExceeded || res.Calls != 1 {
		t.Fatalf("fresh instance: %+v", res)
	}
	midnight := t0 + 24*3600*second
	if res := f.take(t, st, midnight, nil, quota(midnight)); res.Outcome != meter.Admitted || res.Used != 1 {
		t.Fatalf("next day: %+v, want admitted as the first of the day", res)
	}
	item := f.item(t, store.MeterSK(f.planID))
	for name, want := range map[string]int64{"d20250601": 3, "d20250602": 1, "qD20250601": 3, "qD20250602": 1, "e20250601": 0, "e20250602": 2} {
		if got, _ := store.Int(item, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

func TestZeroQuotaAndEmptyBucketCostNothing(t *testing.T) {
	f := newFixture(t)
	st := f.state()
	if res := f.take(t, st, t0, nil, &meter.Quota{Attr: "qD20250601", Limit: 0, Reset: t0 + 86400*second}); res.Outcome != meter.QuotaExceeded || res.Calls != 0 {
		t.Fatalf("limit 0: %+v", res)
	}
	b := meter.NewBucket("tat", 1, 0, 0)
	if res := f.take(t, st, t0, &b, nil); res.Outcome != meter.Throttled || res.Calls != 0 {
		t.Fatalf("burst 0: %+v", res)
	}
}

func TestRouteBucketsAreSeparateButShareTheQuota(t *testing.T) {
	f := newFixture(t)
	planBucket := meter.NewBucket("tat", 1, 1, 0)
	route := meter.NewBucket("r0badcafe", 1, 2, 0)
	q := &meter.Quota{Attr: "qD20250601", Limit: 3, Reset: t0 + 86400*second}
	st := f.state()
	steps := []struct {
		b    *meter.Bucket
		want meter.Outcome
	}{
		{&planBucket, meter.Admitted},
		{&planBucket, meter.Throttled},
		{&route, meter.Admitted},
		{&route, meter.Admitted},
		{&route, meter.QuotaExceeded}, // the route has a token left, the plan's quota does not
	}
	for i, s := range steps {
		if res := f.take(t, st, t0, s.b, q); res.Outcome != s.want {
			t.Fatalf("step %d: %v, want %v", i, res.Outcome, s.want)
		}
	}
}

func TestStaleVersions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := meter.NewBucket("tat", 100, 10, 0)
	try := func(kv, pv int64) meter.Result {
		res, err := f.m.Take(ctx, &meter.Request{Now: t0, KeyVersion: kv, PlanVersion: pv, Bucket: &b}, f.state())
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := try(f.kv-1, f.pv); res.Outcome != meter.Stale || res.Stale != meter.KeyChanged {
		t.Errorf("old key version: %+v", res)
	}
	if res := try(f.kv, f.pv-1); res.Outcome != meter.Stale || res.Stale != meter.PlanChanged {
		t.Errorf("old plan version: %+v", res)
	}
	// A newer plan than the item knows is admitted and moves the item on, so
	// a sync that died half-way cannot lock a key out.
	if res := try(f.kv, f.pv+1); res.Outcome != meter.Admitted {
		t.Errorf("newer plan version: %+v", res)
	}
	if pv, _ := store.Int(f.item(t, store.MeterSK(f.planID)), store.AttrPlanVersion); pv != f.pv+1 {
		t.Errorf("item pv = %d, want %d", pv, f.pv+1)
	}
	if res := try(f.kv, f.pv); res.Outcome != meter.Stale || res.Stale != meter.PlanChanged {
		t.Errorf("plan version the item has moved past: %+v", res)
	}
	if err := f.tbl.Unassign(ctx, f.planID, f.keyID); err != nil {
		t.Fatal(err)
	}
	if res := try(f.kv, f.pv+1); res.Outcome != meter.Stale || res.Stale != meter.KeyChanged {
		t.Errorf("after the assignment went: %+v", res)
	}
}

func TestCallsPerDecision(t *testing.T) {
	f := newFixture(t)
	f.m.DenyTTL = time.Second
	b := meter.NewBucket("tat", 100, 10, 0)
	st := f.state()
	now := t0
	// Warm: one call for each admission, at the rate limit.
	f.take(t, st, now, &b, nil)
	f.calls.Reset()
	for range 100 {
		now += 10_000
		if res := f.take(t, st, now, &b, nil); res.Outcome != meter.Admitted || res.Calls != 1 {
			t.Fatalf("steady state: %+v", res)
		}
	}
	if n := f.calls.Get(""); n != 100 {
		t.Fatalf("%d calls for 100 decisions", n)
	}
	// Saturated: the first denial asks DynamoDB, the rest come from memory.
	for range 20 {
		f.take(t, st, now, &b, nil)
	}
	f.calls.Reset()
	for range 100 {
		if res := f.take(t, st, now, &b, nil); res.Outcome != meter.Throttled || res.Calls != 0 {
			t.Fatalf("saturated: %+v", res)
		}
	}
	if n := f.calls.Get(""); n != 0 {
		t.Fatalf("%d calls for 100 remembered denials", n)
	}
	// Past DenyTTL it asks again.
	if res := f.take(t, st, now+int64(time.Second/time.Microsecond)+1, &b, nil); res.Calls != 1 {
		t.Fatalf("after DenyTTL: %+v", res)
	}
}

func TestCompactionMovesOldDaysToHistory(t *testing.T) {
	f := newFixture(t)
	f.m.Retention = 30 * 24 * time.Hour
	q := plans.Quota{Limit: 100, Period: plans.Day}
	take := func(day int, n int) {
		now := t0 + int64(day)*86400*second + 3600*second
		w := q.Window(time.UnixMicro(now))
		for range n {
			f.take(t, f.state(), now, nil, &meter.Quota{Attr: store.PrefixQuota + w.ID, Limit: 100, Reset: w.End.UnixMicro()})
		}
	}
	take(0, 3) // June 1
	take(1, 2) // June 2
	take(2, 1) // June 3: June 1 is now before yesterday
	item := f.item(t, store.MeterSK(f.planID))
	for _, gone := range []string{"d20250601", "e20250601", "qD20250601"} {
		if _, ok := item[gone]; ok {
			t.Errorf("%s still in the meter item", gone)
		}
	}
	for _, kept := range []string{"d20250602", "d20250603", "qD20250602", "qD20250603"} {
		if _, ok := item[kept]; !ok {
			t.Errorf("%s missing from the meter item", kept)
		}
	}
	hist := f.item(t, store.HistorySK(f.planID, "202506"))
	if d, _ := store.Int(hist, "d20250601"); d != 3 {
		t.Errorf("history d20250601 = %d, want 3", d)
	}
	if e, _ := store.Int(hist, "e20250601"); e != 97 {
		t.Errorf("history e20250601 = %d, want 97", e)
	}
	if exp, _ := store.Int(hist, store.AttrExpires); exp != time.Date(2025, 7, 31, 0, 0, 0, 0, time.UTC).Unix() {
		t.Errorf("history exp = %d, want end of June + 30 days", exp)
	}
	// The item stays small: well under the 1 KB that one WCU covers.
	if size := itemSize(item); size > 400 {
		t.Errorf("meter item is %d bytes", size)
	}
}

// itemSize approximates DynamoDB's item size: names plus values.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += len(strings.TrimLeft(v.Value, "-"))/2 + 1
		default:
			n += 8
		}
	}
	return n
}

// TestTwoCallsAtWorst hammers one idle bucket from many instances, the
// worst case for guessing the variant: no decision may take a third call.
func TestTwoCallsAtWorst(t *testing.T) {
	f := newFixture(t)
	b := meter.NewBucket("tat", 1e6, 1_000_000, 0)
	var mu sync.Mutex
	hist := map[int]int{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// An instance of its own: a Meter makes one decision at a time.
			m := &meter.Meter{DB: f.m.DB, Table: f.m.Table}
			st := f.state()
			for range 50 {
				res, err := m.Take(context.Background(), &meter.Request{Now: time.Now().UnixMicro(), KeyVersion: f.kv, PlanVersion: f.pv, Bucket: &b}, st)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				hist[res.Calls]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("calls per decision: %v", hist)
	for calls := range hist {
		if calls > 2 {
			t.Fatalf("a decision took %d calls: %v", calls, hist)
		}
	}
}

// TestHerdDamping plays two instances on a bucket of one token a second:
// the one that loses a race for a token it saw due tries only with odds
// that halve per loss and double per DenyTTL, and its damped denials cost
// nothing and leave the token for the next try.
func TestHerdDamping(t *testing.T) {
	f := newFixture(t)
	f.m.DenyTTL = 4 * time.Second
	var dice float64
	f.m.Rand = func() float64 { return dice }
	b := meter.NewBucket("tat", 1, 1, 0)
	a, b2 := f.state(), f.state()
	steps := []struct {
		st    *meter.State
		at    int64 // µs after t0
		dice  float64
		want  meter.Outcome
		calls int
	}{
		{a, 0, 0.99, meter.Admitted, 1},
		{b2, 0, 0.99, meter.Throttled, 1},          // it had not seen a token due: no race lost
		{a, second, 0.99, meter.Admitted, 1},       //
		{b2, second, 0.99, meter.Throttled, 1},     // it saw the token due and lost it: odds 1/2
		{b2, 2 * second, 0.7, meter.Throttled, 0},  // a second later 0.59: damped, though a token is there
		{a, 2 * second, 0.99, meter.Admitted, 1},   // and the token is still there for another
		{b2, 2 * second, 0.4, meter.Throttled, 1},  // it tries, and loses again: 0.30
		{b2, 3 * second, 0.4, meter.Throttled, 0},  // a second later 0.35
		{b2, 10 * second, 0.99, meter.Admitted, 1}, // two DenyTTLs later 1.19: no longer damped
		{b2, 11 * second, 0.99, meter.Admitted, 1}, //
		{a, 11 * second, 0.99, meter.Throttled, 1}, // now a saw a token due and lost it: odds 1/2
		{a, 12 * second, 0.99, meter.Throttled, 0}, // and is damped
		{b2, 12 * second, 0.99, meter.Admitted, 1}, // while b2 is not
	}
	for i, s := range steps {
		dice = s.dice
		res := f.take(t, s.st, t0+s.at, &b, nil)
		if res.Outcome != s.want || res.Calls != s.calls {
			t.Fatalf("step %d: outcome %v in %d calls, want %v in %d", i, res.Outcome, res.Calls, s.want, s.calls)
		}
	}
}

// TestShardedKeysStayWithinTheWhole floods sharded keys from three
// instances: no window of admissions may exceed the whole bucket, and the
// shards together must admit nearly what one exact bucket would.
func TestShardedKeysStayWithinTheWhole(t *testing.T) {
	for _, n := range []int{2, 4, 8} {
		f := newShardedFixture(t, n)
		rng := rand.New(rand.NewPCG(uint64(n), 11))
		f.m.Rand = rng.Float64
		f.m.DenyTTL = time.Second
		const rate, burst = 200, 40
		b := meter.NewBucket("tat", rate, burst, 0)
		mdl := &model{capacity: b.Burst * b.T, t: b.T, level: b.Burst * b.T, last: t0}
		states := []*meter.State{f.state(), f.state(), f.state()}
		now := t0
		var admitted []int64
		ideal, most := 0, 0
		for range 1500 {
			now += rng.Int64N(2 * 2_000) // 500/s offered
			res := f.take(t, states[rng.IntN(len(states))], now, &b, nil)
			if res.Outcome == meter.Admitted {
				admitted = append(admitted, now)
			}
			if mdl.take(now) {
				ideal++
			}
			most = max(most, res.Calls)
		}
		for i := range admitted {
			for j := i + 1; j < len(admitted); j++ {
				if k, bound := int64(j-i+1), burst+(admitted[j]-admitted[i])/b.T; k > bound {
					t.Fatalf("%d shards: %d admissions in %dµs; the bucket allows %d", n, k, admitted[j]-admitted[i], bound)
				}
			}
		}
		t.Logf("%d shards: admitted %d, one exact bucket %d, at most %d calls a decision", n, len(admitted), ideal, most)
		if len(admitted) < ideal*85/100 {
			t.Errorf("%d shards: admitted %d; one bucket admits %d", n, len(admitted), ideal)
		}
		if most > 4 {
			t.Errorf("%d shards: a decision took %d calls; two writes of two calls each is the most", n, most)
		}
	}
}

// TestShardedQuotaIsNotStranded spends a quota split over four shards: it
// must admit all of it, however the shares were used up, and then deny.
func TestShardedQuotaIsNotStranded(t *testing.T) {
	f := newShardedFixture(t, 4)
	f.m.DenyTTL = time.Second
	rng := rand.New(rand.NewPCG(4, 4))
	f.m.Rand = rng.Float64
	q := &meter.Quota{Attr: "qM202506", Limit: 10, Reset: t0 + 30*86400*second}
	st := f.state()
	admitted := 0
	for i := range 14 {
		res := f.take(t, st, t0+int64(i), nil, q)
		switch res.Outcome {
		case meter.Admitted:
			admitted++
		case meter.QuotaExceeded:
		default:
			t.Fatalf("decision %d: %+v", i, res)
		}
	}
	if admitted != 10 {
		t.Fatalf("admitted %d of a quota of 10", admitted)
	}
	// Another instance, knowing nothing, looks in every shard once.
	res := f.take(t, f.state(), t0+20, nil, q)
	if res.Outcome != meter.QuotaExceeded || res.Calls != 4 || res.Used != 10 {
		t.Fatalf("fresh instance: %+v, want a quota denial after 4 calls that saw 10 used", res)
	}
	// The counters add up to the quota, shard by shard.
	var total int64
	for i := range 4 {
		out, err := f.tbl.DB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &f.tbl.Name, ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": store.S(store.ShardPK(f.keyID, i)), "sk": store.S(store.MeterSK(f.planID))}})
		if err != nil {
			t.Fatal(err)
		}
		n, _ := store.Int(out.Item, q.Attr)
		if n > plans.Share(10, i, 4) {
			t.Errorf("shard %d used %d of its share %d", i, n, plans.Share(10, i, 4))
		}
		total += n
	}
	if total != 10 {
		t.Errorf("shards used %d in all, want 10", total)
	}
}

// TestShardedDecisionTriesPastRememberedDenials: a decision may write to
// two shards, and shards it remembers empty cost nothing and do not count,
// so it goes on past them to a shard with a token.
func TestShardedDecisionTriesPastRememberedDenials(t *testing.T) {
	f := newShardedFixture(t, 4)
	f.m.DenyTTL = 10 * time.Second
	f.m.Rand = func() float64 { return 0 } // after home, shards in order
	b := meter.NewBucket("tat", 0.4, 4, 0) // a token per shard, every 10 s
	a, other := f.state(), f.state()
	meter.SetHome(a, 0)
	meter.SetHome(other, 0)
	steps := []struct {
		st    *meter.State
		at    int64
		want  meter.Outcome
		calls int
	}{
		{a, 0, meter.Admitted, 1},               // shard 0
		{a, 5 * second, meter.Admitted, 1},      // shard 0 remembered empty; shard 1
		{other, 10 * second, meter.Admitted, 1}, // shard 0 again, refilled
		// Shard 0: a write that loses; shard 1: remembered empty, free;
		// shard 2: a token.
		{a, 10 * second, meter.Admitted, 2},
	}
	for i, s := range steps {
		res := f.take(t, s.st, t0+s.at, &b, nil)
		if res.Outcome != s.want || res.Calls != s.calls {
			t.Fatalf("step %d: outcome %v in %d calls, want %v in %d", i, res.Outcome, res.Calls, s.want, s.calls)
		}
	}
}
