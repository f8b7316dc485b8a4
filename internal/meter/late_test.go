package meter_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/meter"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// step is what a scripted DB does with one UpdateItem, given the real one.
type step func(ctx context.Context, in *dynamodb.UpdateItemInput, real meter.DB) (*dynamodb.UpdateItemOutput, error)

// scripted is a DB whose next UpdateItems follow a script; the rest pass.
type scripted struct {
	meter.DB
	mu    sync.Mutex
	steps []step
}

func (s *scripted) then(steps ...step) {
	s.mu.Lock()
	s.steps = append(s.steps, steps...)
	s.mu.Unlock()
}

func (s *scripted) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	s.mu.Lock()
	var next step
	if len(s.steps) > 0 {
		next, s.steps = s.steps[0], s.steps[1:]
	}
	s.mu.Unlock()
	if next == nil {
		return s.DB.UpdateItem(ctx, in, opts...)
	}
	return next(ctx, in, s.DB)
}

var errLost = errors.New("injected: the answer was lost")

// retried applies the write, runs between (other instances' decisions),
// and sends the same write again, as the SDK does after a lost answer.
func retried(between func()) step {
	return func(ctx context.Context, in *dynamodb.UpdateItemInput, db meter.DB) (*dynamodb.UpdateItemOutput, error) {
		if _, err := db.UpdateItem(ctx, in); err != nil {
			return nil, err
		}
		between()
		return db.UpdateItem(ctx, in)
	}
}

// lost applies the write and loses its answer.
func lost(ctx context.Context, in *dynamodb.UpdateItemInput, db meter.DB) (*dynamodb.UpdateItemOutput, error) {
	if _, err := db.UpdateItem(ctx, in); err != nil {
		return nil, err
	}
	return nil, errLost
}

// held keeps the write in flight: a copy goes to *late, for the test to
// land when it likes, and the caller hears that its deadline passed.
func held(late **dynamodb.UpdateItemInput) step {
	return func(ctx context.Context, in *dynamodb.UpdateItemInput, db meter.DB) (*dynamodb.UpdateItemOutput, error) {
		c := *in
		c.ExpressionAttributeNames = maps.Clone(in.ExpressionAttributeNames)
		c.ExpressionAttributeValues = map[string]types.AttributeValue{}
		for k, v := range in.ExpressionAttributeValues {
			if n, ok := v.(*types.AttributeValueMemberN); ok {
				v = &types.AttributeValueMemberN{Value: n.Value}
			}
			c.ExpressionAttributeValues[k] = v
		}
		*late = &c
		return nil, context.DeadlineExceeded
	}
}

// before runs fn, then lets the write through.
func before(fn func()) step {
	return func(ctx context.Context, in *dynamodb.UpdateItemInput, db meter.DB) (*dynamodb.UpdateItemOutput, error) {
		fn()
		return db.UpdateItem(ctx, in)
	}
}

// instance is a Meter with a tag of its own over db.
func (f *fixture) instance(tag string, db meter.DB) *meter.Meter {
	return &meter.Meter{DB: db, Table: f.tbl.Name, Tag: func() string { return tag }}
}

func (f *fixture) decide(t *testing.T, m *meter.Meter, st *meter.State, now int64, b *meter.Bucket, q *meter.Quota) (meter.Result, error) {
	t.Helper()
	return m.Take(context.Background(), &meter.Request{Now: now, KeyVersion: f.kv, PlanVersion: f.pv, Bucket: b, Quota: q}, st)
}

func (f *fixture) admit(t *testing.T, m *meter.Meter, st *meter.State, now int64, b *meter.Bucket, q *meter.Quota) meter.Result {
	t.Helper()
	res, err := f.decide(t, m, st, now, b, q)
	if err != nil || res.Outcome != meter.Admitted {
		t.Fatalf("decision at +%dµs: %+v, %v; want an admission", now-t0, res, err)
	}
	return res
}

// land applies a held write, as DynamoDB would when it finally gets to it,
// and reports whether it was applied.
func (f *fixture) land(t *testing.T, in *dynamodb.UpdateItemInput) bool {
	t.Helper()
	_, err := f.tbl.DB.UpdateItem(context.Background(), in)
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		t.Fatal(err)
	}
	return err == nil
}

// counters reads the meter item's TAT, day count, quota count and remaining.
func (f *fixture) counters(t *testing.T) (tat, day, quota, remaining int64) {
	t.Helper()
	item := f.item(t, store.MeterSK(f.planID))
	tat, _ = store.Int(item, "tat")
	day, _ = store.Int(item, "d"+meter.Day(t0))
	quota, _ = store.Int(item, "qD20250601")
	remaining, _ = store.Int(item, "e"+meter.Day(t0))
	return
}

