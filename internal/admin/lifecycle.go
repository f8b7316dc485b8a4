package admin

import (
	"context"
	"time"

	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// maxGracePeriod is the longest a rotated-out value may keep working: 30
// days, in seconds.
const maxGracePeriod = 30 * 24 * 60 * 60

type rotateApiKeyInput struct {
	action
	APIKey      string  `json:"apiKey"`
	GracePeriod *int64  `json:"gracePeriod"`
	Value       *string `json:"value"`
	// ClientToken makes a repeated call safe: repeated with the same
	// token, a rotation whose answer was lost replaces the value it made
	// (which nobody received) instead of ending the previous value's grace.
	ClientToken string `json:"clientToken"`
}

// rotateApiKey gives a key a new value, Tollgate's extension to API
// Gateway. It answers as CreateApiKey does, with the new value (shown only
// here) and when the old one stops working.
func rotateApiKey(ctx context.Context, s *Service, in *rotateApiKeyInput) (any, error) {
	switch {
	case in.APIKey == "":
		return nil, badRequest("apiKey is required: the id of the API key to rotate")
	case in.GracePeriod == nil:
		return nil, badRequest("gracePeriod is required: how many seconds the current value keeps working beside the new one, from 0 (it stops at once) to %d (30 days)", maxGracePeriod)
	case *in.GracePeriod < 0 || *in.GracePeriod > maxGracePeriod:
		return nil, badRequest("gracePeriod must be from 0 to %d seconds (30 days), not %d", maxGracePeriod, *in.GracePeriod)
	case len(in.ClientToken) > 128:
		return nil, badRequest("clientToken is %d characters long; the most is 128", len(in.ClientToken))
	}
	value, err := keyValue(in.Value)
	if err != nil {
		return nil, err
	}
	r := store.Rotation{Hash: keys.Hash(value), Grace: time.Duration(*in.GracePeriod) * time.Second}
	if in.ClientToken != "" {
		r.Token = keys.Hash(in.ClientToken)
	}
	k, err := s.Store.RotateKey(ctx, in.APIKey, r)
	if err != nil {
		return nil, unsafeToRepeat(err, in)
	}
	out := apiKey(k)
	out.Value = value
	return out, nil
}

// keyValue is the value a caller chose, checked, or a new generated one.
func keyValue(own *string) (string, error) {
	if own == nil {
		return keys.Generate()
	}
	if err := keys.Check(*own); err != nil {
		return "", badRequest("value: %v; leave value out to have Tollgate generate one", err)
	}
	return *own, nil
}

// unsafeToRepeat amends the advice of a failure that may have left the
// rotation applied. Every other operation is safe to send again, and so is
// a rotation to an own value or with a clientToken; but a generated value
// without one cannot be told from a new rotation, which would end the
// grace period of the value this one replaced.
func unsafeToRepeat(err error, in *rotateApiKeyInput) error {
	e := apiError(err)
	if (e.Type == ServiceUnavailable || e.Type == TooManyRequests) && in.ClientToken == "" && in.Value == nil {
		e.Message = "Tollgate could not complete the rotation because DynamoDB failed, throttled or did not answer, and it may have been applied " +
			"with its answer lost: GetApiKey shows whether previousValueExpiresAt is this rotation's. Sending the same request again " +
			"rotates again, which ends the grace period of the value this rotation replaced; pass a clientToken to make a rotation " +
			"safe to repeat: " + err.Error()
	}
	return e
}

// parseExpiry reads an expiresAt: an RFC 3339 time, or "" for none. It is
// kept in µs, rounded up, so that no decision before the instant is denied.
func parseExpiry(field, v string) (*int64, *Error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, badRequest("%s must be an RFC 3339 time, such as 2027-01-31T00:00:00Z, or \"\" for none; not %q", field, v)
	}
	us := t.Unix()*1_000_000 + int64((t.Nanosecond()+999)/1000)
	return &us, nil
}

// isoMicros formats µs since the epoch as isoTime does, with the fraction
// of a second when there is one.
func isoMicros(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.999999+00:00")
}
