// Package meter admits or denies one request against a key's token bucket
// and quota with a single conditional UpdateItem, and counts it per UTC day.
//
// The bucket is GCRA: the item stores the theoretical arrival time (TAT) in
// µs, and a request at now is admitted iff TAT <= now + tau, after which
// TAT = max(TAT, now) + T. DynamoDB has no max(), so there are two variants:
// idle (TAT <= now: SET TAT = now + T) and active (now < TAT <= now + tau:
// SET TAT = TAT + T). The meter guesses the variant from what it last saw;
// a wrong guess fails its condition and DynamoDB returns the item as it
// was (ALL_OLD), from which the second attempt, with the same now, is right.
// So a decision costs one call in the steady state and two at worst.
//
// Every admission is one successful conditional write, so DynamoDB orders
// them and no amount of concurrency admits more than the limits allow.
// Every denial rests on the item as DynamoDB returned it, or on an earlier
// sight of it: TATs and counters only grow, so an old sight is a lower
// bound of the truth.
//
// Every write also carries an id into the instance's own slot on the item,
// so that a write DynamoDB applied but whose answer was lost is recognised
// when it comes back, and a write the decision gave up on is reconciled
// when it lands late: see late.go.
package meter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// DB is the part of the DynamoDB client the meter uses.
type DB interface {
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Meter decides requests against meter items in one table.
type Meter struct {
	DB    DB
	Table string
	// DenyTTL bounds how long a denial learned from DynamoDB is repeated
	// from memory. Denials from memory are exact for the limits they were
	// made with; the TTL bounds how long a raised limit or a quota extension
	// can go unseen by an instance that is denying.
	DenyTTL time.Duration
	// Retention is how long usage history is kept after its month ends;
	// zero keeps it forever.
	Retention time.Duration
	// OnCompactError, if set, hears about failed housekeeping. Decisions
	// never fail because of it.
	OnCompactError func(error)
	// Rand returns a number in [0, 1) for herd damping; math/rand/v2's if nil.
	Rand func() float64
	// Tag draws the instance's tag, which names its write slot on meter
	// items (see late.go): 4 characters of [0-9A-Za-z]. Random if nil.
	Tag func() string
	// FailOpen says that the caller admits a request whose write failed
	// (FAIL_MODE=open). If such a write lands it counts an admitted
	// request, rightly, so the meter does not remember it to reconcile.
	FailOpen bool
	// PruneAge is the age (by their ids) past which slots of other
	// instances may be pruned; the meter gives up reconciling a write
	// after half of it. Zero is DefaultPruneAge. It must be far above
	// the longest a write can take to land.
	PruneAge time.Duration

	// A Meter makes one decision at a time, as a Lambda instance does: its
	// write ids must grow from one decision to the next.
	mu      sync.Mutex
	tag     string
	lastID  int64
	pending []*lateWrite
	late    LateWrites
}

// Herd damping. When a key is flooded far above its limit, every instance
// that sees the next token come due tries to take it, and all but one of
// those writes fail, at a WCU each. So an instance that loses such a race
// (its own sight of the bucket said a token was due; DynamoDB said another
// instance took it) tries from then on only with some odds: they halve with
// each race lost, grow by √2 with each won, and double with every DenyTTL
// that passes, so that an instance that seldom tries still finds out when
// the flood is over. At equilibrium the instances lose one race for every
// two they win, plus one a DenyTTL each for the time's doubling: about 2.5
// writes per admission for 64 instances flooding a key allowed 100/s. A
// key served by one instance never loses a race and is never damped.
//
// Damping only ever turns a write into a denial, so it never admits more
// than the limits. It may deny a request the bucket had a token for: the
// token stays in the bucket for the next try, and the bucket's burst
// absorbs the backlog. When a flood ends, an instance that was damped
// hard (odds of 1/16, say) needs a few DenyTTLs to try every time again.
// A DenyTTL of 0 turns damping off.
const (
	minOdds = 1.0 / 1024
	winGain = math.Sqrt2
)

// frozenRetry is the Retry-After of a denial by a frozen meter item (see
// store's capShards): the freeze lasts a few round trips.
const frozenRetry = 100 * time.Millisecond

// Bucket is a token bucket in GCRA terms, in µs.
type Bucket struct {
	Attr  string // attribute holding the TAT
	T     int64  // emission interval: one token every T µs
	Tau   int64  // tolerance: (Burst-1)·T less the clock guard; may be negative
	Burst int64  // bucket size
	Guard int64  // the clock guard taken from the tolerance
}

// Limits that keep every product of the arithmetic far inside int64:
// one token every 35 years is no rate, and a tolerance of 36,000 years is
// a bucket that never empties in practice. Clamping only ever admits less.
const (
	maxT   = 1 << 50
	maxTau = 1 << 60
)

// NewBucket is the bucket for rate tokens a second into a bucket of burst,
// with guard (twice the clock error allowed between instances) taken from
// the tolerance. T is ceil(1e6/rate) computed exactly, so rounding can only
// slow the rate, never raise it.
func NewBucket(attr string, rate float64, burst int, guard time.Duration) Bucket {
	b := Bucket{Attr: attr, Burst: int64(burst), Guard: guard.Microseconds()}
	q := new(big.Rat).SetFrac64(1_000_000, 1)
	q.Quo(q, new(big.Rat).SetFloat64(rate))
	t := new(big.Int).Quo(q.Num(), q.Denom())
	if new(big.Rat).SetInt(t).Cmp(q) < 0 {
		t.Add(t, big.NewInt(1))
	}
	b.T = maxT
	if t.IsInt64() && t.Int64() < maxT {
		b.T = max(t.Int64(), 1)
	}
	b.Tau = tolerance(b.Burst, b.T) - b.Guard
	return b
}

// tolerance is (burst-1)·T, clamped.
func tolerance(burst, t int64) int64 {
	switch {
	case burst < 1:
		return 0
	case burst-1 > maxTau/t:
		return maxTau
	default:
		return (burst - 1) * t
	}
}

// Shard is shard i's share of the bucket when it is split over n shards:
// an nth of the rate (a token every n·T) and its share of the burst, with
// the same clock guard. The shards' buckets together never admit more than
// the whole: in any window, Σ(burst_i + width/(n·T)) = burst + width/T.
func (b Bucket) Shard(i, n int) Bucket {
	if n <= 1 {
		return b
	}
	s := Bucket{Attr: b.Attr, Burst: plans.Share(b.Burst, i, n), Guard: b.Guard, T: min(b.T*int64(n), maxT)}
	s.Tau = tolerance(s.Burst, s.T) - s.Guard
	return s
}

// Quota is the quota of the current period.
type Quota struct {
	Attr  string // counter of this period: store.PrefixQuota + window id
	Limit int64  // requests allowed in this period
	Reset int64  // end of the period, µs since the epoch
	// Cap, on a shard, names the attribute that may cap its count below
	// its share (store.PrefixCap + window id); "" elsewhere.
	Cap string
}

// Shard is shard i's share of the quota when it is split over n shards.
func (q Quota) Shard(i, n int) Quota {
	q.Limit = plans.Share(q.Limit, i, n)
	q.Cap = store.PrefixCap + strings.TrimPrefix(q.Attr, store.PrefixQuota)
	return q
}

// Request is one decision. Now is sampled once per decision and reused by
// every attempt: re-sampling it would let TAT and now chase each other.
type Request struct {
	Now         int64 // µs since the epoch
	KeyVersion  int64
	PlanVersion int64
	Bucket      *Bucket // nil: no rate limit
	Quota       *Quota  // nil: no quota
}

// Outcome of a decision.
type Outcome uint8

// Outcomes. Stale means the meter item's versions are not the request's:
// the key or plan changed (or the assignment went) since they were cached.
const (
	Admitted Outcome = iota + 1
	Throttled
	QuotaExceeded
	Stale
)

// Staleness says what a Stale outcome found out of date.
type Staleness uint8

// What changed.
const (
	KeyChanged  Staleness = iota + 1 // kv differs or is gone: reload the key
	PlanChanged                      // pv moved past the request's: reload the plan
)

// Result of a decision.
type Result struct {
	Outcome Outcome
	Stale   Staleness
	// TokensRemaining after the decision; -1 without a bucket. For a
	// sharded key, the shards' tokens added up as this instance last saw
	// them: an estimate.
	TokensRemaining int64
	// NextToken is how long until the bucket gains its next token, as the
	// meter last saw it: 0 when it is full or there is no bucket.
	NextToken time.Duration
	// Used is the quota used in the period after the decision, as far as
	// the meter knows: exact after an admission on an unsharded key, a
	// lower bound otherwise.
	Used int64
	// RetryAfter is how long until a denied request could be admitted; for
	// a sharded key, until the soonest shard it tried could.
	RetryAfter time.Duration
	// Calls made to DynamoDB, housekeeping included.
	Calls int
}

// State is what one instance knows of a key's meter items in one plan:
// one item, or one per shard. It is not safe for concurrent use.
type State struct {
	items []*item
	home  int // the shard this instance tries first
}

// NewState returns an empty State for the meter items of keyID in planID,
// a plan with the given number of shards.
func NewState(keyID, planID string, shards int) *State {
	st := &State{items: make([]*item, max(shards, 1)), home: rand.IntN(max(shards, 1))}
	for i := range st.items {
		pk := store.ShardPK(keyID, i)
		st.items[i] = &item{
			key:    map[string]types.AttributeValue{store.AttrPK: store.S(pk), store.AttrSK: store.S(store.MeterSK(planID))},
			pk:     pk,
			planID: planID,
			tats:   map[string]int64{},
		}
	}
	return st
}

// Shards is the number of meter items the State covers.
func (st *State) Shards() int { return len(st.items) }

// item is what one instance knows of one meter item: its key, and the TATs
// and quota count it last saw.
type item struct {
	key       map[string]types.AttributeValue
	pk        string
	planID    string
	tats      map[string]int64
	quotaAttr string
	used      int64
	cap       int64 // the cap on used last seen, if capAttr is the quota's
	capAttr   string
	seen      int64   // µs when DynamoDB last showed the item
	full      int64   // µs when DynamoDB last showed all of it
	pruned    int64   // µs when this instance last pruned its slots
	day       string  // the UTC day this instance last looked for old days
	odds      float64 // herd damping: chance of trying, at oddsAt; 0 means 1
	oddsAt    int64
	inputs    [3]prepared // by bucket variant: none, idle, active
}

// Take decides one request. Decisions of one Meter wait for each other.
func (m *Meter) Take(ctx context.Context, req *Request, st *State) (Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) > 0 {
		m.expire(req.Now)
	}
	var res Result
	var err error
	if len(st.items) == 1 {
		res, err = m.take(ctx, req, st.items[0])
	} else {
		res, err = m.takeSharded(ctx, req, st)
	}
	if err == nil && len(m.pending) > 0 {
		// Writes this instance gave up on elsewhere: one a decision.
		res.Calls += m.reconcileSome(ctx, 1)
	}
	return res, err
}

