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

func TestShards(t *testing.T) {
	th := func(rate float64, burst int) *Throttle { return &Throttle{RateLimit: rate, BurstLimit: burst} }
	tests := []struct {
		name    string
		plan    Plan
		want    int
		wantErr bool
	}{
		{"no throttle", Plan{}, 1, false},
		{"slow", Plan{Throttle: th(100, 50)}, 1, false},
		{"at the line", Plan{Throttle: th(300, 50)}, 1, false},
		{"just over", Plan{Throttle: th(300.5, 50)}, 2, false},
		{"hot", Plan{Throttle: th(1200, 400)}, 4, false},
		{"very hot", Plan{Throttle: th(100000, 5000)}, MaxShards, false},
		{"small burst", Plan{Throttle: th(2000, 3)}, 3, false},
		{"routes add up", Plan{Throttle: th(200, 50), APIStages: []APIStage{{APIID: "a", Stage: "s",
			Throttle: map[string]Throttle{"/x/GET": {RateLimit: 200, BurstLimit: 50}}}}}, 2, false},
		{"tag", Plan{Tags: map[string]string{ShardTag: "3"}}, 3, false},
		{"tag over burst", Plan{Throttle: th(10, 2), Tags: map[string]string{ShardTag: "3"}}, 0, true},
		{"tag zero", Plan{Tags: map[string]string{ShardTag: "0"}}, 0, true},
		{"tag too big", Plan{Tags: map[string]string{ShardTag: "17"}}, 0, true},
		{"tag not a number", Plan{Tags: map[string]string{ShardTag: "two"}}, 0, true},
	}
	for _, tt := range tests {
		got, err := tt.plan.Shards()
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: Shards() = %d, %v; want %d, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestShareAddsUp(t *testing.T) {
	for _, total := range []int64{0, 1, 7, 8, 9, 1000, 1001} {
		for n := 1; n <= MaxShards; n++ {
			var sum int64
			for i := range n {
				s := Share(total, i, n)
				if s < total/int64(n) || s > total/int64(n)+1 {
					t.Errorf("Share(%d, %d, %d) = %d", total, i, n, s)
				}
				sum += s
			}
			if sum != total {
				t.Errorf("shares of %d over %d add up to %d", total, n, sum)
			}
		}
	}
}
