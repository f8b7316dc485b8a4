package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/plans"
)

// Changing a sharded plan's quota. Each shard of a key admits while its
// count is under its share of the limit. Counts drift apart, as requests
// land where they land; that is harmless while the limit stands, since no
// count passes its share. But lower the limit and a shard whose count is
// under its new share admits, however far others went over theirs. So a
// change of limit caps the shards of every key: each may count up to its
// count now plus its part of what the new limit leaves, parts handed out
// only where a shard's share has room for them. The meter checks the cap
// (c<window>) besides the share; caps lapse with their period.
//
// A lowered limit caps the shards before the plan changes, so that
// authorizers still on the old plan admit only what the new one leaves. A
// raised limit caps them after every meter item has the new version, which
// lifts any caps an earlier lowering set; until then a key admits less
// than it may, never more.
//
// Capping needs the counts to stand still between reading them and writing
// the caps, and a hot key's never do. So the shards are frozen first: one
// transaction sets each shard's kv to the negative of the key's version,
// which fails every decision's write (the meter denies, for a moment,
// without caching), and another writes the caps and thaws them. The freeze
// also holds off key changes, which retry.
//
// One operation at a time caps a plan's shards: it first claims the right
// on the plan record (rc, the window, and rt, a token of its own), and
// every freeze and thaw it writes is conditional on the claim being still
// its own. A capping that stops half-way leaves its claim, and keys
// frozen; whoever next settles the plan (see settle.go) takes the claim
// over and caps every key again at the plan's current limit, which thaws
// them. Once the claim is taken over, the old holder can neither freeze
// nor thaw, so the caps that stand are those of the last claim. A key
// change that finds a key frozen for long settles the plan itself.

// quotaNow is the current period's window id and limit of a plan's quota.
func (p *Plan) quotaNow(now time.Time) (window string, limit int64, ok bool) {
	if p.Quota == nil {
		return "", 0, false
	}
	w := p.Quota.Window(now)
	return w.ID, p.QuotaLimitIn(w), true
}

// quotaChange reports whether next changes the current period's quota
// limit of old, a sharded plan: the period, both limits, and whether it
// lowers it.
func quotaChange(old, next *Plan, now time.Time) (window string, from, to int64, lower, ok bool) {
	if old.ShardCount() == 1 {
		return "", 0, 0, false, false
	}
	w1, from, ok1 := old.quotaNow(now)
	w2, to, ok2 := next.quotaNow(now)
	if !ok1 || !ok2 || w1 != w2 || to == from {
		return "", 0, 0, false, false
	}
	return w1, from, to, to < from, true
}

// frozenError is a key change meeting a key whose shards are frozen. It
// is retried (see keyRetrying).
type frozenError struct{ keyID, planID string }

func (e *frozenError) Error() string {
	return fmt.Sprintf("API key %s is frozen by a change of usage plan %s's quota that has not finished; run UpdateUsagePlan on %s (with no patchOperations to change nothing) to finish it", e.keyID, e.planID, e.planID)
}

func (e *frozenError) Unwrap() error { return errRetry }

// errCapLost is a capping whose claim another operation took over.
var errCapLost = errors.New("another operation took over capping the plan's shards")

// claimCapping claims the capping of p's shards in window, over whatever
// claim p holds now, and records the claim's token in p.RecapToken.
func (t *Table) claimCapping(ctx context.Context, p *Plan, window string) error {
	token := newToken()
	cond := "pv = :pv AND attribute_not_exists(rt)"
	values := map[string]types.AttributeValue{":pv": N(p.Version), ":w": S(window), ":rt": S(token)}
	if p.RecapToken != "" {
		cond = "pv = :pv AND rt = :seen"
		values[":seen"] = S(p.RecapToken)
	}
	_, err := t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &t.Name, Key: itemKey(planPK(p.ID), skPlan),
		UpdateExpression:    aws.String("SET rc = :w, rt = :rt"),
		ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
	})
	if err != nil {
		cur, rerr := t.Plan(ctx, p.ID)
		switch {
		case rerr == nil && cur.RecapToken == token:
			// Ours landed; a retry of it failed its condition.
		case isConditionFailed(err):
			return errRetry
		default:
			return fmt.Errorf("claim the capping of plan %s: %w", p.ID, err)
		}
	}
	p.Recap, p.RecapToken = window, token
	return nil
}

// finishCapping caps the shards of p's members in p.Recap at p's current
// limit, under a claim of its own, and then drops the claim.
func (t *Table) finishCapping(ctx context.Context, p *Plan, members []string) error {
	window := p.Recap
	if err := t.claimCapping(ctx, p, window); err != nil {
		return err
	}
	limit := int64(0) // a quota gone, or a period over: its caps no longer matter
	if w, l, ok := p.quotaNow(t.now()); ok && w == window {
		limit = l
	}
	if err := t.capAll(ctx, p, members, window, limit); err != nil {
		return err
	}
	_, err := t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &t.Name, Key: itemKey(planPK(p.ID), skPlan),
		UpdateExpression:          aws.String("REMOVE rc, rt"),
		ConditionExpression:       aws.String("rt = :rt"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":rt": S(p.RecapToken)},
	})
	// A failed condition is our own removal retried, or a newer claim,
	// which its holder finishes.
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("finish capping plan %s: %w", p.ID, err)
	}
	p.Recap, p.RecapToken = "", ""
	return nil
}

