// Package alerts is Tollgate's notifier: it reads the changes of meter
// items from the table's DynamoDB stream and puts an EventBridge event
// when a key's quota count in a period reaches a threshold of its plan's
// limit (80 % and 100 % unless the plan's tag tollgate:alerts says
// otherwise). The authorizer does nothing for it: its one write per
// decision is all the notifier reads.
//
// # When a threshold alerts
//
// A threshold alerts once per key, plan, period and arming. A period starts
// armed. An extension (UpdateUsage) re-arms it: each threshold the key's
// count is below right after the extension alerts again when the count gets
// there; the thresholds it is at or above stay quiet (a marker "skipped").
// Nothing else re-arms: a count that goes down (a refund of a write that
// landed after its decision gave up) does not, nor does a change of plan.
//
// The notifier alerts on state, not on edges: whenever a write moves a
// period's count, its arm mark or its plan version, each threshold the
// key's count is at or above, and that has not alerted in the arming,
// alerts. So a write the notifier saw late, twice or out of turn never
// loses an alert, and a lowered limit alerts for the thresholds it puts
// the key past, when UpdateUsagePlan reaches the key's meter item.
//
// For a key on one meter item, the count is the item's, so the alert is
// exact: the event carries the write that reached the threshold. A sharded
// key's count is its shards' total, read (strongly consistent) when the
// notifier has gone through a batch of records of a shard: the event comes
// with the first batch processed after the total reached the threshold,
// and "used" is the total then, at or above the threshold by what the key
// was admitted in between.
//
// # Exactly once
//
// Each alert has a marker item (store.ClaimAlert). Before it puts an event
// the notifier claims the marker with one conditional write, as one
// attempt at one stream record, with a lease; after PutEvents answers it
// marks the alert sent. A claim fails if the marker is sent or skipped, or
// held by another attempt whose lease runs, so concurrent notifiers (a
// sharded key's shards are read by different invocations; a record handed
// out twice) put one event between them: an attempt at another record
// leaves the alert to the holder, and another attempt at the same record
// waits for the holder to finish or its lease to lapse. An attempt whose
// PutEvents fails releases its claim, and its retry claims at once.
// EventBridge has no idempotency key, so "exactly once" is this: one event
// per alert, except when PutEvents took an event and the notifier never
// learnt it (a lost answer, a crash before the marker was written), in
// which case a retry puts a second copy with the same alertId. Never none:
// a record's batch succeeds only once its alerts are sent, a record that
// keeps failing goes to the dead-letter queue after its retries, and its
// replay puts what it missed. docs/alerts.md says all this for users.
package alerts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
	"github.com/tollgate-dev/tollgate/internal/streams"
)

// Notifier turns meter items' changes into quota alerts.
type Notifier struct {
	Table *store.Table
	Bus   Bus
	// BusName is the event bus; "" is the account's default bus.
	BusName string
	// Thresholds are the percentages of plans without the tag
	// tollgate:alerts; empty for none.
	Thresholds []int
	// Lease is how long a claim holds off other owners: longer than an
	// attempt may go on putting the event after it claimed it (PutTimeout),
	// so that an owner still running is never taken over. 0 means
	// DefaultLease.
	Lease time.Duration
	// Streams reads the stream for replays of failed batches.
	Streams streams.API
	Log     *slog.Logger

	mu    sync.Mutex
	plans map[string]*store.Plan
	done  map[string]bool // alerts known sent or skipped
}

// PutTimeout bounds what an attempt does between claiming an alert and
// marking it sent or releasing it: reading the key, and PutEvents with the
// SDK's retries.
const PutTimeout = 10 * time.Second

// DefaultLease is a claim's lease.
const DefaultLease = 3 * PutTimeout

// maxDone bounds the memory of alerts known done; past it, it starts over.
const maxDone = 100_000

