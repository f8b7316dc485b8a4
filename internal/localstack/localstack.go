// Package localstack runs Tollgate on a laptop: DynamoDB Local, the table,
// a demo plan and key, and an HTTP API emulator in front of a demo backend.
// It also runs any function's handler on an event file (invoke).
package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/dynamolocal"
	"github.com/tollgate-dev/tollgate/internal/echo"
	"github.com/tollgate-dev/tollgate/internal/emulator"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/localissuer"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
	"github.com/tollgate-dev/tollgate/ratelimit"
)

// Config is the local stack's configuration, from the environment.
type Config struct {
	Port         int      // PORT: the HTTP API emulator's port (8080)
	DynamoDBPort int      // DYNAMODB_PORT: where DynamoDB Local listens (8000)
	Endpoint     string   // AWS_ENDPOINT_URL_DYNAMODB: a DynamoDB to use instead
	Table        string   // TABLE_NAME (tollgate-local)
	APIID        string   // API_ID (local)
	Stage        string   // STAGE ($default)
	Routes       []string // ROUTES: comma-separated route keys ($default)
	UpstreamURL  string   // UPSTREAM_URL: where allowed requests go (the built-in echo)
	// AuthMode is AUTH_MODE ("key" by default). With a JWT mode and no
	// JWT_ISSUER, a local OIDC issuer serves under /_local (LocalIssuer).
	AuthMode    string
	LocalIssuer bool
}

// LocalAudience is the audience of the local issuer's tokens, unless
// JWT_AUDIENCE says otherwise.
const LocalAudience = "tollgate-local"

// DemoIdentity is the demo key's identity in the JWT modes.
const DemoIdentity = "demo"

// FromEnv reads the configuration. The authorizer's own variables
// (ON_LIMIT, FAIL_MODE, …) are read by the authorizer.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{Port: 8080, DynamoDBPort: 8000, Table: "tollgate-local", APIID: "local", Stage: "$default", Routes: []string{"$default"}}
	for name, dst := range map[string]*int{"PORT": &c.Port, "DYNAMODB_PORT": &c.DynamoDBPort} {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return c, fmt.Errorf("%s=%q: want a port number", name, v)
			}
			*dst = n
		}
	}
	c.Endpoint = getenv("AWS_ENDPOINT_URL_DYNAMODB")
	for name, dst := range map[string]*string{"TABLE_NAME": &c.Table, "API_ID": &c.APIID, "STAGE": &c.Stage, "UPSTREAM_URL": &c.UpstreamURL} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv("ROUTES"); v != "" {
		c.Routes = nil
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r != "" {
				if _, _, ok := strings.Cut(r, " "); !ok && r != "$default" {
					return c, fmt.Errorf("ROUTES: %q is not a route key: write METHOD /path, such as GET /items/{id}, or $default", r)
				}
				c.Routes = append(c.Routes, r)
			}
		}
	}
	c.AuthMode = getenv("AUTH_MODE")
	if c.AuthMode == "" {
		c.AuthMode = string(authorizer.AuthKey)
	}
	c.LocalIssuer = c.AuthMode != string(authorizer.AuthKey) && getenv("JWT_ISSUER") == ""
	if c.UpstreamURL != "" {
		if u, err := url.Parse(c.UpstreamURL); err != nil || u.Scheme == "" || u.Host == "" {
			return c, fmt.Errorf("UPSTREAM_URL=%q: want an absolute URL such as http://localhost:3000", c.UpstreamURL)
		}
	}
	return c, nil
}

