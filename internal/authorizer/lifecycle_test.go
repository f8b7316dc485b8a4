package authorizer_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// expect decides one request and checks the outcome and reason.
func (f *fixture) expect(a *authorizer.Authorizer, value string, allow bool, reason string) {
	f.t.Helper()
	resp := a.Authorize(context.Background(), request(value))
	if resp.IsAuthorized != allow || f.lastReason() != reason {
		f.t.Fatalf("at %s: allowed=%v reason=%s, want %v %s", f.clock.Now().Format(time.RFC3339Nano), resp.IsAuthorized, f.lastReason(), allow, reason)
	}
}

func (f *fixture) setExpiry(keyID string, at *time.Time) {
	f.t.Helper()
	_, err := f.tbl.UpdateKey(context.Background(), keyID, func(k *store.Key) error {
		k.ExpiresAt = nil
		if at != nil {
			us := at.UnixMicro()
			k.ExpiresAt = &us
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// patient gives decisions all the time they need: these tests are about
// what is decided, not about DynamoDB's speed on a loaded machine.
func patient(c *authorizer.Config) { c.Deadline = time.Minute }

// A key expires at its instant exactly, by the decision's clock, even for
// an instance whose cache holds the key: no TTL delays it.
func TestExpiryIsExact(t *testing.T) {
	f := setup(t)
	keyID, value, _ := f.keyInPlan(plans.Plan{})
	at := noon.Add(500 * time.Millisecond)
	f.setExpiry(keyID, &at)
	a := f.authorizer(patient)
	f.expect(a, value, true, authorizer.ReasonOK)

	f.clock.Set(at.Add(-time.Microsecond))
	f.expect(a, value, true, authorizer.ReasonOK)
	f.clock.Set(at)
	f.calls.Reset()
	f.expect(a, value, false, authorizer.ReasonExpiredKey)
	if n := f.calls.Get(""); n != 0 {
		t.Fatalf("the expiry was decided with %d DynamoDB calls, want 0: from the warm cache", n)
	}

	// Clearing the expiry is a grant: seen within DenyTTL.
	f.setExpiry(keyID, nil)
	f.clock.Add(time.Second)
	f.expect(a, value, true, authorizer.ReasonOK)
	// An instant in the past expires the key on the next decision.
	past := noon.Add(-24 * time.Hour)
	f.setExpiry(keyID, &past)
	f.expect(a, value, false, authorizer.ReasonExpiredKey)
}

// An expiry set while an instance holds the key, cached without one,
// applies at its instant too: the instance's next write finds the key
// changed and reloads it.
func TestExpirySetOnAWarmKey(t *testing.T) {
	f := setup(t)
	keyID, value, _ := f.keyInPlan(plans.Plan{})
	a := f.authorizer(patient)
	f.expect(a, value, true, authorizer.ReasonOK) // cached, with no expiry
	at := noon.Add(time.Hour)
	f.setExpiry(keyID, &at)
	f.clock.Set(at.Add(-time.Microsecond))
	f.expect(a, value, true, authorizer.ReasonOK)
	f.clock.Set(at)
	f.expect(a, value, false, authorizer.ReasonExpiredKey)
}

// A key taken away (disabled, expired at once, rotated with no grace)
// while an instance repeats a spent quota from memory: that instance makes
// no DynamoDB call, so it learns of the change on its next write, within
// DENY_CACHE_TTL. Until then, an enforced plan denies the key anyway (as
// over quota) and a plan in shadow lets it through, marked, as enforcing
// would have refused it; nothing is ever let through unmarked. From
// DENY_CACHE_TTL on, both deny it for the change. docs/lifecycle.md says so.
func TestRevocationWhileDenyingFromMemory(t *testing.T) {
	changes := []struct {
		name   string
		reason string
		change func(f *fixture, keyID string) error
	}{
		{"disable", authorizer.ReasonDisabledKey, func(f *fixture, keyID string) error {
			_, err := f.tbl.UpdateKey(context.Background(), keyID, func(k *store.Key) error { k.Enabled = false; return nil })
			return err
		}},
		{"expire now", authorizer.ReasonExpiredKey, func(f *fixture, keyID string) error {
			now := f.clock.Now()
			f.setExpiry(keyID, &now)
			return nil
		}},
		{"rotate with no grace", authorizer.ReasonRotatedKey, func(f *fixture, keyID string) error {
			v, _ := keys.Generate()
			_, err := f.tbl.RotateKey(context.Background(), keyID, store.Rotation{Hash: keys.Hash(v)})
			return err
		}},
	}
	for _, shadow := range []bool{false, true} {
		for _, c := range changes {
			t.Run(fmt.Sprintf("%s shadow=%v", c.name, shadow), func(t *testing.T) {
				f := setup(t)
				p := plans.Plan{Quota: &plans.Quota{Limit: 1, Period: plans.Day}}
				if shadow {
					p.Tags = map[string]string{plans.EnforceTag: plans.Shadow}
				}
				keyID, value, _ := f.keyInPlan(p)
				a := f.authorizer(patient) // DENY_CACHE_TTL 1s
				f.expect(a, value, true, authorizer.ReasonOK)
				f.expect(a, value, shadow, authorizer.ReasonQuotaExceeded) // seen spent: remembered
				seen := f.clock.Now()
				if err := c.change(f, keyID); err != nil {
					t.Fatal(err)
				}
				f.clock.Add(authorizer.Defaults.DenyTTL / 2)
				got := f.decide(a, value)
				switch reason := f.lastReason(); {
				case reason == c.reason && !got.allow:
				case reason == authorizer.ReasonQuotaExceeded && got.calls == 0 && got.allow == shadow && got.shadow == shadow:
				default:
					t.Fatalf("within DENY_CACHE_TTL: %+v, reason %s; want denied as %s, or the remembered quota (let through only in shadow, marked)", got, reason, c.reason)
				}
				f.clock.Set(seen.Add(authorizer.Defaults.DenyTTL))
				f.expect(a, value, false, c.reason)
			})
		}
	}
}

// After a rotation both values are the key until the grace period ends,
// exactly; then the old value is denied as rotated. Rotating again during
// a grace period ends it on the next decision.
func TestRotatedValueWorksUntilItsGraceEnds(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	keyID, v0, _ := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 100, Period: plans.Day}})
	// A DenyTTL past the grace period: the end is decided from the cache.
	a := f.authorizer(patient, func(c *authorizer.Config) { c.DenyTTL = 5 * time.Second })
	f.expect(a, v0, true, authorizer.ReasonOK) // warm: v0's record is cached

	v1, _ := keys.Generate()
	if _, err := f.tbl.RotateKey(ctx, keyID, store.Rotation{Hash: keys.Hash(v1), Grace: time.Second}); err != nil {
		t.Fatal(err)
	}
	graceEnd := noon.Add(time.Second)
	f.expect(a, v0, true, authorizer.ReasonOK)
	f.expect(a, v1, true, authorizer.ReasonOK)
	f.clock.Set(graceEnd.Add(-time.Microsecond))
	f.expect(a, v0, true, authorizer.ReasonOK)
	f.clock.Set(graceEnd)
	f.calls.Reset()
	f.expect(a, v0, false, authorizer.ReasonRotatedKey)
	if n := f.calls.Get(""); n != 0 {
		t.Fatalf("the grace period's end was decided with %d DynamoDB calls, want 0", n)
	}
	f.expect(a, v1, true, authorizer.ReasonOK)
	// Both values were metered as the one key.
	if used := f.dayCount(t, v1); used != 5 {
		t.Fatalf("the key's day count is %d, want 5 (3 with the old value, 2 with the new)", used)
	}

	// A second rotation during the grace period ends it at once.
	v2, _ := keys.Generate()
	if _, err := f.tbl.RotateKey(ctx, keyID, store.Rotation{Hash: keys.Hash(v2), Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.expect(a, v1, true, authorizer.ReasonOK) // in v2's grace
	v3, _ := keys.Generate()
	if _, err := f.tbl.RotateKey(ctx, keyID, store.Rotation{Hash: keys.Hash(v3), Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.expect(a, v1, false, authorizer.ReasonUnknownKey) // its hash is gone
	f.expect(a, v2, true, authorizer.ReasonOK)
	f.expect(a, v3, true, authorizer.ReasonOK)
}

// Old and new values of a rotated key share its quota exactly, decided by
// many instances at once with both values. Exactness is asserted whatever
// the machine's load: never more than the quota, and the meter counts
// every admission. That the quota is spent in full is asserted only when
// no decision ended in an error (a write may land and its answer be lost).
func TestBothValuesShareOneQuota(t *testing.T) {
	f := setup(t)
	f.clock.Set(time.Now())
	const quota = 300
	keyID, v0, planID := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: quota, Period: plans.Month}})
	v1, _ := keys.Generate()
	if _, err := f.tbl.RotateKey(context.Background(), keyID, store.Rotation{Hash: keys.Hash(v1), Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	const perValue = 8
	var admitted [2]atomic.Int64
	var tries, errs atomic.Int64
	var wg sync.WaitGroup
	for i := range 2 * perValue {
		value := []string{v0, v1}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, _ := instance(f)
			for tries.Add(1) <= 2000 {
				resp, sum := a.Decide(context.Background(), request(value))
				switch {
				case resp.IsAuthorized:
					admitted[i%2].Add(1)
				case sum.Reason == authorizer.ReasonError:
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	old, cur := admitted[0].Load(), admitted[1].Load()
	t.Logf("%d instances, 2000 attempts: %d admitted with the old value, %d with the new, %d errors", 2*perValue, old, cur, errs.Load())
	day, q := stored(t, f, keyID, planID)
	if old+cur > quota || day != q || day < old+cur || day > old+cur+errs.Load() {
		t.Fatalf("admitted %d + %d of a quota of %d; the meter counts %d (day) and %d (quota), with %d errors", old, cur, quota, day, q, errs.Load())
	}
	if errs.Load() == 0 && (old+cur != quota || old == 0 || cur == 0) {
		t.Fatalf("admitted %d + %d without an error, want exactly the quota of %d between them", old, cur, quota)
	}
}

// With JWT callers, rotation concerns values only: a caller found by its
// token's identity is unaffected, one that must also send the key
// (jwt-and-key) must send a current value. Expiry stops them all.
func TestLifecycleWithJWTCallers(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	iss := f.issuer()
	keyID, old := f.newKeyWith(f.newPlan(plans.Plan{}), "alice")
	alice := token(t, iss, map[string]any{"sub": "alice"})
	byIdentity := f.authorizer(patient, jwtMode(authorizer.AuthJWT, iss))
	both := f.authorizer(patient, jwtMode(authorizer.AuthJWTAndKey, iss))

	v1, _ := keys.Generate()
	if _, err := f.tbl.RotateKey(ctx, keyID, store.Rotation{Hash: keys.Hash(v1), Grace: 0}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		a      *authorizer.Authorizer
		value  string
		reason string
	}{
		{byIdentity, "", authorizer.ReasonOK},
		{both, old, authorizer.ReasonRotatedKey},
		{both, v1, authorizer.ReasonOK},
	} {
		c.a.Authorize(ctx, withToken(c.value, alice))
		if got := f.lastReason(); got != c.reason {
			t.Errorf("value %.8s… with alice's token: %s, want %s", c.value, got, c.reason)
		}
	}
	past := noon.Add(-time.Hour)
	f.setExpiry(keyID, &past)
	byIdentity.Authorize(ctx, withToken("", alice))
	if got := f.lastReason(); got != authorizer.ReasonExpiredKey {
		t.Errorf("an expired key's identity: %s, want %s", got, authorizer.ReasonExpiredKey)
	}
}

// By default (LOG_DECISIONS=summary) an expired key and a rotated-out
// value are counted in the metrics by reason, and get the repeated line
// per key and reason, which names the key: a client still sending an old
// value can be found.
func TestLifecycleReasonsAreLoggedAndCounted(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	expiredID, expired, _ := f.keyInPlan(plans.Plan{})
	past := noon.Add(-time.Hour)
	f.setExpiry(expiredID, &past)
	rotatedID, rotated, _ := f.keyInPlan(plans.Plan{})
	v1, _ := keys.Generate()
	if _, err := f.tbl.RotateKey(ctx, rotatedID, store.Rotation{Hash: keys.Hash(v1)}); err != nil {
		t.Fatal(err)
	}
	a := f.authorizer(func(c *authorizer.Config) { c.LogAllDecisions, c.Deadline = false, time.Minute })
	for range 3 {
		a.Authorize(ctx, request(expired))
		a.Authorize(ctx, request(rotated))
	}
	a.Flush(ctx)
	for keyID, reason := range map[string]string{expiredID: authorizer.ReasonExpiredKey, rotatedID: authorizer.ReasonRotatedKey} {
		var record, repeat map[string]any
		for _, l := range f.logs.lines(t) {
			switch {
			case l["msg"] == "metrics" && l["reason"] == reason:
				record = l
			case l["msg"] == "decisions" && l["reason"] == reason:
				repeat = l
			}
		}
		if record == nil || record["outcome"] != "deny" || record["Decisions"] != 3.0 {
			t.Errorf("%s: metrics record %v", reason, record)
		}
		if repeat == nil || repeat["apiKeyId"] != keyID || repeat["count"] != 3.0 {
			t.Errorf("%s: repeated line %v", reason, repeat)
		}
	}
}