// take decides one request on one meter item.
func (m *Meter) take(ctx context.Context, req *Request, st *item) (Result, error) {
	now, b, q := req.Now, req.Bucket, req.Quota
	if b != nil && b.Burst < 1 {
		return Result{Outcome: Throttled, RetryAfter: micros(b.T), TokensRemaining: 0}, nil
	}
	if q != nil && q.Limit <= 0 {
		return m.denyQuota(req, 0, 0), nil
	}
	if st.seen > 0 && now-st.seen < m.DenyTTL.Microseconds() {
		used := st.usedIn(q)
		if q != nil && (used >= q.Limit || q.Cap != "" && st.capAttr == q.Cap && used >= st.cap) {
			return m.denyQuota(req, used, 0), nil
		}
		if b != nil {
			if tat, ok := st.tats[b.Attr]; ok && tat > now+b.Tau {
				return deny(b, tat, now, used, 0), nil
			}
		}
	}

	odds := m.odds(st, now)
	if b != nil && odds < 1 && m.random() >= odds {
		return Result{Outcome: Throttled, RetryAfter: micros(b.T), NextToken: micros(b.T), Used: st.usedIn(q)}, nil
	}

	active, expected := false, false // expected: a token is due by this instance's own sight
	if b != nil {
		tat, ok := st.tats[b.Attr]
		// A damped instance guesses active: the bucket was full of contenders.
		active = (ok && tat > now || odds < 1) && b.Tau > 0
		expected = ok && tat <= now+b.Tau
	}
	base := 0 // calls before the decision's own write
	if e := m.pendingFor(st); e != nil {
		// A write this instance gave up on may still land here: settle it
		// first, or its slot would no longer tell.
		c, err := m.reconcile(ctx, e)
		if err != nil {
			return Result{Calls: c}, err
		}
		base = c
	}
	id := m.nextID(now)
	day := Day(now)
	compact := st.day != day
	all := compact || now-st.full >= m.pruneAge().Microseconds()
	slot := store.SlotAttr(m.instanceTag())
	tries := 3
	for calls := 1; calls <= tries; calls++ {
		out, err := m.DB.UpdateItem(ctx, m.input(req, st, id, day, active, all))
		if err == nil {
			return m.admit(ctx, req, st, out.Attributes, base+calls, odds, compact, all), nil
		}
		var failed *types.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			// It may have landed, or land yet.
			m.remember(st, req, id, day)
			return Result{Calls: base + calls}, fmt.Errorf("update meter %s %s: %w", st.pk, st.planID, err)
		}
		old := failed.Item
		if w, ok := store.Int(old, slot); ok && w >= id {
			if w == id {
				// An earlier copy of this very write was applied: an SDK
				// retry of it, after its answer was lost. Admitted; the
				// item shows it, and maybe others' writes since.
				return m.admit(ctx, req, st, old, base+calls, odds, compact, true), nil
			}
			if tries > 3 {
				return Result{Calls: base + calls}, fmt.Errorf("update meter %s %s: two tags drawn were both in use", st.pk, st.planID)
			}
			// Another instance drew the same tag: draw another.
			m.drawTag()
			slot = store.SlotAttr(m.tag)
			tries++
			continue
		}
		st.full = now
		base += m.prune(ctx, st, now, old)
		kv, ok := store.Int(old, store.AttrKeyVersion)
		if ok && kv < 0 {
			// Frozen while an admin change caps a sharded key's shards, for
			// the few milliseconds that takes: deny, and remember nothing.
			return Result{Outcome: Throttled, RetryAfter: frozenRetry, NextToken: frozenRetry, Calls: base + calls}, nil
		}
		if !ok || kv != req.KeyVersion {
			return Result{Outcome: Stale, Stale: KeyChanged, Calls: base + calls}, nil
		}
		if pv, _ := store.Int(old, store.AttrPlanVersion); pv > req.PlanVersion {
			return Result{Outcome: Stale, Stale: PlanChanged, Calls: base + calls}, nil
		}
		st.seen = now
		var used int64
		if q != nil {
			used, _ = store.Int(old, q.Attr)
			st.quotaAttr, st.used = q.Attr, used
			if used >= q.Limit {
				return m.denyQuota(req, used, base+calls), nil
			}
			if c, ok := store.Int(old, q.Cap); ok && q.Cap != "" && used >= c {
				st.capAttr, st.cap = q.Cap, c
				return m.denyQuota(req, used, base+calls), nil
			}
		}
		if b != nil {
			tat, ok := store.Int(old, b.Attr)
			if ok {
				st.tats[b.Attr] = tat
			}
			if ok && tat > now+b.Tau {
				if expected {
					// Another instance took the token this one saw due.
					st.odds, st.oddsAt = max(minOdds, odds/2), now
				}
				return deny(b, tat, now, used, base+calls), nil
			}
			expected = ok // and, as just read, a token is due
			active = ok && tat > now && b.Tau > 0
		}
	}
	return Result{Calls: base + tries}, fmt.Errorf("update meter %s %s: condition failed three times without a reason to deny", st.pk, st.planID)
}

