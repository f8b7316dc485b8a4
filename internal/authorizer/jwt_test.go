package authorizer_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/localissuer"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

const audience = "api://tollgate-test"

var (
	issuerKeyOnce sync.Once
	issuerKey     *rsa.PrivateKey
)

// issuer is a local OIDC issuer on loopback signing with RS256, on the
// fixture's clock.
func (f *fixture) issuer() *localissuer.Issuer {
	f.t.Helper()
	issuerKeyOnce.Do(func() { issuerKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
	return f.issuerWith(issuerKey)
}

// issuerWith is issuer signing with key.
func (f *fixture) issuerWith(key crypto.Signer) *localissuer.Issuer {
	f.t.Helper()
	iss, err := localissuer.NewWithKey(audience, key)
	if err != nil {
		f.t.Fatal(err)
	}
	srv := httptest.NewServer(iss)
	f.t.Cleanup(srv.Close)
	iss.SetURL(srv.URL)
	iss.Now = f.clock.Now
	return iss
}

// jwtMode configures an authorizer for mode against iss.
func jwtMode(mode authorizer.AuthMode, iss *localissuer.Issuer) func(*authorizer.Config) {
	return func(c *authorizer.Config) {
		// These tests are about what is decided, not how fast: a busy
		// machine must not turn a slow DynamoDB Local into denials.
		c.Deadline = 10 * time.Second
		c.Auth = mode
		c.JWT.Issuer, c.JWT.Audiences = iss.URL(), []string{audience}
		c.JWT.ContextClaims = []string{"tenant", "custom:tier"}
		c.JWT.Scopes = map[string][]string{"POST /orders": {"orders:write"}}
	}
}

func token(t testing.TB, iss *localissuer.Issuer, claims map[string]any) string {
	t.Helper()
	tok, err := iss.Token(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// withToken is request(value) with an Authorization header, if tok is set.
func withToken(value, tok string) events.APIGatewayV2CustomAuthorizerV2Request {
	ev := request(value)
	if tok != "" {
		ev.Headers["authorization"] = "Bearer " + tok
	}
	return ev
}

// newKeyWith creates an enabled key with identities, in planID if set.
func (f *fixture) newKeyWith(planID string, identities ...string) (id, value string) {
	f.t.Helper()
	value, _ = keys.Generate()
	k := &store.Key{ID: keys.NewID(), Enabled: true, Hash: keys.Hash(value), Identities: identities}
	if err := f.tbl.CreateKey(context.Background(), k); err != nil {
		f.t.Fatal(err)
	}
	if planID != "" {
		f.assign(planID, k.ID)
	}
	return k.ID, value
}

func TestModes(t *testing.T) {
	f := setup(t)
	iss := f.issuer()
	plan := f.newPlan(plans.Plan{})
	aliceKey, aliceValue := f.newKeyWith(plan, "alice", "alice-2")
	openKey, openValue := f.newKeyWith(plan)
	f.newKeyWith("", "carol") // in no plan
	// Identities and key values live apart: an identity shaped like a key
	// value is no key value, and a key's value is no identity.
	keyShaped, _ := keys.Generate()
	f.newKeyWith(plan, keyShaped)
	valueAsSub := token(t, iss, map[string]any{"sub": openValue})
	alice := token(t, iss, map[string]any{"sub": "alice"})
	bob := token(t, iss, map[string]any{"sub": "bob"})
	carol := token(t, iss, map[string]any{"sub": "carol"})
	noSub := token(t, iss, map[string]any{"sub": nil})
	expired := token(t, iss, map[string]any{"sub": "alice", "exp": f.clock.Now().Add(-time.Minute).Unix()})
	wrongAud := token(t, iss, map[string]any{"sub": "alice", "aud": "another-api"})
	malformedKey := "not a key!"

	type tc struct {
		name, key, token, want, keyID, method string
	}
	modes := map[authorizer.AuthMode][]tc{
		authorizer.AuthKey: {
			{"a key", openValue, "", "ok", openKey, "key"},
			{"a token is not read", "", alice, authorizer.ReasonMissingKey, "", ""},
			{"an identity is not a key value", keyShaped, "", authorizer.ReasonUnknownKey, "", ""},
		},
		authorizer.AuthJWT: {
			{"the identity's key meters", "", alice, "ok", aliceKey, "jwt"},
			{"a key beside the token is ignored", openValue, alice, "ok", aliceKey, "jwt"},
			{"no token", openValue, "", authorizer.ReasonMissingToken, "", ""},
			{"garbage", "", "x.y", authorizer.ReasonMalformedToken, "", ""},
			{"expired", "", expired, authorizer.ReasonExpiredToken, "", ""},
			{"wrong audience", "", wrongAud, authorizer.ReasonWrongAudience, "", ""},
			{"an identity no key has", "", bob, authorizer.ReasonUnknownIdentity, "", ""},
			{"no identity claim", "", noSub, authorizer.ReasonUnknownIdentity, "", ""},
			{"a key value is not an identity", "", valueAsSub, authorizer.ReasonUnknownIdentity, "", ""},
			{"an identity whose key has no plan", "", carol, authorizer.ReasonNoPlan, "", ""},
		},
		authorizer.AuthJWTAndKey: {
			{"the token's identity is the key's", aliceValue, alice, "ok", aliceKey, "jwt"},
			{"a key without identities takes any token", openValue, bob, "ok", openKey, "jwt"},
			{"another identity", aliceValue, bob, authorizer.ReasonIdentityMismatch, "", ""},
			{"a token without an identity", aliceValue, noSub, authorizer.ReasonIdentityMismatch, "", ""},
			{"no key", "", alice, authorizer.ReasonMissingKey, "", ""},
			{"a malformed key", malformedKey, alice, authorizer.ReasonMalformedKey, "", ""},
			{"no token", aliceValue, "", authorizer.ReasonMissingToken, "", ""},
			{"an expired token", aliceValue, expired, authorizer.ReasonExpiredToken, "", ""},
		},
		authorizer.AuthJWTOrKey: {
			{"a token", "", alice, "ok", aliceKey, "jwt"},
			{"a key", openValue, "", "ok", openKey, "key"},
			{"a token wins over a key", openValue, alice, "ok", aliceKey, "jwt"},
			{"a bad token does not fall back to the key", openValue, "x.y", authorizer.ReasonMalformedToken, "", ""},
			{"an expired token does not either", openValue, expired, authorizer.ReasonExpiredToken, "", ""},
			{"neither", "", "", authorizer.ReasonMissingKey, "", ""},
			{"an identity is not a key value", keyShaped, "", authorizer.ReasonUnknownKey, "", ""},
			{"a key value is not an identity", "", valueAsSub, authorizer.ReasonUnknownIdentity, "", ""},
		},
	}
	ctx := context.Background()
	for mode, cases := range modes {
		a := f.authorizer(jwtMode(mode, iss))
		for _, tt := range cases {
			t.Run(string(mode)+"/"+tt.name, func(t *testing.T) {
				f.calls.Reset()
				_, before := iss.Fetches()
				resp := a.Authorize(ctx, withToken(tt.key, tt.token))
				if got := f.lastReason(); got != tt.want {
					t.Fatalf("reason %s, want %s", got, tt.want)
				}
				if resp.IsAuthorized != (tt.want == "ok") {
					t.Fatalf("allowed = %v", resp.IsAuthorized)
				}
				if tt.want == "ok" && (resp.Context["apiKeyId"] != tt.keyID || resp.Context["authMethod"] != tt.method) {
					t.Fatalf("context %v: want key %s by %s", resp.Context, tt.keyID, tt.method)
				}
				// Refusals of the credentials themselves cost no DynamoDB
				// call, and garbage no request to the issuer either.
				switch tt.want {
				case authorizer.ReasonMissingToken, authorizer.ReasonMalformedToken, authorizer.ReasonExpiredToken,
					authorizer.ReasonWrongAudience, authorizer.ReasonMissingKey, authorizer.ReasonMalformedKey:
					if n := f.calls.Get(""); n != 0 {
						t.Fatalf("%d DynamoDB calls", n)
					}
				}
				if _, after := iss.Fetches(); tt.want == authorizer.ReasonMalformedToken && after != before {
					t.Fatal("a malformed token cost a JWKS request")
				}
			})
		}
	}
}

func TestJWTContextAndLog(t *testing.T) {
	f := setup(t)
	iss := f.issuer()
	plan := f.newPlan(plans.Plan{Throttle: throttle(10, 5)})
	keyID, _ := f.newKeyWith(plan, "auth0|5f7c")
	a := f.authorizer(jwtMode(authorizer.AuthJWT, iss))
	tok := token(t, iss, map[string]any{"sub": "auth0|5f7c", "scope": "orders:write openid", "tenant": "acme", "custom:tier": 2})
	ev := withToken("", tok)
	ev.RouteKey = "POST /orders"
	resp := a.Authorize(context.Background(), ev)
	if !resp.IsAuthorized {
		t.Fatalf("denied: %s", f.lastReason())
	}
	want := map[string]any{"apiKeyId": keyID, "usagePlanId": plan, "authMethod": "jwt", "identity": "auth0|5f7c",
		"scopes": "orders:write openid", "claim_tenant": "acme", "claim_custom_tier": "2", "tokensRemaining": int64(4)}
	for k, v := range want {
		if resp.Context[k] != v {
			t.Errorf("context[%s] = %#v, want %#v", k, resp.Context[k], v)
		}
	}
	// The same through Invoke's hand-written JSON.
	payload, _ := json.Marshal(ev)
	out, _ := a.Invoke(context.Background(), payload)
	var inv events.APIGatewayV2CustomAuthorizerSimpleResponse
	if err := json.Unmarshal(out, &inv); err != nil || inv.Context["claim_custom_tier"] != "2" || inv.Context["identity"] != "auth0|5f7c" {
		t.Fatalf("Invoke = %s, %v", out, err)
	}
	// Missing scope: denied, and the log says why without the token.
	ev2 := withToken("", token(t, iss, map[string]any{"sub": "auth0|5f7c"}))
	ev2.RouteKey = "POST /orders"
	if a.Authorize(context.Background(), ev2).IsAuthorized || f.lastReason() != authorizer.ReasonMissingScope {
		t.Fatalf("no scope: %s", f.lastReason())
	}
	logs := f.logs.String()
	if strings.Contains(logs, tok) || strings.Contains(logs, strings.Split(tok, ".")[2]) {
		t.Fatal("a token leaked into the log")
	}
	lines := f.logs.lines(t)
	last := lines[len(lines)-1]
	if last["authMethod"] != "key" || !strings.Contains(fmt.Sprint(last["detail"]), "orders:write") {
		t.Errorf("log line = %v", last)
	}
}

// TestIdentityChangesApply: a removed identity is refused on the very
// next decision, even by an instance that cached it; an added one is seen
// within DENY_CACHE_TTL; and in jwt-and-key mode a removed identity can no
// longer use the key.
func TestIdentityChangesApply(t *testing.T) {
	f := setup(t)
	iss := f.issuer()
	plan := f.newPlan(plans.Plan{})
	keyID, value := f.newKeyWith(plan, "alice", "bob")
	ctx := context.Background()
	jwt := f.authorizer(jwtMode(authorizer.AuthJWT, iss))
	both := f.authorizer(jwtMode(authorizer.AuthJWTAndKey, iss))
	alice := withToken(value, token(t, iss, map[string]any{"sub": "alice"}))
	dave := withToken(value, token(t, iss, map[string]any{"sub": "dave"}))
	for _, a := range []*authorizer.Authorizer{jwt, both} {
		if !a.Authorize(ctx, alice).IsAuthorized {
			t.Fatalf("alice before: %s", f.lastReason())
		}
	}
	if jwt.Authorize(ctx, dave).IsAuthorized || f.lastReason() != authorizer.ReasonUnknownIdentity {
		t.Fatalf("dave before: %s", f.lastReason())
	}

	update := func(change func(*store.Key)) {
		if _, err := f.tbl.UpdateKey(ctx, keyID, func(k *store.Key) error { change(k); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	update(func(k *store.Key) { k.Identities = []string{"bob", "dave"} })
	if jwt.Authorize(ctx, alice).IsAuthorized || f.lastReason() != authorizer.ReasonUnknownIdentity {
		t.Fatalf("jwt: alice after her removal: %s", f.lastReason())
	}
	if both.Authorize(ctx, alice).IsAuthorized || f.lastReason() != authorizer.ReasonIdentityMismatch {
		t.Fatalf("jwt-and-key: alice after her removal: %s", f.lastReason())
	}
	// dave was denied a moment ago; the denial is repeated for DenyTTL.
	f.clock.Add(authorizer.Defaults.DenyTTL)
	if !jwt.Authorize(ctx, dave).IsAuthorized || !both.Authorize(ctx, dave).IsAuthorized {
		t.Fatalf("dave after DenyTTL: %s", f.lastReason())
	}
	// Moving an identity to another key moves its metering there.
	other, _ := f.newKeyWith(plan)
	update(func(k *store.Key) { k.Identities = []string{"bob"} })
	if _, err := f.tbl.UpdateKey(ctx, other, func(k *store.Key) error { k.Identities = []string{"dave"}; return nil }); err != nil {
		t.Fatal(err)
	}
	if resp := jwt.Authorize(ctx, dave); !resp.IsAuthorized || resp.Context["apiKeyId"] != other {
		t.Fatalf("dave after the move: %s %v", f.lastReason(), resp.Context)
	}
}

func TestIssuerWithoutKeysFollowsFailMode(t *testing.T) {
	f := setup(t)
	iss := f.issuer()
	plan := f.newPlan(plans.Plan{})
	f.newKeyWith(plan, "alice")
	tok := token(t, iss, map[string]any{"sub": "alice"})
	iss.SetDown(true)
	closed := f.authorizer(jwtMode(authorizer.AuthJWT, iss))
	if closed.Authorize(context.Background(), withToken("", tok)).IsAuthorized || f.lastReason() != authorizer.ReasonError {
		t.Fatalf("closed: %s", f.lastReason())
	}
	open := f.authorizer(jwtMode(authorizer.AuthJWT, iss), func(c *authorizer.Config) { c.FailOpen = true })
	if resp := open.Authorize(context.Background(), withToken("", tok)); !resp.IsAuthorized || resp.Context["failOpen"] != true {
		t.Fatalf("open: %v %s", resp, f.lastReason())
	}
	// Once it has keys, an instance rides out an outage.
	iss.SetDown(false)
	f.clock.Add(time.Minute)
	if !closed.Authorize(context.Background(), withToken("", tok)).IsAuthorized {
		t.Fatalf("after the issuer is back: %s", f.lastReason())
	}
	iss.SetDown(true)
	f.clock.Add(3 * time.Hour)
	if !closed.Authorize(context.Background(), withToken("", token(t, iss, map[string]any{"sub": "alice"}))).IsAuthorized {
		t.Fatalf("with cached keys during an outage: %s", f.lastReason())
	}
}

// TestWarmJWTDecisionsCostOneWrite: once warm, a decision in jwt mode costs
// what it costs in key mode, one UpdateItem, and no request to the issuer,
// whether clients reuse their tokens or not.
func TestWarmJWTDecisionsCostOneWrite(t *testing.T) {
	f := setup(t)
	iss := f.issuer()
	plan := f.newPlan(plans.Plan{Throttle: throttle(1e6, 1_000_000)})
	f.newKeyWith(plan, "alice")
	a := f.authorizer(jwtMode(authorizer.AuthJWT, iss))
	reused := withToken("", token(t, iss, map[string]any{"sub": "alice"}))
	a.Authorize(context.Background(), reused)
	f.calls.Reset()
	d0, j0 := iss.Fetches()
	const n = 40
	for i := range n {
		ev := reused
		if i%2 == 1 {
			ev = withToken("", token(t, iss, map[string]any{"sub": "alice", "jti": fmt.Sprint(i)}))
		}
		if !a.Authorize(context.Background(), ev).IsAuthorized {
			t.Fatalf("decision %d: %s", i, f.lastReason())
		}
	}
	if got := f.calls.Get(""); got != n || f.calls.Get("UpdateItem") != n {
		t.Errorf("%d DynamoDB calls (%d UpdateItem) for %d warm decisions, want one UpdateItem each", got, f.calls.Get("UpdateItem"), n)
	}
	if d, j := iss.Fetches(); d != d0 || j != j0 {
		t.Errorf("warm decisions made %d discovery and %d JWKS requests", d-d0, j-j0)
	}
}

// TestQuotaIsExactByIdentity: instances deciding at once for tokens of
// one identity spend exactly its key's quota.
func TestQuotaIsExactByIdentity(t *testing.T) {
	f := setup(t)
	f.clock.Set(time.Now())
	iss := f.issuer()
	plan := f.newPlan(plans.Plan{Quota: &plans.Quota{Limit: 120, Period: plans.Month}})
	keyID, _ := f.newKeyWith(plan, "alice")
	const workers, per = 8, 40
	var admitted, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		a := f.authorizer(jwtMode(authorizer.AuthJWT, iss))
		ev := withToken("", token(t, iss, map[string]any{"sub": "alice", "jti": fmt.Sprint(w)}))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				resp, sum := a.Decide(context.Background(), ev)
				switch {
				case resp.IsAuthorized:
					admitted.Add(1)
				case sum.Reason == authorizer.ReasonError:
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	// Never more than the quota; exactly the quota unless DynamoDB failed
	// to answer in time on a busy machine.
	if n := admitted.Load(); n > 120 || failed.Load() == 0 && n != 120 {
		t.Fatalf("admitted %d of %d (%d errors), want the quota of 120", n, workers*per, failed.Load())
	}
	if day, quota := stored(t, f, keyID, plan); day != quota || day < admitted.Load() || day > 120 {
		t.Fatalf("stored day=%d quota=%d for %d admissions", day, quota, admitted.Load())
	}
}