// Run starts the local stack and serves until ctx ends, then stops
// everything it started.
func Run(ctx context.Context, getenv func(string) string, out io.Writer) error {
	cfg, err := FromEnv(getenv)
	if err != nil {
		return err
	}
	endpoint, started := cfg.Endpoint, ""
	if endpoint == "" {
		srv, err := dynamolocal.StartOn(ctx, cfg.DynamoDBPort)
		if err != nil {
			return fmt.Errorf("%w (set DYNAMODB_PORT to use another port, or AWS_ENDPOINT_URL_DYNAMODB to use a running DynamoDB)", err)
		}
		defer srv.Stop()
		endpoint, started = srv.Endpoint, " (in memory, started for this run)"
	}
	db := Client(endpoint)
	if err := EnsureTable(ctx, db, cfg.Table); err != nil {
		return err
	}
	tbl := &store.Table{DB: db, Name: cfg.Table, Now: time.Now}
	identity := ""
	if cfg.AuthMode != string(authorizer.AuthKey) {
		identity = DemoIdentity
	}
	seed, err := Seed(ctx, tbl, cfg.APIID, cfg.Stage, identity)
	if err != nil {
		return err
	}
	if err := SeedSamples(ctx, tbl); err != nil {
		return err
	}
	api, err := NewEmulator(cfg, getenv, db)
	if err != nil {
		return err
	}
	stopNotifier, err := runNotifier(ctx, getenv, db, endpoint, cfg.Table, out)
	if err != nil {
		return err
	}
	defer stopNotifier()
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.Port))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w (set PORT to use another)", cfg.Port, err)
	}
	server := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- server.Serve(l) }()
	banner(out, cfg, endpoint+started, seed)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "\nStopping: the HTTP API, then DynamoDB Local.")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return server.Shutdown(shutdown)
}

// Client is a DynamoDB client for a local endpoint. DynamoDB Local checks
// that requests are signed, not by whom.
func Client(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	}, store.LocalFriendly, authorizer.Instrument)
}

// EnsureTable creates the table from store.Schema unless it exists.
func EnsureTable(ctx context.Context, db *dynamodb.Client, name string) error {
	_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	var missing *types.ResourceNotFoundException
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &missing):
		return fmt.Errorf("no DynamoDB answers at the endpoint: start the local stack with `make run`, or set AWS_ENDPOINT_URL_DYNAMODB: %w", err)
	}
	if _, err := db.CreateTable(ctx, store.Schema.CreateTableInput(name)); err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	if _, err := db.UpdateTimeToLive(ctx, store.Schema.UpdateTimeToLiveInput(name)); err != nil {
		return fmt.Errorf("turn on TTL for %s: %w", name, err)
	}
	return nil
}

// Demo is what Seed made: a plan and a fresh key in it.
type Demo struct {
	PlanID, KeyID, Value string
}

// DemoPlanID is the seeded plan's id, the same on every run.
const DemoPlanID = "demo"

// Seed makes sure the demo plan exists for the API stage and adds a new
// demo key to it. A key's value cannot be read back, so each run makes one.
// With identity, the new key takes it, from an earlier run's key if need be.
func Seed(ctx context.Context, tbl *store.Table, apiID, stage, identity string) (Demo, error) {
	p := &store.Plan{Plan: plans.Plan{
		ID: DemoPlanID, Name: "Demo", Description: "1 request a second, bursts of 2, 5 requests a day",
		APIStages: []plans.APIStage{{APIID: apiID, Stage: stage}},
		Throttle:  &plans.Throttle{RateLimit: 1, BurstLimit: 2},
		Quota:     &plans.Quota{Limit: 5, Period: plans.Day},
	}}
	if err := tbl.CreatePlan(ctx, p); err != nil && !store.IsKind(err, store.Conflict) {
		return Demo{}, fmt.Errorf("seed the demo plan: %w", err)
	}
	value, err := keys.Generate()
	if err != nil {
		return Demo{}, err
	}
	k := &store.Key{ID: keys.NewID(), Name: "demo", Enabled: true, Hash: keys.Hash(value)}
	if identity != "" {
		k.Identities = []string{identity}
		if holder, _ := tbl.KeyIDByIdentity(ctx, identity); holder != "" {
			_, err := tbl.UpdateKey(ctx, holder, func(old *store.Key) error {
				old.Identities = slices.DeleteFunc(old.Identities, func(s string) bool { return s == identity })
				return nil
			})
			if err != nil {
				return Demo{}, fmt.Errorf("take identity %q from an earlier demo key: %w", identity, err)
			}
		}
	}
	if err := tbl.CreateKey(ctx, k); err != nil {
		return Demo{}, fmt.Errorf("seed the demo key: %w", err)
	}
	if err := tbl.Assign(ctx, DemoPlanID, k.ID); err != nil {
		return Demo{}, fmt.Errorf("put the demo key in the demo plan: %w", err)
	}
	return Demo{PlanID: DemoPlanID, KeyID: k.ID, Value: value}, nil
}

