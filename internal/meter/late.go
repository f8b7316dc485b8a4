package meter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/store"
)

// Writes whose answer is lost. DynamoDB may apply a write and lose the
// answer (a 500 after applying, a reset connection, a timeout); the SDK
// then sends the same write again, and a write the meter gave up on at its
// deadline may still land later. Conditions on ranges (TAT, counters) are
// not idempotent, so each would count a request twice, or count a request
// that was denied.
//
// So every meter write carries an id, and writes it into the instance's own
// slot on the item, w<tag>, on the condition that the slot holds a smaller
// id. Ids grow strictly within an instance (max(last+1, now in ms)), and
// only the instance writes its slot, one decision at a time; so when a
// write fails its condition and the item (ALL_OLD) shows the slot holding
// the write's own id, an earlier copy of this very write was applied, and
// the request was admitted, whatever other instances wrote in between.
// A slot holding a larger id means another instance drew the same tag: the
// meter draws another and tries again. It costs nothing on the fault-free
// path: the same one UpdateItem, and no read.
//
// A write whose decision ended in an error (not a failed condition) may
// still land. If the request was denied for it (fail closed), the meter
// remembers the write, and reconciles it before it next writes that item
// (or after some later decision: one a decision), with one conditional
// write:
//
//   - the slot holds the write's id g and lw (the last admission's tag) is
//     this instance's: it landed and nobody was admitted since, so the token,
//     the quota unit and the day's count are given back, exactly;
//   - the slot holds g, another instance was admitted since: the quota unit
//     and the day's count are given back, not the token. The bucket may have
//     refilled in between, and a token given back then could admit one more
//     than the bucket allows (with a burst of 1, say). Keeping it spent can
//     only admit less. Nor is the quota unit given back if an extension
//     (UpdateUsage, which leaves its time in x<window>) set the count after
//     the write was sent: it may have set it after the write landed;
//   - the slot holds less than g, or nothing: it has not landed, and the
//     write that moves the slot past g makes sure it never will (a fence).
//
// Each of those also moves the slot to a fresh id, so a reconciling write
// applied twice is recognised as the first was. What is not reconciled (the
// instance is not invoked again within half the prune age, or remembers
// more than maxPending) is given up and counted; so usage can exceed
// admissions by at most the writes remembered and never settled: those
// given up, and those an instance still holds when it goes. With
// FAIL_MODE=open the request was allowed, so a write that lands counts it,
// rightly, and nothing is remembered.
//
// Slots accumulate as instances come and go. An instance that sees an item
// whole (ALL_OLD on a failed condition; ALL_NEW, which costs no capacity,
// on its first write in a prune age) and finds pruneAt or more slots of
// others older than the prune age removes them, each on the condition that
// it still holds the id seen.
//
// Not covered, nor counted: two instances that share a tag (odds about
// n²/30,000,000 for n instances writing one item within a prune age) while
// a write of one of them is retried after it landed, or is reconciled after
// the other admitted (a token refunded that should not be). Counted, not
// reconciled: a write that lands after the instance gave up on it, half the
// prune age (30 s by default, against a deadline of a second) after it.

// DefaultPruneAge is the prune age when Meter.PruneAge is zero.
const DefaultPruneAge = time.Minute

const (
	tagChars   = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	tagLen     = 4
	pruneAt    = 8  // stale slots of others that make an instance prune
	maxPending = 64 // writes an instance remembers
)

// LateWrites counts what became of writes whose answer was lost, for the
// decision log.
type LateWrites struct {
	// Pending writes of denied decisions, remembered to be reconciled.
	Pending int
	// Refunded: remembered writes that had landed, given back.
	Refunded int
	// Fenced: remembered writes that had not landed, kept from landing.
	Fenced int
	// Unreconciled: remembered writes given up on (too old, or too many),
	// each of which may have counted a request that was denied.
	Unreconciled int
}

// DrainLateWrites returns the counts since it was last called, and resets them.
func (m *Meter) DrainLateWrites() LateWrites {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.late
	m.late = LateWrites{}
	return l
}

// lateWrite is a write of a denied decision that may have landed.
type lateWrite struct {
	item   string // itemID
	key    map[string]types.AttributeValue
	pk     string
	planID string
	id     int64                   // the write's id
	tag    string                  // the tag it was written under
	at     int64                   // the decision's now, µs
	bucket string                  // the bucket's attribute, "" without one
	t      int64                   // what the write added to the bucket's TAT
	quota  string                  // the quota counter, "" without a quota
	day    string                  // yyyymmdd of the day counter
	sent   map[int64]reconcileKind // reconciling writes whose answer was lost, by id
}

