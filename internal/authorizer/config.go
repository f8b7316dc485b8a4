package authorizer

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/internal/jwtauth"
)

// Config is the authorizer's configuration. FromEnv reads it from the
// environment variables the README's configuration table lists.
type Config struct {
	Table     string
	KeySource KeySource
	// Auth says what a request must carry: an API key, a JWT, or both
	// (AUTH_MODE). JWT says how tokens are validated, and TokenSource where
	// requests carry them.
	Auth        AuthMode
	TokenSource KeySource
	JWT         jwtauth.Config
	// PassOnLimit allows throttled and over-quota requests, marking them in
	// the context, so that a backend can answer a real 429 (ON_LIMIT=pass).
	PassOnLimit bool
	// Shadow watches the limits of plans without a tollgate:enforce tag
	// instead of enforcing them (ENFORCE=shadow): requests over a limit are
	// allowed and marked shadow in the context.
	Shadow bool
	// FailOpen allows requests when DynamoDB cannot be reached in time
	// (FAIL_MODE=open). The default denies them, which keeps limits exact.
	FailOpen bool
	// Deadline bounds the DynamoDB work of one decision, retries included.
	Deadline time.Duration
	// ClockGuard is taken from every bucket's tolerance: set it to twice
	// the clock error between instances to stay exact against true time.
	ClockGuard time.Duration
	// DenyTTL bounds how long a cached denial is repeated without asking
	// DynamoDB: an unknown or disabled key, a missing plan, a spent quota,
	// an empty bucket. It is how long a grant (a new key or assignment, an
	// enabled key, a raised limit, an extension) can take to be seen.
	DenyTTL time.Duration
	// CacheSize bounds the keys an instance remembers.
	CacheSize int
	// Retention is how long usage history is kept after its month.
	Retention time.Duration
	// MetricsNamespace is the CloudWatch namespace of the decision metrics.
	MetricsNamespace string
	// MetricsInterval is how long an instance counts decisions before it
	// writes their metrics, and collapses repeated denials into one line.
	MetricsInterval time.Duration
	// LogAllDecisions writes a line for every decision (LOG_DECISIONS=all).
	LogAllDecisions bool
}

// AuthMode is what identifies a caller (AUTH_MODE).
type AuthMode string

// Modes, as the README's "JWT callers" describes them.
const (
	// AuthKey: an API key, as API Gateway's usage plans take it.
	AuthKey AuthMode = "key"
	// AuthJWT: a valid JWT, whose identity claim belongs to a key.
	AuthJWT AuthMode = "jwt"
	// AuthJWTAndKey: a valid JWT and an API key; the key is metered, and
	// if it has identities the token's must be one of them.
	AuthJWTAndKey AuthMode = "jwt-and-key"
	// AuthJWTOrKey: a request with a token is decided as in AuthJWT, one
	// without as in AuthKey.
	AuthJWTOrKey AuthMode = "jwt-or-key"
)

// KeySource says where requests carry their API key (or their token).
type KeySource struct {
	Query bool   // a query string parameter, case-sensitive; otherwise a header
	Name  string // lowercase for headers
}

func (s KeySource) String() string {
	if s.Query {
		return "query:" + s.Name
	}
	return "header:" + s.Name
}

// Defaults, as the README documents them.
var Defaults = Config{
	KeySource:        KeySource{Name: "x-api-key"},
	Auth:             AuthKey,
	TokenSource:      KeySource{Name: "authorization"},
	JWT:              jwtauth.Defaults,
	Deadline:         time.Second,
	DenyTTL:          time.Second,
	CacheSize:        10000,
	Retention:        400 * 24 * time.Hour,
	MetricsNamespace: "Tollgate",
	MetricsInterval:  time.Minute,
}

