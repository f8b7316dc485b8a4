package tollgate

import (
	"strings"
	"testing"
	"time"
)

// TestJWTEnvironment: each JWT prop reaches the authorizer's variable it
// names, and only jwt mode gets an identity source, the token's header or
// query parameter, so that API Gateway answers a request without a token
// 401 as its JWT authorizer would. The other modes take requests without a
// token (jwt-or-key) or refuse them themselves (jwt-and-key, with a 403).
func TestJWTEnvironment(t *testing.T) {
	jwt := JWTProps{
		Issuer: "https://issuer.example.com", Audience: []string{"a", "b"}, IdentityClaim: "custom:tenant",
		Scopes: map[string][]string{"GET /items": {"items:read"}}, ContextClaims: []string{"email", "custom:tier"},
		Leeway: 30 * time.Second,
	}
	for _, tt := range []struct {
		mode, source, want string
	}{
		{"", "", ""},
		{"key", "", ""},
		{"jwt", "", "$request.header.authorization"},
		{"jwt", "header:X-Id-Token", "$request.header.x-id-token"},
		{"jwt", "query:access_token", "$request.querystring.access_token"},
		{"jwt-and-key", "", ""},
		{"jwt-or-key", "", ""},
	} {
		p := Props{AuthMode: tt.mode, JWT: jwt}
		p.JWT.Source = tt.source
		env := map[string]string{"TABLE_NAME": "t"}
		src, err := p.jwtEnvironment(env)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.mode, tt.source, err)
		}
		var got []string
		for _, s := range src {
			got = append(got, *s)
		}
		if strings.Join(got, ",") != tt.want {
			t.Errorf("%s %s: identity source %v, want %q", tt.mode, tt.source, got, tt.want)
		}
		if tt.mode == "" || tt.mode == "key" {
			if len(env) != 1 {
				t.Errorf("%q: key mode sets %v", tt.mode, env)
			}
			continue
		}
		want := map[string]string{
			"AUTH_MODE": tt.mode, "JWT_ISSUER": "https://issuer.example.com", "JWT_AUDIENCE": "a,b",
			"JWT_IDENTITY_CLAIM": "custom:tenant", "JWT_SCOPES": `{"GET /items":["items:read"]}`,
			"JWT_CONTEXT_CLAIMS": "email,custom:tier", "JWT_LEEWAY": "30s", "JWT_SOURCE": tt.source,
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s %s: %s=%q, want %q", tt.mode, tt.source, k, env[k], v)
			}
		}
	}
}
