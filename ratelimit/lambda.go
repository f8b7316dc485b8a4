package ratelimit

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Handler is a Lambda handler of HTTP API (payload 2.0) requests.
type Handler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Wrap applies the authorizer's decision around h. A request over a limit
// gets 429 with Retry-After and API Gateway's body, and h is not called,
// unless its plan runs in shadow (Decision.Shadow).
// Any other request is h's, and its response gains the rate-limit headers
// (those h set itself are kept). The decision is in h's context for
// FromContext.
//
//	lambda.Start(ratelimit.Wrap(handle))
func Wrap(h Handler, opts ...Option) Handler {
	o := newOptions(opts)
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		var authorizer map[string]any
		if a := req.RequestContext.Authorizer; a != nil {
			authorizer = a.Lambda
		}
		d, ok := o.read(func() (Decision, error) { return FromLambda(authorizer) })
		if !ok || d.FailOpen {
			return h(ctx, req)
		}
		headers := d.Headers(o.now(), o.legacy)
		if d.Refused() {
			resp := events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusTooManyRequests,
				Body:       d.TooManyRequests(),
				Headers: map[string]string{
					"Content-Type":   "application/json",
					HeaderRetryAfter: strconv.FormatInt(d.RetryAfterSeconds(), 10),
				},
			}
			merge(resp.Headers, headers)
			return resp, nil
		}
		resp, err := h(context.WithValue(ctx, decisionKey{}, d), req)
		if err != nil {
			return resp, err
		}
		if resp.Headers == nil {
			resp.Headers = map[string]string{}
		}
		merge(resp.Headers, headers)
		return resp, nil
	}
}

// merge adds headers to a Lambda response's, keeping any the handler set,
// in whatever case it wrote their names.
func merge(dst map[string]string, h http.Header) {
	for name, vs := range h {
		set := false
		for have := range dst {
			set = set || strings.EqualFold(have, name)
		}
		if !set && len(vs) > 0 {
			dst[name] = vs[0]
		}
	}
}