// FromEnv reads the configuration. Each error names the variable and the
// values it accepts.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Defaults
	c.Table = getenv("TABLE_NAME")
	if c.Table == "" {
		return c, fmt.Errorf("TABLE_NAME is not set: set it to the Tollgate table's name")
	}
	if v := getenv("API_KEY_SOURCE"); v != "" {
		var err error
		if c.KeySource, err = parseSource("API_KEY_SOURCE", v, "x-api-key"); err != nil {
			return c, err
		}
	}
	switch v := getenv("ON_LIMIT"); v {
	case "", "deny":
	case "pass":
		c.PassOnLimit = true
	default:
		return c, fmt.Errorf("ON_LIMIT=%q: want deny (403 on throttle or quota) or pass (allow, and tell the backend in the context)", v)
	}
	switch v := getenv("ENFORCE"); v {
	case "", "enforce":
	case "shadow":
		c.Shadow = true
	default:
		return c, fmt.Errorf("ENFORCE=%q: want enforce (limits refuse requests) or shadow (requests over a limit are allowed and marked shadow; a plan's tag tollgate:enforce overrides it)", v)
	}
	switch v := getenv("FAIL_MODE"); v {
	case "", "closed":
	case "open":
		c.FailOpen = true
	default:
		return c, fmt.Errorf("FAIL_MODE=%q: want closed (deny when DynamoDB fails) or open (allow, with failOpen in the context)", v)
	}
	var err error
	if c.Deadline, err = duration(getenv, "DYNAMODB_DEADLINE", c.Deadline, time.Millisecond); err != nil {
		return c, err
	}
	if c.ClockGuard, err = duration(getenv, "CLOCK_SKEW_GUARD", c.ClockGuard, 0); err != nil {
		return c, err
	}
	if c.DenyTTL, err = duration(getenv, "DENY_CACHE_TTL", c.DenyTTL, 0); err != nil {
		return c, err
	}
	if v := getenv("CACHE_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("CACHE_SIZE=%q: want a whole number of keys, at least 1", v)
		}
		c.CacheSize = n
	}
	if v := getenv("USAGE_RETENTION_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return c, fmt.Errorf("USAGE_RETENTION_DAYS=%q: want a whole number of days; 0 keeps usage history forever", v)
		}
		c.Retention = time.Duration(n) * 24 * time.Hour
	}
	if v := getenv("METRICS_NAMESPACE"); v != "" {
		if err := checkNamespace(v); err != nil {
			return c, fmt.Errorf("METRICS_NAMESPACE=%q: %w", v, err)
		}
		c.MetricsNamespace = v
	}
	if c.MetricsInterval, err = duration(getenv, "METRICS_INTERVAL", c.MetricsInterval, time.Second); err != nil {
		return c, err
	}
	switch v := getenv("LOG_DECISIONS"); v {
	case "", "summary":
	case "all":
		c.LogAllDecisions = true
	default:
		return c, fmt.Errorf("LOG_DECISIONS=%q: want summary (metrics, errors and a line per repeated denial) or all (a line per decision)", v)
	}
	return c, c.readAuth(getenv)
}

// readAuth reads AUTH_MODE and, unless it is key, how to find and check
// tokens.
func (c *Config) readAuth(getenv func(string) string) error {
	switch v := AuthMode(getenv("AUTH_MODE")); v {
	case "", AuthKey:
		return nil
	case AuthJWT, AuthJWTAndKey, AuthJWTOrKey:
		c.Auth = v
	default:
		return fmt.Errorf("AUTH_MODE=%q: want key (an API key), jwt (a JWT whose identity belongs to a key), jwt-and-key (both) or jwt-or-key (a JWT if the request has one, else a key)", v)
	}
	if v := getenv("JWT_SOURCE"); v != "" {
		var err error
		if c.TokenSource, err = parseSource("JWT_SOURCE", v, "authorization"); err != nil {
			return err
		}
	}
	if c.TokenSource == c.KeySource {
		return fmt.Errorf("JWT_SOURCE and API_KEY_SOURCE are both %s: a request carries its token and its key in different places", c.KeySource)
	}
	var err error
	c.JWT, err = jwtauth.FromEnv(getenv)
	c.JWT.CacheSize = c.CacheSize
	return err
}

// parseSource reads header:<name> or query:<name>. Header names are
// matched without regard to case, so they are kept lowercase.
func parseSource(variable, v, example string) (KeySource, error) {
	where, name, ok := strings.Cut(v, ":")
	if !ok || name == "" || (where != "header" && where != "query") {
		return KeySource{}, fmt.Errorf("%s=%q: want header:<name> or query:<name>, e.g. header:%s", variable, v, example)
	}
	s := KeySource{Query: where == "query", Name: name}
	if !s.Query {
		s.Name = strings.ToLower(name)
	}
	return s, nil
}

func duration(getenv func(string) string, name string, def, least time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < least {
		return 0, fmt.Errorf("%s=%q: want a duration of at least %s, such as 500ms or 2s", name, v, least)
	}
	return d, nil
}

// checkNamespace accepts what CloudWatch takes as a custom namespace. It
// drops the metrics of an EMF record whose namespace it refuses, and says
// so nowhere the function's owner would look.
func checkNamespace(ns string) error {
	if len(ns) > 255 || strings.HasPrefix(ns, ":") || strings.HasPrefix(ns, "AWS/") {
		return fmt.Errorf("want a CloudWatch namespace: up to 255 characters, not starting with a colon or AWS/ (AWS's own), such as Tollgate or MyCompany/Tollgate")
	}
	for _, c := range ns {
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("want a CloudWatch namespace: printable ASCII characters only, such as Tollgate or MyCompany/Tollgate")
		}
	}
	return nil
}
