package ratelimit

import (
	"context"
	"io"
	"net/http"
	"strconv"
)

// Middleware applies the authorizer's decision, read from the request
// headers Fields names, around next: 429 with Retry-After for a request
// over a limit (unless its plan runs in shadow), and rate-limit headers on
// every other response (next may change them). The decision is in the
// request's context for FromContext.
//
// Trust these headers only behind an HTTP API whose integration overwrites
// them from the authorizer's context, as Tollgate's CDK construct does;
// otherwise a client could send its own.
func Middleware(next http.Handler, opts ...Option) http.Handler {
	o := newOptions(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := o.read(func() (Decision, error) { return FromHeaders(r.Header) })
		if !ok || d.FailOpen {
			next.ServeHTTP(w, r)
			return
		}
		for name, vs := range d.Headers(o.now(), o.legacy) {
			w.Header()[name] = vs
		}
		if d.Refused() {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set(HeaderRetryAfter, strconv.FormatInt(d.RetryAfterSeconds(), 10))
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, d.TooManyRequests())
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), decisionKey{}, d)))
	})
}
