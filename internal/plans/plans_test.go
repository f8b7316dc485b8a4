package plans

import "testing"

func TestThrottleKey(t *testing.T) {
	tests := map[string]string{
		"GET /items/{id}":     "/items/{id}/GET",
		"GET /":               "//GET",
		"ANY /{proxy+}":       "/{proxy+}/ANY",
		"POST /a/b/c":         "/a/b/c/POST",
		"$default":            "$default",
		"":                    "",
		"GET /with space/x y": "/with space/x y/GET",
	}
	for in, want := range tests {
		if got := ThrottleKey(in); got != want {
			t.Errorf("ThrottleKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidThrottleKey(t *testing.T) {
	for k, want := range map[string]bool{
		"/items/{id}/GET": true, "//GET": true, "$default": true, "/x/ANY": true,
		"GET /items": false, "/items/get": false, "items/GET": false, "/GET": false, "": false, "/items/": false,
	} {
		if got := ValidThrottleKey(k); got != want {
			t.Errorf("ValidThrottleKey(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestRouteThrottle(t *testing.T) {
	p := Plan{APIStages: []APIStage{
		{APIID: "a1", Stage: "prod", Throttle: map[string]Throttle{"/items/{id}/GET": {RateLimit: 1, BurstLimit: 2}}},
		{APIID: "a1", Stage: "dev"},
	}}
	if p.Stage("a1", "test") != nil || p.Stage("a2", "prod") != nil {
		t.Fatal("Stage matched a stage the plan lacks")
	}
	s := p.Stage("a1", "prod")
	if s == nil || s.Key() != "a1:prod" {
		t.Fatalf("Stage(a1, prod) = %v", s)
	}
	if th, k, ok := s.RouteThrottle("GET /items/{id}"); !ok || th.BurstLimit != 2 || k != "/items/{id}/GET" {
		t.Errorf("RouteThrottle = %v %q %v", th, k, ok)
	}
	if _, _, ok := s.RouteThrottle("POST /items/{id}"); ok {
		t.Error("override matched another method")
	}
	if _, _, ok := p.Stage("a1", "dev").RouteThrottle("GET /items/{id}"); ok {
		t.Error("override leaked to another stage")
	}
}