// The ids that the sample payloads in events/ refer to.
const (
	SampleKey      = "a1b2c3d4e5" // in SamplePlan
	SampleFreeKey  = "f6g7h8i9j0" // in no plan
	SamplePlan     = "c7y23b"     // stage x1y2z3w4v5:prod, with a daily quota
	SampleBarePlan = "glvrsr"     // no stages, no keys
)

// SeedSamples writes the keys and plans the samples in events/ refer to,
// so that each of them runs (make invoke). What exists already is kept.
func SeedSamples(ctx context.Context, tbl *store.Table) error {
	for _, id := range []string{SampleKey, SampleFreeKey} {
		v, err := keys.Generate()
		if err != nil {
			return err
		}
		err = tbl.CreateKey(ctx, &store.Key{ID: id, Name: "acme-" + id, CustomerID: "acme", Enabled: true, Hash: keys.Hash(v)})
		if err != nil && !store.IsKind(err, store.Conflict) {
			return fmt.Errorf("seed sample key %s: %w", id, err)
		}
	}
	for _, p := range []plans.Plan{
		{ID: SamplePlan, Name: "Basic", APIStages: []plans.APIStage{{APIID: "x1y2z3w4v5", Stage: "prod"}},
			Throttle: &plans.Throttle{RateLimit: 1, BurstLimit: 2}, Quota: &plans.Quota{Limit: 5, Period: plans.Day}},
		{ID: SampleBarePlan, Name: "Bare"},
	} {
		if err := tbl.CreatePlan(ctx, &store.Plan{Plan: p}); err != nil && !store.IsKind(err, store.Conflict) {
			return fmt.Errorf("seed sample plan %s: %w", p.ID, err)
		}
	}
	err := tbl.Assign(ctx, SamplePlan, SampleKey)
	if err != nil && !store.IsKind(err, store.Conflict) {
		return fmt.Errorf("seed sample plan key: %w", err)
	}
	return nil
}

