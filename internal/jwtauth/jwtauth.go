// Package jwtauth validates JWTs as API Gateway's JWT authorizer does, and
// more strictly: the issuer's keys come from OIDC discovery and its JWKS,
// cached per instance for at most MaxKeyAge and fetched again on an unknown
// kid at most once per MinRefetch; a key's algorithm follows from its type
// (RS256, RS384 or RS512 for RSA; ES256 for P-256), never from the token's
// header alone, and never none or HMAC; iss, aud or client_id, exp, nbf,
// iat and per-route scopes are checked with a configurable leeway.
//
// A token is bounded and checked for shape before it is parsed, so garbage
// costs no network call. A verified token is remembered by its SHA-256
// until it expires, so a client that reuses its token pays for the
// signature check once.
//
// The signature checks and the time claims are github.com/golang-jwt/jwt/v5's;
// which key, which algorithm, the audience, scopes and identity are here.
package jwtauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Reasons a token is refused, as the authorizer logs and counts them.
const (
	MissingToken     = "missing_token"
	MalformedToken   = "malformed_token"
	InvalidSignature = "invalid_signature"
	ExpiredToken     = "expired_token"
	NotYetValid      = "token_not_yet_valid"
	WrongIssuer      = "wrong_issuer"
	WrongAudience    = "wrong_audience"
	MissingScope     = "missing_scope"
)

// Denial is a token refused for Reason. Detail says why, for the log line;
// it never holds the token.
type Denial struct {
	Reason string
	Detail string
}

func (d *Denial) Error() string { return d.Reason + ": " + d.Detail }

func deny(reason, format string, args ...any) *Denial {
	return &Denial{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Token is what a decision needs of a verified token. The Verifier shares
// it between decisions: treat it as read-only.
type Token struct {
	// Identity is the value of the identity claim, "" if the token has
	// none that is a string or number; IdentityHash is its hex SHA-256.
	Identity     string
	IdentityHash string
	// Scopes are the token's scopes (scope and scp), space-separated.
	Scopes string
	// Claims are the values of Config.ContextClaims, in order: strings as
	// they are, other JSON values as JSON text, "" when absent.
	Claims []string

	scopes  []string
	expires time.Time // exp + leeway: when the token stops being accepted
	kid     string
	key     *publicKey // the key that verified it
}

// Verifier validates tokens for one issuer. It is safe for concurrent use;
// the authorizer calls it one decision at a time.
type Verifier struct {
	cfg    Config
	clock  func() time.Time
	log    *slog.Logger
	parser *jwt.Parser

	mu       sync.Mutex
	keys     keySet
	verified map[[sha256.Size]byte]*Token
	stats    Stats
}

// Stats count a Verifier's work, for tests and benchmarks.
type Stats struct {
	Verified  int // signatures checked
	CacheHits int // decisions answered from a verified token
	Fetches   int // JWKS fetches attempted (discovery not counted)
}

// New returns a Verifier. It fetches nothing until a token needs keys.
func New(cfg Config, clock func() time.Time, log *slog.Logger) *Verifier {
	if cfg.IdentityClaim == "" {
		cfg.IdentityClaim = Defaults.IdentityClaim
	}
	if cfg.CacheSize < 1 {
		cfg.CacheSize = Defaults.CacheSize
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = Defaults.FetchTimeout
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.FetchTimeout, CheckRedirect: checkRedirect}
	}
	v := &Verifier{cfg: cfg, clock: clock, log: log, verified: map[[sha256.Size]byte]*Token{}}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(algorithms),
		jwt.WithJSONNumber(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(clock),
	)
	v.keys.issuer = strings.TrimSuffix(cfg.Issuer, "/")
	return v
}

// Stats returns the counts so far.
func (v *Verifier) Stats() Stats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stats
}

// Verify validates the token in header (the token alone, or "Bearer " and
// the token) for a request to route. It returns the token, or a *Denial
// saying why it is refused, or another error when the issuer's keys cannot
// be had: then no decision can be made, and FAIL_MODE applies.
func (v *Verifier) Verify(ctx context.Context, header, route string) (*Token, error) {
	raw := strings.TrimSpace(header)
	if len(raw) >= 6 && strings.EqualFold(raw[:6], "bearer") && (len(raw) == 6 || raw[6] == ' ') {
		raw = strings.TrimLeft(raw[6:], " ")
	}
	if raw == "" {
		return nil, deny(MissingToken, "the request carries no token")
	}
	if err := checkShape(raw); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(raw))

	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.clock()
	t := v.verified[sum]
	if t != nil && (!now.Before(t.expires) || v.keys.get(t.kid) != t.key) {
		// Expired, or its key has left the issuer's JWKS since.
		delete(v.verified, sum)
		t = nil
	}
	if t != nil {
		v.stats.CacheHits++
	} else {
		var err error
		if t, err = v.verify(ctx, raw, now); err != nil {
			return nil, err
		}
		if len(v.verified) >= v.cfg.CacheSize {
			for k := range v.verified { // random eviction: Go's map order is random
				delete(v.verified, k)
				break
			}
		}
		v.verified[sum] = t
	}
	if need := v.cfg.Scopes[route]; len(need) > 0 && !slices.ContainsFunc(need, func(s string) bool { return slices.Contains(t.scopes, s) }) {
		return nil, deny(MissingScope, "route %s needs one of the scopes %s", route, strings.Join(need, ", "))
	}
	return t, nil
}