// limits are a bucket of 5 refilling one token a second and a quota of 10
// a day: what the tests below meter.
func limits() (*meter.Bucket, *meter.Quota) {
	b := meter.NewBucket("tat", 1, 5, 0)
	return &b, &meter.Quota{Attr: "qD20250601", Limit: 10, Reset: t0 + 86400*second}
}

// TestRetriedWriteCountsOnce: a write applied, its answer lost and the
// same write sent again (as the SDK's retryer does) is one admission, with
// other instances admitted in between.
func TestRetriedWriteCountsOnce(t *testing.T) {
	f := newFixture(t)
	b, q := limits()
	db := &scripted{DB: f.tbl.DB}
	a, other := f.instance("AAAA", db), f.instance("BBBB", f.tbl.DB)
	sa, so := f.state(), f.state()
	db.then(retried(func() {
		f.admit(t, other, so, t0+1, b, q)
		f.admit(t, other, so, t0+2, b, q)
	}))
	res := f.admit(t, a, sa, t0, b, q)
	if res.Used != 3 {
		t.Errorf("Used = %d, want the 3 the item shows", res.Used)
	}
	tat, day, quota, remaining := f.counters(t)
	if day != 3 || quota != 3 || remaining != 7 || tat != t0+3*b.T {
		t.Fatalf("day %d quota %d remaining %d, TAT t0%+d µs; want 3, 3, 7 and t0+3T: three admissions", day, quota, remaining, tat-t0)
	}
	// And the instance goes on as usual.
	db.then(retried(func() {}))
	f.admit(t, a, sa, t0+3, b, q)
	if _, day, quota, _ := f.counters(t); day != 4 || quota != 4 {
		t.Fatalf("day %d quota %d, want 4", day, quota)
	}
}

// TestSDKRetryAfterApplyCountsOnce sends writes through a proxy that
// applies them and then fails the answer (HTTP 500, or a reset
// connection); the SDK's own retryer sends them again.
func TestSDKRetryAfterApplyCountsOnce(t *testing.T) {
	for _, fault := range []dynamotest.Fault{dynamotest.ErrorAfter, dynamotest.ResetAfter} {
		t.Run(fault.String(), func(t *testing.T) {
			f := newFixture(t)
			p := dynamotest.NewFaultProxy(t)
			db := dynamotest.Client(t, func(o *dynamodb.Options) {
				o.BaseEndpoint = aws.String(p.URL)
				o.Retryer = retry.AddWithMaxBackoffDelay(retry.NewStandard(), 10*time.Millisecond)
			})
			var n int
			var mu sync.Mutex
			p.SetRule(func(c dynamotest.Call) dynamotest.Fault {
				mu.Lock()
				defer mu.Unlock()
				if c.Op == "UpdateItem" {
					if n++; n%2 == 1 {
						return fault // every first attempt
					}
				}
				return dynamotest.Pass
			})
			b, q := limits()
			m, st := f.instance("AAAA", db), f.state()
			for i := range 5 {
				f.admit(t, m, st, t0+int64(i), b, q)
			}
			if res, err := f.decide(t, m, st, t0+5, b, q); err != nil || res.Outcome != meter.Throttled {
				t.Fatalf("6th request, the bucket of 5 spent: %+v, %v", res, err)
			}
			if got := p.Faults()[fault]; got < 5 {
				t.Fatalf("%d faults injected, want at least 5", got)
			}
			if tat, day, quota, _ := f.counters(t); day != 5 || quota != 5 || tat != t0+5*b.T {
				t.Fatalf("day %d quota %d TAT t0%+dµs; want 5, 5, t0+5T", day, quota, tat-t0)
			}
		})
	}
}

// TestTagCollision: an instance that finds its slot holding a larger id
// than its write's has met another instance with its tag: it draws another
// and is admitted, counted once.
func TestTagCollision(t *testing.T) {
	f := newFixture(t)
	tags := []string{"SAME", "OTHR"}
	late := &meter.Meter{DB: f.tbl.DB, Table: f.tbl.Name, Tag: func() string { tag := tags[0]; tags = tags[1:]; return tag }}
	_, q := limits()
	f.admit(t, f.instance("SAME", f.tbl.DB), f.state(), t0+second, nil, q)
	res := f.admit(t, late, f.state(), t0, nil, q) // an id a second smaller
	if res.Calls != 2 {
		t.Errorf("%d calls, want 2: one that met the other's slot, one under a new tag", res.Calls)
	}
	item := f.item(t, store.MeterSK(f.planID))
	if _, ok := item["wOTHR"]; !ok || store.Str(item, "lw") != "OTHR" {
		t.Errorf("item %v: want a slot wOTHR, and lw OTHR", item)
	}
	if _, day, quota, _ := f.counters(t); day != 2 || quota != 2 {
		t.Fatalf("day %d quota %d, want 2", day, quota)
	}
}