// admit is an admission, with attrs what DynamoDB returned of the item:
// the updated attributes, or all of them when whole is set. It does the
// item's housekeeping, if due, and counts its calls.
func (m *Meter) admit(ctx context.Context, req *Request, st *item, attrs map[string]types.AttributeValue, calls int, odds float64, compact, whole bool) Result {
	res := st.admitted(req, attrs)
	res.Calls = calls
	if odds < 1 {
		st.odds, st.oddsAt = odds*winGain, req.Now
		if st.odds >= 1 {
			st.odds = 0
		}
	}
	if whole {
		st.full = req.Now
		res.Calls += m.prune(ctx, st, req.Now, attrs)
	}
	if compact {
		st.day = Day(req.Now)
		res.Calls += m.compact(ctx, st, req.Now, attrs)
	}
	return res
}

// deny is a throttle denial of a bucket whose TAT is tat: it admits again,
// and gains its next token, in tat - tau - now.
func deny(b *Bucket, tat, now, used int64, calls int) Result {
	wait := micros(tat - b.Tau - now)
	return Result{Outcome: Throttled, RetryAfter: wait, NextToken: wait, Used: used, Calls: calls}
}

// usedIn is the quota count last seen for q's period, or 0.
func (st *item) usedIn(q *Quota) int64 {
	if q == nil || st.quotaAttr != q.Attr {
		return 0
	}
	return st.used
}

