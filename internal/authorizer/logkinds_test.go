package authorizer_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/plans"
)

// TestWhatLogsAtOnce: with the default decision log, an error and the
// first of an unusual denial (a disabled key, a key without a plan) in an
// interval get a line at once; allows and the denials floods repeat (a
// spent bucket, an unknown or malformed key) wait for the interval's end.
func TestWhatLogsAtOnce(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, allowed, _ := f.keyInPlan(plans.Plan{})
	_, throttled, _ := f.keyInPlan(plans.Plan{Throttle: throttle(0.001, 1)})
	disabledID, disabled := f.newKey(false, "")
	f.assign(f.newPlan(plans.Plan{}), disabledID)
	_, unassigned := f.newKey(true, "")
	unknown, _ := keys.Generate()
	summary := func(c *authorizer.Config) { c.LogAllDecisions = false }
	a := f.authorizer(summary)
	broken := f.authorizer(summary, func(c *authorizer.Config) { c.Table, c.Deadline = "no-such-table", 200*time.Millisecond })
	f.clock.Set(noon.Truncate(time.Minute))
	a.Authorize(ctx, request(throttled)) // the bucket's one token

	for _, tt := range []struct {
		name, value string
		a           *authorizer.Authorizer
		atOnce      string // the reason of the line written at once, "" for none
		level       string
	}{
		{"an allow", allowed, a, "", ""},
		{"throttled", throttled, a, "", ""},
		{"an unknown key", unknown, a, "", ""},
		{"a malformed key", "garbage", a, "", ""},
		{"a disabled key", disabled, a, authorizer.ReasonDisabledKey, "INFO"},
		{"a key without a plan", unassigned, a, authorizer.ReasonNoPlan, "INFO"},
		{"an error", allowed, broken, authorizer.ReasonError, "ERROR"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 3 {
				f.logs.buf.Reset()
				tt.a.Authorize(ctx, request(tt.value))
				lines := f.logs.lines(t)
				want := tt.atOnce != "" && (i == 0 || tt.atOnce == authorizer.ReasonError)
				if !want {
					if len(lines) != 0 {
						t.Errorf("request %d: logged at once %v, want nothing before the interval ends", i+1, lines)
					}
					continue
				}
				if len(lines) != 1 || lines[0]["msg"] != "decision" || lines[0]["reason"] != tt.atOnce || lines[0]["level"] != tt.level {
					t.Errorf("request %d: logged at once %v, want one %s line, reason %s", i+1, lines, tt.level, tt.atOnce)
				}
			}
		})
	}
}
