package admin_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// The ids the samples in events/ refer to.
const (
	sampleKey      = "a1b2c3d4e5" // in sample plan c7y23b
	sampleFreeKey  = "f6g7h8i9j0" // in no plan
	samplePlan     = "c7y23b"     // stage x1y2z3w4v5:prod, with a daily quota
	sampleBarePlan = "glvrsr"     // no stages, no keys
)

// seedSamples writes the keys and plans the samples expect.
func seedSamples(t *testing.T, tbl *store.Table) {
	ctx := context.Background()
	for _, id := range []string{sampleKey, sampleFreeKey} {
		v, _ := keys.Generate()
		if err := tbl.CreateKey(ctx, &store.Key{ID: id, Name: "acme-" + id, Enabled: true, Hash: keys.Hash(v)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []plans.Plan{
		{ID: samplePlan, Name: "Basic", APIStages: []plans.APIStage{{APIID: "x1y2z3w4v5", Stage: "prod"}},
			Throttle: &plans.Throttle{RateLimit: 1, BurstLimit: 2}, Quota: &plans.Quota{Limit: 5, Period: plans.Day}},
		{ID: sampleBarePlan, Name: "Bare"},
	} {
		if err := tbl.CreatePlan(ctx, &store.Plan{Plan: p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tbl.Assign(ctx, samplePlan, sampleKey); err != nil {
		t.Fatal(err)
	}
}

// TestSamples runs every sample payload in events/keys, events/plans and
// events/usage through its function, each against a freshly seeded table.
func TestSamples(t *testing.T) {
	count := 0
	for _, fn := range []string{"keys", "plans", "usage"} {
		files, _ := filepath.Glob(filepath.Join("..", "..", "events", fn, "*.json"))
		for _, file := range files {
			count++
			t.Run(fn+"/"+filepath.Base(file), func(t *testing.T) {
				payload, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				f := setup(t)
				seedSamples(t, f.tbl)
				out, e := f.handlers[fn].Handle(context.Background(), payload)
				if e != nil {
					t.Fatalf("%s: %v", file, e)
				}
				if _, err := json.Marshal(out); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	if count < 19 {
		t.Fatalf("found %d samples; every operation should have one", count)
	}
}
