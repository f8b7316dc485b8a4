package admin_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/localstack"
)

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
				if err := localstack.SeedSamples(context.Background(), f.tbl); err != nil {
					t.Fatal(err)
				}
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
