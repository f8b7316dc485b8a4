package admin

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// ApiKey is API Gateway's ApiKey resource. Value is set only in
// CreateApiKey's response: Tollgate keeps nothing but a hash of it.
type ApiKey struct {
	ID              string            `json:"id"`
	Value           string            `json:"value,omitempty"`
	Name            string            `json:"name,omitempty"`
	CustomerID      string            `json:"customerId,omitempty"`
	Description     string            `json:"description,omitempty"`
	Enabled         bool              `json:"enabled"`
	CreatedDate     string            `json:"createdDate"`
	LastUpdatedDate string            `json:"lastUpdatedDate"`
	StageKeys       []string          `json:"stageKeys"`
	Tags            map[string]string `json:"tags,omitempty"`
	// Identities is a Tollgate extension: the JWT claim values the key
	// meters.
	Identities []string `json:"identities,omitempty"`
	// Tollgate's extensions: when the key stops working, and when the
	// value its last rotation replaced does (RotateApiKey).
	ExpiresAt              string `json:"expiresAt,omitempty"`
	PreviousValueExpiresAt string `json:"previousValueExpiresAt,omitempty"`
}

func apiKey(k *store.Key) ApiKey {
	out := ApiKey{
		ID: k.ID, Name: k.Name, CustomerID: k.CustomerID, Description: k.Description, Enabled: k.Enabled,
		CreatedDate: isoTime(k.CreatedDate), LastUpdatedDate: isoTime(k.LastUpdatedDate),
		StageKeys: []string{}, Tags: k.Tags, Identities: k.Identities,
	}
	if k.ExpiresAt != nil {
		out.ExpiresAt = isoMicros(*k.ExpiresAt)
	}
	if k.PreviousHash != "" {
		out.PreviousValueExpiresAt = isoMicros(k.PreviousExpiresAt)
	}
	return out
}

// isoTime formats epoch seconds as the AWS CLI (v2) prints timestamps.
func isoTime(sec int64) string {
	return time.Unix(sec, 0).UTC().Format("2006-01-02T15:04:05+00:00")
}

