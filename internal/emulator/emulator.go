// Package emulator is a small stand-in for an API Gateway HTTP API with
// Tollgate's authorizer on its routes, for trying Tollgate locally. Each
// HTTP request becomes a real payload 2.0 authorizer event, decided by the
// same authorizer code as in Lambda. A denial is API Gateway's 403; an
// allowed request goes to the upstream with the authorizer's decision in
// X-Tollgate-* headers, as Tollgate's parameter mapping sends it. The admin
// functions answer under /_admin/keys, /_admin/plans and /_admin/usage.
package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/ratelimit"
)

// Decider is the authorizer.
type Decider interface {
	Decide(context.Context, events.APIGatewayV2CustomAuthorizerV2Request) (events.APIGatewayV2CustomAuthorizerSimpleResponse, authorizer.Summary)
}

// Emulator serves an HTTP API. It is an http.Handler.
type Emulator struct {
	APIID string
	// Stage is "$default" (no path prefix) or a name that prefixes every
	// path, as API Gateway's stages do.
	Stage string
	// Routes are route keys ("GET /items/{id}", "ANY /{proxy+}",
	// "$default"), matched as API Gateway matches them.
	Routes     []string
	Authorizer Decider
	// Admin maps "keys", "plans" and "usage" to the admin functions.
	Admin map[string]*admin.Handler
	// Upstream receives allowed requests.
	Upstream http.Handler
	// Log gets one line per request.
	Log *slog.Logger
	// IdentitySource, if set, is a header every request must carry, as
	// the authorizer's identity source in API Gateway: a request without
	// it gets API Gateway's 401 and never reaches the authorizer.
	IdentitySource string
	// Local, if set, serves /_local/ (make run's OIDC issuer).
	Local http.Handler

	seq atomic.Int64
}

func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if fn, ok := strings.CutPrefix(r.URL.Path, "/_admin/"); ok {
		e.serveAdmin(w, r, fn)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/_local/") && e.Local != nil {
		e.Local.ServeHTTP(w, r)
		return
	}
	status, sum := e.serveAPI(w, r)
	e.Log.Info(fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, status),
		slog.Int("status", status), slog.String("apiKeyId", sum.KeyID), slog.String("reason", sum.Reason),
		slog.Float64("latencyMs", float64(time.Since(start).Microseconds())/1000))
}

func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request) (int, authorizer.Summary) {
	path := r.URL.Path
	if e.Stage != "" && e.Stage != "$default" {
		var ok bool
		if path, ok = strings.CutPrefix(path, "/"+e.Stage); !ok || (path != "" && path[0] != '/') {
			return writeMessage(w, http.StatusNotFound, "Not Found"), authorizer.Summary{Reason: "no_route"}
		}
		if path == "" {
			path = "/"
		}
	}
	route, params, ok := Match(e.Routes, r.Method, path)
	if !ok {
		return writeMessage(w, http.StatusNotFound, "Not Found"), authorizer.Summary{Reason: "no_route"}
	}
	if e.IdentitySource != "" && r.Header.Get(e.IdentitySource) == "" {
		return writeMessage(w, http.StatusUnauthorized, "Unauthorized"), authorizer.Summary{Reason: "no_identity_source"}
	}
	ev := e.Event(r, path, route, params)
	resp, sum := e.Authorizer.Decide(r.Context(), ev)
	if !resp.IsAuthorized {
		return writeMessage(w, http.StatusForbidden, "Forbidden"), sum
	}
	// As the parameter mapping does: overwrite every X-Tollgate-* header, so
	// a client's own copy never reaches the backend.
	forwarded := r.Clone(r.Context())
	for name := range forwarded.Header {
		if strings.HasPrefix(http.CanonicalHeaderKey(name), "X-Tollgate-") {
			forwarded.Header.Del(name)
		}
	}
	for _, f := range ratelimit.Fields {
		forwarded.Header.Set(f.Header, contextString(resp.Context[f.Key]))
	}
	for k, v := range resp.Context {
		if claim, ok := strings.CutPrefix(k, ratelimit.ClaimPrefix); ok {
			forwarded.Header.Set(ratelimit.ClaimHeader(claim), contextString(v))
		}
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	e.Upstream.ServeHTTP(rec, forwarded)
	return rec.status, sum
}

// contextString renders a context value as $context.authorizer.<key> does.
func contextString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// Event builds the payload 2.0 authorizer event API Gateway would send.
func (e *Emulator) Event(r *http.Request, path, route string, params map[string]string) events.APIGatewayV2CustomAuthorizerV2Request {
	now := time.Now().UTC()
	headers := map[string]string{}
	for name, vs := range r.Header {
		headers[strings.ToLower(name)] = strings.Join(vs, ",")
	}
	headers["host"] = r.Host
	var query map[string]string
	if len(r.URL.Query()) > 0 {
		query = map[string]string{}
		for k, vs := range r.URL.Query() {
			query[k] = strings.Join(vs, ",")
		}
	}
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.String())
	}
	sourceIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	id := fmt.Sprintf("local-%d", e.seq.Add(1))
	return events.APIGatewayV2CustomAuthorizerV2Request{
		Version:               "2.0",
		Type:                  "REQUEST",
		RouteArn:              fmt.Sprintf("arn:aws:execute-api:local:000000000000:%s/%s/%s%s", e.APIID, e.Stage, r.Method, path),
		IdentitySource:        []string{},
		RouteKey:              route,
		RawPath:               r.URL.Path,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     route,
			AccountID:    "000000000000",
			Stage:        e.Stage,
			RequestID:    id,
			APIID:        e.APIID,
			DomainName:   r.Host,
			DomainPrefix: strings.Split(r.Host, ".")[0],
			Time:         now.Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: path, Protocol: r.Proto, SourceIP: sourceIP, UserAgent: r.UserAgent(),
			},
		},
	}
}

// serveAdmin runs an admin function on the request body, answering errors
// with the HTTP status API Gateway gives their type.
func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request, fn string) {
	h, ok := e.Admin[fn]
	if !ok {
		writeJSON(w, http.StatusNotFound, admin.Error{Type: admin.NotFound, Message: "no admin function " + fn + ": use /_admin/keys, /_admin/plans or /_admin/usage"})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, admin.Error{Type: admin.BadRequest, Message: "POST the function's payload, such as {\"action\": \"GetApiKeys\"}"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 6<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, admin.Error{Type: admin.BadRequest, Message: err.Error()})
		return
	}
	out, e2 := h.Handle(r.Context(), body)
	status := http.StatusOK
	if e2 != nil {
		status = StatusOf(e2.Type)
		writeJSON(w, status, e2)
	} else {
		writeJSON(w, status, out)
	}
	e.Log.Info(fmt.Sprintf("POST /_admin/%s %d", fn, status), slog.Int("status", status))
}

// StatusOf is the HTTP status API Gateway answers an error type with.
func StatusOf(errorType string) int {
	switch errorType {
	case admin.BadRequest:
		return http.StatusBadRequest
	case admin.NotFound:
		return http.StatusNotFound
	case admin.Conflict:
		return http.StatusConflict
	case admin.LimitExceeded:
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Write(append(pairs.ReplaceAll(b, []byte("[$1, $2]")), '\n'))
}

// pairs finds GetUsage's [used, remaining] pairs, which indenting would
// spread over four lines each; they print on one.
var pairs = regexp.MustCompile(`\[\s*(-?\d+),\s*(-?\d+)\s*\]`)

// writeMessage answers as API Gateway does: {"message":"Forbidden"}.
func writeMessage(w http.ResponseWriter, status int, message string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message":%q}`+"\n", message)
	return status
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