// capAll caps the shards of every member of a sharded plan under the
// plan's claim p.RecapToken; see capShards.
func (t *Table) capAll(ctx context.Context, p *Plan, members []string, window string, limit int64) error {
	err := forEach(ctx, members, func(keyID string) error {
		return t.capShards(ctx, keyID, p, window, limit)
	})
	if errors.Is(err, errCapLost) {
		return fmt.Errorf("usage plan %s: %w", p.ID, errRetry)
	}
	return err
}

// capShards caps a key's shards in window so that together they admit what
// limit leaves of their counts, each no further than its share of limit.
func (t *Table) capShards(ctx context.Context, keyID string, p *Plan, window string, limit int64) error {
	n := p.ShardCount()
	keys := meterKeys(keyID, p.ID, n)
	// Freezing and thawing are ours only while the claim is.
	owner := types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		Key:                       itemKey(planPK(p.ID), skPlan),
		ConditionExpression:       aws.String("rt = :rt"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":rt": S(p.RecapToken)},
	}}
	// ownerFailed reads a cancelled transaction whose last item is owner.
	ownerFailed := func(failed []bool) bool { return len(failed) > 0 && failed[len(failed)-1] }
	return retrying(ctx, "cap the meter of key "+keyID, func() error {
		first, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: &t.Name, Key: keys[0], ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String(AttrKeyVersion),
		})
		if err != nil {
			return fmt.Errorf("read meter of key %s: %w", keyID, err)
		}
		kv, ok := Int(first.Item, AttrKeyVersion)
		if !ok {
			return nil // no longer assigned
		}
		frozen := -kv
		if kv < 0 { // an earlier capping stopped half-way
			kv, frozen = -kv, kv
		}
		items := make([]types.TransactWriteItem, 0, n+1)
		for _, key := range keys {
			items = append(items, types.TransactWriteItem{Update: &types.Update{
				Key:                       key,
				UpdateExpression:          aws.String("SET kv = :frozen"),
				ConditionExpression:       aws.String("kv = :kv OR kv = :frozen"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":kv": N(kv), ":frozen": N(frozen)},
			}})
		}
		failed, err := t.transactReasons(ctx, append(items, owner))
		if ownerFailed(failed) {
			return errCapLost
		}
		if err != nil {
			return err // errRetry: the key changed; read it again
		}
		counter := PrefixQuota + window
		counts := make([]int64, n)
		rooms := make([]int64, n)
		var used int64
		for i, key := range keys {
			out, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: &t.Name, Key: key, ConsistentRead: aws.Bool(true),
				ProjectionExpression: aws.String("#q"), ExpressionAttributeNames: map[string]string{"#q": counter},
			})
			if err != nil {
				return fmt.Errorf("read meter of key %s: %w (it stays frozen until the plan is settled)", keyID, err)
			}
			counts[i], _ = Int(out.Item, counter)
			rooms[i] = max(plans.Share(limit, i, n)-counts[i], 0)
			used += counts[i]
		}
		parts := fill(max(limit-used, 0), rooms)
		// The count must exist for the meter's "#q < #c" to hold.
		items = items[:0]
		for i, key := range keys {
			items = append(items, types.TransactWriteItem{Update: &types.Update{
				Key:                       key,
				UpdateExpression:          aws.String("SET kv = :kv, #c = :c, #q = if_not_exists(#q, :zero)"),
				ConditionExpression:       aws.String("kv = :frozen"),
				ExpressionAttributeNames:  map[string]string{"#c": PrefixCap + window, "#q": counter},
				ExpressionAttributeValues: map[string]types.AttributeValue{":kv": N(kv), ":frozen": N(frozen), ":c": N(counts[i] + parts[i]), ":zero": N(0)},
			}})
		}
		failed, err = t.transactReasons(ctx, append(items, owner))
		if ownerFailed(failed) {
			return errCapLost
		}
		if err != nil && !errors.Is(err, errRetry) {
			return fmt.Errorf("thaw the meter of key %s: %w (it stays frozen until the plan is settled)", keyID, err)
		}
		return err // errRetry: an earlier holder's thaw got in; start again
	})
}

// fill hands out total in parts no bigger than rooms, as evenly as rooms
// allow: the smallest rooms fill first, and the rest is shared among the
// others. If the rooms hold less than total, each is filled.
func fill(total int64, rooms []int64) []int64 {
	parts := make([]int64, len(rooms))
	order := make([]int, len(rooms))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rooms[a], rooms[b]) })
	for k, i := range order {
		left := int64(len(order) - k)
		parts[i] = min(rooms[i], (total+left-1)/left)
		total -= parts[i]
	}
	return parts
}
