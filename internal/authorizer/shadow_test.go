package authorizer_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/plans"
)

// outcome is what a decision said about limits: the reason an enforced
// plan gave, or the limit a plan in shadow reported.
type outcome struct {
	allow         bool
	limitExceeded string
	shadow        bool
	calls         int
}

func (f *fixture) decide(a *authorizer.Authorizer, value string) outcome {
	f.t.Helper()
	before := f.calls.Get("")
	resp := a.Authorize(context.Background(), request(value))
	o := outcome{allow: resp.IsAuthorized, calls: f.calls.Get("") - before}
	if o.allow {
		o.limitExceeded, _ = resp.Context["limitExceeded"].(string)
		o.shadow, _ = resp.Context["shadow"].(bool)
	} else {
		switch f.lastReason() {
		case authorizer.ReasonThrottled:
			o.limitExceeded = "throttle"
		case authorizer.ReasonQuotaExceeded:
			o.limitExceeded = "quota"
		}
	}
	return o
}

// A plan in shadow reports, request by request, exactly what the same plan
// enforced refuses, at the same DynamoDB cost, and its meter ends in the
// same state. Switched to enforce, it refuses from then on what the
// enforced plan refuses, with nothing reset.
func TestShadowReportsWhatEnforceRefuses(t *testing.T) {
	f := setup(t)
	limits := plans.Plan{Throttle: throttle(2, 3), Quota: &plans.Quota{Limit: 40, Period: plans.Day}}
	enforcedID, enforced, enforcedPlan := f.keyInPlan(limits)
	shadowed := limits
	shadowed.Tags = map[string]string{plans.EnforceTag: plans.Shadow}
	shadowID, shadow, shadowPlan := f.keyInPlan(shadowed)
	a := f.authorizer(patient)

	random := rand.New(rand.NewPCG(13, 1))
	compare := func(n int, inShadow bool) (reported int) {
		for i := range n {
			f.clock.Add(time.Duration(random.IntN(900)) * time.Millisecond)
			want, got := f.decide(a, enforced), f.decide(a, shadow)
			if want.limitExceeded != "" {
				reported++
			}
			// The first decision after the switch reloads the plan.
			ok := got.limitExceeded == want.limitExceeded && (got.calls == want.calls || !inShadow && i == 0)
			if inShadow {
				ok = ok && got.allow && got.shadow == (want.limitExceeded != "")
			} else {
				ok = ok && got.allow == want.allow && !got.shadow
			}
			if !ok {
				t.Fatalf("request %d (shadow=%v): enforced %+v, shadowed %+v", i, inShadow, want, got)
			}
		}
		return reported
	}
	reported := compare(150, true)
	if reported < 30 {
		t.Fatalf("only %d of 150 requests were over a limit: the sequence tests too little", reported)
	}
	day1, q1 := stored(t, f, enforcedID, enforcedPlan)
	day2, q2 := stored(t, f, shadowID, shadowPlan)
	if day1 != day2 || q1 != q2 || day1 == 0 {
		t.Fatalf("meters differ: enforced day=%d quota=%d, shadowed day=%d quota=%d", day1, q1, day2, q2)
	}

	// Enforce: an instance that was refusing from memory sees the switch
	// on its next write, within DENY_CACHE_TTL.
	if _, err := f.tbl.UpdatePlan(context.Background(), shadowPlan, func(p *plans.Plan) error {
		p.Tags[plans.EnforceTag] = plans.Enforce
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(authorizer.Defaults.DenyTTL)
	compare(150, false)
}

func TestShadowSettings(t *testing.T) {
	f := setup(t)
	spent := func(tags map[string]string) string {
		_, value, _ := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 1, Period: plans.Day}, Tags: tags})
		return value
	}
	untagged := spent(nil)
	tagShadow := spent(map[string]string{plans.EnforceTag: plans.Shadow})
	tagEnforce := spent(map[string]string{plans.EnforceTag: plans.Enforce})
	over := func(shadow, pass bool) outcome {
		return outcome{allow: shadow || pass, limitExceeded: "quota", shadow: shadow}
	}
	cases := []struct {
		name         string
		globalShadow bool
		pass         bool
		want         map[string]outcome
	}{
		{"defaults", false, false, map[string]outcome{untagged: over(false, false), tagShadow: over(true, false), tagEnforce: over(false, false)}},
		{"ENFORCE=shadow: a plan's tag wins", true, false, map[string]outcome{untagged: over(true, false), tagShadow: over(true, false), tagEnforce: over(false, false)}},
		{"ON_LIMIT=pass: shadow still marked, enforced passed", false, true, map[string]outcome{untagged: over(false, true), tagShadow: over(true, true), tagEnforce: over(false, true)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := f.authorizer(patient, func(cfg *authorizer.Config) { cfg.Shadow, cfg.PassOnLimit = c.globalShadow, c.pass })
			for value, want := range c.want {
				a.Authorize(context.Background(), request(value)) // the one request the quota allows, or a denial
				got := f.decide(a, value)
				got.calls = 0
				if got != want {
					t.Errorf("%.10s…: %+v, want %+v", value, got, want)
				}
			}
		})
	}

	// The decision's line keeps the would-be reason and says shadow.
	var shadowLine map[string]any
	for _, l := range f.logs.lines(t) {
		if l["msg"] == "decision" && l["shadow"] == true {
			shadowLine = l
		}
	}
	if shadowLine == nil || shadowLine["reason"] != authorizer.ReasonQuotaExceeded || shadowLine["outcome"] != "allow" || shadowLine["limitExceeded"] != "quota" {
		t.Fatalf("a shadow decision's line: %v", shadowLine)
	}
}