// A reconciling write gives back what a write that landed took (refund),
// or keeps one that has not landed from ever landing (fence).
type reconcileKind uint8

const (
	refund reconcileKind = iota + 1
	fence
)

// giveBack is what a refund gives back, besides the day's count.
type giveBack struct {
	// token: nobody was admitted since the write landed (lw is still this
	// instance's tag), so the bucket is as the write left it.
	token bool
	// quota, and the day's remaining count: no extension (UpdateUsage) set
	// the count since the write was sent, or the count it set would gain one.
	quota bool
}

func itemID(st *item) string { return st.pk + "\x00" + st.planID }

func (m *Meter) pruneAge() time.Duration {
	if m.PruneAge > 0 {
		return m.PruneAge
	}
	return DefaultPruneAge
}

// instanceTag returns the instance's tag, drawing one the first time.
func (m *Meter) instanceTag() string {
	if m.tag == "" {
		m.drawTag()
	}
	return m.tag
}

func (m *Meter) drawTag() {
	if m.Tag != nil {
		m.tag = m.Tag()
		return
	}
	b := make([]byte, tagLen)
	for i := range b {
		b[i] = tagChars[rand.IntN(len(tagChars))]
	}
	m.tag = string(b)
}

// nextID is a write id: larger than every one before it, and near the
// clock in ms, so that it tells a slot's age.
func (m *Meter) nextID(now int64) int64 {
	m.lastID = max(m.lastID+1, now/1000)
	return m.lastID
}

// remember keeps a write of a denied decision for reconciling.
func (m *Meter) remember(st *item, req *Request, id int64, day string) {
	if m.FailOpen {
		return
	}
	if len(m.pending) >= maxPending {
		m.pending = m.pending[1:]
		m.late.Unreconciled++
	}
	e := &lateWrite{item: itemID(st), key: st.key, pk: st.pk, planID: st.planID, id: id, tag: m.tag, at: req.Now, day: day}
	if b := req.Bucket; b != nil {
		e.bucket, e.t = b.Attr, b.T
	}
	if q := req.Quota; q != nil {
		e.quota = q.Attr
	}
	m.pending = append(m.pending, e)
	m.late.Pending++
}

// expire gives up on writes older than half the prune age: their slots may
// be pruned by now, after which nothing tells whether they landed.
func (m *Meter) expire(now int64) {
	limit := (m.pruneAge() / 2).Microseconds()
	m.pending = slices.DeleteFunc(m.pending, func(e *lateWrite) bool {
		if now-e.at > limit {
			m.late.Unreconciled++
			return true
		}
		return false
	})
}

func (m *Meter) pendingFor(st *item) *lateWrite {
	if len(m.pending) == 0 {
		return nil
	}
	id := itemID(st)
	for _, e := range m.pending {
		if e.item == id {
			return e
		}
	}
	return nil
}