func (m *Meter) denyQuota(req *Request, used int64, calls int) Result {
	return Result{Outcome: QuotaExceeded, Used: used, TokensRemaining: -1,
		RetryAfter: micros(req.Quota.Reset - req.Now), Calls: calls}
}

// admitted reads the values the write returned into the state and result.
func (st *item) admitted(req *Request, attrs map[string]types.AttributeValue) Result {
	res := Result{Outcome: Admitted, TokensRemaining: -1}
	st.seen = req.Now
	if b := req.Bucket; b != nil {
		tat, _ := store.Int(attrs, b.Attr)
		st.tats[b.Attr] = tat
		// Tokens left: floor(burst - (TAT - now)/T). The deficit TAT - now
		// shrinks by one token every T µs; the next comes when it drops to
		// the multiple of T below it.
		deficit := tat - req.Now
		res.TokensRemaining = max(b.Burst-ceilDiv(deficit, b.T), 0)
		if deficit > 0 {
			res.NextToken = micros(deficit - (ceilDiv(deficit, b.T)-1)*b.T)
		}
	}
	if q := req.Quota; q != nil {
		res.Used, _ = store.Int(attrs, q.Attr)
		st.quotaAttr, st.used = q.Attr, res.Used
		// The write passed any cap; the next failure says where it is.
		st.capAttr = ""
	}
	return res
}