// NewEmulator builds the HTTP API emulator over the table: the authorizer
// configured from the environment, the admin functions, and the upstream.
func NewEmulator(cfg Config, getenv func(string) string, db *dynamodb.Client) (*emulator.Emulator, error) {
	var issuer *localissuer.Issuer
	if cfg.LocalIssuer {
		var err error
		if issuer, err = localissuer.New(or(getenv("JWT_AUDIENCE"), LocalAudience)); err != nil {
			return nil, fmt.Errorf("start the local issuer: %w", err)
		}
		issuer.SetURL(cfg.IssuerURL())
	}
	authzCfg, err := authorizer.FromEnv(func(k string) string {
		switch {
		case k == "TABLE_NAME":
			return cfg.Table
		case k == "JWT_ISSUER" && issuer != nil:
			return issuer.URL()
		case k == "JWT_AUDIENCE" && issuer != nil:
			return issuer.Audience
		}
		return getenv(k)
	})
	if err != nil {
		return nil, err
	}
	// The emulator logs a line per request; the authorizer's own log (JSON,
	// for CloudWatch: metrics each minute, repeated denials, errors) shows
	// at LOG_LEVEL=info or debug, and its errors at any level.
	level := slog.LevelWarn
	if v := getenv("LOG_LEVEL"); v != "" {
		level.UnmarshalText([]byte(strings.ToUpper(v)))
	}
	var authzHandler slog.Handler = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	if level > slog.LevelInfo {
		// Metrics records (EMF, for CloudWatch) raise their level to pass
		// LOG_LEVEL filters; here they would be noise.
		authzHandler = withoutMetrics{authzHandler}
	}
	authzLog := slog.New(authzHandler)
	svc := &admin.Service{Store: &store.Table{DB: db, Name: cfg.Table, Now: time.Now}, Now: time.Now, Log: authzLog}
	handlers := map[string]*admin.Handler{}
	for _, fn := range admin.Functions {
		if handlers[fn], err = admin.New(fn, svc); err != nil {
			return nil, err
		}
	}
	var upstream http.Handler = ratelimit.Middleware(echo.HTTP())
	if cfg.UpstreamURL != "" {
		u, _ := url.Parse(cfg.UpstreamURL)
		upstream = httputil.NewSingleHostReverseProxy(u)
	}
	e := &emulator.Emulator{
		APIID: cfg.APIID, Stage: cfg.Stage, Routes: cfg.Routes,
		Authorizer: authorizer.New(authzCfg, db, time.Now, authzLog),
		Admin:      handlers, Upstream: upstream,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				a.Value = slog.StringValue(a.Value.Time().Format("15:04:05.000"))
			}
			return a
		}})),
	}
	if issuer != nil {
		e.Local = issuer
	}
	// As the CDK construct does: in jwt mode the token's header is the
	// authorizer's identity source, so API Gateway answers 401 without it.
	if authzCfg.Auth == authorizer.AuthJWT && !authzCfg.TokenSource.Query {
		e.IdentitySource = authzCfg.TokenSource.Name
	}
	return e, nil
}

// IssuerURL is where the local issuer serves: loopback, under /_local.
func (c Config) IssuerURL() string { return fmt.Sprintf("http://127.0.0.1:%d/_local", c.Port) }

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func banner(out io.Writer, cfg Config, dynamo string, d Demo) {
	base := fmt.Sprintf("http://localhost:%d", cfg.Port)
	if cfg.Stage != "$default" {
		base += "/" + cfg.Stage
	}
	path := "/echo"
	today := time.Now().UTC().Format("2006-01-02")
	fmt.Fprintf(out, `
Tollgate is running.

  HTTP API    %s   (API %s, stage %s, routes %s)
  Upstream    %s
  DynamoDB    %s, table %s
  Admin       POST %s/_admin/keys | /_admin/plans | /_admin/usage   (the Lambda payloads)

Demo usage plan %q: 1 request a second, bursts of 2, 5 requests a day.
Demo API key (shown only now; only its hash is stored):

  %s

`, base, cfg.APIID, cfg.Stage, strings.Join(cfg.Routes, ", "), upstreamName(cfg), dynamo, cfg.Table,
		fmt.Sprintf("http://localhost:%d", cfg.Port), d.PlanID, d.Value)
	switch authorizer.AuthMode(cfg.AuthMode) {
	case authorizer.AuthKey:
		fmt.Fprintf(out, `Try it:

  curl -i %s%s -H 'x-api-key: %s'
  curl -i %s%s                                   # no key: 403
`, base, path, d.Value, base, path)
	default:
		issuer := "JWT_ISSUER"
		if cfg.LocalIssuer {
			issuer = "the local OIDC issuer at " + cfg.IssuerURL() + " (discovery, JWKS; POST /_local/rotate for a new key)"
		}
		key := ""
		if cfg.AuthMode == string(authorizer.AuthJWTAndKey) {
			key = fmt.Sprintf(" -H 'x-api-key: %s'", d.Value)
		}
		get := fmt.Sprintf(`TOKEN=$(curl -s localhost:%d/_local/token -d '{"sub": "%s"}' | sed -n 's/.*"access_token": "\([^"]*\)".*/\1/p')`, cfg.Port, DemoIdentity)
		if !cfg.LocalIssuer {
			get = "TOKEN=<a token from JWT_ISSUER whose identity claim is " + DemoIdentity + ">"
		}
		fmt.Fprintf(out, `AUTH_MODE=%s: requests carry a JWT from %s.
The demo key meters identity %q. Get a token for an identity (any claims), and call:

  curl -s localhost:%d/_local/token -d '{"sub": "alice", "scope": "items:read"}'
  %s
  curl -i %s%s -H "Authorization: Bearer $TOKEN"%s
`, cfg.AuthMode, issuer, DemoIdentity, cfg.Port, get, base, path, key)
	}
	fmt.Fprintf(out, `  curl -s localhost:%d/_admin/usage -d '{"action":"GetUsage","usagePlanId":"%s","startDate":"%s","endDate":"%s"}'

The samples in events/ run against this table too: make invoke FN=plans EVENT=events/plans/GetUsagePlan.json

Quota alerts: the notifier reads the table's stream and prints here each event it puts on EventBridge
(a key at 80 %% and 100 %% of its quota, unless the plan's tag tollgate:alerts says otherwise).

Press Ctrl-C to stop; everything started here stops with it.

`, cfg.Port, d.PlanID, today, today)
}

