package emulator

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/authorizer"
)

// recorder is an authorizer that allows or denies as told and keeps the
// event it was given.
type recorder struct {
	allow bool
	got   events.APIGatewayV2CustomAuthorizerV2Request
}

func (r *recorder) Decide(_ context.Context, ev events.APIGatewayV2CustomAuthorizerV2Request) (events.APIGatewayV2CustomAuthorizerSimpleResponse, authorizer.Summary) {
	r.got = ev
	resp := events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: r.allow}
	if r.allow {
		resp.Context = map[string]any{"apiKeyId": "k1", "rateLimit": 2.5, "failOpen": false, "limitExceeded": ""}
	}
	return resp, authorizer.Summary{Reason: "ok", KeyID: "k1"}
}

func newEmulator(stage string, authz Decider, upstream http.Handler) *Emulator {
	return &Emulator{APIID: "api1", Stage: stage, Routes: []string{"GET /items/{id}", "$default"},
		Authorizer: authz, Upstream: upstream, Log: slog.New(slog.DiscardHandler)}
}

func TestEvent(t *testing.T) {
	authz := &recorder{}
	e := newEmulator("prod", authz, nil)
	req := httptest.NewRequest("GET", "http://api.local/prod/items/42?color=red&color=blue&size=9", nil)
	req.Header.Add("X-Api-Key", "tgk_x")
	req.Header.Add("Accept", "a")
	req.Header.Add("Accept", "b")
	req.AddCookie(&http.Cookie{Name: "c", Value: "1"})
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != 403 || strings.TrimSpace(w.Body.String()) != `{"message":"Forbidden"}` || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("denial: %d %q", w.Code, w.Body)
	}
	ev := authz.got
	names := strings.Join(keys(ev.Headers), ",")
	checks := map[string][2]string{
		"version":         {ev.Version, "2.0"},
		"type":            {ev.Type, "REQUEST"},
		"routeKey":        {ev.RouteKey, "GET /items/{id}"},
		"context route":   {ev.RequestContext.RouteKey, "GET /items/{id}"},
		"rawPath":         {ev.RawPath, "/prod/items/42"},
		"rawQueryString":  {ev.RawQueryString, "color=red&color=blue&size=9"},
		"apiId":           {ev.RequestContext.APIID, "api1"},
		"stage":           {ev.RequestContext.Stage, "prod"},
		"method":          {ev.RequestContext.HTTP.Method, "GET"},
		"path":            {ev.RequestContext.HTTP.Path, "/items/42"},
		"x-api-key":       {ev.Headers["x-api-key"], "tgk_x"},
		"joined header":   {ev.Headers["accept"], "a,b"},
		"joined query":    {ev.QueryStringParameters["color"], "red,blue"},
		"path parameter":  {ev.PathParameters["id"], "42"},
		"cookie":          {strings.Join(ev.Cookies, ";"), "c=1"},
		"source ip":       {ev.RequestContext.HTTP.SourceIP, "192.0.2.1"},
		"lowercase names": {names, strings.ToLower(names)},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if ev.RequestContext.TimeEpoch == 0 || ev.RequestContext.RequestID == "" {
		t.Errorf("requestContext lacks time or request id: %+v", ev.RequestContext)
	}
	// Outside the stage's prefix there is no route.
	w = httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest("GET", "/items/42", nil))
	if w.Code != 404 || strings.TrimSpace(w.Body.String()) != `{"message":"Not Found"}` {
		t.Fatalf("outside the stage: %d %q", w.Code, w.Body)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestForwardsTheDecisionNotTheClientsHeaders(t *testing.T) {
	var got http.Header
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone(); w.WriteHeader(204) })
	e := newEmulator("$default", &recorder{allow: true}, upstream)
	req := httptest.NewRequest("GET", "/anything", nil)
	req.Header.Set("X-Tollgate-Api-Key-Id", "forged")
	req.Header.Set("X-Tollgate-Limit-Exceeded", "quota")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != 204 {
		t.Fatalf("status %d", w.Code)
	}
	for name, want := range map[string]string{"X-Tollgate-Api-Key-Id": "k1", "X-Tollgate-Limit-Exceeded": "", "X-Tollgate-Rate-Limit": "2.5", "X-Tollgate-Fail-Open": "false"} {
		if got.Get(name) != want || len(got.Values(name)) != 1 {
			t.Errorf("%s = %q, want %q", name, got.Values(name), want)
		}
	}
}

func TestAdminRoutes(t *testing.T) {
	e := newEmulator("$default", &recorder{}, nil)
	e.Admin = map[string]*admin.Handler{}
	for _, tt := range []struct {
		method, path string
		status       int
	}{{"POST", "/_admin/nope", 404}} {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, strings.NewReader("{}")))
		body, _ := io.ReadAll(w.Body)
		if w.Code != tt.status || !strings.Contains(string(body), `"errorType"`) {
			t.Errorf("%s %s = %d %s", tt.method, tt.path, w.Code, body)
		}
	}
	for typ, want := range map[string]int{admin.BadRequest: 400, admin.NotFound: 404, admin.Conflict: 409, admin.LimitExceeded: 429, admin.ServiceUnavailable: 503} {
		if got := StatusOf(typ); got != want {
			t.Errorf("StatusOf(%s) = %d, want %d", typ, got, want)
		}
	}
}

func TestIdentitySourceAndLocal(t *testing.T) {
	authz := &recorder{allow: true}
	e := newEmulator("$default", authz, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	e.IdentitySource = "Authorization"
	e.Local = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "issuer") })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/items/1", nil))
	if rec.Code != 401 || strings.TrimSpace(rec.Body.String()) != `{"message":"Unauthorized"}` || authz.got.RouteKey != "" {
		t.Fatalf("no identity source: %d %s (authorizer saw %q)", rec.Code, rec.Body, authz.got.RouteKey)
	}
	rec = httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("POST", "/_local/token", nil))
	if rec.Body.String() != "issuer" {
		t.Fatalf("/_local/: %s", rec.Body)
	}
}