// Condition and update expressions. The variants differ only in how the
// bucket is tested and moved; the quota and day counters ride along, and
// so does the write's id, into the instance's slot (see late.go).
const (
	condGuard   = "kv = :kv AND pv <= :pv AND (attribute_not_exists(#w) OR #w < :id)"
	condIdle    = " AND (attribute_not_exists(#b) OR #b <= :bmax)"
	condActive  = " AND #b > :now AND #b <= :bmax"
	condQuota   = " AND (attribute_not_exists(#q) OR #q < :qlim)"
	condCap     = " AND (attribute_not_exists(#c) OR #q < #c)"
	setGuard    = "SET pv = :pv, #w = :id, lw = :tag"
	setIdle     = ", #b = :bnew"
	setActive   = ", #b = #b + :t"
	setQuota    = ", #e = :rem - if_not_exists(#q, :zero)"
	addDay      = " ADD #d :one"
	addDayQuota = " ADD #d :one, #q :one"
)

// expressions[bucket][quota]: bucket 0 none, 1 idle, 2 active; quota 0
// none, 1 a quota, 2 a shard's quota, which may be capped.
var expressions = func() (e [3][3][2]string) {
	for b, cond := range []string{"", condIdle, condActive} {
		set := []string{"", setIdle, setActive}[b]
		e[b][0] = [2]string{condGuard + cond, setGuard + set + addDay}
		e[b][1] = [2]string{condGuard + cond + condQuota, setGuard + set + setQuota + addDayQuota}
		e[b][2] = [2]string{condGuard + cond + condQuota + condCap, setGuard + set + setQuota + addDayQuota}
	}
	return e
}()

