package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// owner is the key a value's hash item points at, or "".
func owner(t *testing.T, tbl *store.Table, value string) string {
	t.Helper()
	id, err := tbl.KeyIDByHash(context.Background(), keys.Hash(value))
	if err != nil && !store.IsKind(err, store.NotFound) {
		t.Fatal(err)
	}
	return id
}

func newValue() string { v, _ := keys.Generate(); return v }

func TestRotateKey(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tbl := dynamotest.Store(t, dynamotest.Client(t), func() time.Time { return clock })
	k, v0 := mustKey(t, tbl, "k")
	p := mustPlan(t, tbl, "prod")
	if err := tbl.Assign(ctx, p.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	before, _ := tbl.Key(ctx, k.ID)

	v1 := newValue()
	got, err := tbl.RotateKey(ctx, k.ID, store.Rotation{Hash: keys.Hash(v1), Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	graceEnd := clock.Add(time.Hour).UnixMicro()
	if got.Hash != keys.Hash(v1) || got.PreviousHash != keys.Hash(v0) || got.PreviousExpiresAt != graceEnd || got.Version != before.Version+1 {
		t.Fatalf("rotated key = %+v", got)
	}
	// Both values are the key; the meter moved with it.
	if owner(t, tbl, v0) != k.ID || owner(t, tbl, v1) != k.ID {
		t.Fatalf("values point at %q and %q, want both %s", owner(t, tbl, v0), owner(t, tbl, v1), k.ID)
	}
	if kv, _, _ := meter(t, tbl, k.ID, p.ID); kv != got.Version {
		t.Fatalf("meter kv = %d, want %d", kv, got.Version)
	}
	now := clock.UnixMicro()
	for _, c := range []struct {
		value   string
		at      int64
		rotated bool
	}{
		{v1, now, false}, {v0, now, false}, {v0, graceEnd - 1, false}, {v0, graceEnd, true}, {"other", now, true},
	} {
		if r := got.Rotated(keys.Hash(c.value), c.at); r != c.rotated {
			t.Errorf("Rotated(%.8s…, %d) = %v, want %v", c.value, c.at, r, c.rotated)
		}
	}

	// Rotating again during the grace period ends it at once.
	v2 := newValue()
	got, err = tbl.RotateKey(ctx, k.ID, store.Rotation{Hash: keys.Hash(v2), Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if owner(t, tbl, v0) != "" || owner(t, tbl, v1) != k.ID || got.PreviousHash != keys.Hash(v1) || got.PreviousExpiresAt != now {
		t.Fatalf("second rotation: v0 -> %q, v1 -> %q, key %+v", owner(t, tbl, v0), owner(t, tbl, v1), got)
	}
	if !got.Rotated(keys.Hash(v1), now) {
		t.Fatal("a grace period of 0 left the previous value working")
	}

	// Values stay unique, and a value cannot come back.
	_, other := mustKey(t, tbl, "other")
	for _, v := range []string{other, v1} {
		if _, err := tbl.RotateKey(ctx, k.ID, store.Rotation{Hash: keys.Hash(v)}); !store.IsKind(err, store.Conflict) {
			t.Fatalf("rotating to a value in use: %v, want Conflict", err)
		}
	}
	if _, err := tbl.RotateKey(ctx, "nope", store.Rotation{Hash: keys.Hash(newValue())}); !store.IsKind(err, store.NotFound) {
		t.Fatalf("rotating an unknown key: %v", err)
	}

	// A grace period ends on a whole second, rounded up.
	clock = clock.Add(250 * time.Millisecond)
	v3 := newValue()
	got, err = tbl.RotateKey(ctx, k.ID, store.Rotation{Hash: keys.Hash(v3), Grace: 10 * time.Second})
	if want := clock.Add(10*time.Second + 750*time.Millisecond).UnixMicro(); err != nil || got.PreviousExpiresAt != want {
		t.Fatalf("grace end %d, want %d (%v)", got.PreviousExpiresAt, want, err)
	}

	// Deleting the key deletes both values' hash items.
	if err := tbl.DeleteKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if owner(t, tbl, v2) != "" || owner(t, tbl, v3) != "" {
		t.Fatal("a deleted key's value still points at it")
	}
}

// Of rotations racing on one key, exactly one wins: the key has one new
// value, the old one in its grace period, and nothing else. A proxy holds
// every rotation's transaction until all of them have read the key, so
// that they race however slowly a loaded machine starts them.
func TestRacingRotationsOneWins(t *testing.T) {
	ctx := context.Background()
	proxy := dynamotest.NewFaultProxy(t)
	tbl := dynamotest.Store(t, dynamotest.Client(t, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(proxy.URL) }), nil)
	const racers = 6
	for round := range 3 {
		k, v0 := mustKey(t, tbl, "racer")
		p := mustPlan(t, tbl, "prod")
		tbl.Assign(ctx, p.ID, k.ID)
		var arrived atomic.Int64
		release := make(chan struct{})
		proxy.SetRule(func(c dynamotest.Call) dynamotest.Fault {
			if c.Op != "TransactWriteItems" {
				return dynamotest.Pass
			}
			switch n := arrived.Add(1); {
			case n == racers:
				close(release)
			case n < racers:
				select {
				case <-release:
				case <-time.After(30 * time.Second): // a racer failed before writing; the test says so
				}
			}
			return dynamotest.Pass
		})
		values := make([]string, racers)
		errs := make([]error, racers)
		var wg sync.WaitGroup
		for i := range values {
			values[i] = newValue()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = tbl.RotateKey(ctx, k.ID, store.Rotation{Hash: keys.Hash(values[i]), Grace: time.Hour})
			}()
		}
		wg.Wait()
		proxy.SetRule(nil)
		var winners []string
		for i, err := range errs {
			switch {
			case err == nil:
				winners = append(winners, values[i])
			case !store.IsKind(err, store.Conflict):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d rotations won, want exactly 1", round, len(winners))
		}
		got, _ := tbl.Key(ctx, k.ID)
		if got.Hash != keys.Hash(winners[0]) || got.PreviousHash != keys.Hash(v0) {
			t.Fatalf("round %d: the key's values are not the winner's and the original", round)
		}
		for _, v := range values {
			if o := owner(t, tbl, v); (o != "") != (v == winners[0]) {
				t.Fatalf("round %d: a losing value points at %q", round, o)
			}
		}
		if kv, _, _ := meter(t, tbl, k.ID, p.ID); kv != got.Version {
			t.Fatalf("round %d: meter kv = %d, key version %d", round, kv, got.Version)
		}
	}
}

// A rotation whose write lands but whose answer is lost is recognised, by
// the SDK's retry or by the store's own, and a repeated call is safe: with
// the same value it changes nothing, and with the same clientToken it
// replaces the undelivered value and keeps the previous value's grace.
func TestRotationIsIdempotent(t *testing.T) {
	ctx := context.Background()
	proxy := dynamotest.NewFaultProxy(t)
	for _, sdkRetries := range []int{3, 1} {
		client := dynamotest.Client(t, func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(proxy.URL)
			o.RetryMaxAttempts = sdkRetries
		})
		tbl := dynamotest.Store(t, client, nil)
		k, v0 := mustKey(t, tbl, "k")
		var transactions atomic.Int64
		proxy.SetRule(func(c dynamotest.Call) dynamotest.Fault {
			if c.Op == "TransactWriteItems" && transactions.Add(1) == 1 {
				return dynamotest.ErrorAfter // applied, and the answer lost
			}
			return dynamotest.Pass
		})
		v1 := newValue()
		got, err := tbl.RotateKey(ctx, k.ID, store.Rotation{Hash: keys.Hash(v1), Grace: time.Hour, Token: "t1"})
		proxy.SetRule(nil)
		t.Logf("SDK attempts %d: %d transactions for one rotation", sdkRetries, transactions.Load())
		if sdkRetries > 1 && transactions.Load() < 2 {
			t.Fatalf("the SDK did not retry the lost answer")
		}
		if err != nil {
			t.Fatalf("SDK attempts %d: %v", sdkRetries, err)
		}
		if got.Hash != keys.Hash(v1) || got.PreviousHash != keys.Hash(v0) || got.Version != 2 {
			t.Fatalf("SDK attempts %d: applied more than once or not at all: %+v", sdkRetries, got)
		}

		// The same value again: nothing changes.
		again, err := tbl.RotateKey(ctx, k.ID, store.Rotation{Hash: keys.Hash(v1), Grace: time.Minute})
		if err != nil || again.Version != got.Version || again.PreviousExpiresAt != got.PreviousExpiresAt {
			t.Fatalf("repeated with the same value: %+v, %v", again, err)
		}
		// The same token with a fresh value: v1 was never delivered.
		v2 := newValue()
		redo, err := tbl.RotateKey(ctx, k.ID, store.Rotation{Hash: keys.Hash(v2), Grace: time.Minute, Token: "t1"})
		if err != nil {
			t.Fatal(err)
		}
		if redo.Hash != keys.Hash(v2) || redo.PreviousHash != keys.Hash(v0) || redo.PreviousExpiresAt != got.PreviousExpiresAt ||
			owner(t, tbl, v1) != "" || owner(t, tbl, v0) != k.ID {
			t.Fatalf("repeated with the same token: %+v; v1 -> %q", redo, owner(t, tbl, v1))
		}
		// Another token is another rotation: v0's grace ends.
		v3 := newValue()
		next, err := tbl.RotateKey(ctx, k.ID, store.Rotation{Hash: keys.Hash(v3), Grace: time.Minute, Token: "t2"})
		if err != nil || next.PreviousHash != keys.Hash(v2) || owner(t, tbl, v0) != "" {
			t.Fatalf("a new rotation: %+v, %v", next, err)
		}
	}
}
