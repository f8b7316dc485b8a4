package store_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func newTable(t *testing.T) *store.Table {
	return dynamotest.Store(t, dynamotest.Client(t), nil)
}

func mustKey(t *testing.T, tbl *store.Table, name string) (*store.Key, string) {
	t.Helper()
	v, _ := keys.Generate()
	k := &store.Key{ID: keys.NewID(), Name: name, Enabled: true, Hash: keys.Hash(v)}
	if err := tbl.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k, v
}

func mustPlan(t *testing.T, tbl *store.Table, stages ...string) *store.Plan {
	t.Helper()
	p := &store.Plan{Plan: plans.Plan{ID: keys.NewID(), Name: "plan", Throttle: &plans.Throttle{RateLimit: 10, BurstLimit: 5}}}
	for _, s := range stages {
		p.APIStages = append(p.APIStages, plans.APIStage{APIID: "api1", Stage: s})
	}
	if err := tbl.CreatePlan(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// meter reads a meter item's guard versions.
func meter(t *testing.T, tbl *store.Table, keyID, planID string) (kv, pv int64, assigned bool) {
	t.Helper()
	out, err := tbl.DB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &tbl.Name,
		Key: map[string]types.AttributeValue{"pk": store.S(store.MeterPK(keyID)), "sk": store.S(store.MeterSK(planID))}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	kv, assigned = store.Int(out.Item, store.AttrKeyVersion)
	pv, _ = store.Int(out.Item, store.AttrPlanVersion)
	return kv, pv, assigned
}

func TestKeyValuesAreUniqueAndFoundByHash(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	k, v := mustKey(t, tbl, "first")
	got, err := tbl.KeyByHash(ctx, keys.Hash(v))
	if err != nil || got.ID != k.ID || got.Name != "first" || !got.Enabled || got.Version != 1 {
		t.Fatalf("KeyByHash = %+v, %v", got, err)
	}
	dup := &store.Key{ID: keys.NewID(), Name: "second", Enabled: true, Hash: keys.Hash(v)}
	err = tbl.CreateKey(ctx, dup)
	if !store.IsKind(err, store.Conflict) {
		t.Fatalf("second key with the same value: %v, want Conflict", err)
	}
	if _, err := tbl.Key(ctx, dup.ID); !store.IsKind(err, store.NotFound) {
		t.Fatalf("the rejected key was half-written: %v", err)
	}
	if _, err := tbl.KeyByHash(ctx, keys.Hash("no-such-value-000000")); !store.IsKind(err, store.NotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
}

func TestAssignClaimsStagesAndMovesVersions(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	k, _ := mustKey(t, tbl, "k")
	p1 := mustPlan(t, tbl, "prod", "dev")
	p2 := mustPlan(t, tbl, "test")
	if err := tbl.Assign(ctx, p1.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Assign(ctx, p2.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := tbl.Key(ctx, k.ID)
	want := map[string]string{"api1:prod": p1.ID, "api1:dev": p1.ID, "api1:test": p2.ID}
	if len(got.Stages) != 3 || got.Stages["api1:prod"] != p1.ID || got.Stages["api1:test"] != p2.ID {
		t.Fatalf("Stages = %v, want %v", got.Stages, want)
	}
	if got.Plans != 2 || got.Version != 3 {
		t.Fatalf("Plans, Version = %d, %d, want 2, 3", got.Plans, got.Version)
	}
	// Every assigned meter item follows the key's version.
	for _, p := range []*store.Plan{p1, p2} {
		if kv, pv, ok := meter(t, tbl, k.ID, p.ID); !ok || kv != got.Version || pv != 1 {
			t.Fatalf("meter %s: kv=%d pv=%d assigned=%v, want kv=%d pv=1", p.ID, kv, pv, ok, got.Version)
		}
	}
	// Assigning again changes nothing and succeeds: a repeated call converges.
	if err := tbl.Assign(ctx, p1.ID, k.ID); err != nil {
		t.Fatalf("assigning twice: %v", err)
	}
	if again, _ := tbl.Key(ctx, k.ID); again.Version != got.Version || again.Plans != 2 {
		t.Fatalf("assigning twice changed the key: %+v", again)
	}
	overlap := mustPlan(t, tbl, "prod")
	err := tbl.Assign(ctx, overlap.ID, k.ID)
	if !store.IsKind(err, store.Conflict) || !strings.Contains(err.Error(), p1.ID) {
		t.Fatalf("overlapping plan: %v, want a Conflict naming %s", err, p1.ID)
	}
	if pl, _ := tbl.Plan(ctx, p1.ID); pl.Keys != 1 {
		t.Fatalf("plan keys = %d, want 1", pl.Keys)
	}
}

func TestRacingAssignmentsOneWins(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	for round := range 5 {
		k, _ := mustKey(t, tbl, "racer")
		a, b := mustPlan(t, tbl, "prod"), mustPlan(t, tbl, "prod")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, p := range []*store.Plan{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = tbl.Assign(ctx, p.ID, k.ID) }()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !store.IsKind(err, store.Conflict):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		got, _ := tbl.Key(ctx, k.ID)
		if wins != 1 || got.Plans != 1 || len(got.Stages) != 1 {
			t.Fatalf("round %d: %d wins, key has %d plans and stages %v; want exactly one", round, wins, got.Plans, got.Stages)
		}
	}
}

func TestUnassignKeepsHistoryAndReleasesStages(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	k, _ := mustKey(t, tbl, "k")
	p := mustPlan(t, tbl, "prod")
	if err := tbl.Assign(ctx, p.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Unassign(ctx, p.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := meter(t, tbl, k.ID, p.ID); ok {
		t.Fatal("meter item still assigned")
	}
	got, _ := tbl.Key(ctx, k.ID)
	if len(got.Stages) != 0 || got.Plans != 0 {
		t.Fatalf("after removal: stages %v, plans %d", got.Stages, got.Plans)
	}
	if err := tbl.Unassign(ctx, p.ID, k.ID); err != nil {
		t.Fatalf("removing again: %v", err)
	}
	// Another plan may now take the stage, and the first may come back.
	other := mustPlan(t, tbl, "prod")
	if err := tbl.Assign(ctx, other.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Unassign(ctx, other.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Assign(ctx, p.ID, k.ID); err != nil {
		t.Fatalf("reassign: %v", err)
	}
}

func TestUpdateKeyMovesMeterVersions(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	k, _ := mustKey(t, tbl, "k")
	p := mustPlan(t, tbl, "prod")
	tbl.Assign(ctx, p.ID, k.ID)
	got, err := tbl.UpdateKey(ctx, k.ID, func(k *store.Key) error { k.Enabled = false; return nil })
	if err != nil || got.Enabled {
		t.Fatalf("UpdateKey = %+v, %v", got, err)
	}
	if kv, _, _ := meter(t, tbl, k.ID, p.ID); kv != got.Version {
		t.Fatalf("meter kv = %d, want %d", kv, got.Version)
	}
	if _, err := tbl.UpdateKey(ctx, "nope", func(*store.Key) error { return nil }); !store.IsKind(err, store.NotFound) {
		t.Fatalf("UpdateKey(unknown) = %v", err)
	}
}

func TestConcurrentKeyUpdatesAllLand(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	k, _ := mustKey(t, tbl, "k")
	p := mustPlan(t, tbl, "prod")
	tbl.Assign(ctx, p.ID, k.ID)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := tbl.UpdateKey(ctx, k.ID, func(k *store.Key) error {
				if k.Tags == nil {
					k.Tags = map[string]string{}
				}
				k.Tags[string(rune('a'+i))] = "x"
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := tbl.Key(ctx, k.ID)
	if len(got.Tags) != 8 {
		t.Fatalf("tags = %v: a concurrent update was lost", got.Tags)
	}
	if kv, _, _ := meter(t, tbl, k.ID, p.ID); kv != got.Version {
		t.Fatalf("meter kv = %d, key version %d", kv, got.Version)
	}
}

func TestUpdatePlanFansOutAndGuardsStages(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	p := mustPlan(t, tbl, "prod")
	var members []*store.Key
	for range 20 {
		k, _ := mustKey(t, tbl, "member")
		if err := tbl.Assign(ctx, p.ID, k.ID); err != nil {
			t.Fatal(err)
		}
		members = append(members, k)
	}
	next, err := tbl.UpdatePlan(ctx, p.ID, func(pl *plans.Plan) error { pl.Throttle.RateLimit = 20; return nil })
	if err != nil || next.Version != 2 || next.Synced != 2 {
		t.Fatalf("UpdatePlan = %+v, %v", next, err)
	}
	for _, k := range members {
		if _, pv, _ := meter(t, tbl, k.ID, p.ID); pv != 2 {
			t.Fatalf("member %s meter pv = %d, want 2", k.ID, pv)
		}
	}

	// Adding a stage that one member already has elsewhere changes nothing.
	other := mustPlan(t, tbl, "beta")
	if err := tbl.Assign(ctx, other.ID, members[7].ID); err != nil {
		t.Fatal(err)
	}
	_, err = tbl.UpdatePlan(ctx, p.ID, func(pl *plans.Plan) error {
		pl.APIStages = append(pl.APIStages, plans.APIStage{APIID: "api1", Stage: "beta"})
		return nil
	})
	if !store.IsKind(err, store.Conflict) || !strings.Contains(err.Error(), other.ID) {
		t.Fatalf("adding an overlapping stage: %v, want a Conflict naming %s", err, other.ID)
	}
	for _, k := range members {
		got, _ := tbl.Key(ctx, k.ID)
		if got.Stages["api1:beta"] == p.ID {
			t.Fatalf("key %s kept a claim from the rejected update", k.ID)
		}
	}
	if pl, _ := tbl.Plan(ctx, p.ID); pl.Version != 2 || len(pl.APIStages) != 1 {
		t.Fatalf("rejected update changed the plan: %+v", pl)
	}

	// Without the overlap, the stage is claimed for every member...
	tbl.Unassign(ctx, other.ID, members[7].ID)
	if _, err := tbl.UpdatePlan(ctx, p.ID, func(pl *plans.Plan) error {
		pl.APIStages = append(pl.APIStages, plans.APIStage{APIID: "api1", Stage: "beta"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range members {
		if got, _ := tbl.Key(ctx, k.ID); got.Stages["api1:beta"] != p.ID {
			t.Fatalf("key %s lacks the new stage: %v", k.ID, got.Stages)
		}
	}
	// ...and released when the stage goes.
	if _, err := tbl.UpdatePlan(ctx, p.ID, func(pl *plans.Plan) error { pl.APIStages = pl.APIStages[:1]; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, k := range members {
		if got, _ := tbl.Key(ctx, k.ID); got.Stages["api1:beta"] != "" {
			t.Fatalf("key %s kept the removed stage: %v", k.ID, got.Stages)
		}
	}
}

func TestQuotaStartMovesOnlyWhenTheQuotaIsNew(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	p := mustPlan(t, tbl)
	if p.QuotaStart != 0 {
		t.Fatal("plan without a quota has a quota start")
	}
	withQuota, _ := tbl.UpdatePlan(ctx, p.ID, func(pl *plans.Plan) error {
		pl.Quota = &plans.Quota{Limit: 10, Period: plans.Day}
		return nil
	})
	if withQuota.QuotaStart == 0 {
		t.Fatal("new quota has no start")
	}
	raised, _ := tbl.UpdatePlan(ctx, p.ID, func(pl *plans.Plan) error { pl.Quota.Limit = 20; return nil })
	if raised.QuotaStart != withQuota.QuotaStart {
		t.Fatal("changing the limit moved the quota start")
	}
}

func TestDeletes(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	k, v := mustKey(t, tbl, "k")
	p := mustPlan(t, tbl, "prod")
	tbl.Assign(ctx, p.ID, k.ID)
	if err := tbl.DeletePlan(ctx, p.ID); !store.IsKind(err, store.Conflict) {
		t.Fatalf("deleting a plan with keys: %v, want Conflict", err)
	}
	if err := tbl.DeleteKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.KeyByHash(ctx, keys.Hash(v)); !store.IsKind(err, store.NotFound) {
		t.Fatalf("deleted key still found by value: %v", err)
	}
	if pl, _ := tbl.Plan(ctx, p.ID); pl.Keys != 0 {
		t.Fatalf("plan still counts %d keys", pl.Keys)
	}
	if m, _ := tbl.PlanMembers(ctx, p.ID); len(m) != 0 {
		t.Fatalf("plan still lists %v", m)
	}
	if err := tbl.DeletePlan(ctx, p.ID); !store.IsKind(err, store.Conflict) {
		t.Fatalf("deleting a plan with stages: %v, want Conflict", err)
	}
	tbl.UpdatePlan(ctx, p.ID, func(pl *plans.Plan) error { pl.APIStages = nil; return nil })
	if err := tbl.DeletePlan(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Plan(ctx, p.ID); !store.IsKind(err, store.NotFound) {
		t.Fatalf("deleted plan: %v", err)
	}
}

// shards reads the guard versions of every shard of a key's meter in a
// plan; assigned is how many shards have a kv.
func shards(t *testing.T, tbl *store.Table, keyID, planID string, n int) (kvs, pvs []int64, assigned int) {
	t.Helper()
	for i := range n {
		out, err := tbl.DB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &tbl.Name, ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": store.S(store.ShardPK(keyID, i)), "sk": store.S(store.MeterSK(planID))}})
		if err != nil {
			t.Fatal(err)
		}
		kv, ok := store.Int(out.Item, store.AttrKeyVersion)
		pv, _ := store.Int(out.Item, store.AttrPlanVersion)
		kvs, pvs = append(kvs, kv), append(pvs, pv)
		if ok {
			assigned++
		}
	}
	return kvs, pvs, assigned
}

// TestShardedPlansMoveEveryShard runs every admin change on a key in a
// plan with four shards: each must reach all four meter items.
func TestShardedPlansMoveEveryShard(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	k, _ := mustKey(t, tbl, "k")
	p := &store.Plan{Plan: plans.Plan{ID: keys.NewID(), Name: "hot", Throttle: &plans.Throttle{RateLimit: 2000, BurstLimit: 400}}, Shards: 4}
	if err := tbl.CreatePlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Assign(ctx, p.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	same := func(what string, got []int64, want int64) {
		t.Helper()
		for i, v := range got {
			if v != want {
				t.Fatalf("%s: shard %d has %d, want %d", what, i, v, want)
			}
		}
	}
	kvs, pvs, n := shards(t, tbl, k.ID, p.ID, 4)
	if n != 4 {
		t.Fatalf("assigned: %d of 4 shards have kv", n)
	}
	same("assigned kv", kvs, 2)
	same("assigned pv", pvs, 1)

	k2, err := tbl.UpdateKey(ctx, k.ID, func(k *store.Key) error { k.Name = "renamed"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	kvs, _, _ = shards(t, tbl, k.ID, p.ID, 4)
	same("kv after a key change", kvs, k2.Version)

	p2, err := tbl.UpdatePlan(ctx, p.ID, func(p *plans.Plan) error { p.Throttle.RateLimit = 1000; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if p2.Shards != 4 {
		t.Fatalf("the update changed the shard count to %d", p2.Shards)
	}
	_, pvs, _ = shards(t, tbl, k.ID, p.ID, 4)
	same("pv after a plan change", pvs, p2.Version)

	u, err := tbl.Usage(ctx, k.ID, p.ID, 4, "202501", "202512")
	if err != nil || len(u) != 4 || !u[0].Assigned || !u[3].Assigned {
		t.Fatalf("Usage = %v, %v", u, err)
	}
	if err := tbl.SetRemaining(ctx, k.ID, p.ID, 4, "M202506", "20250601", 100, 10); err != nil {
		t.Fatal(err)
	}
	u, _ = tbl.Usage(ctx, k.ID, p.ID, 4, "202506", "202506")
	var used, rem int64
	for _, s := range u {
		used += s.Periods["M202506"]
		rem += s.Remaining["20250601"]
	}
	if used != 90 || rem != 10 {
		t.Fatalf("after SetRemaining(10 of 100) the shards hold used %d, remaining %d", used, rem)
	}

	if err := tbl.Unassign(ctx, p.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, n := shards(t, tbl, k.ID, p.ID, 4); n != 0 {
		t.Fatalf("unassigned: %d shards still have kv", n)
	}
	if err := tbl.Assign(ctx, p.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := tbl.DeleteKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	empty := func(what, keyID string) {
		t.Helper()
		for i := range 4 {
			out, err := tbl.DB.Query(ctx, &dynamodb.QueryInput{TableName: &tbl.Name, KeyConditionExpression: aws.String("pk = :pk"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(store.ShardPK(keyID, i))}})
			if err != nil || out.Count != 0 {
				t.Fatalf("shard %d partition after %s: %d items, %v", i, what, out.Count, err)
			}
		}
	}
	empty("DeleteKey", k.ID)

	// A key that has left the plan still has its shards' items, for usage.
	gone, _ := mustKey(t, tbl, "gone")
	if err := tbl.Assign(ctx, p.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Unassign(ctx, p.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := tbl.DeleteKey(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	empty("leaving the plan and DeleteKey", gone.ID)
}

func TestMeterItemsPerKeyAreBounded(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	k, _ := mustKey(t, tbl, "k")
	for i := range store.MaxMeterItems/plans.MaxShards + 1 {
		p := &store.Plan{Plan: plans.Plan{ID: keys.NewID(), Name: "hot"}, Shards: plans.MaxShards}
		if err := tbl.CreatePlan(ctx, p); err != nil {
			t.Fatal(err)
		}
		err := tbl.Assign(ctx, p.ID, k.ID)
		if i < store.MaxMeterItems/plans.MaxShards && err != nil {
			t.Fatalf("plan %d: %v", i, err)
		}
		if i == store.MaxMeterItems/plans.MaxShards && !store.IsKind(err, store.LimitExceeded) {
			t.Fatalf("plan %d, past %d meter items: %v, want LimitExceeded", i, store.MaxMeterItems, err)
		}
	}
	// The biggest key change there can be is still one transaction.
	if _, err := tbl.UpdateKey(ctx, k.ID, func(k *store.Key) error { k.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := tbl.DeleteKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
}

func TestFill(t *testing.T) {
	tests := []struct {
		total int64
		rooms []int64
		want  []int64
	}{
		{10, []int64{5, 5}, []int64{5, 5}},
		{10, []int64{100, 100, 100, 100}, []int64{3, 3, 2, 2}},
		{10, []int64{1, 100, 0, 100}, []int64{1, 5, 0, 4}},
		{10, []int64{1, 2, 3}, []int64{1, 2, 3}}, // the rooms hold less
		{0, []int64{4, 4}, []int64{0, 0}},
	}
	for _, tt := range tests {
		got := store.Fill(tt.total, tt.rooms)
		var sum int64
		for i := range got {
			if got[i] > tt.rooms[i] || got[i] < 0 {
				t.Errorf("Fill(%d, %v) = %v: part %d outside its room", tt.total, tt.rooms, got, i)
			}
			sum += got[i]
		}
		if want := sum; want != min(tt.total, sumOf(tt.rooms)) {
			t.Errorf("Fill(%d, %v) = %v: hands out %d", tt.total, tt.rooms, got, sum)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Fill(%d, %v) = %v, want %v", tt.total, tt.rooms, got, tt.want)
		}
	}
}

func sumOf(xs []int64) (s int64) {
	for _, x := range xs {
		s += x
	}
	return s
}

// TestAKeyLeftFrozenIsThawedByItsNextChange cuts the lowering of a sharded
// quota right after it froze a key's shards, as a Lambda timeout would.
// The key stays frozen (its decisions are denied); the next change to the
// key waits a moment, then settles the plan, which thaws it, and goes on.
func TestAKeyLeftFrozenIsThawedByItsNextChange(t *testing.T) {
	ctx := context.Background()
	db := dynamotest.Client(t)
	tbl := dynamotest.Store(t, db, nil)
	k, _ := mustKey(t, tbl, "k")
	p := &store.Plan{Plan: plans.Plan{ID: keys.NewID(), Name: "hot", Quota: &plans.Quota{Limit: 100, Period: plans.Day}}, Shards: 2}
	if err := tbl.CreatePlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Assign(ctx, p.ID, k.ID); err != nil {
		t.Fatal(err)
	}

	proxy := dynamotest.NewFaultProxy(t)
	var frozen atomic.Bool
	proxy.SetRule(func(c dynamotest.Call) dynamotest.Fault {
		switch {
		case frozen.Load():
			return dynamotest.ErrorBefore
		case c.Op == "TransactWriteItems" && strings.Contains(string(c.Body), "SET kv = :frozen"):
			frozen.Store(true)
			return dynamotest.ErrorAfter
		}
		return dynamotest.Pass
	})
	cut := &store.Table{Name: tbl.Name, DB: dynamotest.Client(t, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(proxy.URL)
		o.RetryMaxAttempts = 1
	})}
	if _, err := cut.UpdatePlan(ctx, p.ID, func(p *plans.Plan) error { p.Quota.Limit = 50; return nil }); err == nil {
		t.Fatal("the cut update succeeded")
	}
	if bad, _ := tbl.VerifyKey(ctx, k.ID); len(bad) == 0 {
		t.Fatal("the cut left the key as it was; want it frozen")
	}
	// An extension (the usage function, which may not write plans) waits,
	// then says how to finish the capping, and leaves it to that.
	now := time.Now()
	err := tbl.SetRemaining(ctx, k.ID, p.ID, 2, p.Quota.Window(now).ID, now.UTC().Format("20060102"), 100, 100)
	if !store.IsKind(err, store.Conflict) || !strings.Contains(err.Error(), "run UpdateUsagePlan on "+p.ID) {
		t.Fatalf("an extension of the frozen key: %v; want a Conflict that says to run UpdateUsagePlan", err)
	}
	if bad, _ := tbl.VerifyKey(ctx, k.ID); len(bad) == 0 {
		t.Fatal("the extension thawed the key; only a change to the key or plan should")
	}

	if _, err := tbl.UpdateKey(ctx, k.ID, func(k *store.Key) error { k.Name = "renamed"; return nil }); err != nil {
		t.Fatalf("the next change to the key: %v", err)
	}
	if bad, err := tbl.VerifyKey(ctx, k.ID); len(bad) > 0 || err != nil {
		t.Fatalf("after the key's next change: %v %v", bad, err)
	}
	if bad, err := tbl.VerifyPlan(ctx, p.ID); len(bad) > 0 || err != nil {
		t.Fatalf("after the key's next change: %v %v", bad, err)
	}
	// The cut change never landed: the plan keeps its quota.
	if got, _ := tbl.Plan(ctx, p.ID); got.Quota.Limit != 100 {
		t.Fatalf("quota limit %d, want 100", got.Quota.Limit)
	}
}