// TestPruning: an instance that sees a meter item holding eight or more
// slots of others older than the prune age removes them, and leaves the
// fresh ones.
func TestPruning(t *testing.T) {
	b := meter.NewBucket("tat", 1e6, 1_000_000, 0)
	// slots writes one admission each for instances named prefix0…, at at,
	// and returns the item's slots.
	write := func(f *fixture, prefix string, n int, at int64) meter.Result {
		var res meter.Result
		for i := range n {
			res = f.admit(t, f.instance(prefix+strconv.Itoa(i), f.tbl.DB), f.state(), at, &b, nil)
		}
		return res
	}
	slots := func(f *fixture) (names []string) {
		for name := range f.item(t, store.MeterSK(f.planID)) {
			if store.IsSlot(name) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		return names
	}

	f := newFixture(t)
	write(f, "old", 9, t0) // tags old0…old8
	write(f, "new", 1, t0+30*second)
	if n := len(slots(f)); n != 10 {
		t.Fatalf("%d slots, want 10", n)
	}
	// Past a minute after the old ones, not after new0. A new instance's
	// first write sees the whole item, and prunes.
	if res := write(f, "frs", 1, t0+61*second); res.Calls != 2 {
		t.Errorf("%d calls, want the write and the prune", res.Calls)
	}
	if got := slots(f); !slices.Equal(got, []string{"wfrs0", "wnew0"}) {
		t.Fatalf("slots after pruning: %v; want wfrs0 and wnew0", got)
	}

	// Seven stale slots are not worth a write.
	f = newFixture(t)
	write(f, "old", 7, t0)
	if res := write(f, "new", 1, t0+2*60*second); res.Calls != 1 {
		t.Errorf("%d calls with 7 stale slots, want 1", res.Calls)
	}
	if n := len(slots(f)); n != 8 {
		t.Fatalf("%d slots, want 8", n)
	}
}

// TestReconcile: a write whose decision was denied at its deadline, and
// what becomes of it in each case.
func TestReconcile(t *testing.T) {
	b, q := limits()
	type setup struct {
		f     *fixture
		db    *scripted
		a     *meter.Meter
		sa    *meter.State
		write *dynamodb.UpdateItemInput // the write in flight
	}
	start := func(t *testing.T) *setup {
		f := newFixture(t)
		s := &setup{f: f, db: &scripted{DB: f.tbl.DB}, sa: f.state()}
		s.a = f.instance("AAAA", s.db)
		f.admit(t, s.a, s.sa, t0, b, q) // one admission before: a TAT in place
		s.db.then(held(&s.write))
		if _, err := f.decide(t, s.a, s.sa, t0+1, b, q); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("held write: %v, want the deadline's error", err)
		}
		if n := s.a.Pending(); n != 1 {
			t.Fatalf("%d writes remembered, want 1", n)
		}
		return s
	}
	want := func(t *testing.T, s *setup, late meter.LateWrites, tat, count int64) {
		t.Helper()
		if got := s.a.DrainLateWrites(); got != late {
			t.Errorf("late writes %+v, want %+v", got, late)
		}
		gotTAT, day, quota, remaining := s.f.counters(t)
		if gotTAT != tat || day != count || quota != count || remaining != 10-count {
			t.Errorf("TAT t0%+dµs, day %d, quota %d, remaining %d; want t0%+dµs, %d, %d, %d", gotTAT-t0, day, quota, remaining, tat-t0, count, count, 10-count)
		}
		if n := s.a.Pending(); n != 0 {
			t.Errorf("%d writes still remembered", n)
		}
	}
	t.Run("landed, nobody since: all given back", func(t *testing.T) {
		s := start(t)
		if !s.f.land(t, s.write) {
			t.Fatal("the late write did not apply")
		}
		// The next decision on the item settles it first, then is admitted.
		res := s.f.admit(t, s.a, s.sa, t0+2, b, q)
		if res.Calls != 2 || res.Used != 2 {
			t.Errorf("%+v: want 2 calls (refund, write) and 2 used", res)
		}
		want(t, s, meter.LateWrites{Pending: 1, Refunded: 1}, t0+2*b.T, 2)
	})
	t.Run("landed, another admitted since: the token stays spent", func(t *testing.T) {
		s := start(t)
		s.f.land(t, s.write)
		s.f.admit(t, s.f.instance("BBBB", s.f.tbl.DB), s.f.state(), t0+2, b, q)
		if err := s.a.Reconcile(context.Background(), t0+3); err != nil {
			t.Fatal(err)
		}
		want(t, s, meter.LateWrites{Pending: 1, Refunded: 1}, t0+3*b.T, 2)
	})
	t.Run("landed, then an extension set the count: the quota unit stays", func(t *testing.T) {
		s := start(t)
		s.f.land(t, s.write)
		// Remaining set to 8 of 10 after the write landed: 2 used, as the
		// admin said, whatever the write counted.
		if err := s.f.tbl.SetRemaining(context.Background(), s.f.keyID, s.f.planID, 1, "D20250601", meter.Day(t0), 10, 8); err != nil {
			t.Fatal(err)
		}
		if err := s.a.Reconcile(context.Background(), t0+2); err != nil {
			t.Fatal(err)
		}
		if got := s.a.DrainLateWrites(); got != (meter.LateWrites{Pending: 1, Refunded: 1}) {
			t.Errorf("late writes %+v", got)
		}
		tat, day, quota, remaining := s.f.counters(t)
		if tat != t0+b.T || day != 1 || quota != 2 || remaining != 8 {
			t.Errorf("TAT t0%+dµs, day %d, quota %d, remaining %d; want the token and the day's count back, the extension's 2 and 8 kept", tat-t0, day, quota, remaining)
		}
	})
	t.Run("not landed: fenced, and it never lands", func(t *testing.T) {
		s := start(t)
		if err := s.a.Reconcile(context.Background(), t0+2); err != nil {
			t.Fatal(err)
		}
		if s.f.land(t, s.write) {
			t.Fatal("the late write applied after the fence")
		}
		want(t, s, meter.LateWrites{Pending: 1, Fenced: 1}, t0+b.T, 1)
	})
	t.Run("lands while it is fenced: given back", func(t *testing.T) {
		s := start(t)
		// The refund fails (nothing landed), and just before the fence the
		// write lands: the fence fails on it, and the refund is tried again.
		s.db.then(nil, before(func() { s.f.land(t, s.write) }))
		if err := s.a.Reconcile(context.Background(), t0+2); err != nil {
			t.Fatal(err)
		}
		want(t, s, meter.LateWrites{Pending: 1, Refunded: 1}, t0+b.T, 1)
	})
	t.Run("a refund retried after it applied: given back once", func(t *testing.T) {
		s := start(t)
		s.f.land(t, s.write)
		s.db.then(lost)
		if err := s.a.Reconcile(context.Background(), t0+2); !errors.Is(err, errLost) {
			t.Fatalf("reconcile: %v, want the lost answer", err)
		}
		if n := s.a.Pending(); n != 1 {
			t.Fatalf("%d remembered after a lost answer, want 1", n)
		}
		if err := s.a.Reconcile(context.Background(), t0+3); err != nil {
			t.Fatal(err)
		}
		want(t, s, meter.LateWrites{Pending: 1, Refunded: 1}, t0+b.T, 1)
	})
	t.Run("a refund applied and sent again by the SDK: given back once", func(t *testing.T) {
		s := start(t)
		s.f.land(t, s.write)
		s.db.then(retried(func() {}))
		if err := s.a.Reconcile(context.Background(), t0+2); err != nil {
			t.Fatal(err)
		}
		want(t, s, meter.LateWrites{Pending: 1, Refunded: 1}, t0+b.T, 1)
	})
	t.Run("too old to reconcile: given up and counted", func(t *testing.T) {
		s := start(t)
		s.f.land(t, s.write)
		s.f.admit(t, s.a, s.sa, t0+31*second, b, q)
		if got := s.a.DrainLateWrites(); got != (meter.LateWrites{Pending: 1, Unreconciled: 1}) {
			t.Errorf("late writes %+v, want one pending, given up", got)
		}
	})
	t.Run("fail open: nothing remembered", func(t *testing.T) {
		f := newFixture(t)
		db := &scripted{DB: f.tbl.DB}
		a := f.instance("AAAA", db)
		a.FailOpen = true
		var write *dynamodb.UpdateItemInput
		db.then(held(&write))
		if _, err := f.decide(t, a, f.state(), t0, b, q); err == nil {
			t.Fatal("no error from a held write")
		}
		if n := a.Pending(); n != 0 {
			t.Fatalf("%d remembered under FAIL_MODE=open", n)
		}
	})
}

// TestItemSizeWithSlots: a meter item with a bucket, a quota and the slots
// of 60 instances, all written within the prune age, is still under the
// 1 KB that one write capacity unit covers.
func TestItemSizeWithSlots(t *testing.T) {
	f := newFixture(t)
	b, q := limits()
	b.Tau = 1 << 40 // room for every instance's admission
	q.Limit = 1000
	for i := range 60 {
		f.admit(t, f.instance(fmt.Sprintf("i%03d", i), f.tbl.DB), f.state(), t0+int64(i), b, q)
	}
	item := f.item(t, store.MeterSK(f.planID))
	slots := 0
	for name := range item {
		if store.IsSlot(name) {
			slots++
		}
	}
	size := itemSize(item)
	t.Logf("%d slots: %d bytes", slots, size)
	if slots != 60 || size > 1024 {
		t.Errorf("%d slots in %d bytes; want 60 in at most 1024", slots, size)
	}
}
