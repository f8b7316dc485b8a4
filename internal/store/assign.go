package store

import (
	"context"

	"github.com/tollgate-dev/tollgate/internal/plans"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Assign puts a key in a plan. It claims each of the plan's stages for the
// key, so a second plan for a stage the key already has is a Conflict that
// names the plan holding it. Of two racing assignments, one wins.
//
// It is one transaction, whose SDK retries are idempotent. Assigning a key
// that is already in the plan succeeds, and repairs its stage claims, so
// that a call repeated after a lost answer converges.
func (t *Table) Assign(ctx context.Context, planID, keyID string) error {
	return t.keyRetrying(ctx, "assign API key "+keyID+" to usage plan "+planID, func() error {
		p, err := t.Plan(ctx, planID)
		if err != nil {
			return err
		}
		if p.unsettled() {
			if err := t.settle(ctx, p); err != nil {
				return err
			}
		}
		c, err := t.beginKeyChange(ctx, keyID)
		if err != nil {
			return err
		}
		for _, m := range c.meters {
			if m.planID == planID {
				return t.syncMember(ctx, p, keyID, &holderCache{t: t, plans: map[string]*Plan{}})
			}
		}
		if len(c.meters) >= MaxPlansPerKey {
			return errorf(LimitExceeded, "API key %s is already in %d usage plans, the most one key may have: remove it from one first", keyID, MaxPlansPerKey)
		}
		shards := p.ShardCount()
		if n := meterItems(c.meters); n+shards > MaxMeterItems {
			return errorf(LimitExceeded, "API key %s has %d meter items in its usage plans and usage plan %s needs %d more (tag %s); a key may have at most %d: remove it from a sharded plan first", keyID, n, planID, shards, plans.ShardTag, MaxMeterItems)
		}
		holders := &holderCache{t: t, plans: map[string]*Plan{}}
		var claims []types.TransactWriteItem
		for _, s := range p.APIStages {
			replace, err := holders.check(ctx, c.key, s.Key(), planID)
			if err != nil {
				return err
			}
			claims = append(claims, types.TransactWriteItem{Put: claimPut(keyID, s.Key(), planID, replace)})
		}
		c.key.Plans = len(c.meters) + 1
		items, err := c.items(t.now().Unix())
		if err != nil {
			return err
		}
		// The meter items may exist from an earlier assignment: their
		// counters carry on, so leaving and rejoining a plan does not reset
		// a quota.
		for i, key := range meterKeys(keyID, planID, shards) {
			set, values := "SET kv = :kv, pv = :pv", map[string]types.AttributeValue{":kv": N(c.key.Version), ":pv": N(p.Version)}
			if i == 0 && shards > 1 {
				set, values[":ns"] = set+", ns = :ns", N(int64(shards))
			}
			items = append(items, types.TransactWriteItem{Update: &types.Update{
				Key:                       key,
				UpdateExpression:          aws.String(set),
				ConditionExpression:       aws.String("attribute_not_exists(kv)"),
				ExpressionAttributeValues: values,
			}})
		}
		member := itemKey(planPK(planID), skMember+keyID)
		items = append(items,
			types.TransactWriteItem{Put: &types.Put{Item: member}},
			types.TransactWriteItem{Update: &types.Update{
				Key:                       itemKey(planPK(planID), skPlan),
				UpdateExpression:          aws.String("SET nk = nk + :one, ae = ae + :one"),
				ConditionExpression:       aws.String("pv = :pv"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":one": N(1), ":pv": N(p.Version)},
			}},
		)
		return t.transact(ctx, append(items, claims...))
	})
}

// Unassign takes a key out of a plan and releases the stages the plan held
// for it. The meter item stays, without kv, for usage history; an authorizer
// that still routes the key to the plan fails its write on the missing kv.
//
// It is one transaction, whose SDK retries are idempotent. Taking out a
// key that is not in the plan succeeds, and releases any claim the plan
// still holds for it, so that a call repeated after a lost answer
// converges.
func (t *Table) Unassign(ctx context.Context, planID, keyID string) error {
	return t.keyRetrying(ctx, "remove API key "+keyID+" from usage plan "+planID, func() error {
		c, err := t.beginKeyChange(ctx, keyID)
		if err != nil {
			return err
		}
		var meter *meterRef
		for i := range c.meters {
			if c.meters[i].planID == planID {
				meter = &c.meters[i]
			}
		}
		if meter == nil {
			for stage, holder := range c.key.Stages {
				if holder == planID {
					if err := t.releaseClaim(ctx, planID, 0, keyID, stage); err != nil {
						return err
					}
				}
			}
			return nil
		}
		c.skip = planID
		c.key.Plans = len(c.meters) - 1
		items, err := c.items(t.now().Unix())
		if err != nil {
			return err
		}
		for _, key := range meter.keys(keyID) {
			items = append(items, types.TransactWriteItem{Update: &types.Update{
				Key:                       key,
				UpdateExpression:          aws.String("REMOVE kv, pv"),
				ConditionExpression:       aws.String("kv = :old"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":old": N(meter.version)},
			}})
		}
		items = append(items,
			types.TransactWriteItem{Delete: &types.Delete{Key: itemKey(planPK(planID), skMember+keyID)}},
			planMembership(planID, -1),
		)
		for stage, holder := range c.key.Stages {
			if holder == planID {
				items = append(items, types.TransactWriteItem{Delete: &types.Delete{
					Key:                       itemKey(KeyPK(keyID), claimSK(stage)),
					ConditionExpression:       aws.String("#plan = :plan"),
					ExpressionAttributeNames:  map[string]string{"#plan": attrPlan},
					ExpressionAttributeValues: map[string]types.AttributeValue{":plan": S(planID)},
				}})
			}
		}
		return t.transact(ctx, items)
	})
}

// planMembership counts a key in or out of a plan and moves its epoch.
func planMembership(planID string, delta int64) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{
		Key:                       itemKey(planPK(planID), skPlan),
		UpdateExpression:          aws.String("SET nk = nk + :d, ae = ae + :one"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":d": N(delta), ":one": N(1)},
	}}
}
