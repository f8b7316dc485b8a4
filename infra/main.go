// Command infra is Tollgate's CDK app (cdk.json runs it). Context:
//
//	-c onLimit=pass            answer 429 from the demo backend instead of 403
//	-c enforce=shadow          allow requests over the limits of plans without
//	                           a tollgate:enforce tag, and report them
//	-c failMode=open           allow when DynamoDB fails
//	-c tracing=true            X-Ray for the functions
//	-c codeDir=dist            deploy prebuilt binaries (make build) instead
//	                           of building the functions at synth
//	-c httpApiId=a1b2c3d4e5 -c routes="GET /items,POST /orders"
//	                           add protected routes to an existing HTTP API
//	-c backendUrl=https://...  where those routes go (default: the demo echo)
//	-c authMode=jwt -c jwtIssuer=https://... -c jwtAudience=a,b
//	   -c jwtIdentityClaim=sub -c jwtScopes='{"GET /items":["items:read"]}'
//	   -c jwtContextClaims=tenant,email -c jwtSource=header:authorization -c jwtLeeway=30s
//	                           JWT callers (the README's "JWT callers")
//	-c alertEmail=ops@example.com   email quota alerts there (SNS)
//	-c alertThresholds=50,80,100    default quota alert thresholds (80,100)
//	-c alertBus=billing        the event bus for quota alerts (default bus)
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/tollgate-dev/tollgate/infra/tollgate"
	"github.com/tollgate-dev/tollgate/internal/jwtauth"
	"github.com/tollgate-dev/tollgate/internal/plans"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	props, err := fromContext(func(key string) string {
		if v, ok := app.Node().TryGetContext(jsii.String(key)).(string); ok {
			return v
		}
		return ""
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "tollgate:", err)
		os.Exit(1)
	}
	NewStack(app, "Tollgate", props)
	app.Synth(nil)
}

// fromContext reads the stack's settings from CDK context (-c key=value).
func fromContext(get func(string) string) (*StackProps, error) {
	p := &StackProps{
		Tollgate: tollgate.Props{
			CodeDir:  get("codeDir"),
			OnLimit:  get("onLimit"),
			Enforce:  get("enforce"),
			FailMode: get("failMode"),
			Tracing:  get("tracing") == "true",
			AuthMode: get("authMode"),
			JWT: tollgate.JWTProps{
				Issuer:        get("jwtIssuer"),
				Audience:      list(get("jwtAudience")),
				IdentityClaim: get("jwtIdentityClaim"),
				ContextClaims: list(get("jwtContextClaims")),
				Source:        get("jwtSource"),
			},

			AlertEmail:      get("alertEmail"),
			AlertThresholds: get("alertThresholds"),
			AlertBusName:    get("alertBus"),
		},
		ExistingAPIID: get("httpApiId"),
		BackendURL:    get("backendUrl"),
	}
	for _, r := range strings.Split(get("routes"), ",") {
		if r = strings.TrimSpace(r); r != "" {
			if _, err := tollgate.RouteKey(r); err != nil {
				return nil, err
			}
			p.Routes = append(p.Routes, r)
		}
	}
	switch {
	case p.ExistingAPIID != "" && len(p.Routes) == 0:
		return nil, fmt.Errorf(`httpApiId needs routes to protect: -c routes="GET /items,POST /orders"`)
	case p.ExistingAPIID == "" && (len(p.Routes) > 0 || p.BackendURL != ""):
		return nil, fmt.Errorf("routes and backendUrl are for an existing API: add -c httpApiId=<its id>")
	}
	if v := p.Tollgate.OnLimit; v != "" && v != "deny" && v != "pass" {
		return nil, fmt.Errorf("onLimit=%q: want deny or pass", v)
	}
	if v := p.Tollgate.Enforce; v != "" && v != "enforce" && v != "shadow" {
		return nil, fmt.Errorf("enforce=%q: want enforce or shadow", v)
	}
	if v := p.Tollgate.FailMode; v != "" && v != "closed" && v != "open" {
		return nil, fmt.Errorf("failMode=%q: want closed or open", v)
	}
	if v := p.Tollgate.AlertThresholds; v != "" {
		if _, err := plans.ParseThresholds(v); err != nil {
			return nil, fmt.Errorf("alertThresholds=%q: %w", v, err)
		}
	}
	if v := get("jwtScopes"); v != "" {
		scopes, err := jwtauth.ParseScopes(v)
		if err != nil {
			return nil, fmt.Errorf("jwtScopes: %w", err)
		}
		p.Tollgate.JWT.Scopes = scopes
	}
	if v := get("jwtLeeway"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("jwtLeeway=%q: want a duration such as 30s", v)
		}
		p.Tollgate.JWT.Leeway = d
	}
	if err := tollgate.Check(&p.Tollgate); err != nil {
		return nil, err
	}
	return p, nil
}

// list reads a comma-separated context value.
func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
