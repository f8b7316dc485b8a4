package authorizer

import (
	"context"
	"time"

	"github.com/tollgate-dev/tollgate/internal/meter"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// An instance remembers keys and plans as it last read them. Remembered
// state that admits is never trusted on its own: the meter's write is
// conditional on the versions it was read at. Remembered state that denies
// (an unknown or disabled key, no plan for the stage) is trusted for
// DenyTTL, then read again, so that grants are seen within DenyTTL.

type staleness uint8

const (
	reloadKey staleness = 1 << iota
	reloadPlan
)

type cache struct {
	size   int
	keys   map[string]*keyEntry // by the value's hash
	idents map[string]*keyEntry // by the identity's hash
	plans  map[string]*planEntry
}

func newCache(size int) cache {
	return cache{size: size, keys: map[string]*keyEntry{}, idents: map[string]*keyEntry{}, plans: map[string]*planEntry{}}
}

type keyEntry struct {
	key      *store.Key // nil: no key has this value
	loadedAt int64      // µs
	meters   map[string]*meter.State
}

// denies reports whether the entry, as cached, denies requests for stage
// that found it by l, at now.
func (e *keyEntry) denies(l keyLookup, stage string, now int64) bool {
	return e.key == nil || l.rotatedOut(e.key, now) || !e.key.Enabled || e.key.Expired(now) || e.key.Stages[stage] == ""
}

// rotatedOut reports whether a key found by its value's hash was found by a
// value that a rotation replaced and whose grace period is over at now. A
// key found by a token's identity was not found by a value at all.
func (l keyLookup) rotatedOut(k *store.Key, now int64) bool {
	return l.identity == "" && k.Rotated(l.hash, now)
}

// state is the instance's view of the key's meter items for a plan.
func (e *keyEntry) state(p *store.Plan) *meter.State {
	st := e.meters[p.ID]
	if st == nil || st.Shards() != p.ShardCount() {
		st = meter.NewState(e.key.ID, p.ID, p.ShardCount())
		e.meters[p.ID] = st
	}
	return st
}

// key returns the cached key for a value's hash or an identity, reading
// it when forced, when it is not cached, or when it denies and is older
// than DenyTTL.
func (a *Authorizer) key(ctx context.Context, l keyLookup, stage string, now int64, force bool) (*keyEntry, error) {
	entries, load, by := a.cache.keys, a.dir.KeyByHash, l.hash
	if l.identity != "" {
		entries, load, by = a.cache.idents, a.dir.KeyByIdentity, l.identity
	}
	e := entries[l.hash]
	if e != nil && !force && !(e.denies(l, stage, now) && now-e.loadedAt >= a.cfg.DenyTTL.Microseconds()) {
		return e, nil
	}
	k, err := load(ctx, by)
	if err != nil && !store.IsKind(err, store.NotFound) {
		return nil, err
	}
	if e == nil {
		e = &keyEntry{}
		evictOne(entries, a.cache.size)
		entries[l.hash] = e
	}
	if k == nil || e.key == nil || e.key.ID != k.ID {
		// A value deleted and issued again is another key with other items.
		e.meters = map[string]*meter.State{}
	}
	e.key, e.loadedAt = k, now
	return e, nil
}

type planEntry struct {
	plan     *store.Plan
	loadedAt int64
	shadow   bool // limits watched, not enforced
	routes   map[routeKey]limits
	quota    *meter.Quota // the current period's; replaced when it ends
	qStart   int64
	resetAt  string // quota.Reset, RFC 3339
}

type routeKey struct{ apiID, stage, route string }

// limits are what a request is metered against.
type limits struct {
	bucket  *meter.Bucket // nil: no rate limit
	rate    float64
	burst   int
	quota   *meter.Quota // nil: no quota
	period  string       // the quota's
	resetAt string       // when its period ends, RFC 3339
}

// plan returns the cached plan, reading it when forced, when it is not
// cached, or when it lacks the stage and is older than DenyTTL.
func (a *Authorizer) plan(ctx context.Context, id, stage string, now int64, force bool) (*planEntry, error) {
	e := a.cache.plans[id]
	if e != nil && !force && (e.has(stage) || now-e.loadedAt < a.cfg.DenyTTL.Microseconds()) {
		return e, nil
	}
	p, err := a.dir.Plan(ctx, id)
	if store.IsKind(err, store.NotFound) {
		// A claim outlived its plan: nothing covers the stage.
		p, err = &store.Plan{Plan: plans.Plan{ID: id}}, nil
	}
	if err != nil {
		return nil, err
	}
	evictOne(a.cache.plans, a.cache.size)
	e = &planEntry{plan: p, loadedAt: now, routes: map[routeKey]limits{}, shadow: p.Shadowed(a.cfg.Shadow)}
	a.cache.plans[id] = e
	return e, nil
}

func (e *planEntry) has(stage string) bool {
	for _, s := range e.plan.APIStages {
		if s.Key() == stage {
			return true
		}
	}
	return false
}

// limits returns the limits for a route of a stage; ok is false if the
// plan does not cover the stage. A route override replaces the plan's
// throttle with a bucket of its own; the quota is the plan's.
func (e *planEntry) limits(apiID, stage, route string, now int64, guard time.Duration) (limits, bool) {
	rk := routeKey{apiID, stage, route}
	l, ok := e.routes[rk]
	if !ok {
		s := e.plan.Stage(apiID, stage)
		if s == nil {
			return limits{}, false
		}
		th, attr := e.plan.Throttle, store.AttrTAT
		if o, key, ok := s.RouteThrottle(route); ok {
			th, attr = &o, store.RouteAttr(s.Key(), key)
		}
		if th.Limited() {
			b := meter.NewBucket(attr, th.RateLimit, th.BurstLimit, guard)
			l = limits{bucket: &b, rate: th.RateLimit, burst: th.BurstLimit}
		}
		if len(e.routes) >= 1024 { // routes come from the API's route table; this only bounds abuse
			clear(e.routes)
		}
		e.routes[rk] = l
	}
	l.quota = e.currentQuota(now)
	if l.quota != nil {
		l.period, l.resetAt = e.plan.Quota.Period, e.resetAt
	}
	return l, true
}

// currentQuota is the quota of the period containing now.
func (e *planEntry) currentQuota(now int64) *meter.Quota {
	q := e.plan.Quota
	if q == nil {
		return nil
	}
	if e.quota == nil || now >= e.quota.Reset || now < e.qStart {
		w := q.Window(time.UnixMicro(now))
		e.quota = &meter.Quota{Attr: store.PrefixQuota + w.ID, Limit: e.plan.QuotaLimitIn(w), Reset: w.End.UnixMicro()}
		e.qStart = w.Start.UnixMicro()
		e.resetAt = w.End.UTC().Format(time.RFC3339)
	}
	return e.quota
}

// evictOne makes room in a full map by dropping an arbitrary entry. Go's map
// iteration order is random, so this is random eviction: no bookkeeping on
// the hot path, and a hot entry evicted by chance is read again once.
func evictOne[V any](m map[string]V, size int) {
	if len(m) < size {
		return
	}
	for k := range m {
		delete(m, k)
		return
	}
}
