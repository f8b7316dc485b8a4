// Package plans defines usage plans in API Gateway's shape (throttle, quota,
// API stages with per-route throttles) and their semantics: which limits
// apply to a request, and the calendar of quota periods.
package plans

import (
	"strings"
)

// Plan is a usage plan, with the fields and JSON names of API Gateway's
// UsagePlan.
type Plan struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	APIStages   []APIStage        `json:"apiStages,omitempty"`
	Throttle    *Throttle         `json:"throttle,omitempty"`
	Quota       *Quota            `json:"quota,omitempty"`
	ProductCode string            `json:"productCode,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// Throttle is a token bucket: RateLimit tokens a second (fractional rates
// allowed) into a bucket of BurstLimit. A RateLimit of 0 means no rate limit.
type Throttle struct {
	BurstLimit int     `json:"burstLimit"`
	RateLimit  float64 `json:"rateLimit"`
}

// Limited reports whether the throttle limits anything.
func (t *Throttle) Limited() bool { return t != nil && t.RateLimit > 0 }

// APIStage is an HTTP API stage the plan covers. Throttle overrides the
// plan's throttle per route, keyed the API Gateway way: "/items/{id}/GET".
type APIStage struct {
	APIID    string              `json:"apiId"`
	Stage    string              `json:"stage"`
	Throttle map[string]Throttle `json:"throttle,omitempty"`
}

// StageKey names an API stage as API Gateway's patch paths do: "apiId:stage".
func StageKey(apiID, stage string) string { return apiID + ":" + stage }

// Key is the stage's StageKey.
func (s APIStage) Key() string { return StageKey(s.APIID, s.Stage) }

// Stage returns the plan's stage for apiID and stage, or nil.
func (p *Plan) Stage(apiID, stage string) *APIStage {
	for i := range p.APIStages {
		if p.APIStages[i].APIID == apiID && p.APIStages[i].Stage == stage {
			return &p.APIStages[i]
		}
	}
	return nil
}

// RouteThrottle returns the override for an HTTP API route key such as
// "GET /items/{id}", matched against keys written "/items/{id}/GET".
func (s *APIStage) RouteThrottle(routeKey string) (Throttle, string, bool) {
	if len(s.Throttle) == 0 {
		return Throttle{}, "", false
	}
	k := ThrottleKey(routeKey)
	t, ok := s.Throttle[k]
	return t, k, ok
}

// ThrottleKey converts an HTTP API route key ("GET /items/{id}") to the key
// API Gateway uses for method throttles ("/items/{id}/GET"). The root route
// "GET /" becomes "//GET", as in API Gateway. "$default" stays as it is.
func ThrottleKey(routeKey string) string {
	method, path, ok := strings.Cut(routeKey, " ")
	if !ok {
		return routeKey
	}
	return path + "/" + method
}

// Methods that may end a throttle key; ANY matches routes declared with ANY.
var Methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"}

// ValidThrottleKey reports whether k is "$default" or "/path/METHOD".
func ValidThrottleKey(k string) bool {
	if k == "$default" {
		return true
	}
	i := strings.LastIndexByte(k, '/')
	if !strings.HasPrefix(k, "/") || i < 1 {
		return false
	}
	for _, m := range Methods {
		if k[i+1:] == m {
			return true
		}
	}
	return false
}
