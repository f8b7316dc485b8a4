package admin_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// TestTwentyThousandKeys creates 20,000 keys, twice API Gateway's per-account
// ceiling, and pages through them: every key once, in a stable order, even
// while keys are created and deleted between pages.
func TestTwentyThousandKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 20,000 keys")
	}
	t.Parallel() // with the other long tests
	f := setup(t)
	ctx := context.Background()
	const total = 20_000
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	ids := make([]string, total)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < total; i = int(next.Add(1)) - 1 {
				v, _ := keys.Generate()
				k := &store.Key{ID: keys.NewID(), Name: "scale", Enabled: true, Hash: keys.Hash(v)}
				if err := f.tbl.CreateKey(ctx, k); err != nil {
					t.Error(err)
					return
				}
				ids[i] = k.ID
			}
		}()
	}
	wg.Wait()
	t.Logf("created %d keys in %s", total, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	seen := make(map[string]bool, total)
	position, last, pages := "", "", 0
	for {
		out := f.ok("keys", obj{"action": "GetApiKeys", "limit": 500, "position": position})
		for _, it := range out["items"].([]any) {
			id := it.(obj)["id"].(string)
			if seen[id] {
				t.Fatalf("page %d repeats %s", pages, id)
			}
			if id <= last {
				t.Fatalf("page %d: %s after %s", pages, id, last)
			}
			seen[id], last = true, id
		}
		pages++
		if pages == 10 {
			// Churn between pages: a new key and a deleted one must not
			// make the listing skip or repeat any other key.
			f.createKey("late")
			f.ok("keys", obj{"action": "DeleteApiKey", "apiKey": ids[0]})
			delete(seen, ids[0])
		}
		p, more := out["position"].(string)
		if !more {
			break
		}
		position = p
	}
	t.Logf("paged through %d keys in %d pages in %s", len(seen), pages, time.Since(start).Round(time.Millisecond))
	for _, id := range ids[1:] {
		if !seen[id] {
			t.Fatalf("key %s never listed", id)
		}
	}
}
