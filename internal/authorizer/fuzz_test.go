package authorizer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/plans"
)

// FuzzInvoke feeds raw payloads to the Lambda entry point: whatever
// arrives, the answer is a decision, never an error or a panic, and only
// the one real key is ever allowed.
func FuzzInvoke(f *testing.F) {
	fx := setup(f)
	_, value, _ := fx.keyInPlan(plans.Plan{Throttle: throttle(1e6, 1e6)})
	a := authorizer.New(func() authorizer.Config {
		c := authorizer.Defaults
		c.Table = fx.tbl.Name
		return c
	}(), fx.db, fx.clock.Now, slog.New(slog.DiscardHandler))
	good, _ := json.Marshal(request(value))
	for _, seed := range []string{
		string(good),
		strings.Replace(string(good), value, value[:len(value)-1]+"X", 1),
		`{}`, `null`, `[]`, `"x"`, `{"headers":{"x-api-key":""}}`,
		`{"headers":{"X-API-KEY":"` + value + `"},"requestContext":{"apiId":"api1","stage":"prod"}}`,
		`{"headers":{"x-api-key":"` + value + `"},"requestContext":{"apiId":"api1","stage":"prod"},"routeKey":"GET /"}`,
		`{"routeKey":"` + strings.Repeat("/", 5000) + `"}`,
		`{"headers":{"x-api-key":1}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := a.Invoke(context.Background(), payload)
		if err != nil {
			t.Fatalf("Invoke returned an error: %v", err)
		}
		var resp events.APIGatewayV2CustomAuthorizerSimpleResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("Invoke returned %q", out)
		}
		if !resp.IsAuthorized {
			return
		}
		var ev events.APIGatewayV2CustomAuthorizerV2Request
		json.Unmarshal(payload, &ev)
		sent, exact := ev.Headers["x-api-key"]
		for name, v := range ev.Headers {
			if !exact && strings.EqualFold(name, "x-api-key") {
				sent = v
			}
		}
		if sent != value {
			t.Fatalf("allowed a request without the key: %s", payload)
		}
	})
}

// FuzzAuthorize varies the fields the decision reads.
func FuzzAuthorize(f *testing.F) {
	fx := setup(f)
	_, value, _ := fx.keyInPlan(plans.Plan{Throttle: throttle(1e6, 1e6), APIStages: []plans.APIStage{{
		APIID: "api1", Stage: "prod", Throttle: map[string]plans.Throttle{"/items/{id}/GET": {RateLimit: 1e6, BurstLimit: 1e6}},
	}}})
	a := authorizer.New(func() authorizer.Config {
		c := authorizer.Defaults
		c.Table = fx.tbl.Name
		return c
	}(), fx.db, fx.clock.Now, slog.New(slog.DiscardHandler))
	f.Add("x-api-key", value, "GET /items/{id}", "api1", "prod")
	f.Add("X-Api-Key", value, "$default", "api1", "prod")
	f.Add("x-api-key", value+" ", "GET /", "api1", "prod")
	f.Add("x-api-key", "tgk_", "", "", "")
	f.Add("", "", "GET", ":", ":")
	f.Fuzz(func(t *testing.T, header, key, route, apiID, stage string) {
		ev := events.APIGatewayV2CustomAuthorizerV2Request{
			RouteKey: route,
			Headers:  map[string]string{header: key},
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				APIID: apiID, Stage: stage, RouteKey: route,
			},
		}
		resp := a.Authorize(context.Background(), ev)
		if resp.IsAuthorized && (key != value || !strings.EqualFold(header, "x-api-key") || apiID != "api1" || stage != "prod") {
			t.Fatalf("allowed %q=%q on %s:%s", header, key, apiID, stage)
		}
	})
}

// FuzzInvokeJWT feeds raw payloads to an authorizer in jwt-or-key mode:
// only the issuer's token for the key's identity, or the key's value, is
// ever allowed, and a payload is never an error or a panic.
func FuzzInvokeJWT(f *testing.F) {
	fx := setup(f)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // each fuzz worker makes one: RSA would take long
	iss := fx.issuerWith(key)
	plan := fx.newPlan(plans.Plan{Throttle: throttle(1e6, 1e6)})
	_, value := fx.newKeyWith(plan, "alice")
	tok := token(f, iss, map[string]any{"sub": "alice"})
	a := fx.authorizer(jwtMode(authorizer.AuthJWTOrKey, iss))
	withTok, _ := json.Marshal(withToken("", tok))
	withKey, _ := json.Marshal(request(value))
	parts := strings.Split(tok, ".")
	for _, seed := range []string{
		string(withTok), string(withKey),
		strings.Replace(string(withTok), parts[2][:8], "AAAAAAAA", 1),
		strings.Replace(string(withTok), "Bearer ", "", 1),
		`{"headers":{"authorization":"Bearer "}}`, `{"headers":{"Authorization":1}}`,
		`{"headers":{"authorization":"` + parts[0] + "." + parts[1] + `."}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := a.Invoke(context.Background(), payload)
		if err != nil {
			t.Fatalf("Invoke returned an error: %v", err)
		}
		var resp events.APIGatewayV2CustomAuthorizerSimpleResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("Invoke returned %q", out)
		}
		if resp.IsAuthorized && !strings.Contains(string(payload), parts[2]) && !strings.Contains(string(payload), value) {
			t.Fatalf("allowed a request with neither the token nor the key: %s", payload)
		}
	})
}
