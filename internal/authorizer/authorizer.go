// Package authorizer is Tollgate's HTTP API (payload 2.0) Lambda authorizer:
// it finds the request's API key (by its value, or by the identity of the
// JWT it carries), the key's usage plan for the request's API stage, and
// admits or denies the request against that plan's throttle and quota,
// exactly, with one conditional DynamoDB write.
//
// The whole decision is in this file, in the order it happens:
//
//  1. take the credentials AUTH_MODE asks for: the key, or a JWT (checked
//     by package jwtauth), or both; missing, malformed or invalid ones are
//     denied without a DynamoDB call;
//  2. find the key's record by the SHA-256 of its value, or of the token's
//     identity (cached); a key with identities admits only their tokens. A
//     value must be the key's, or a previous one in its grace period, and
//     the key enabled and not expired, by the decision's own clock;
//  3. find the plan that covers the request's apiId:stage for this key
//     (cached), and its limits for the route;
//  4. meter the request: one conditional UpdateItem on the key's meter
//     item, guarded by the key's and plan's versions. If either moved since
//     they were cached, the write fails, both are reloaded, and the meter
//     is asked again, so admin changes apply to the very next decision;
//  5. answer: allow with the limits in the context, or deny (403), or with
//     ON_LIMIT=pass allow and tell the backend which limit was hit. A plan
//     in shadow allows a request over a limit and marks it shadow.
package authorizer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/decisionlog"
	"github.com/tollgate-dev/tollgate/internal/jwtauth"
	"github.com/tollgate-dev/tollgate/internal/meter"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
	"github.com/tollgate-dev/tollgate/ratelimit"
)

// Reasons for a decision, as logged and counted.
const (
	ReasonOK             = "ok"
	ReasonMissingKey     = "missing_key"
	ReasonMalformedKey   = "malformed_key"
	ReasonUnknownKey     = "unknown_key"
	ReasonDisabledKey    = "disabled_key"
	ReasonExpiredKey     = "expired_key"
	ReasonRotatedKey     = "rotated_key"
	ReasonNoPlan         = "no_plan"
	ReasonThrottled      = "throttled"
	ReasonQuotaExceeded  = "quota_exceeded"
	ReasonError          = "error"
	ReasonMalformedEvent = "malformed_event"

	// With JWTs (AUTH_MODE other than key).
	ReasonMissingToken     = jwtauth.MissingToken
	ReasonMalformedToken   = jwtauth.MalformedToken
	ReasonInvalidSignature = jwtauth.InvalidSignature
	ReasonExpiredToken     = jwtauth.ExpiredToken
	ReasonNotYetValid      = jwtauth.NotYetValid
	ReasonWrongIssuer      = jwtauth.WrongIssuer
	ReasonWrongAudience    = jwtauth.WrongAudience
	ReasonMissingScope     = jwtauth.MissingScope
	ReasonUnknownIdentity  = "unknown_identity"  // no key has the token's identity
	ReasonIdentityMismatch = "identity_mismatch" // the key has identities, and not the token's
)

// Authorizer decides requests. Like a Lambda execution environment it makes
// one decision at a time; concurrent calls wait for each other. Give each
// simulated instance its own Authorizer.
type Authorizer struct {
	cfg   Config
	dir   *store.Table
	meter *meter.Meter
	clock func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	last    int64 // the latest now handed out, µs: now never goes backwards
	cache   cache
	dlog    *decisionlog.Logger
	decoder decoder

	tokens    *jwtauth.Verifier // nil with AUTH_MODE=key
	claimKeys []string          // the context keys of JWT_CONTEXT_CLAIMS
}

// New returns an Authorizer over db. Build db with Instrument among its
// options to have DynamoDB calls counted and timed in logs and metrics.
func New(cfg Config, db store.API, clock func() time.Time, log *slog.Logger) *Authorizer {
	a := &Authorizer{
		cfg:     cfg,
		dir:     &store.Table{DB: db, Name: cfg.Table, Now: clock},
		meter:   &meter.Meter{DB: db, Table: cfg.Table, DenyTTL: cfg.DenyTTL, Retention: cfg.Retention, FailOpen: cfg.FailOpen},
		clock:   clock,
		log:     log,
		cache:   newCache(cfg.CacheSize),
		dlog:    newDecisionLog(cfg, log),
		decoder: newDecoder(cfg),
	}
	if cfg.readsTokens() {
		a.tokens = jwtauth.New(cfg.JWT, clock, log)
		for _, c := range cfg.JWT.ContextClaims {
			a.claimKeys = append(a.claimKeys, ratelimit.ClaimKey(c))
		}
	}
	// Write slots outlive by far any write of a decision that may still land.
	a.meter.PruneAge = max(meter.DefaultPruneAge, 60*cfg.Deadline)
	a.meter.OnCompactError = func(err error) {
		a.log.Warn("meter housekeeping failed; it is tried again later", "error", err.Error())
	}
	return a
}

// Invoke implements lambda.Handler. It decodes the event itself so that a
// malformed event gets a denial, not an error.
func (a *Authorizer) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := a.decoder.decode(payload)
	if err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "decision", slog.Bool("allow", false),
			slog.String("reason", ReasonMalformedEvent), slog.String("error", err.Error()))
		return []byte(`{"isAuthorized":false}`), nil
	}
	d := a.run(ctx, &req)
	return d.appendResponse(make([]byte, 0, 512), a.claimKeys), nil
}

// Authorize decides one request.
func (a *Authorizer) Authorize(ctx context.Context, ev events.APIGatewayV2CustomAuthorizerV2Request) events.APIGatewayV2CustomAuthorizerSimpleResponse {
	resp, _ := a.Decide(ctx, ev)
	return resp
}