// Reconcile reconciles every write this instance remembers, as of now
// (µs). It returns the first error; what it could not reconcile stays
// remembered.
func (m *Meter) Reconcile(ctx context.Context, now int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	var first error
	for _, e := range slices.Clone(m.pending) {
		if _, err := m.reconcile(ctx, e); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Pending is how many writes the instance remembers.
func (m *Meter) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// reconcileSome reconciles up to n remembered writes, oldest first, and
// returns the calls it made. Failures leave them remembered.
func (m *Meter) reconcileSome(ctx context.Context, n int) int {
	calls := 0
	for _, e := range slices.Clone(m.pending[:min(n, len(m.pending))]) {
		if ctx.Err() != nil {
			break
		}
		c, _ := m.reconcile(ctx, e)
		calls += c
	}
	return calls
}

// reconcile settles one remembered write e with conditional writes, each
// of which moves the slot past e.id to a fresh id, and returns the calls
// made. It is idempotent: a reconciling write whose answer is lost is
// recognised the next time by the fresh id it left in the slot.
func (m *Meter) reconcile(ctx context.Context, e *lateWrite) (int, error) {
	// First as if it landed and nothing happened since: the conditions
	// check that, and a failure shows what did happen.
	kind, give := refund, giveBack{token: e.bucket != "", quota: e.quota != ""}
	slot := store.SlotAttr(e.tag)
	for calls := 1; calls <= 4; calls++ {
		f := m.nextID(0)
		_, err := m.DB.UpdateItem(ctx, reconcileInput(&m.Table, e, kind, give, f))
		if err == nil {
			m.settle(e, kind)
			return calls, nil
		}
		var failed *types.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			if e.sent == nil {
				e.sent = map[int64]reconcileKind{}
			}
			e.sent[f] = kind // it may land; the slot will say
			return calls, fmt.Errorf("reconcile write %d to meter %s %s: %w", e.id, e.pk, e.planID, err)
		}
		old := failed.Item
		if old == nil {
			// No item: the write needs kv on it, so it cannot land.
			m.settle(e, fence)
			return calls, nil
		}
		w, ok := store.Int(old, slot)
		switch {
		case ok && w == f:
			// This very write was applied, and sent again (an SDK retry).
			m.settle(e, kind)
			return calls, nil
		case ok && w > e.id:
			// An earlier reconciling write of ours landed; or another
			// instance with this tag wrote, and nothing can be known.
			m.settle(e, e.sent[w]) // 0 if not ours: given up
			return calls, nil
		case ok && w == e.id:
			// It landed (after all, if a fence just failed): give back what
			// the item shows can be given back exactly.
			kind = refund
			give.token = e.bucket != "" && store.Str(old, store.AttrLastWriter) == e.tag
			give.quota = e.quota != "" && store.ReadArm(old, strings.TrimPrefix(e.quota, store.PrefixQuota)).At < e.at
		default:
			kind = fence
		}
	}
	return 4, fmt.Errorf("reconcile write %d to meter %s %s: the item kept changing", e.id, e.pk, e.planID)
}

// settle forgets e, counting what became of it; kind 0 is given up.
func (m *Meter) settle(e *lateWrite, kind reconcileKind) {
	m.pending = slices.DeleteFunc(m.pending, func(p *lateWrite) bool { return p == e })
	switch kind {
	case refund:
		m.late.Refunded++
	case fence:
		m.late.Fenced++
	default:
		m.late.Unreconciled++
	}
}

// reconcileInput is the write that settles e as kind says, moving its slot
// to f.
func reconcileInput(table *string, e *lateWrite, kind reconcileKind, give giveBack, f int64) *dynamodb.UpdateItemInput {
	names := map[string]string{"#w": store.SlotAttr(e.tag)}
	values := map[string]types.AttributeValue{":g": store.N(e.id), ":f": store.N(f)}
	var cond, update string
	switch kind {
	case fence:
		cond = "attribute_exists(pk) AND (attribute_not_exists(#w) OR #w < :g)"
		update = "SET #w = :f"
	default:
		cond = "#w = :g"
		update = "SET #w = :f"
		if give.token {
			cond += " AND lw = :tag"
			values[":tag"] = store.S(e.tag)
			update += ", #b = #b - :t"
			names["#b"], values[":t"] = e.bucket, store.N(e.t)
		}
		update += " ADD #d :less"
		names["#d"], values[":less"] = store.PrefixDay+e.day, store.N(-1)
		if give.quota {
			cond += " AND (attribute_not_exists(#x) OR #x.t < :at)"
			names["#x"], values[":at"] = store.PrefixArm+strings.TrimPrefix(e.quota, store.PrefixQuota), store.N(e.at)
			update += ", #q :less, #e :one"
			names["#q"], names["#e"], values[":one"] = e.quota, store.PrefixRemaining+e.day, store.N(1)
		}
	}
	return &dynamodb.UpdateItemInput{
		TableName:                           table,
		Key:                                 e.key,
		ConditionExpression:                 aws.String(cond),
		UpdateExpression:                    aws.String(update),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// prune removes the slots of other instances older than the prune age from
// an item seen whole, if there are pruneAt of them, each on the condition
// that it still holds what was seen. It returns the calls made. An
// instance prunes an item at most once a prune age.
func (m *Meter) prune(ctx context.Context, st *item, now int64, item map[string]types.AttributeValue) int {
	age := m.pruneAge()
	if st.pruned != 0 && now-st.pruned < age.Microseconds() {
		return 0
	}
	cutoff := now/1000 - age.Milliseconds()
	own := store.SlotAttr(m.tag)
	var stale []string
	for name := range item {
		if store.IsSlot(name) && name != own {
			if w, ok := store.Int(item, name); ok && w < cutoff {
				stale = append(stale, name)
			}
		}
	}
	if len(stale) < pruneAt {
		return 0
	}
	st.pruned = now
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	cond := make([]string, len(stale))
	remove := make([]string, len(stale))
	for i, name := range stale {
		n, v := "#s"+strconv.Itoa(i), ":s"+strconv.Itoa(i)
		names[n], values[v] = name, item[name]
		cond[i], remove[i] = n+" = "+v, n
	}
	_, err := m.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &m.Table,
		Key:                       st.key,
		ConditionExpression:       aws.String(strings.Join(cond, " AND ")),
		UpdateExpression:          aws.String("REMOVE " + strings.Join(remove, ", ")),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		m.report(fmt.Errorf("prune write slots %s %s: %w", st.pk, st.planID, err))
	}
	return 1
}
