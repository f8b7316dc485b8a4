package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/plans"
)

// Usage is what a key's meter item and usage history hold for one plan.
type Usage struct {
	// Assigned reports whether the key is in the plan now.
	Assigned bool
	// Used maps a UTC day (yyyymmdd) to the requests admitted that day.
	Used map[string]int64
	// Remaining maps a UTC day to the quota remaining after its last
	// admission or extension. Days with neither are absent.
	Remaining map[string]int64
	// Periods maps a quota window id (D20250601, W20250602, M202506) to
	// the requests counted in it, for periods not yet cleaned up.
	Periods map[string]int64
}

// Usage reads a key's usage in a plan for the months fromMonth to toMonth
// (yyyymm), merging each meter item with its history items: one Usage per
// shard of the plan, shard 0 first.
func (t *Table) Usage(ctx context.Context, keyID, planID string, shards int, fromMonth, toMonth string) ([]*Usage, error) {
	out := make([]*Usage, max(shards, 1))
	for i := range out {
		u, err := t.shardUsage(ctx, ShardPK(keyID, i), planID, fromMonth, toMonth)
		if err != nil {
			return nil, fmt.Errorf("read usage of key %s in plan %s: %w", keyID, planID, err)
		}
		out[i] = u
	}
	return out, nil
}

func (t *Table) shardUsage(ctx context.Context, pk, planID, fromMonth, toMonth string) (*Usage, error) {
	u := &Usage{Used: map[string]int64{}, Remaining: map[string]int64{}, Periods: map[string]int64{}}
	add := func(item map[string]types.AttributeValue) {
		for name := range item {
			n, ok := Int(item, name)
			switch {
			case !ok:
			case IsDay(name, PrefixDay):
				u.Used[name[1:]] = n
			case IsDay(name, PrefixRemaining):
				u.Remaining[name[1:]] = n
			case strings.HasPrefix(name, PrefixQuota) && len(name) > 2:
				u.Periods[name[len(PrefixQuota):]] = n
			}
		}
	}
	in := &dynamodb.QueryInput{
		TableName:              &t.Name,
		ConsistentRead:         aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": S(pk), ":from": S(HistorySK(planID, fromMonth)), ":to": S(HistorySK(planID, toMonth)),
		},
	}
	if err := t.queryAll(ctx, in, func(item map[string]types.AttributeValue) error { add(item); return nil }); err != nil {
		return nil, fmt.Errorf("history in %s: %w", pk, err)
	}
	// The meter item last: its counters are the newest.
	out, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &t.Name, Key: itemKey(pk, MeterSK(planID)), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("meter in %s: %w", pk, err)
	}
	add(out.Item)
	_, u.Assigned = out.Item[AttrKeyVersion]
	return u, nil
}

// SetRemaining sets the quota remaining in the current period (window) to
// remaining, given that the period allows limit: the period's counter
// becomes limit - remaining, which may be negative to grant more than the
// limit. day (yyyymmdd) records the new remaining for usage reports. A
// sharded plan's shards each get their share of both, and lose any caps
// (see capShards); if a write fails half-way, setting the same number
// again finishes the job.
//
// Each shard also gets the same arm mark (x<window>), which re-arms the
// period's quota alerts: the notifier alerts again for each threshold the
// key's count is below right after the extension, when it gets there.
//
// Each write carries a change token (ut) and is conditional on not
// carrying it yet: a retry of a write that landed fails its condition,
// and reading the token back says it is ours, so requests admitted in
// between are not forgiven by writing the counter twice. It waits while a
// capping has the key's shards frozen; if they stay frozen (a capping cut
// short), the Conflict says to run UpdateUsagePlan, which finishes it. It
// does not settle the plan itself, as key changes do: the usage function,
// which calls it, may read plans and write meters, and nothing else.
func (t *Table) SetRemaining(ctx context.Context, keyID, planID string, shards int, window, day string, limit, remaining int64) error {
	token := newToken()
	arm := armValue(Arm{At: t.now().UnixMicro(), Used: limit - remaining})
	for i, key := range meterKeys(keyID, planID, shards) {
		limit, remaining := plans.Share(limit, i, shards), plans.Share(remaining, i, shards)
		err := retrying(ctx, "set the remaining quota of key "+keyID+" in plan "+planID, func() error {
			_, err := t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName:        &t.Name,
				Key:              key,
				UpdateExpression: aws.String("SET #q = :used, #e = :rem, #ut = :tok, #x = :arm REMOVE #c"),
				ConditionExpression: aws.String("attribute_exists(kv) AND kv > :zero AND " +
					"(attribute_not_exists(#ut) OR #ut <> :tok)"),
				ExpressionAttributeNames: map[string]string{"#q": PrefixQuota + window, "#e": PrefixRemaining + day,
					"#c": PrefixCap + window, "#ut": attrUsageToken, "#x": PrefixArm + window},
				ExpressionAttributeValues: map[string]types.AttributeValue{":used": N(limit - remaining), ":rem": N(remaining),
					":tok": S(token), ":zero": N(0), ":arm": arm},
			})
			if err == nil {
				return nil
			}
			out, rerr := t.DB.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: &t.Name, Key: key, ConsistentRead: aws.Bool(true),
				ProjectionExpression: aws.String("kv, #ut"), ExpressionAttributeNames: map[string]string{"#ut": attrUsageToken},
			})
			switch {
			case rerr == nil && Str(out.Item, attrUsageToken) == token:
				return nil // ours landed; only its answer was lost
			case !isConditionFailed(err) || rerr != nil:
				return fmt.Errorf("set remaining quota of key %s in plan %s: %w", keyID, planID, err)
			}
			switch kv, ok := Int(out.Item, AttrKeyVersion); {
			case !ok:
				return errorf(NotFound, "API key %s is not in usage plan %s", keyID, planID)
			case kv < 0:
				return &frozenError{keyID: keyID, planID: planID}
			}
			return errRetry
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// IsDay reports whether an attribute name is prefix followed by yyyymmdd:
// a day counter of a meter or history item.
func IsDay(name, prefix string) bool {
	if len(name) != len(prefix)+8 || !strings.HasPrefix(name, prefix) {
		return false
	}
	for _, c := range name[len(prefix):] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
