package jwtauth

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/ratelimit"
)

// Config is how tokens are validated. FromEnv reads it from the JWT_*
// variables the README's configuration table lists.
type Config struct {
	// Issuer is the token's iss, exactly; its OIDC discovery document is
	// at Issuer + "/.well-known/openid-configuration".
	Issuer string
	// Audiences are the values aud (or client_id when aud is absent) may
	// take: one is enough.
	Audiences []string
	// Leeway is allowed on exp, nbf and iat for clocks that differ.
	Leeway time.Duration
	// Scopes maps a route key ("GET /items") to the scopes it accepts: a
	// token needs one of them in scope or scp. Routes not listed need none.
	Scopes map[string][]string
	// IdentityClaim names the claim whose value is the caller's identity.
	IdentityClaim string
	// ContextClaims name claims the authorizer copies into its context.
	ContextClaims []string

	// CacheSize bounds the verified tokens remembered (by their hash).
	CacheSize int
	// FetchTimeout bounds one fetch of the discovery document and the JWKS.
	FetchTimeout time.Duration
	// Client fetches them; nil means a client of its own.
	Client *http.Client
}

// Bounds and defaults, as the README documents them.
const (
	// MaxKeyAge is how long fetched keys are used before they are fetched
	// again, as API Gateway's JWT authorizer caches them.
	MaxKeyAge = 2 * time.Hour
	// MinRefetch spaces fetches: a token naming an unknown kid triggers at
	// most one a minute, however many such tokens arrive.
	MinRefetch = time.Minute
	// RetryWithoutKeys spaces attempts while an instance has no keys.
	RetryWithoutKeys = 5 * time.Second
	// MaxTokenLen bounds a token before any parsing.
	MaxTokenLen = 8 << 10
	// MaxLeeway bounds JWT_LEEWAY: more would make exp meaningless.
	MaxLeeway = 5 * time.Minute
)

// Defaults fill what FromEnv and New are not told.
var Defaults = Config{
	IdentityClaim: "sub",
	CacheSize:     10000,
	FetchTimeout:  2 * time.Second,
}

// FromEnv reads the token rules. Each error names the variable and what it
// accepts.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Defaults
	c.Issuer = getenv("JWT_ISSUER")
	if err := CheckIssuer(c.Issuer); err != nil {
		return c, fmt.Errorf("JWT_ISSUER=%q: %w", c.Issuer, err)
	}
	for _, a := range strings.Split(getenv("JWT_AUDIENCE"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.Audiences = append(c.Audiences, a)
		}
	}
	if len(c.Audiences) == 0 {
		return c, fmt.Errorf("JWT_AUDIENCE is not set: set it to the audiences (or client ids) your tokens carry, comma-separated, as for API Gateway's JWT authorizer")
	}
	if v := getenv("JWT_LEEWAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxLeeway {
			return c, fmt.Errorf("JWT_LEEWAY=%q: want a duration from 0s to %s, such as 30s", v, MaxLeeway)
		}
		c.Leeway = d
	}
	if v := getenv("JWT_SCOPES"); v != "" {
		scopes, err := ParseScopes(v)
		if err != nil {
			return c, fmt.Errorf("JWT_SCOPES: %w", err)
		}
		c.Scopes = scopes
	}
	if v := getenv("JWT_IDENTITY_CLAIM"); v != "" {
		c.IdentityClaim = v
	}
	if v := getenv("JWT_CONTEXT_CLAIMS"); v != "" {
		seen := map[string]string{}
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			// Header names ignore case, so email and Email would both be
			// X-Tollgate-Claim-email to a backend.
			key := ratelimit.ClaimKey(name)
			if other, dup := seen[strings.ToLower(key)]; dup {
				return c, fmt.Errorf("JWT_CONTEXT_CLAIMS: %q and %q would both be header %s (context key %s): list one of them", other, name, ratelimit.ClaimHeader(name), key)
			}
			seen[strings.ToLower(key)] = name
			c.ContextClaims = append(c.ContextClaims, name)
		}
	}
	return c, nil
}

// CheckIssuer accepts an https URL, or an http one on loopback, for tests
// and the local stack: keys fetched in clear text from anywhere else could
// be anyone's.
func CheckIssuer(issuer string) error {
	if issuer == "" {
		return fmt.Errorf("the issuer is not set: set it to the iss of your tokens, such as https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123")
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("want an https URL with no query or fragment, the iss of your tokens")
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && Loopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("an http issuer is accepted only on loopback (127.0.0.1, ::1, localhost), for tests and make run: use https")
	}
	return fmt.Errorf("want an https URL, not %s", u.Scheme)
}

// Loopback reports whether host names this machine.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseScopes reads JWT_SCOPES: a JSON object from route key to the scopes
// that route accepts.
func ParseScopes(v string) (map[string][]string, error) {
	var m map[string][]string
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return nil, fmt.Errorf(`want a JSON object from route key to a list of scopes, such as {"GET /items": ["items:read"]}: %v`, err)
	}
	for route, scopes := range m {
		method, path, ok := strings.Cut(route, " ")
		if route != "$default" && (!ok || method == "" || !strings.HasPrefix(path, "/")) {
			return nil, fmt.Errorf("%q is not a route key: write METHOD /path as the route is defined, such as GET /items/{id}, or $default", route)
		}
		if len(scopes) == 0 {
			return nil, fmt.Errorf("route %q lists no scopes: leave it out to need none", route)
		}
		for _, s := range scopes {
			if s == "" || strings.ContainsAny(s, " \t\n") {
				return nil, fmt.Errorf("route %q: scope %q must be one word", route, s)
			}
		}
	}
	return m, nil
}
