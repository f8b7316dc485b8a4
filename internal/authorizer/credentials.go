package authorizer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tollgate-dev/tollgate/internal/jwtauth"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// credentials are what a request was found to carry: how to find its key,
// and the token it presented, if AUTH_MODE asked for one and it had one.
type credentials struct {
	lookup keyLookup
	token  *jwtauth.Token // shared with the token cache: read-only
}

// keyLookup finds a key by its value's hash or by an identity.
type keyLookup struct {
	hash     string // the value's hash, or the identity's: what caches it
	identity string // "" to find the key by the value's hash
}

// credentials reads the request's credentials as AUTH_MODE says. ok is
// false when they settle the decision before any DynamoDB call: a missing,
// malformed or refused token or key, or (d.err set) an issuer whose keys
// cannot be had.
func (a *Authorizer) credentials(ctx context.Context, r *request) (c credentials, d decision, ok bool) {
	mode := a.cfg.Auth
	useToken := mode == AuthJWT || mode == AuthJWTAndKey || mode == AuthJWTOrKey && r.token != ""
	if useToken {
		t, err := a.tokens.Verify(ctx, r.token, r.routeKey)
		var denial *jwtauth.Denial
		switch {
		case errors.As(err, &denial):
			return c, decision{reason: denial.Reason, detail: denial.Detail}, false
		case err != nil:
			return c, a.failed(decision{}, fmt.Errorf("validate the token: %w", err)), false
		}
		c.token = t
		if mode != AuthJWTAndKey {
			if t.Identity == "" {
				return c, decision{token: t, reason: ReasonUnknownIdentity, detail: "the token has no " + a.cfg.JWT.IdentityClaim + " claim"}, false
			}
			c.lookup = keyLookup{hash: t.IdentityHash, identity: t.Identity}
			return c, decision{}, true
		}
	}
	if r.value == "" {
		return c, decision{token: c.token, reason: ReasonMissingKey}, false
	}
	if keys.Check(r.value) != nil {
		return c, decision{token: c.token, reason: ReasonMalformedKey}, false
	}
	c.lookup = keyLookup{hash: keys.Hash(r.value)}
	return c, decision{}, true
}

// unknown is the reason to deny when no key answers to the credentials.
func (c *credentials) unknown() string {
	if c.lookup.identity != "" {
		return ReasonUnknownIdentity
	}
	return ReasonUnknownKey
}

// mayUse reports whether the token (if any) may use key k: a key with
// identities admits only tokens for one of them.
func (c *credentials) mayUse(k *store.Key) bool {
	if c.token == nil || c.lookup.identity == "" && len(k.Identities) == 0 {
		return true
	}
	return slices.Contains(k.Identities, c.token.Identity)
}

// mismatch is the reason to deny a token that may not use the key.
func (c *credentials) mismatch() string {
	if c.lookup.identity != "" {
		return ReasonUnknownIdentity // the identity left the key since it was cached
	}
	return ReasonIdentityMismatch
}