// The decision log counts what a plan in shadow let through as
// ShadowThrottled and ShadowQuotaExceeded, not as Throttled and
// QuotaExceeded, and a key's repeated line says shadow.
func TestShadowMetrics(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	inShadow := map[string]string{plans.EnforceTag: plans.Shadow}
	keyID, value, planID := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 1, Period: plans.Day}, Tags: inShadow})
	_, throttled, throttledPlan := f.keyInPlan(plans.Plan{Throttle: throttle(0.001, 1), Tags: inShadow})
	a := f.authorizer(func(c *authorizer.Config) { c.LogAllDecisions, c.Deadline = false, time.Minute })
	for range 4 {
		a.Authorize(ctx, request(value))
		a.Authorize(ctx, request(throttled))
	}
	a.Flush(ctx)
	var record, repeat, throttleRecord map[string]any
	for _, l := range f.logs.lines(t) {
		switch {
		case l["msg"] == "metrics" && l["reason"] == authorizer.ReasonQuotaExceeded:
			record = l
		case l["msg"] == "metrics" && l["reason"] == authorizer.ReasonThrottled:
			throttleRecord = l
		case l["msg"] == "decisions" && l["apiKeyId"] == keyID:
			repeat = l
		}
	}
	// A record carries only the counts that happened.
	has := func(r map[string]any, count string) bool { _, ok := r[count]; return ok }
	if r := throttleRecord; r == nil || r["usagePlanId"] != throttledPlan || r["outcome"] != "allow" || r["Decisions"] != 3.0 ||
		r[authorizer.MetricShadowThrottled] != 3.0 || has(r, authorizer.MetricThrottled) || has(r, authorizer.MetricShadowQuotaExceeded) {
		t.Errorf("the shadow-throttled decisions' metrics: %v", r)
	}
	if record == nil || record["usagePlanId"] != planID || record["outcome"] != "allow" || record["Decisions"] != 3.0 ||
		record[authorizer.MetricShadowQuotaExceeded] != 3.0 || has(record, authorizer.MetricQuotaExceeded) || has(record, authorizer.MetricShadowThrottled) {
		t.Errorf("the shadow decisions' metrics: %v", record)
	}
	if repeat == nil || repeat["apiKeyId"] != keyID || repeat["shadow"] != true || repeat["count"] != 3.0 {
		t.Errorf("the key's repeated line: %v", repeat)
	}
}
