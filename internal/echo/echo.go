// Package echo is the demo backend behind Tollgate: it answers every
// request with what the authorizer said about it. Wrapped with package
// ratelimit, it answers 429 to requests over a limit.
package echo

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/ratelimit"
)

// Reply is the echo's body.
type Reply struct {
	Message  string         `json:"message"`
	RouteKey string         `json:"routeKey,omitempty"`
	Path     string         `json:"path"`
	Caller   map[string]any `json:"authorizer"`
}

const hello = "Hello from behind Tollgate. This is what the authorizer said about your request."

// Lambda is the echo as a Lambda integration (payload 2.0).
func Lambda(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var caller map[string]any
	if a := req.RequestContext.Authorizer; a != nil {
		caller = a.Lambda
	}
	body, err := json.MarshalIndent(Reply{Message: hello, RouteKey: req.RouteKey, Path: req.RawPath, Caller: caller}, "", "  ")
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: http.StatusOK,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(body) + "\n",
	}, nil
}

// HTTP is the echo as a net/http handler behind the headers that an HTTP
// integration's parameter mapping adds (ratelimit.Fields).
func HTTP() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := map[string]any{}
		for _, f := range ratelimit.Fields {
			if v := r.Header.Get(f.Header); v != "" {
				caller[f.Key] = v
			}
		}
		for name, vs := range r.Header {
			if claim, ok := strings.CutPrefix(name, ratelimit.ClaimHeaderPrefix); ok && len(vs) > 0 {
				caller[ratelimit.ClaimKey(strings.ReplaceAll(strings.ToLower(claim), "-", "_"))] = vs[0]
			}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(Reply{Message: hello, Path: r.URL.Path, Caller: caller})
	})
}
