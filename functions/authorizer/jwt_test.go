package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/lambdatest"
	"github.com/tollgate-dev/tollgate/internal/localissuer"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// TestBinaryJWT runs the authorizer binary in jwt and jwt-and-key modes,
// as several processes, against DynamoDB Local and a local OIDC issuer on
// loopback: a quota is spent exactly by an identity's tokens, and an
// identity removed from its key is refused by every process on its next
// decision.
func TestBinaryJWT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ctx := context.Background()
	bin, err := lambdatest.Build(".", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tbl := dynamotest.Store(t, dynamotest.Client(t), nil)
	const aud = "api://binary"
	iss, err := localissuer.New(aud)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss)
	t.Cleanup(srv.Close)
	iss.SetURL(srv.URL)

	newKey := func(p plans.Plan, identities ...string) (id, value string) {
		value, _ = keys.Generate()
		k := &store.Key{ID: keys.NewID(), Enabled: true, Hash: keys.Hash(value), Identities: identities}
		p.ID, p.Name = keys.NewID(), "binary-jwt"
		p.APIStages = []plans.APIStage{{APIID: "api1", Stage: "prod"}}
		for _, err := range []error{tbl.CreateKey(ctx, k), tbl.CreatePlan(ctx, &store.Plan{Plan: p}), tbl.Assign(ctx, p.ID, k.ID)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		return k.ID, value
	}
	remove := func(keyID, identity string) {
		_, err := tbl.UpdateKey(ctx, keyID, func(k *store.Key) error {
			k.Identities = slices.DeleteFunc(k.Identities, func(s string) bool { return s == identity })
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	event := func(sub, value string) []byte {
		tok, err := iss.Token(map[string]any{"sub": sub})
		if err != nil {
			t.Fatal(err)
		}
		headers := map[string]string{"authorization": "Bearer " + tok}
		if value != "" {
			headers["x-api-key"] = value
		}
		b, _ := json.Marshal(events.APIGatewayV2CustomAuthorizerV2Request{
			Version: "2.0", Type: "REQUEST", RouteKey: "GET /items", Headers: headers,
			RequestContext: events.APIGatewayV2HTTPRequestContext{APIID: "api1", Stage: "prod", RouteKey: "GET /items"},
		})
		return b
	}
	decide := func(p *lambdatest.Process, payload []byte) events.APIGatewayV2CustomAuthorizerSimpleResponse {
		out, err := p.Invoke(ctx, payload)
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, p.Output())
		}
		var resp events.APIGatewayV2CustomAuthorizerSimpleResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("response %q: %v", out, err)
		}
		return resp
	}
	// drive sends every process `per` decisions at once, each process with
	// a token of its own for sub, and counts the allowed.
	drive := func(procs []*lambdatest.Process, sub, value string, per int) int {
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for _, p := range procs {
			payload := event(sub, value)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range per {
					if decide(p, payload).IsAuthorized {
						allowed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return int(allowed.Load())
	}

	for _, mode := range []string{"jwt", "jwt-and-key"} {
		t.Run(mode, func(t *testing.T) {
			const processes = 3
			var procs []*lambdatest.Process
			for range processes {
				p, err := lambdatest.Start(bin, "TABLE_NAME="+tbl.Name, "AWS_ENDPOINT_URL_DYNAMODB="+dynamotest.Endpoint(),
					"AUTH_MODE="+mode, "JWT_ISSUER="+srv.URL, "JWT_AUDIENCE="+aud,
					// What is decided is tested here, not how fast: a busy
					// machine must not turn a slow DynamoDB Local into denials.
					"DYNAMODB_DEADLINE=10s")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(p.Stop)
				procs = append(procs, p)
			}
			keyed := func(value string) string {
				if mode == "jwt" {
					return "" // the token alone
				}
				return value
			}

			// Exact by identity: alice's tokens spend her key's quota.
			_, value := newKey(plans.Plan{Quota: &plans.Quota{Limit: 75, Period: plans.Day}}, "alice-"+mode, "erin-"+mode)
			if got := drive(procs, "alice-"+mode, keyed(value), 40); got != 75 {
				t.Fatalf("admitted %d of %d, want the quota of 75", got, processes*40)
			}

			// Removal: every process has bob's key cached and allowed him;
			// after the removal each refuses his next request.
			bobKey, bobValue := newKey(plans.Plan{}, "bob-"+mode, "dave-"+mode)
			if got := drive(procs, "bob-"+mode, keyed(bobValue), 2); got != 2*processes {
				t.Fatalf("bob before the removal: %d of %d allowed", got, 2*processes)
			}
			remove(bobKey, "bob-"+mode)
			for i, p := range procs {
				if resp := decide(p, event("bob-"+mode, keyed(bobValue))); resp.IsAuthorized {
					t.Fatalf("process %d allowed bob after his removal", i)
				}
				resp := decide(p, event("dave-"+mode, keyed(bobValue)))
				if !resp.IsAuthorized || resp.Context["identity"] != "dave-"+mode || resp.Context["authMethod"] != "jwt" {
					t.Fatalf("process %d, dave: %+v", i, resp)
				}
			}
			want := "unknown_identity"
			if mode == "jwt-and-key" {
				want = "identity_mismatch"
			}
			for i, p := range procs {
				if out := p.Output(); !strings.Contains(out, `"reason":"`+want+`"`) || !strings.Contains(out, `"authMethod":"jwt"`) {
					t.Errorf("process %d logged no %s decision:\n%s", i, want, out)
				}
			}
		})
	}
	if d, j := iss.Fetches(); d > 6 || j > 6 {
		t.Errorf("%d discovery and %d JWKS requests for 6 processes: want one each", d, j)
	}
}
