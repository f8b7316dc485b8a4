package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func TestAlertMarkers(t *testing.T) {
	ctx := context.Background()
	// DynamoDB Local deletes expired items: keep the markers' TTL ahead.
	now := time.Now().UTC()
	tbl := dynamotest.Store(t, dynamotest.Client(t), func() time.Time { return now })
	a := store.Alert{KeyID: "k1", PlanID: "p1", Window: "D20261121", Threshold: 80}
	expires := store.AlertExpires(now.Add(14 * time.Hour))

	claim := func(owner, record string) store.Claim {
		t.Helper()
		c, _, err := tbl.ClaimAlert(ctx, a, owner, record, time.Minute, expires)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := claim("o1", "r1"); c != store.Claimed {
		t.Fatalf("first claim: %v", c)
	}
	if c := claim("o1", "r1"); c != store.Claimed {
		t.Fatalf("the owner claiming again (an SDK retry): %v, want Claimed", c)
	}
	if c := claim("o2", "r1"); c != store.Held {
		t.Fatalf("another attempt at the same record within the lease: %v, want Held", c)
	}
	if c := claim("o3", "r2"); c != store.Busy {
		t.Fatalf("another record within the lease: %v, want Busy", c)
	}
	if err := tbl.ReleaseAlert(ctx, a, "o2"); err != nil {
		t.Fatal(err)
	}
	if c := claim("o3", "r2"); c != store.Busy {
		t.Fatalf("released by a non-owner: %v, want Busy", c)
	}
	if err := tbl.ReleaseAlert(ctx, a, "o1"); err != nil {
		t.Fatal(err)
	}
	if c := claim("o2", "r1"); c != store.Claimed {
		t.Fatalf("after its owner released it: %v, want Claimed", c)
	}
	now = now.Add(2 * time.Minute)
	if c := claim("o3", "r2"); c != store.Claimed {
		t.Fatalf("another record after the lease: %v, want Claimed", c)
	}
	if ok, err := tbl.AlertSent(ctx, a, "o2", "ev1"); err != nil || ok {
		t.Fatalf("an owner taken over marks it sent: %v %v; want false", ok, err)
	}
	if ok, err := tbl.AlertSent(ctx, a, "o3", "ev2"); err != nil || !ok {
		t.Fatalf("the owner marks it sent: %v %v", ok, err)
	}
	for _, owner := range []string{"o1", "o3", "o4"} {
		if c := claim(owner, "r1"); c != store.Done {
			t.Fatalf("%s claims a sent alert: %v, want Done", owner, c)
		}
	}
	if st, _ := tbl.AlertState(ctx, a); st != "sent" {
		t.Fatalf("state %q", st)
	}

	b := a
	b.Arm = 12345
	if a.ID() == b.ID() || a.ID() != (store.Alert{KeyID: "k1", PlanID: "p1", Window: "D20261121", Threshold: 80}).ID() {
		t.Fatal("alert ids must differ by arming and be stable")
	}
	if err := tbl.SkipAlert(ctx, b, expires); err != nil {
		t.Fatal(err)
	}
	if c, _, _ := tbl.ClaimAlert(ctx, b, "o1", "r1", time.Minute, expires); c != store.Done {
		t.Fatalf("a skipped alert claimed: %v", c)
	}
	if err := tbl.SkipAlert(ctx, a, expires); err != nil {
		t.Fatal(err)
	}
	if st, _ := tbl.AlertState(ctx, a); st != "sent" {
		t.Fatalf("skipping a sent alert changed it to %q", st)
	}
}

func TestRacingClaimsOneWins(t *testing.T) {
	tbl := newTable(t)
	a := store.Alert{KeyID: "k1", PlanID: "p1", Window: "M202611", Threshold: 100}
	var wg sync.WaitGroup
	var mu sync.Mutex
	claims := map[store.Claim]int{}
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := tbl.ClaimAlert(context.Background(), a, "owner"+string(rune('a'+i)), "record"+string(rune('a'+i)), time.Minute, time.Now().Add(time.Hour))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			claims[c]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if claims[store.Claimed] != 1 || claims[store.Busy] != 7 {
		t.Fatalf("claims %v, want one Claimed and 7 Busy", claims)
	}
}

func TestSetRemainingArmsEveryShard(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tbl := dynamotest.Store(t, dynamotest.Client(t), func() time.Time { return now })
	k, _ := mustKey(t, tbl, "k")
	p := &store.Plan{Plan: plans.Plan{ID: keys.NewID(), Name: "p", Quota: &plans.Quota{Limit: 100, Period: plans.Month},
		Tags: map[string]string{plans.ShardTag: "3"}}, Shards: 3}
	if err := tbl.CreatePlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Assign(ctx, p.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	counts, err := tbl.QuotaCounts(ctx, k.ID, p.ID, 3, "M202611")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range counts {
		if c.Count != 0 || c.Arm != (store.Arm{}) || !c.Assigned {
			t.Fatalf("shard %d before: %+v", i, c)
		}
	}
	if err := tbl.SetRemaining(ctx, k.ID, p.ID, 3, "M202611", "20261121", 100, 30); err != nil {
		t.Fatal(err)
	}
	counts, err = tbl.QuotaCounts(ctx, k.ID, p.ID, 3, "M202611")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for i, c := range counts {
		if c.Arm != (store.Arm{At: now.UnixMicro(), Used: 70}) {
			t.Fatalf("shard %d arm %+v, want the extension's time and the key's count, 70", i, c.Arm)
		}
		total += c.Count
	}
	if total != 70 {
		t.Fatalf("counts %+v add up to %d, want 70", counts, total)
	}
}