func upstreamName(cfg Config) string {
	if cfg.UpstreamURL != "" {
		return cfg.UpstreamURL
	}
	return "the built-in echo, which answers with the authorizer's decision (and 429 when ON_LIMIT=pass)"
}

// Invoke runs one function's handler on an event, against the table the
// local stack uses, and writes what the function returns. A function error
// is written as Lambda reports it, and returned.
func Invoke(ctx context.Context, getenv func(string) string, fn string, event []byte, out io.Writer) error {
	cfg, err := FromEnv(getenv)
	if err != nil {
		return err
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = fmt.Sprintf("http://127.0.0.1:%d", cfg.DynamoDBPort)
	}
	db := Client(endpoint)
	if err := EnsureTable(ctx, db, cfg.Table); err != nil {
		return fmt.Errorf("%s: %w", endpoint, err)
	}
	var handler interface {
		Invoke(context.Context, []byte) ([]byte, error)
	}
	switch fn {
	case "authorizer":
		api, err := NewEmulator(cfg, getenv, db)
		if err != nil {
			return err
		}
		handler = api.Authorizer.(*authorizer.Authorizer)
	case "notifier":
		n, bus, err := newNotifier(getenv, db, endpoint, cfg.Table, out)
		if err != nil {
			return err
		}
		defer bus.Close()
		handler = n
	case "keys", "plans", "usage":
		svc := &admin.Service{Store: &store.Table{DB: db, Name: cfg.Table, Now: time.Now}, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
		h, err := admin.New(fn, svc)
		if err != nil {
			return err
		}
		handler = h
	default:
		return fmt.Errorf("no function %q: want authorizer, keys, plans, usage or notifier", fn)
	}
	result, err := handler.Invoke(ctx, event)
	if err != nil {
		b, _ := json.MarshalIndent(err, "", "  ")
		fmt.Fprintln(out, string(b))
		return fmt.Errorf("the function returned an error")
	}
	var pretty any
	if json.Unmarshal(result, &pretty) == nil {
		result, _ = json.MarshalIndent(pretty, "", "  ")
	}
	fmt.Fprintln(out, string(result))
	return nil
}

// withoutMetrics drops the decision log's metrics records.
type withoutMetrics struct{ slog.Handler }

func (h withoutMetrics) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "metrics" {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h withoutMetrics) WithAttrs(attrs []slog.Attr) slog.Handler {
	return withoutMetrics{h.Handler.WithAttrs(attrs)}
}

func (h withoutMetrics) WithGroup(name string) slog.Handler {
	return withoutMetrics{h.Handler.WithGroup(name)}
}
