package jwtauth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/jwtauth"
)

// FuzzVerify feeds the verifier arbitrary headers. Nothing may panic, a
// header the shape check refuses may cost no request to the issuer, and
// nothing but the issuer's own tokens may pass.
func FuzzVerify(f *testing.F) {
	fx := setup(f)
	valid := fx.token(map[string]any{"sub": "alice", "scope": "items:read"})
	parts := strings.Split(valid, ".")
	for _, seed := range []string{
		valid, "Bearer " + valid, "", "Bearer", "a.b.c", "a..c", "....",
		parts[0] + "." + parts[1] + ".", parts[0] + "." + parts[1] + "." + parts[2][:10],
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
		strings.Repeat("A", jwtauth.MaxTokenLen+1),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		_, before := fx.issuer.Fetches()
		tok, err := fx.v.Verify(context.Background(), header, "GET /items")
		var d *jwtauth.Denial
		switch {
		case err == nil:
			if tok == nil || tok.Identity != "alice" {
				t.Fatalf("accepted a token the issuer did not sign for alice: %q", header)
			}
		case errors.As(err, &d):
			if d.Reason == jwtauth.MalformedToken || d.Reason == jwtauth.MissingToken {
				if _, after := fx.issuer.Fetches(); after != before {
					t.Fatalf("a %s cost a JWKS request: %q", d.Reason, header)
				}
			}
		default:
			t.Fatalf("an error that is not a denial, with the issuer up: %v", err)
		}
	})
}
