package store

import (
	"cmp"
	"context"
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
// also holds off key changes, which retry. A capping that stops half-way
// leaves the key frozen until the plan update that started it runs again.

// quotaNow is the current period's window id and limit of a plan's quota.
func (p *Plan) quotaNow(now time.Time) (window string, limit int64, ok bool) {
	if p.Quota == nil {
		return "", 0, false
	}
	w := p.Quota.Window(now)
	var since time.Time
	if p.QuotaStart > 0 {
		since = time.UnixMicro(p.QuotaStart)
	}
	return w.ID, p.Quota.LimitIn(w, since), true
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

// capAll caps the shards of every member of a sharded plan; see capShards.
func (t *Table) capAll(ctx context.Context, p *Plan, members []string, window string, limit int64) error {
	return forEach(ctx, members, func(keyID string) error {
		return t.capShards(ctx, keyID, p.ID, p.ShardCount(), window, limit)
	})
}

// capShards caps a key's shards in window so that together they admit what
// limit leaves of their counts, each no further than its share of limit.
func (t *Table) capShards(ctx context.Context, keyID, planID string, n int, window string, limit int64) error {
	keys := meterKeys(keyID, planID, n)
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
	err = retrying(ctx, "freeze the meter of key "+keyID, func() error {
		items := make([]types.TransactWriteItem, n)
		for i, key := range keys {
			items[i] = types.TransactWriteItem{Update: &types.Update{
				Key:                       key,
				UpdateExpression:          aws.String("SET kv = :frozen"),
				ConditionExpression:       aws.String("kv = :kv OR kv = :frozen"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":kv": N(kv), ":frozen": N(frozen)},
			}}
		}
		return t.transact(ctx, items)
	})
	if err != nil {
		return err
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
			return fmt.Errorf("read meter of key %s: %w (it stays frozen until the update is run again)", keyID, err)
		}
		counts[i], _ = Int(out.Item, counter)
		rooms[i] = max(plans.Share(limit, i, n)-counts[i], 0)
		used += counts[i]
	}
	parts := fill(max(limit-used, 0), rooms)
	// The count must exist for the meter's "#q < #c" to hold.
	items := make([]types.TransactWriteItem, n)
	for i, key := range keys {
		items[i] = types.TransactWriteItem{Update: &types.Update{
			Key:                       key,
			UpdateExpression:          aws.String("SET kv = :kv, #c = :c, #q = if_not_exists(#q, :zero)"),
			ConditionExpression:       aws.String("kv = :frozen"),
			ExpressionAttributeNames:  map[string]string{"#c": PrefixCap + window, "#q": counter},
			ExpressionAttributeValues: map[string]types.AttributeValue{":kv": N(kv), ":frozen": N(frozen), ":c": N(counts[i] + parts[i]), ":zero": N(0)},
		}}
	}
	if err := t.transact(ctx, items); err != nil {
		return fmt.Errorf("thaw the meter of key %s: %w (run the update again to finish)", keyID, err)
	}
	return nil
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
