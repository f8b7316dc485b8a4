package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/plans"
)

// VerifyPlan checks that a settled plan and its keys agree, and describes
// each disagreement: the plan is settled; it counts its members right;
// every member holds a claim from it on each of its stages and none on
// another; every member's meter items carry the key's version and the
// plan's. A plan that is gone must have left no members. The fault tests
// run it after every operation.
func (t *Table) VerifyPlan(ctx context.Context, planID string) ([]string, error) {
	var bad []string
	problem := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	members, err := t.PlanMembers(ctx, planID)
	if err != nil {
		return nil, err
	}
	p, err := t.Plan(ctx, planID)
	if IsKind(err, NotFound) {
		if len(members) > 0 {
			problem("deleted plan %s still lists keys %v", planID, members)
		}
		return bad, nil
	}
	if err != nil {
		return nil, err
	}
	if p.unsettled() {
		problem("plan %s is unsettled: synced to %d of version %d, capping %q", planID, p.Synced, p.Version, p.Recap)
	}
	if int64(len(members)) != p.Keys {
		problem("plan %s counts %d keys and lists %d", planID, p.Keys, len(members))
	}
	for _, id := range members {
		k, err := t.Key(ctx, id)
		if IsKind(err, NotFound) {
			problem("plan %s lists key %s, which does not exist", planID, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, s := range p.APIStages {
			if holder := k.Stages[s.Key()]; holder != planID {
				problem("key %s in plan %s has no claim from it on %s (held by %q)", id, planID, s.Key(), holder)
			}
		}
		for stage, holder := range k.Stages {
			if holder == planID && !p.hasStage(stage) {
				problem("key %s holds a claim from plan %s on %s, which the plan lacks", id, planID, stage)
			}
		}
		items, err := t.meterItems(ctx, id, planID, p.ShardCount())
		if err != nil {
			return nil, err
		}
		for i, item := range items {
			kv, _ := Int(item, AttrKeyVersion)
			pv, _ := Int(item, AttrPlanVersion)
			if kv != k.Version || pv != p.Version {
				problem("key %s, plan %s, shard %d: kv %d pv %d, want kv %d pv %d", id, planID, i, kv, pv, k.Version, p.Version)
			}
		}
	}
	return bad, nil
}

// VerifyKey checks a key's side, and describes each disagreement: its
// value's hash (and its previous value's, after a rotation) and catalog
// entry point to it; it counts its plans right;
// every plan it is in lists it, and its meter items there carry its
// version (none frozen); every stage claim it holds names a plan that has
// the stage and the key. A key that is gone must have left nothing.
func (t *Table) VerifyKey(ctx context.Context, keyID string) ([]string, error) {
	var bad []string
	problem := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	k, err := t.Key(ctx, keyID)
	if IsKind(err, NotFound) {
		pks := []string{KeyPK(keyID)}
		for i := range plans.MaxShards {
			pks = append(pks, ShardPK(keyID, i))
		}
		for _, pk := range pks {
			out, err := t.DB.Query(ctx, &dynamodb.QueryInput{
				TableName: &t.Name, ConsistentRead: aws.Bool(true), Select: types.SelectCount,
				KeyConditionExpression:    aws.String("pk = :pk"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": S(pk)},
			})
			if err != nil {
				return nil, err
			}
			if out.Count > 0 {
				problem("deleted key %s left %d item(s) under %s", keyID, out.Count, pk)
			}
		}
		return bad, nil
	}
	if err != nil {
		return nil, err
	}
	if id, err := t.KeyIDByHash(ctx, k.Hash); id != keyID {
		problem("key %s: its value's hash points to %q (%v)", keyID, id, err)
	}
	if k.PreviousHash != "" {
		if id, err := t.KeyIDByHash(ctx, k.PreviousHash); id != keyID {
			problem("key %s: its previous value's hash points to %q (%v)", keyID, id, err)
		}
	}
	catalog, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &t.Name, Key: itemKey(pkCatalog, catalogKey+keyID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	if catalog.Item == nil {
		problem("key %s is not in the catalog", keyID)
	}
	refs, err := t.assignedPlans(ctx, keyID)
	if err != nil {
		return nil, err
	}
	if k.Plans != len(refs) {
		problem("key %s counts %d plans and is in %d", keyID, k.Plans, len(refs))
	}
	in := map[string]bool{}
	for _, m := range refs {
		in[m.planID] = true
		if m.version < 0 {
			problem("key %s is frozen in plan %s", keyID, m.planID)
		}
		members, err := t.PlanMembers(ctx, m.planID)
		if err != nil {
			return nil, err
		}
		listed := false
		for _, id := range members {
			listed = listed || id == keyID
		}
		if !listed {
			problem("key %s has a meter in plan %s, which does not list it", keyID, m.planID)
		}
		items, err := t.meterItems(ctx, keyID, m.planID, m.shards)
		if err != nil {
			return nil, err
		}
		for i, item := range items {
			if kv, _ := Int(item, AttrKeyVersion); kv != k.Version {
				problem("key %s, plan %s, shard %d: kv %d, want %d", keyID, m.planID, i, kv, k.Version)
			}
		}
	}
	for stage, holder := range k.Stages {
		p, err := t.Plan(ctx, holder)
		switch {
		case IsKind(err, NotFound):
			problem("key %s holds %s for plan %s, which does not exist", keyID, stage, holder)
		case err != nil:
			return nil, err
		case !p.hasStage(stage):
			problem("key %s holds %s for plan %s, which lacks it", keyID, stage, holder)
		case !in[holder]:
			problem("key %s holds %s for plan %s, which it is not in", keyID, stage, holder)
		}
	}
	return bad, nil
}

// meterItems reads every shard's meter item of a key in a plan.
func (t *Table) meterItems(ctx context.Context, keyID, planID string, shards int) ([]map[string]types.AttributeValue, error) {
	var out []map[string]types.AttributeValue
	for _, key := range meterKeys(keyID, planID, shards) {
		got, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &t.Name, Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, err
		}
		out = append(out, got.Item)
	}
	return out, nil
}
