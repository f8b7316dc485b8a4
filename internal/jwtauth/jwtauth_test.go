package jwtauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tollgate-dev/tollgate/internal/jwtauth"
	"github.com/tollgate-dev/tollgate/internal/localissuer"
)

const audience = "api://tollgate"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// fixture is a local issuer behind httptest and a Verifier for it, on one
// settable clock.
type fixture struct {
	t      testing.TB
	issuer *localissuer.Issuer
	clock  *clock
	v      *jwtauth.Verifier
	cfg    jwtauth.Config
}

// One RSA key for every fixture: making one takes long on a busy machine.
var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func sharedKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return rsaKey
}

func setup(t testing.TB, mods ...func(*jwtauth.Config, *localissuer.Issuer)) *fixture {
	t.Helper()
	iss, err := localissuer.NewWithKey(audience, sharedKey(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss)
	t.Cleanup(srv.Close)
	iss.SetURL(srv.URL)
	clk := &clock{t: time.Now().Truncate(time.Second)}
	iss.Now = clk.Now
	cfg := jwtauth.Defaults
	cfg.Issuer, cfg.Audiences = srv.URL, []string{audience, "other-app"}
	cfg.Scopes = map[string][]string{"GET /items": {"items:read", "items:admin"}}
	cfg.ContextClaims = []string{"tenant", "custom:tier", "groups"}
	cfg.Client = srv.Client()
	for _, m := range mods {
		m(&cfg, iss)
	}
	return &fixture{t: t, issuer: iss, clock: clk, cfg: cfg, v: jwtauth.New(cfg, clk.Now, slog.New(slog.NewJSONHandler(io.Discard, nil)))}
}

func (f *fixture) token(claims map[string]any) string {
	f.t.Helper()
	tok, err := f.issuer.Token(claims)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// sign makes a token with any method, key and header, for the attacks.
func (f *fixture) sign(method jwt.SigningMethod, key any, kid string, claims map[string]any) string {
	f.t.Helper()
	c := jwt.MapClaims{"iss": f.issuer.URL(), "aud": audience, "sub": "mallory", "exp": f.clock.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	t := jwt.NewWithClaims(method, c)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) reason(header, route string) string {
	f.t.Helper()
	_, err := f.v.Verify(context.Background(), header, route)
	var d *jwtauth.Denial
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &d):
		return d.Reason
	}
	return "error: " + err.Error()
}

func TestRules(t *testing.T) {
	f := setup(t)
	now := f.clock.Now()
	kid, priv := f.issuer.Current()
	rsaPub := priv.Public().(*rsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(rsaPub)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	unix := func(d time.Duration) int64 { return now.Add(d).Unix() }
	header := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) }
	body := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"x","exp":%d}`, f.issuer.URL(), audience, unix(time.Hour))))

	tests := []struct {
		name, token, route, want string
	}{
		{"valid", f.token(map[string]any{"sub": "alice"}), "GET /other", "ok"},
		{"Bearer prefix", "Bearer " + f.token(map[string]any{"sub": "alice"}), "", "ok"},
		{"bearer in any case", "bEaReR  " + f.token(map[string]any{"sub": "alice"}), "", "ok"},
		{"no token", "", "", jwtauth.MissingToken},
		{"Bearer and nothing", "Bearer ", "", jwtauth.MissingToken},
		{"one segment", "abcdef", "", jwtauth.MalformedToken},
		{"two segments", "abc.def", "", jwtauth.MalformedToken},
		{"four segments", "a.b.c.d", "", jwtauth.MalformedToken},
		{"empty segment", "a..c", "", jwtauth.MalformedToken},
		{"padding", header(`{"alg":"RS256"}`) + "=." + body + ".c2ln", "", jwtauth.MalformedToken},
		{"oversized", strings.Repeat("a", jwtauth.MaxTokenLen) + ".b.c", "", jwtauth.MalformedToken},
		{"header not JSON", header("nope") + "." + body + ".c2ln", "", jwtauth.MalformedToken},
		{"payload not JSON", header(`{"alg":"RS256","kid":"`+kid+`"}`) + "." + header("nope") + ".c2ln", "", jwtauth.MalformedToken},
		{"Basic credentials", "Basic dXNlcjpwYXNz", "", jwtauth.MalformedToken},

		// Algorithm confusion.
		{"alg none, no signature", header(`{"alg":"none","kid":"`+kid+`"}`) + "." + body + ".", "", jwtauth.MalformedToken},
		{"alg none, some signature", header(`{"alg":"none","kid":"`+kid+`"}`) + "." + body + ".c2ln", "", jwtauth.InvalidSignature},
		{"HS256 keyed with the public key (PEM)", f.sign(jwt.SigningMethodHS256, pemKey, kid, nil), "", jwtauth.InvalidSignature},
		{"HS256 keyed with the modulus", f.sign(jwt.SigningMethodHS256, rsaPub.N.Bytes(), kid, nil), "", jwtauth.InvalidSignature},
		{"ES256 named against the RSA key", f.sign(jwt.SigningMethodES256, ecKey, kid, nil), "", jwtauth.InvalidSignature},
		{"PS256 with the RSA key", f.sign(jwt.SigningMethodPS256, priv, kid, nil), "", jwtauth.InvalidSignature},
		{"RS384 where the JWK says RS256", f.sign(jwt.SigningMethodRS384, priv, kid, nil), "", jwtauth.InvalidSignature},
		{"unknown alg", header(`{"alg":"XS999","kid":"`+kid+`"}`) + "." + body + ".c2ln", "", jwtauth.InvalidSignature},
		{"another key under the issuer's kid", f.sign(jwt.SigningMethodRS256, stranger, kid, nil), "", jwtauth.InvalidSignature},
		{"no kid", f.sign(jwt.SigningMethodRS256, priv, "", nil), "", jwtauth.InvalidSignature},
		{"unknown kid", f.sign(jwt.SigningMethodRS256, priv, "nokey", nil), "", jwtauth.InvalidSignature},
		{"crit header", func() string {
			t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": f.issuer.URL(), "aud": audience, "exp": unix(time.Hour)})
			t.Header["kid"], t.Header["crit"] = kid, []string{"b64"}
			s, _ := t.SignedString(priv)
			return s
		}(), "", jwtauth.MalformedToken},

		// Claims, in API Gateway's order.
		{"wrong issuer", f.token(map[string]any{"iss": "https://evil.example.com"}), "", jwtauth.WrongIssuer},
		{"no issuer", f.token(map[string]any{"iss": nil}), "", jwtauth.WrongIssuer},
		{"issuer with a trailing slash", f.token(map[string]any{"iss": f.issuer.URL() + "/"}), "", jwtauth.WrongIssuer},
		{"wrong audience", f.token(map[string]any{"aud": "someone-else"}), "", jwtauth.WrongAudience},
		{"audience list with one match", f.token(map[string]any{"aud": []string{"x", "other-app"}}), "", "ok"},
		{"audience list with none", f.token(map[string]any{"aud": []string{"x", "y"}}), "", jwtauth.WrongAudience},
		{"client_id when there is no aud", f.token(map[string]any{"aud": nil, "client_id": audience}), "", "ok"},
		{"aud counts when both are present", f.token(map[string]any{"aud": "x", "client_id": audience}), "", jwtauth.WrongAudience},
		{"neither aud nor client_id", f.token(map[string]any{"aud": nil}), "", jwtauth.WrongAudience},
		{"aud not a string", f.token(map[string]any{"aud": 7}), "", jwtauth.WrongAudience},
		{"wrong issuer and expired: issuer first", f.token(map[string]any{"iss": "https://x", "exp": unix(-time.Hour)}), "", jwtauth.WrongIssuer},
		{"expired", f.token(map[string]any{"exp": unix(-time.Second)}), "", jwtauth.ExpiredToken},
		{"expires now", f.token(map[string]any{"exp": unix(0)}), "", jwtauth.ExpiredToken},
		{"no exp", f.token(map[string]any{"exp": nil}), "", jwtauth.MalformedToken},
		{"exp not a number", f.token(map[string]any{"exp": "tomorrow"}), "", jwtauth.MalformedToken},
		{"nbf in the future", f.token(map[string]any{"nbf": unix(time.Minute)}), "", jwtauth.NotYetValid},
		{"nbf passed", f.token(map[string]any{"nbf": unix(-time.Minute)}), "", "ok"},
		{"iat in the future", f.token(map[string]any{"iat": unix(time.Minute)}), "", jwtauth.NotYetValid},

		// Scopes, for a route that needs one of items:read or items:admin.
		{"scope has it", f.token(map[string]any{"scope": "openid items:read"}), "GET /items", "ok"},
		{"scp string has it", f.token(map[string]any{"scp": "items:admin"}), "GET /items", "ok"},
		{"scp list has it", f.token(map[string]any{"scp": []string{"x", "items:read"}}), "GET /items", "ok"},
		{"no scope", f.token(nil), "GET /items", jwtauth.MissingScope},
		{"other scopes", f.token(map[string]any{"scope": "items:write"}), "GET /items", jwtauth.MissingScope},
		{"route that needs none", f.token(nil), "POST /items", "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.reason(tt.token, tt.route); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	// The unknown kid cost one fetch after the first; nothing else did.
	if _, jwks := f.issuer.Fetches(); jwks != 1 {
		t.Errorf("%d JWKS fetches, want 1 (the unknown kid is within a minute of the first)", jwks)
	}
}

func TestLeeway(t *testing.T) {
	f := setup(t, func(c *jwtauth.Config, _ *localissuer.Issuer) { c.Leeway = 30 * time.Second })
	now := f.clock.Now()
	for _, tt := range []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"expired within the leeway", map[string]any{"exp": now.Add(-20 * time.Second).Unix()}, "ok"},
		{"expired beyond it", map[string]any{"exp": now.Add(-40 * time.Second).Unix()}, jwtauth.ExpiredToken},
		{"nbf within it", map[string]any{"nbf": now.Add(20 * time.Second).Unix()}, "ok"},
		{"nbf beyond it", map[string]any{"nbf": now.Add(40 * time.Second).Unix()}, jwtauth.NotYetValid},
		{"iat within it", map[string]any{"iat": now.Add(20 * time.Second).Unix()}, "ok"},
		{"iat beyond it", map[string]any{"iat": now.Add(40 * time.Second).Unix()}, jwtauth.NotYetValid},
	} {
		if got := f.reason(f.token(tt.claims), ""); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestES256AndKeyTypes(t *testing.T) {
	f := setup(t)
	rsaKid, rsaKey := f.issuer.Current()
	ecKid, err := f.issuer.Rotate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	_, ecKey := f.issuer.Current()
	if got := f.reason(f.token(map[string]any{"sub": "ec"}), ""); got != "ok" {
		t.Fatalf("ES256: %s", got)
	}
	// A token naming RS256 against the EC key, signed with an RSA key: the
	// key's type decides, not the header.
	if got := f.reason(f.sign(jwt.SigningMethodRS256, rsaKey, ecKid, nil), ""); got != jwtauth.InvalidSignature {
		t.Errorf("RS256 against an EC key: %s", got)
	}
	if got := f.reason(f.sign(jwt.SigningMethodES384, mustEC(t, elliptic.P384()), ecKid, nil), ""); got != jwtauth.InvalidSignature {
		t.Errorf("ES384 against a P-256 key: %s", got)
	}
	if got := f.reason(f.sign(jwt.SigningMethodHS256, []byte("secret"), ecKid, nil), ""); got != jwtauth.InvalidSignature {
		t.Errorf("HS256 against an EC key: %s", got)
	}
	// The previous RSA key stays valid through the rotation's grace.
	if got := f.reason(f.sign(jwt.SigningMethodRS256, rsaKey, rsaKid, nil), ""); got != "ok" {
		t.Errorf("the previous key: %s", got)
	}
	_ = ecKey
}

func TestAlgorithmsFromKeyTypeWhenJWKSaysNone(t *testing.T) {
	f := setup(t, func(_ *jwtauth.Config, iss *localissuer.Issuer) { iss.OmitAlg = true })
	kid, priv := f.issuer.Current()
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodRS256, jwt.SigningMethodRS384, jwt.SigningMethodRS512} {
		if got := f.reason(f.sign(m, priv, kid, nil), ""); got != "ok" {
			t.Errorf("%s with an RSA key whose JWK names no alg: %s", m.Alg(), got)
		}
	}
	if got := f.reason(f.sign(jwt.SigningMethodPS256, priv, kid, nil), ""); got != jwtauth.InvalidSignature {
		t.Errorf("PS256: %s", got)
	}
}

func mustEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTokenContents(t *testing.T) {
	f := setup(t)
	tok, err := f.v.Verify(context.Background(), "Bearer "+f.token(map[string]any{
		"sub": "auth0|5f7c", "scope": "items:read openid", "scp": []string{"openid", "extra"},
		"tenant": "acme", "custom:tier": 3, "groups": []string{"a", "b"},
	}), "GET /items")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Identity != "auth0|5f7c" || tok.Scopes != "items:read openid extra" || len(tok.IdentityHash) != 64 {
		t.Errorf("token = %+v", tok)
	}
	if got := strings.Join(tok.Claims, "|"); got != `acme|3|["a","b"]` {
		t.Errorf("context claims = %q", got)
	}
	// A numeric identity claim is its JSON text; an object is no identity.
	for _, c := range []struct {
		claim any
		want  string
	}{{12345, "12345"}, {true, ""}, {map[string]any{"a": 1}, ""}} {
		tok, err := f.v.Verify(context.Background(), f.token(map[string]any{"sub": c.claim}), "")
		if err != nil || tok.Identity != c.want {
			t.Errorf("sub %v: identity %+v, %v; want %q", c.claim, tok, err, c.want)
		}
	}
}

func TestMalformedTokensCostNoFetch(t *testing.T) {
	f := setup(t)
	for _, tok := range []string{"x", "a.b", "a.b.c", "Bearer a.b.c.d", strings.Repeat("A", 9000), "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30."} {
		if got := f.reason(tok, ""); got != jwtauth.MalformedToken && got != jwtauth.InvalidSignature {
			t.Errorf("%.20q: %s", tok, got)
		}
	}
	if d, j := f.issuer.Fetches(); d+j != 0 {
		t.Fatalf("garbage cost %d discovery and %d JWKS requests, want none", d, j)
	}
}

// TestWarmDecisionsFetchNothing: after the first token, valid tokens,
// repeated or new, make no discovery or JWKS request, and a repeated token
// is verified once.
func TestWarmDecisionsFetchNothing(t *testing.T) {
	f := setup(t)
	first := f.token(map[string]any{"sub": "alice"})
	for range 50 {
		if got := f.reason(first, ""); got != "ok" {
			t.Fatal(got)
		}
	}
	for i := range 20 {
		if got := f.reason(f.token(map[string]any{"sub": fmt.Sprint("user", i)}), ""); got != "ok" {
			t.Fatal(got)
		}
		f.clock.Add(time.Minute)
	}
	if d, j := f.issuer.Fetches(); d != 1 || j != 1 {
		t.Errorf("%d discovery and %d JWKS requests, want 1 and 1", d, j)
	}
	if s := f.v.Stats(); s.Verified != 21 || s.CacheHits != 49 {
		t.Errorf("stats %+v: want 21 signatures checked and 49 decisions from the cache", s)
	}
}

func TestCachedTokenExpires(t *testing.T) {
	f := setup(t)
	tok := f.token(map[string]any{"exp": f.clock.Now().Add(time.Minute).Unix()})
	if got := f.reason(tok, ""); got != "ok" {
		t.Fatal(got)
	}
	f.clock.Add(time.Minute)
	if got := f.reason(tok, ""); got != jwtauth.ExpiredToken {
		t.Fatalf("a cached token past its exp: %s", got)
	}
}

func TestCacheIsBounded(t *testing.T) {
	f := setup(t, func(c *jwtauth.Config, _ *localissuer.Issuer) { c.CacheSize = 3 })
	var toks []string
	for i := range 10 {
		toks = append(toks, f.token(map[string]any{"sub": fmt.Sprint(i)}))
		f.reason(toks[i], "")
	}
	before := f.v.Stats().Verified
	for _, tok := range toks {
		f.reason(tok, "")
	}
	if again := f.v.Stats().Verified - before; again < 7 {
		t.Errorf("%d of 10 tokens verified again with room for 3; want at least 7", again)
	}
}

// TestUnknownKidFlood: tokens naming made-up kids cost the issuer one JWKS
// request a minute at most.
func TestUnknownKidFlood(t *testing.T) {
	f := setup(t)
	f.reason(f.token(nil), "") // warm
	start := f.clock.Now()
	// Signed with a cheap key: an unknown kid is refused before any check.
	ec := mustEC(t, elliptic.P256())
	for i := range 600 {
		if got := f.reason(f.sign(jwt.SigningMethodES256, ec, fmt.Sprint("kid-", i), nil), ""); got != jwtauth.InvalidSignature {
			t.Fatalf("token %d: %s", i, got)
		}
		f.clock.Add(500 * time.Millisecond)
	}
	minutes := int64(f.clock.Now().Sub(start) / time.Minute)
	if _, j := f.issuer.Fetches(); j > 1+minutes+1 {
		t.Errorf("%d JWKS requests over %d minutes, want at most one a minute", j, minutes)
	}
}

func TestRotation(t *testing.T) {
	f := setup(t)
	oldKid, oldKey := f.issuer.Current()
	old := f.token(map[string]any{"sub": "old"})
	if got := f.reason(old, ""); got != "ok" {
		t.Fatal(got)
	}
	f.issuer.Rotate("RS256")
	fresh := f.token(map[string]any{"sub": "new"})
	// Within a minute of the last fetch the new kid is not fetched for.
	if got := f.reason(fresh, ""); got != jwtauth.InvalidSignature {
		t.Fatalf("a new kid within the refetch interval: %s", got)
	}
	f.clock.Add(jwtauth.MinRefetch)
	if got := f.reason(fresh, ""); got != "ok" {
		t.Fatalf("the new key after a minute: %s", got)
	}
	if got := f.reason(f.sign(jwt.SigningMethodRS256, oldKey, oldKid, nil), ""); got != "ok" {
		t.Fatalf("the old key in its grace period: %s", got)
	}
	// The issuer drops the old key; once the keys are fetched again, even
	// a token verified before is refused.
	f.issuer.Drop(oldKid)
	f.clock.Add(jwtauth.MaxKeyAge)
	if got := f.reason(f.token(map[string]any{"sub": "refresh"}), ""); got != "ok" {
		t.Fatal(got)
	}
	if got := f.reason(old, ""); got != jwtauth.InvalidSignature && got != jwtauth.ExpiredToken {
		t.Fatalf("a cached token whose key left the JWKS: %s", got)
	}
}

func TestRefetchKeepsVerifiedTokens(t *testing.T) {
	f := setup(t)
	tok := f.token(map[string]any{"sub": "alice", "exp": f.clock.Now().Add(3 * time.Hour).Unix()})
	f.reason(tok, "")
	f.clock.Add(jwtauth.MaxKeyAge)
	f.reason(f.token(map[string]any{"sub": "bob"}), "") // fetches the keys again
	before := f.v.Stats().Verified
	if got := f.reason(tok, ""); got != "ok" || f.v.Stats().Verified != before {
		t.Fatalf("a token verified with a key that is still published: %s, verified again: %v", got, f.v.Stats().Verified != before)
	}
}

func TestKeysLastTwoHours(t *testing.T) {
	f := setup(t)
	f.reason(f.token(nil), "")
	f.clock.Add(jwtauth.MaxKeyAge - time.Second)
	f.reason(f.token(map[string]any{"sub": "b"}), "")
	if _, j := f.issuer.Fetches(); j != 1 {
		t.Fatalf("%d JWKS requests before the keys are two hours old", j)
	}
	f.clock.Add(time.Second)
	f.reason(f.token(map[string]any{"sub": "c"}), "")
	if _, j := f.issuer.Fetches(); j != 2 {
		t.Fatalf("%d JWKS requests once they are: want 2", j)
	}
}

func TestIssuerOutage(t *testing.T) {
	f := setup(t)
	f.reason(f.token(nil), "")
	f.issuer.SetDown(true)
	f.clock.Add(3 * time.Hour)
	// Warm: cached keys go on working, and the failed refresh is not
	// retried within the minute.
	for i := range 10 {
		if got := f.reason(f.token(map[string]any{"sub": fmt.Sprint(i)}), ""); got != "ok" {
			t.Fatalf("with cached keys during an outage: %s", got)
		}
	}
	if _, j := f.issuer.Fetches(); j != 2 {
		t.Errorf("%d JWKS requests, want the first and one refresh", j)
	}

	// Cold: no keys, so no decision (FAIL_MODE applies), retried every 5 s.
	cold := setup(t)
	cold.issuer.SetDown(true)
	tok := cold.token(nil)
	for range 3 {
		if got := cold.reason(tok, ""); !strings.HasPrefix(got, "error: ") {
			t.Fatalf("an instance without keys: %s", got)
		}
	}
	if d, _ := cold.issuer.Fetches(); d != 1 {
		t.Errorf("%d discovery requests within 5 s, want 1", d)
	}
	cold.issuer.SetDown(false)
	cold.clock.Add(jwtauth.RetryWithoutKeys)
	if got := cold.reason(tok, ""); got != "ok" {
		t.Fatalf("after the issuer is back: %s", got)
	}
}

func TestDiscoveryMustNameTheIssuer(t *testing.T) {
	f := setup(t, func(c *jwtauth.Config, _ *localissuer.Issuer) { c.Issuer += "/" })
	if got := f.reason(f.token(map[string]any{"iss": f.cfg.Issuer}), ""); !strings.Contains(got, "names issuer") {
		t.Fatalf("a discovery document for another issuer: %s", got)
	}
}

// TestRedirectsStayOnHTTPS: the JWKS (or discovery) may redirect, but only
// to a URL its first one could have been: https, or http on loopback.
func TestRedirectsStayOnHTTPS(t *testing.T) {
	iss, err := localissuer.NewWithKey(audience, sharedKey(t))
	if err != nil {
		t.Fatal(err)
	}
	var target atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("/issuer/jwks", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.Load().(string), http.StatusFound)
	})
	mux.Handle("/", iss) // the issuer's paths go by their suffix: /real/jwks is its JWKS
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.SetURL(srv.URL + "/issuer")
	tok, err := iss.Token(map[string]any{"sub": "alice"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ target, want string }{
		{"http://keys.example.invalid/jwks", "https"},
		{srv.URL + "/real/jwks", ""},
	} {
		target.Store(tt.target)
		cfg := jwtauth.Defaults
		cfg.Issuer, cfg.Audiences = iss.URL(), []string{audience}
		// The client New makes, as deployed; it reaches loopback in clear text.
		v := jwtauth.New(cfg, time.Now, slog.New(slog.NewJSONHandler(io.Discard, nil)))
		_, err := v.Verify(context.Background(), tok, "")
		var d *jwtauth.Denial
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("redirected to %s: %v", tt.target, err)
		case tt.want != "" && (err == nil || errors.As(err, &d) || !strings.Contains(err.Error(), "redirected to") || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("redirected to %s: %v; want the redirect refused", tt.target, err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	base := map[string]string{"JWT_ISSUER": "https://issuer.example.com", "JWT_AUDIENCE": "a, b ,"}
	env := func(over map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := over[k]; ok {
				return v
			}
			return base[k]
		}
	}
	c, err := jwtauth.FromEnv(env(nil))
	if err != nil || c.IdentityClaim != "sub" || strings.Join(c.Audiences, "|") != "a|b" || c.Leeway != 0 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = jwtauth.FromEnv(env(map[string]string{"JWT_LEEWAY": "30s", "JWT_IDENTITY_CLAIM": "client_id",
		"JWT_SCOPES": `{"GET /items": ["items:read"], "$default": ["x"]}`, "JWT_CONTEXT_CLAIMS": "tenant, custom:tier"}))
	if err != nil || c.Leeway != 30*time.Second || c.IdentityClaim != "client_id" || len(c.Scopes) != 2 || len(c.ContextClaims) != 2 {
		t.Fatalf("set: %+v, %v", c, err)
	}
	for _, bad := range []map[string]string{
		{"JWT_ISSUER": ""},
		{"JWT_ISSUER": "http://issuer.example.com"},
		{"JWT_ISSUER": "ftp://issuer.example.com"},
		{"JWT_ISSUER": "https://issuer.example.com?x=1"},
		{"JWT_AUDIENCE": " , "},
		{"JWT_LEEWAY": "-1s"},
		{"JWT_LEEWAY": "1h"},
		{"JWT_SCOPES": `["items:read"]`},
		{"JWT_SCOPES": `{"/items": ["items:read"]}`},
		{"JWT_SCOPES": `{"GET /items": []}`},
		{"JWT_SCOPES": `{"GET /items": ["a b"]}`},
		{"JWT_CONTEXT_CLAIMS": "custom:tier,custom_tier"},
		{"JWT_CONTEXT_CLAIMS": "email,Email"},
	} {
		if _, err := jwtauth.FromEnv(env(bad)); err == nil {
			t.Errorf("%v: accepted", bad)
		} else if !strings.Contains(err.Error(), "JWT_") {
			t.Errorf("%v: the error names no variable: %v", bad, err)
		}
	}
	for _, ok := range []string{"http://127.0.0.1:8080/_local", "http://localhost:9000", "http://[::1]:80"} {
		if err := jwtauth.CheckIssuer(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