// checkShape bounds the token and checks that it is three base64url
// segments, before anything parses it: garbage costs no more than this.
func checkShape(raw string) error {
	if len(raw) > MaxTokenLen {
		return deny(MalformedToken, "the token is %d bytes long; the most is %d", len(raw), MaxTokenLen)
	}
	dots, start := 0, 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '.':
			if i == start {
				return deny(MalformedToken, "the token has an empty segment: a JWT is header.payload.signature")
			}
			dots++
			start = i + 1
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return deny(MalformedToken, "the token has a character that base64url does not use: a JWT is three base64url segments")
		}
	}
	if start == len(raw) {
		return deny(MalformedToken, "the token has an empty segment: a JWT is header.payload.signature")
	}
	if dots != 2 {
		return deny(MalformedToken, "the token has %d segments: a JWT (JWS compact form) has three", dots+1)
	}
	return nil
}

// algorithms are the only ones a token may name. Which of them a token may
// use is its key's type: see publicKey.allows.
var algorithms = []string{"RS256", "RS384", "RS512", "ES256"}

// unavailable marks a failure to get the issuer's keys.
type unavailable struct{ err error }

func (u *unavailable) Error() string { return u.err.Error() }
func (u *unavailable) Unwrap() error { return u.err }

// verify checks a token's signature and claims. Called with v.mu held.
func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (*Token, error) {
	claims := jwt.MapClaims{}
	var used *publicKey
	var kid string
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, deny(MalformedToken, "the token's header has crit extensions, which Tollgate does not understand")
		}
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, deny(InvalidSignature, "the token's header names no key (kid)")
		}
		k, err := v.keys.lookup(ctx, v, kid, now)
		if err != nil {
			return nil, err
		}
		if !k.allows(t.Method.Alg()) {
			return nil, deny(InvalidSignature, "the token names %s, which key %q (%s) does not use", t.Method.Alg(), kid, k.kind)
		}
		used = k
		v.stats.Verified++
		return k.pub, nil
	})
	if err != nil {
		var d *Denial
		var u *unavailable
		switch {
		case errors.As(err, &u):
			return nil, u.err
		case errors.As(err, &d):
			return nil, d
		case errors.Is(err, jwt.ErrTokenMalformed):
			return nil, deny(MalformedToken, "the token cannot be decoded: %v", err)
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			return nil, deny(InvalidSignature, "%v", err)
		case !errors.Is(err, jwt.ErrTokenInvalidClaims):
			return nil, deny(MalformedToken, "%v", err)
		}
	}
	// The signature holds; now the claims, in API Gateway's order.
	if iss, _ := claims["iss"].(string); iss != v.cfg.Issuer {
		return nil, deny(WrongIssuer, "the token's iss is %q; want %q", iss, v.cfg.Issuer)
	}
	if d := v.checkAudience(claims); d != nil {
		return nil, d
	}
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, deny(ExpiredToken, "the token expired (leeway %s)", v.cfg.Leeway)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, deny(NotYetValid, "the token's nbf is in the future (leeway %s)", v.cfg.Leeway)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, deny(NotYetValid, "the token's iat is in the future (leeway %s)", v.cfg.Leeway)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return nil, deny(MalformedToken, "the token has no exp: Tollgate accepts only tokens that expire")
	default:
		return nil, deny(MalformedToken, "the token's claims cannot be read: %v", err)
	}
	exp, _ := claims.GetExpirationTime() // present: required above
	t := &Token{expires: exp.Add(v.cfg.Leeway), kid: kid, key: used}
	t.Identity = claimString(claims[v.cfg.IdentityClaim], false)
	if t.Identity != "" {
		sum := sha256.Sum256([]byte(t.Identity))
		t.IdentityHash = hex.EncodeToString(sum[:])
	}
	t.scopes = scopesOf(claims)
	t.Scopes = strings.Join(t.scopes, " ")
	for _, name := range v.cfg.ContextClaims {
		t.Claims = append(t.Claims, claimString(claims[name], true))
	}
	return t, nil
}

// checkAudience matches aud, or client_id when there is no aud, against
// the configured audiences. When both are present only aud counts, as in
// API Gateway.
func (v *Verifier) checkAudience(claims jwt.MapClaims) *Denial {
	if _, ok := claims["aud"]; ok {
		aud, err := claims.GetAudience()
		if err != nil {
			return deny(WrongAudience, "the token's aud is neither a string nor a list of strings")
		}
		for _, a := range aud {
			if slices.Contains(v.cfg.Audiences, a) {
				return nil
			}
		}
		return deny(WrongAudience, "the token's aud %q is none of %s", []string(aud), strings.Join(v.cfg.Audiences, ", "))
	}
	id, ok := claims["client_id"].(string)
	if !ok {
		return deny(WrongAudience, "the token has neither aud nor client_id")
	}
	if !slices.Contains(v.cfg.Audiences, id) {
		return deny(WrongAudience, "the token's client_id %q is none of %s", id, strings.Join(v.cfg.Audiences, ", "))
	}
	return nil
}

// scopesOf reads scope (space-separated) and scp (space-separated, or a
// list as Okta writes it), without duplicates.
func scopesOf(claims jwt.MapClaims) []string {
	var out []string
	add := func(s string) {
		for _, f := range strings.Fields(s) {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	for _, name := range []string{"scope", "scp"} {
		switch v := claims[name].(type) {
		case string:
			add(v)
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					add(s)
				}
			}
		}
	}
	return out
}

// claimString renders a claim's value: a string as it is, a number as its
// JSON text; with other, any other JSON value as compact JSON text.
func claimString(v any, other bool) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if other {
			return strconv.FormatBool(v)
		}
		return ""
	}
	if !other {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