// input is the write for a request. Everything in it but the values that
// move with now stays the same from one decision to the next, so each
// item keeps one input per bucket variant and only rebuilds it when the
// request's limits, versions or day change. The SDK is done with an input
// when UpdateItem returns, and an item serves one decision at a time.
func (m *Meter) input(req *Request, st *item, id int64, day string, active, all bool) *dynamodb.UpdateItemInput {
	bucket := 0
	if b := req.Bucket; b != nil {
		bucket = 1
		if active {
			bucket = 2
		}
	}
	sig := inputSig{day: day, kv: req.KeyVersion, pv: req.PlanVersion, all: all, tag: m.tag}
	if req.Bucket != nil {
		sig.bucket = *req.Bucket
	}
	if req.Quota != nil {
		sig.quota = *req.Quota
	}
	p := &st.inputs[bucket]
	if p.in == nil || p.sig != sig {
		p.sig, p.in = sig, m.newInput(req, st, day, bucket, all)
		p.now, p.bmax, p.bnew = nil, nil, nil
		p.id = moving(p.in, ":id")
		switch bucket {
		case 1:
			p.bmax, p.bnew = moving(p.in, ":bmax"), moving(p.in, ":bnew")
		case 2:
			p.now, p.bmax = moving(p.in, ":now"), moving(p.in, ":bmax")
		}
	}
	p.id.Value = strconv.FormatInt(id, 10)
	switch b, now := req.Bucket, req.Now; bucket {
	case 1:
		p.bmax.Value = strconv.FormatInt(now+min(b.Tau, 0), 10)
		p.bnew.Value = strconv.FormatInt(now+b.T, 10)
	case 2:
		p.now.Value = strconv.FormatInt(now, 10)
		p.bmax.Value = strconv.FormatInt(now+b.Tau, 10)
	}
	return p.in
}

// prepared is an item's input for one bucket variant.
type prepared struct {
	sig                 inputSig
	in                  *dynamodb.UpdateItemInput
	now, bmax, bnew, id *types.AttributeValueMemberN // the values that move with each decision
}

// inputSig is what an input depends on, besides now.
type inputSig struct {
	bucket Bucket
	quota  Quota
	day    string
	kv, pv int64
	all    bool
	tag    string
}

// moving puts a number in the input's values for input to set each time.
func moving(in *dynamodb.UpdateItemInput, name string) *types.AttributeValueMemberN {
	v := &types.AttributeValueMemberN{}
	in.ExpressionAttributeValues[name] = v
	return v
}

func (m *Meter) newInput(req *Request, st *item, day string, bucket int, all bool) *dynamodb.UpdateItemInput {
	names := map[string]string{"#d": store.PrefixDay + day, "#w": store.SlotAttr(m.tag)}
	values := map[string]types.AttributeValue{
		":kv": store.N(req.KeyVersion), ":pv": store.N(req.PlanVersion), ":one": store.N(1), ":tag": store.S(m.tag),
	}
	if b := req.Bucket; b != nil {
		names["#b"] = b.Attr
		if bucket == 2 {
			values[":t"] = store.N(b.T)
		}
	}
	quota := 0
	if q := req.Quota; q != nil {
		quota = 1
		names["#q"] = q.Attr
		names["#e"] = store.PrefixRemaining + day
		values[":qlim"] = store.N(q.Limit)
		values[":rem"] = store.N(q.Limit - 1)
		values[":zero"] = store.N(0)
		if q.Cap != "" {
			quota = 2
			names["#c"] = q.Cap
		}
	}
	returns := types.ReturnValueUpdatedNew
	if all {
		returns = types.ReturnValueAllNew
	}
	expr := expressions[bucket][quota]
	return &dynamodb.UpdateItemInput{
		TableName:                           &m.Table,
		Key:                                 st.key,
		ConditionExpression:                 aws.String(expr[0]),
		UpdateExpression:                    aws.String(expr[1]),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        returns,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// odds is the chance that an instance tries a write now (herd damping).
func (m *Meter) odds(st *item, now int64) float64 {
	if st.odds == 0 || m.DenyTTL <= 0 {
		return 1
	}
	p := st.odds * math.Exp2(float64(now-st.oddsAt)/float64(m.DenyTTL.Microseconds()))
	if p >= 1 {
		st.odds = 0
		return 1
	}
	return p
}

func (m *Meter) random() float64 {
	if m.Rand != nil {
		return m.Rand()
	}
	return rand.Float64()
}

// Day is the UTC day of a µs timestamp, as yyyymmdd.
func Day(now int64) string { return time.UnixMicro(now).UTC().Format("20060102") }

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

func micros(us int64) time.Duration {
	if us < 0 {
		return 0
	}
	if us > int64(maxDuration/time.Microsecond) {
		return maxDuration
	}
	return time.Duration(us) * time.Microsecond
}

const maxDuration = time.Duration(1<<63 - 1)