// UsagePlan is API Gateway's UsagePlan, its members in API Gateway's
// order. apiStages is always there, [] for none, as in API Gateway's model
// and the scripts that read it.
type UsagePlan struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	APIStages   []plans.APIStage  `json:"apiStages"`
	Throttle    *plans.Throttle   `json:"throttle,omitempty"`
	Quota       *plans.Quota      `json:"quota,omitempty"`
	ProductCode string            `json:"productCode,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// UsagePlanKey is API Gateway's UsagePlanKey. Its value is never known.
type UsagePlanKey struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
}

// KeyType is the one kind of key a usage plan takes.
const KeyType = "API_KEY"

// List is a page of a collection, as API Gateway returns it.
type List[T any] struct {
	Items    []T    `json:"items"`
	Position string `json:"position,omitempty"`
}

// Empty is the response of operations that return nothing, such as
// deletes (API Gateway answers 202 with no body).
type Empty struct{}

// PatchOperation is one change in an Update operation's patchOperations.
// As in API Gateway, value is always a string.
type PatchOperation struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
	From  string          `json:"from,omitempty"`
}

// value returns the operation's value as a string.
func (p PatchOperation) value(i int) (string, *Error) {
	if len(p.Value) == 0 || string(p.Value) == "null" {
		return "", badRequest("patchOperations[%d] (%s %s) needs a value", i, p.Op, p.Path)
	}
	var s string
	if err := json.Unmarshal(p.Value, &s); err != nil {
		return "", badRequest("patchOperations[%d].value must be a string, such as %q: API Gateway's patch values are strings", i, string(p.Value))
	}
	return s, nil
}

// API Gateway's limits.
const (
	maxName        = 1024
	maxDescription = 4096
	maxCustomerID  = 1024
	maxTags        = 50
	maxStages      = 50 // keeps every assignment one DynamoDB transaction
	maxRoutes      = 20 // per stage, as API Gateway allows
	defaultLimit   = 25
	maxLimit       = 500
)

func checkLength(field, v string, max int) *Error {
	if n := utf8.RuneCountInString(v); n > max {
		return badRequest("%s is %d characters long; the most is %d", field, n, max)
	}
	return nil
}

var tagChars = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

// checkTags applies AWS's tag rules.
func checkTags(tags map[string]string) *Error {
	if len(tags) > maxTags {
		return badRequest("tags has %d entries; a resource may have at most %d", len(tags), maxTags)
	}
	for k, v := range tags {
		switch {
		case k == "" || utf8.RuneCountInString(k) > 128:
			return badRequest("tag key %q must be 1 to 128 characters long", k)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return badRequest("tag key %q must not start with aws: (reserved for AWS)", k)
		case utf8.RuneCountInString(v) > 256:
			return badRequest("the value of tag %q is longer than 256 characters", k)
		case !tagChars.MatchString(k) || !tagChars.MatchString(v):
			return badRequest("tag %q: tags may contain only letters, digits, spaces and _ . : / = + - @", k)
		}
	}
	return nil
}

// checkThrottle applies ThrottleSettings' rules.
func checkThrottle(field string, t *plans.Throttle) *Error {
	switch {
	case t.RateLimit < 0 || math.IsNaN(t.RateLimit) || math.IsInf(t.RateLimit, 0):
		return badRequest("%s.rateLimit must be a number of requests per second, 0 or more (0 means no rate limit)", field)
	case t.BurstLimit < 0:
		return badRequest("%s.burstLimit must be a whole number, 0 or more", field)
	case t.RateLimit > 0 && t.BurstLimit < 1:
		return badRequest("%s.burstLimit must be at least 1 when rateLimit is above 0: a bucket that holds no tokens admits nothing (in an update, set burstLimit in the same patchOperations)", field)
	}
	return nil
}

// checkPlan validates a whole plan, as created or after a patch.
func checkPlan(p *plans.Plan) *Error {
	if strings.TrimSpace(p.Name) == "" {
		return badRequest("name is required: give the usage plan a name")
	}
	if err := checkLength("name", p.Name, maxName); err != nil {
		return err
	}
	if err := checkLength("description", p.Description, maxDescription); err != nil {
		return err
	}
	if p.Throttle != nil {
		if err := checkThrottle("throttle", p.Throttle); err != nil {
			return err
		}
	}
	if q := p.Quota; q != nil {
		switch {
		case q.Period != plans.Day && q.Period != plans.Week && q.Period != plans.Month:
			return badRequest("quota.period must be DAY, WEEK or MONTH, not %q", q.Period)
		case q.Limit < 0:
			return badRequest("quota.limit must be a whole number of requests, 0 or more")
		case q.Offset < 0 || q.Offset > q.Limit:
			return badRequest("quota.offset must be from 0 to quota.limit (%d): it is the number of requests taken from the limit in the first period", q.Limit)
		}
	}
	if len(p.APIStages) > maxStages {
		return badRequest("apiStages has %d stages; a usage plan may have at most %d", len(p.APIStages), maxStages)
	}
	seen := map[string]bool{}
	for i, s := range p.APIStages {
		switch {
		case s.APIID == "" || s.Stage == "":
			return badRequest("apiStages[%d] needs both apiId and stage", i)
		case strings.ContainsAny(s.APIID, ":/") || strings.ContainsAny(s.Stage, ":/"):
			return badRequest("apiStages[%d]: apiId and stage may not contain : or /", i)
		case len(s.APIID) > 128 || len(s.Stage) > 128:
			return badRequest("apiStages[%d]: apiId and stage are at most 128 characters", i)
		case seen[s.Key()]:
			return badRequest("apiStages lists %s twice", s.Key())
		case len(s.Throttle) > maxRoutes:
			return badRequest("apiStages[%d] has %d route throttles; a stage may have at most %d", i, len(s.Throttle), maxRoutes)
		}
		seen[s.Key()] = true
		for k, t := range s.Throttle {
			if !plans.ValidThrottleKey(k) {
				return badRequest("apiStages[%d].throttle key %q must be /path/METHOD (e.g. /items/{id}/GET, or //GET for the root) or $default", i, k)
			}
			if err := checkThrottle(fmt.Sprintf("apiStages[%d].throttle[%q]", i, k), &t); err != nil {
				return err
			}
		}
	}
	if _, err := p.Shards(); err != nil {
		return badRequest("%s", err.Error())
	}
	if _, err := p.Thresholds(nil); err != nil {
		return badRequest("%s", err.Error())
	}
	return checkTags(p.Tags)
}

// paging is the limit and position every listing takes.
type paging struct {
	Limit    *int   `json:"limit"`
	Position string `json:"position"`
}

// read checks the page size, 25 unless given as in API Gateway, and
// returns the id the page starts after.
func (p paging) read() (limit int, after string, e *Error) {
	limit = defaultLimit
	if p.Limit != nil {
		if *p.Limit < 1 || *p.Limit > maxLimit {
			return 0, "", badRequest("limit must be from 1 to %d", maxLimit)
		}
		limit = *p.Limit
	}
	after, e = decodePosition(p.Position)
	return limit, after, e
}

// Positions are opaque to callers: a base64 wrapping of the last id seen.
func encodePosition(id string) string {
	if id == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte("tg1:" + id))
}

func decodePosition(position string) (string, *Error) {
	if position == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(position)
	id, ok := strings.CutPrefix(string(b), "tg1:")
	if err != nil || !ok || id == "" {
		return "", badRequest("position %q is not one that Tollgate returned: pass the position from the previous page, or leave it out for the first page", position)
	}
	return id, nil
}

// parseBool reads "true" or "false", as API Gateway's patch values are.
func parseBool(i int, v string) (bool, *Error) {
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		return false, badRequest("patchOperations[%d].value must be \"true\" or \"false\", not %q", i, v)
	}
	return b, nil
}