// Process handles one batch of stream records, in order. It returns the
// index of the first record whose work is not done, or -1: the batch is
// done up to there, and the rest must be retried.
func (n *Notifier) Process(ctx context.Context, records []events.DynamoDBEventRecord) (failed int, err error) {
	// A sharded key's records are taken together, a run of records of one
	// item at a time, so that reading the other shards costs a read per
	// item and batch rather than per record.
	pending := map[string]*change{}
	var order []string
	flush := func(item string) error {
		c := pending[item]
		delete(pending, item)
		return n.evaluate(ctx, c)
	}
	failed = -1
	attempt := newAttempt()
	for i := range records {
		c, ok := meterChange(i, &records[i])
		if !ok {
			continue
		}
		c.attempt = attempt
		var p *store.Plan
		if p, err = n.plan(ctx, c.planID, c.pv); err != nil {
			failed = i
			break
		}
		if p == nil || p.Quota == nil {
			continue
		}
		if p.ShardCount() == 1 {
			if err = n.evaluateWith(ctx, c, p); err != nil {
				failed = i
				break
			}
			continue
		}
		item := store.ShardPK(c.keyID, c.shard) + " " + c.planID
		if prev, ok := pending[item]; ok {
			if !prev.rearms(c) {
				prev.merge(c)
				continue
			}
			if err = flush(item); err != nil {
				failed = prev.index
				break
			}
		}
		pending[item] = c
		order = append(order, item)
	}
	// What is pending came before the failure, if any: finish it.
	for _, item := range order {
		c, ok := pending[item]
		if !ok || failed >= 0 && c.index > failed {
			continue
		}
		if e := flush(item); e != nil {
			if failed < 0 || c.index < failed {
				failed, err = c.index, e
			}
		}
	}
	return failed, err
}

func (n *Notifier) evaluate(ctx context.Context, c *change) error {
	p, err := n.plan(ctx, c.planID, c.pv)
	if err != nil || p == nil || p.Quota == nil {
		return err
	}
	return n.evaluateWith(ctx, c, p)
}

// evaluateWith alerts for each threshold the key is at or above in each
// period c covers.
func (n *Notifier) evaluateWith(ctx context.Context, c *change, p *store.Plan) error {
	thresholds, err := p.Thresholds(n.Thresholds)
	if err != nil {
		n.log().Error("the plan's alert thresholds cannot be read: it gets none", "usagePlanId", p.ID, "error", err)
		return nil
	}
	if len(thresholds) == 0 {
		return nil
	}
	windows := make([]string, 0, len(c.windows))
	for w := range c.windows {
		windows = append(windows, w)
	}
	slices.Sort(windows)
	for _, w := range windows {
		window, period, ok := plans.ParseWindow(w)
		if !ok || period != p.Quota.Period {
			continue
		}
		limit := p.QuotaLimitIn(window)
		if limit <= 0 {
			continue
		}
		used, mark := int64(0), arm(c.image, w)
		if p.ShardCount() == 1 {
			used, _ = num(c.image, store.PrefixQuota+w)
		} else {
			counts, err := n.Table.QuotaCounts(ctx, c.keyID, p.ID, p.ShardCount(), w)
			if err != nil {
				return err
			}
			consistent := true
			for _, s := range counts {
				used += s.Count
				consistent = consistent && s.Arm == mark
			}
			if !consistent {
				// An extension is on its way through the shards (or this
				// record is older than one): the last shard it reaches
				// brings a record that sees them all alike.
				continue
			}
		}
		// The arm's alerts the key was already past stay quiet.
		if re, ok := c.armed[w]; ok && re == mark {
			for _, pct := range thresholds {
				if re.Used >= plans.ThresholdCount(pct, limit) {
					a := store.Alert{KeyID: c.keyID, PlanID: p.ID, Window: w, Arm: mark.At, Threshold: pct}
					if n.known(a) {
						continue
					}
					if err := n.Table.SkipAlert(ctx, a, store.AlertExpires(window.End)); err != nil {
						return err
					}
					n.remember(a)
				}
			}
		}
		for _, pct := range thresholds {
			if used < plans.ThresholdCount(pct, limit) {
				break
			}
			a := store.Alert{KeyID: c.keyID, PlanID: p.ID, Window: w, Arm: mark.At, Threshold: pct}
			if err := n.alert(ctx, a, c, p, window, used, limit); err != nil {
				return err
			}
		}
	}
	return nil
}