// Summary says why a decision went the way it did, for callers that log
// requests themselves, such as the local emulator.
type Summary struct {
	Reason string // one of the Reason constants
	KeyID  string // "" until the key is known
	PlanID string
}

// Decide is Authorize, also returning the decision's Summary.
func (a *Authorizer) Decide(ctx context.Context, ev events.APIGatewayV2CustomAuthorizerV2Request) (events.APIGatewayV2CustomAuthorizerSimpleResponse, Summary) {
	req := a.cfg.newRequest(&ev)
	d := a.run(ctx, &req)
	sum := Summary{Reason: d.reason, PlanID: d.planID}
	if d.key != nil {
		sum.KeyID = d.key.ID
	}
	return d.response(a.claimKeys), sum
}

// run decides and logs one request.
func (a *Authorizer) run(ctx context.Context, req *request) decision {
	start, at := time.Now(), a.clock() // at, for the log, is read before the decision reads the clock
	stats := &callStats{}
	ctx = context.WithValue(ctx, statsKey{}, stats)

	a.mu.Lock()
	d := a.decide(ctx, req)
	d.late = a.meter.DrainLateWrites()
	a.mu.Unlock()

	a.logDecision(ctx, at, req, &d, stats, time.Since(start))
	return d
}

// decision is what decide found.
type decision struct {
	allow      bool
	reason     string
	detail     string // why a token was refused, for the log
	err        error
	token      *jwtauth.Token // the token that identified the caller, if any
	key        *store.Key
	planID     string
	limits     limits
	res        meter.Result
	limitedBy  string // "throttle" or "quota" when ON_LIMIT=pass or shadow let it through
	shadow     bool   // over a limit of a plan in shadow: allowed, and only reported
	failedOpen bool
	late       meter.LateWrites // what became of earlier decisions' lost writes
}

func (a *Authorizer) decide(ctx context.Context, r *request) decision {
	// 1. The credentials. Garbage costs no network and no DynamoDB call.
	c, d, ok := a.credentials(ctx, r)
	if !ok {
		return d
	}
	now := a.now()
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Deadline)
	defer cancel()
	stage := plans.StageKey(r.apiID, r.stage)

	var fresh staleness // what to reload before trusting the cache
	for round := 0; round < 3; round++ {
		// 2. The key's record and stage claims.
		k, err := a.key(ctx, c.lookup, stage, now, fresh&reloadKey != 0)
		if err != nil {
			return a.failed(decision{token: c.token}, err)
		}
		d := decision{key: k.key, token: c.token}
		switch {
		case k.key == nil:
			d.reason = c.unknown()
			return d
		case c.lookup.rotatedOut(k.key, now): // exact: the decision's own clock
			d.reason = ReasonRotatedKey
			return d
		case !k.key.Enabled:
			d.reason = ReasonDisabledKey
			return d
		case k.key.Expired(now):
			d.reason = ReasonExpiredKey
			return d
		case !c.mayUse(k.key):
			d.reason = c.mismatch()
			return d
		}

		// 3. The plan for this stage, and its limits for this route.
		d.planID = k.key.Stages[stage]
		if d.planID == "" {
			d.reason = ReasonNoPlan
			return d
		}
		p, err := a.plan(ctx, d.planID, stage, now, fresh&reloadPlan != 0)
		if err != nil {
			return a.failed(d, err)
		}
		var ok bool
		if d.limits, ok = p.limits(r.apiID, r.stage, r.routeKey, now, a.cfg.ClockGuard); !ok {
			d.reason = ReasonNoPlan
			return d
		}

		// 4. One conditional write, guarded by the versions just used.
		req := meter.Request{
			Now:         now,
			KeyVersion:  k.key.Version,
			PlanVersion: p.plan.Version,
			Bucket:      d.limits.bucket,
			Quota:       d.limits.quota,
		}
		d.res, err = a.meter.Take(ctx, &req, k.state(p.plan))
		if err != nil {
			return a.failed(d, err)
		}

		// 5. The answer.
		switch d.res.Outcome {
		case meter.Admitted:
			d.allow, d.reason = true, ReasonOK
			return d
		case meter.Throttled:
			return a.limited(d, ReasonThrottled, "throttle", p.shadow)
		case meter.QuotaExceeded:
			return a.limited(d, ReasonQuotaExceeded, "quota", p.shadow)
		case meter.Stale:
			// An admin change got here first: reload and decide again.
			fresh = reloadPlan
			if d.res.Stale == meter.KeyChanged {
				fresh |= reloadKey
			}
		}
	}
	return a.failed(decision{}, errors.New("the key or its plan kept changing during the decision"))
}

// limited denies a request over a limit, or with ON_LIMIT=pass allows it
// and says which limit it is over. In shadow it allows it whatever
// ON_LIMIT says, marked shadow: nothing refuses it, the backend included.
func (a *Authorizer) limited(d decision, reason, limit string, shadow bool) decision {
	d.reason = reason
	if shadow || a.cfg.PassOnLimit {
		d.allow, d.limitedBy, d.shadow = true, limit, shadow
	}
	return d
}

// failed handles a DynamoDB failure by FAIL_MODE. Closed denies, which keeps
// limits exact; open allows and marks the context.
func (a *Authorizer) failed(d decision, err error) decision {
	d.reason, d.err = ReasonError, err
	if a.cfg.FailOpen {
		d.allow, d.failedOpen = true, true
	}
	return d
}

// now returns the decision's time in µs. It never goes backwards within
// an instance, so a clock stepped back cannot make this instance
// undercharge.
func (a *Authorizer) now() int64 {
	n := a.clock().UnixMicro()
	if n < a.last {
		n = a.last
	}
	a.last = n
	return n
}
