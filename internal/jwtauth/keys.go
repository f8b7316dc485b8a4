package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// publicKey is one usable key of the issuer's JWKS.
type publicKey struct {
	pub  any      // *rsa.PublicKey or *ecdsa.PublicKey
	kind string   // "RSA 2048", "EC P-256"
	algs []string // what it verifies: from its type, narrowed by its alg
}

// allows reports whether a token naming alg may be checked with k. The
// answer comes from k's type, so a token cannot choose HMAC, none, or an
// algorithm of another family.
func (k *publicKey) allows(alg string) bool { return slices.Contains(k.algs, alg) }

// keySet is the issuer's keys as an instance last fetched them.
type keySet struct {
	issuer    string // without a trailing slash, for discovery
	jwksURI   string // from discovery; "" until discovered
	keys      map[string]*publicKey
	fetchedAt time.Time // of the keys held
	triedAt   time.Time // the last fetch, successful or not
	lastErr   error
}

func (s *keySet) get(kid string) *publicKey { return s.keys[kid] }

// lookup returns the key named kid. It fetches the JWKS first when the
// instance has no keys, when they are older than MaxKeyAge, or when kid is
// not among them, but never twice within MinRefetch (RetryWithoutKeys
// while it has no keys): a flood of tokens with made-up kids costs the
// issuer one request a minute. When a fetch fails, the keys held stay in
// use: an issuer outage does not stop warm instances.
func (s *keySet) lookup(ctx context.Context, v *Verifier, kid string, now time.Time) (*publicKey, error) {
	k := s.keys[kid]
	stale := s.keys != nil && now.Sub(s.fetchedAt) >= MaxKeyAge
	if k == nil || stale {
		gap := MinRefetch
		if s.keys == nil {
			gap = RetryWithoutKeys
		}
		if s.triedAt.IsZero() || now.Sub(s.triedAt) >= gap || now.Before(s.triedAt) {
			why := "unknown kid"
			switch {
			case s.keys == nil:
				why = "no keys yet"
			case stale:
				why = "keys older than " + MaxKeyAge.String()
			}
			s.fetch(ctx, v, now, why)
			k = s.keys[kid]
		}
	}
	if s.keys == nil {
		return nil, &unavailable{fmt.Errorf("no keys from issuer %s: %w", v.cfg.Issuer, s.lastErr)}
	}
	if k == nil {
		return nil, deny(InvalidSignature, "the issuer's JWKS has no usable key %q", kid)
	}
	return k, nil
}

// fetch replaces the keys with the issuer's current JWKS, or keeps them
// and remembers the error.
func (s *keySet) fetch(ctx context.Context, v *Verifier, now time.Time, why string) {
	s.triedAt = now
	v.stats.Fetches++
	ctx, cancel := context.WithTimeout(ctx, v.cfg.FetchTimeout)
	defer cancel()
	keys, skipped, err := s.download(ctx, v)
	if err != nil {
		s.lastErr = err
		s.jwksURI = "" // discover again next time: the JWKS may have moved
		v.log.LogAttrs(ctx, slog.LevelWarn, "jwks fetch failed", slog.String("issuer", v.cfg.Issuer),
			slog.String("why", why), slog.String("error", err.Error()), slog.Int("cachedKeys", len(s.keys)))
		return
	}
	for kid, k := range keys {
		// A key that has not changed stays the same key, so that tokens
		// verified with it stay verified.
		if old := s.keys[kid]; old != nil && slices.Equal(old.algs, k.algs) && old.pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.pub) {
			keys[kid] = old
		}
	}
	s.keys, s.fetchedAt, s.lastErr = keys, now, nil
	level := slog.LevelInfo
	if len(keys) == 0 {
		level = slog.LevelWarn // every token will be refused
	}
	v.log.LogAttrs(ctx, level, "jwks fetched", slog.String("issuer", v.cfg.Issuer), slog.String("why", why),
		slog.Int("keys", len(keys)), slog.Int("skipped", skipped))
}