// alert puts an alert's event unless it is done or in other hands.
func (n *Notifier) alert(ctx context.Context, a store.Alert, c *change, p *store.Plan, w plans.Window, used, limit int64) error {
	if n.known(a) {
		return nil
	}
	lease := n.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	owner := c.owner + "/" + c.attempt
	waitUntil := time.Now().Add(lease + time.Second)
	for {
		claim, until, err := n.Table.ClaimAlert(ctx, a, owner, c.owner, lease, store.AlertExpires(w.End))
		switch {
		case err != nil:
			// The claim may have been applied: give it up, if it is ours.
			n.Table.ReleaseAlert(context.WithoutCancel(ctx), a, owner)
			return err
		case claim == store.Done:
			n.remember(a)
			return nil
		case claim == store.Busy:
			// Another record's: its owner puts it, or is retried until it
			// does; if it gave up (its batch went to the dead-letter
			// queue), the first record after the lease takes over.
			n.log().Debug("another record is putting this alert", "alertId", a.ID(), "leaseEnds", until)
			return nil
		case claim == store.Held:
			// Another attempt at this very record: one that crashed, whose
			// lease runs out, or one running beside this (a record handed
			// out twice), which finishes. Wait for either.
			if time.Now().After(waitUntil) {
				return fmt.Errorf("alert %s: another attempt at record %s holds it until %s", a.ID(), c.owner, until.Format(time.RFC3339))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		break
	}
	eventID, err := n.send(ctx, a, c, p, w, used, limit)
	if err != nil {
		// This attempt is over: let the retry claim at once.
		if e := n.Table.ReleaseAlert(context.WithoutCancel(ctx), a, owner); e != nil {
			n.log().Warn("could not release a claim: the retry waits for its lease", "alertId", a.ID(), "error", e)
		}
		return err
	}
	mine, err := n.Table.AlertSent(context.WithoutCancel(ctx), a, owner, eventID)
	if err != nil {
		return err
	}
	if !mine {
		n.log().Warn("a claim outlived its lease and was taken over: the event may be put twice", "alertId", a.ID())
	}
	n.remember(a)
	n.log().Info("quota alert", "alertId", a.ID(), "eventId", eventID, "apiKeyId", a.KeyID, "usagePlanId", p.ID,
		"threshold", a.Threshold, "used", used, "limit", limit, "window", a.Window)
	return nil
}

// send reads the key and puts the alert's event, within PutTimeout.
func (n *Notifier) send(ctx context.Context, a store.Alert, c *change, p *store.Plan, w plans.Window, used, limit int64) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, PutTimeout)
	defer cancel()
	d := &Detail{
		AlertID: a.ID(), APIKeyID: a.KeyID, UsagePlanID: p.ID, UsagePlanName: p.Name,
		Threshold: a.Threshold, Used: used, Limit: limit, Period: p.Quota.Period,
		PeriodStart: PeriodTime(w.Start), PeriodEnd: PeriodTime(w.End),
	}
	k, err := n.Table.Key(ctx, a.KeyID)
	switch {
	case err == nil:
		d.APIKeyName, d.CustomerID = k.Name, k.CustomerID
	case store.IsKind(err, store.NotFound):
		// Deleted since: the alert still happened.
	default:
		return "", err
	}
	return n.put(ctx, d, c.at)
}

// newAttempt names one attempt at a batch, to tell its claims from those
// of another attempt at the same records.
func newAttempt() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// plan returns the plan as of version pv or later, from memory if it has
// it: every change to a plan moves its version and the version on every
// member's meter item, so a record never meets a limit older than its own.
// nil: the plan is gone.
func (n *Notifier) plan(ctx context.Context, id string, pv int64) (*store.Plan, error) {
	n.mu.Lock()
	p, ok := n.plans[id]
	n.mu.Unlock()
	if ok && p.Version >= pv {
		return p, nil
	}
	p, err := n.Table.Plan(ctx, id)
	if store.IsKind(err, store.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read usage plan %s: %w", id, err)
	}
	n.mu.Lock()
	if n.plans == nil {
		n.plans = map[string]*store.Plan{}
	}
	n.plans[id] = p
	n.mu.Unlock()
	return p, nil
}

func (n *Notifier) known(a store.Alert) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done[a.ID()]
}

func (n *Notifier) remember(a store.Alert) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil || len(n.done) >= maxDone {
		n.done = map[string]bool{}
	}
	n.done[a.ID()] = true
}

func (n *Notifier) log() *slog.Logger {
	if n.Log != nil {
		return n.Log
	}
	return slog.New(slog.DiscardHandler)
}
