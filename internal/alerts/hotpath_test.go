package alerts_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/plans"
)

// TestAuthorizerDoesNothingForAlerts: with the stream on and a plan that
// alerts at 50, 80 and 100 %, a warm authorizer still decides with one
// UpdateItem per request and nothing else, the decisions that reach the
// thresholds included; the alerts come from the stream.
func TestAuthorizerDoesNothingForAlerts(t *testing.T) {
	f := setup(t)
	keyID, value, _ := f.keyInPlan(plans.Plan{Quota: monthly(10), Tags: map[string]string{plans.AlertTag: "50/80/100"}})
	calls := &dynamotest.Counter{}
	cfg := authorizer.Defaults
	cfg.Table = f.tbl.Name
	// The count is of calls, not time: a busy machine must not turn a
	// decision into an error (denied, its calls retried), as spend's do not.
	cfg.Deadline = 20 * time.Second
	a := authorizer.New(cfg, dynamotest.Client(t, calls.Install), f.clock.Now, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if !a.Authorize(ctx, request(value)).IsAuthorized { // cold: reads the key and the plan
		t.Fatal("the first request was denied")
	}
	calls.Reset()
	for i := 2; i <= 10; i++ {
		if !a.Authorize(ctx, request(value)).IsAuthorized {
			t.Fatalf("request %d of 10 denied", i)
		}
	}
	if got := calls.Snapshot(); calls.Get("") != 9 || got["UpdateItem"] != 9 {
		t.Errorf("9 warm decisions made DynamoDB calls %v, want 9 UpdateItem and nothing else", got)
	}
	f.drain(f.mapping(f.notifier()))
	if got := thresholds(f.alerts(keyID)); !slices.Equal(got, []string{"50@5", "80@8", "100@10"}) {
		t.Errorf("alerts %v, want 50@5, 80@8 and 100@10", got)
	}
}