// download runs discovery if needed, then reads the JWKS. Keys Tollgate
// cannot use (HMAC, other curves, RSA under 2048 bits, encryption keys,
// keys without a kid) are skipped and counted.
func (s *keySet) download(ctx context.Context, v *Verifier) (map[string]*publicKey, int, error) {
	if s.jwksURI == "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := getJSON(ctx, v.cfg.Client, s.issuer+"/.well-known/openid-configuration", &doc); err != nil {
			return nil, 0, fmt.Errorf("OIDC discovery: %w", err)
		}
		if doc.Issuer != v.cfg.Issuer {
			return nil, 0, fmt.Errorf("OIDC discovery: the document names issuer %q, not %q: JWT_ISSUER must be exactly the iss of your tokens", doc.Issuer, v.cfg.Issuer)
		}
		if err := checkKeysURL(doc.JWKSURI); err != nil {
			return nil, 0, fmt.Errorf("OIDC discovery: jwks_uri %q: %w", doc.JWKSURI, err)
		}
		s.jwksURI = doc.JWKSURI
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, v.cfg.Client, s.jwksURI, &set); err != nil {
		return nil, 0, fmt.Errorf("JWKS: %w", err)
	}
	keys := map[string]*publicKey{}
	skipped := 0
	for _, raw := range set.Keys {
		kid, k, err := parseJWK(raw)
		if err != nil {
			skipped++
			continue
		}
		if _, dup := keys[kid]; !dup {
			keys[kid] = k
		}
	}
	return keys, skipped, nil
}

func checkKeysURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "":
		return errors.New("not an absolute URL")
	case u.Scheme == "https", u.Scheme == "http" && Loopback(u.Hostname()):
		return nil
	}
	return errors.New("keys are fetched over https only (http on loopback)")
}

// checkRedirect holds a redirect of the discovery document or the JWKS to
// the rule their first URL is held to: https, or http on loopback. Go's
// client would otherwise follow an https URL to an http one, and keys
// fetched in clear text could be anyone's.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if err := checkKeysURL(req.URL.String()); err != nil {
		return fmt.Errorf("redirected to %s: %w", req.URL.Redacted(), err)
	}
	return nil
}

// maxDocument bounds what is read of a discovery document or a JWKS.
const maxDocument = 1 << 20

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if len(body) > maxDocument {
		return fmt.Errorf("GET %s: more than %d bytes", url, maxDocument)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: not JSON: %w", url, err)
	}
	return nil
}

// The algorithms each key type verifies.
var (
	rsaAlgorithms = []string{"RS256", "RS384", "RS512"}
	ecAlgorithms  = []string{"ES256"}
)

// parseJWK reads one key of a JWKS (RFC 7517, 7518): an RSA key of 2048
// to 8192 bits, or an EC key on P-256, meant for signatures.
func parseJWK(raw json.RawMessage) (string, *publicKey, error) {
	var j struct {
		Kty, Kid, Use, Alg string
		N, E, Crv, X, Y    string
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		return "", nil, err
	}
	if j.Kid == "" {
		return "", nil, errors.New("no kid")
	}
	if j.Use != "" && j.Use != "sig" {
		return "", nil, errors.New("not a signing key")
	}
	narrow := func(algs []string) ([]string, error) {
		if j.Alg == "" {
			return algs, nil
		}
		if !slices.Contains(algs, j.Alg) {
			return nil, fmt.Errorf("alg %s is not one Tollgate accepts for %s keys", j.Alg, j.Kty)
		}
		return []string{j.Alg}, nil
	}
	b64 := base64.RawURLEncoding
	switch j.Kty {
	case "RSA":
		n, err1 := b64.DecodeString(j.N)
		e, err2 := b64.DecodeString(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return "", nil, errors.New("bad n or e")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if bits := pub.N.BitLen(); bits < 2048 || bits > 8192 || pub.E < 3 || pub.E%2 == 0 {
			return "", nil, errors.New("an RSA key must have 2048 to 8192 bits and an odd exponent")
		}
		algs, err := narrow(rsaAlgorithms)
		if err != nil {
			return "", nil, err
		}
		return j.Kid, &publicKey{pub: pub, kind: fmt.Sprintf("RSA %d", pub.N.BitLen()), algs: algs}, nil
	case "EC":
		if j.Crv != "P-256" {
			return "", nil, errors.New("only P-256 EC keys (ES256)")
		}
		x, err1 := b64.DecodeString(j.X)
		y, err2 := b64.DecodeString(j.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return "", nil, errors.New("bad x or y")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return "", nil, err
		}
		algs, err := narrow(ecAlgorithms)
		if err != nil {
			return "", nil, err
		}
		return j.Kid, &publicKey{pub: pub, kind: "EC P-256", algs: algs}, nil
	}
	return "", nil, fmt.Errorf("key type %q is not one Tollgate accepts", j.Kty)
}
