package authorizer

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/jwtauth"
	"github.com/tollgate-dev/tollgate/internal/meter"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// TestAppendResponseIsJSONOfResponse holds the hand-written JSON of the
// hot path to what encoding/json makes of response().
func TestAppendResponseIsJSONOfResponse(t *testing.T) {
	b := meter.NewBucket("tat", 33.3, 7, 0)
	odd := "a\"b\\c<d>&e\n\x01\xff\u2028z é"
	decisions := []decision{
		{allow: false, reason: ReasonThrottled},
		{allow: true, key: &store.Key{ID: "k1", CustomerID: "c1"}, planID: "p1"},
		{allow: true, key: &store.Key{ID: "k2", CustomerID: odd}, planID: "p2",
			limits: limits{bucket: &b, rate: 33.3, burst: 7, quota: &meter.Quota{Limit: 1000, Reset: 1}, period: "MONTH", resetAt: "2026-12-01T00:00:00Z"},
			res:    meter.Result{TokensRemaining: 3, NextToken: 30031 * time.Microsecond, Used: 12}},
		{allow: true, key: &store.Key{ID: "k3"}, planID: "p3", limitedBy: "throttle",
			limits: limits{bucket: &b, rate: 1e-7, burst: 1},
			res:    meter.Result{RetryAfter: 1500 * time.Millisecond}},
		{allow: true, failedOpen: true, reason: ReasonError},
		{allow: true, key: &store.Key{ID: "k4"}, planID: "p4", token: &jwtauth.Token{Identity: odd, Scopes: "items:read openid", Claims: []string{"acme", odd}}},
		{allow: true, key: &store.Key{ID: "k5"}, planID: "p5", token: &jwtauth.Token{Identity: "bob"}}, // claims absent
		{allow: true, key: &store.Key{ID: "k6"}, planID: "p6", limitedBy: "quota", shadow: true,
			limits: limits{quota: &meter.Quota{Limit: 5, Reset: 1}, period: "DAY", resetAt: "2026-11-22T00:00:00Z"},
			res:    meter.Result{Used: 5, RetryAfter: time.Hour}},
	}
	claimKeys := []string{"claim_tenant", "claim_custom_tier"}
	for i, d := range decisions {
		want, _ := json.Marshal(d.response(claimKeys))
		got := d.appendResponse(nil, claimKeys)
		var w, g any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("decision %d: not JSON: %s", i, got)
		}
		json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("decision %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
