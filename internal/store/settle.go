package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/plans"
)

// Settling a plan. A change to a plan is several writes: stage claims for
// its keys, the plan record, every key's meter items, the shards' caps,
// and the record's Synced. A Lambda that times out or crashes can stop
// anywhere between them, and any write can be applied with its answer
// lost. So each step is written to be repeated, and settle runs them all
// for the plan as it stands:
//
//   - every member's meter items reach the plan's version;
//   - every member holds a claim from the plan on each of its stages, and
//     none on a stage it lacks;
//   - a capping of the shards that an operation claimed (rc, rt) is taken
//     over and finished at the plan's current limit, which thaws every key
//     it froze;
//   - Synced reaches Version.
//
// Claims change only while the plan is still at the version being settled
// (a condition on the plan in the same transaction), so a settle that
// fell behind a newer change of the plan cannot undo that change's
// claims. A claim released under an update that is about to land is made
// again by that update's own settle.
//
// UpdatePlan and Assign settle an unsettled plan first, and UpdatePlan
// settles after its own change too, whether or not it changed anything:
// a change that changes nothing is therefore the repair of last resort,
// UpdateUsagePlan with no patch operations. A key change that finds the
// key frozen for long settles the plan that froze it (keyRetrying).

// SettlePlan finishes whatever an earlier operation left unfinished on a
// plan, and repairs its keys' stage claims, and returns the plan.
func (t *Table) SettlePlan(ctx context.Context, id string) (*Plan, error) {
	return t.UpdatePlan(ctx, id, func(*plans.Plan) error { return nil })
}

// settle brings the plan's keys to p and marks p synced; see above. p is
// the plan as last read or written, and is updated to match.
func (t *Table) settle(ctx context.Context, p *Plan) error {
	members, err := t.PlanMembers(ctx, p.ID)
	if err != nil {
		return err
	}
	holders := &holderCache{t: t, plans: map[string]*Plan{}}
	err = forEach(ctx, members, func(keyID string) error { return t.syncMember(ctx, p, keyID, holders) })
	if err != nil {
		return err
	}
	if p.Recap != "" {
		if err := t.finishCapping(ctx, p, members); err != nil {
			return err
		}
	}
	_, err = t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &t.Name, Key: itemKey(planPK(p.ID), skPlan),
		UpdateExpression:          aws.String("SET ps = :pv"),
		ConditionExpression:       aws.String("ps < :pv"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pv": N(p.Version)},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("mark plan %s synced: %w", p.ID, err)
	}
	p.Synced = max(p.Synced, p.Version)
	return nil
}

// syncMember brings one member's meter items to p's version and its stage
// claims to p's stages.
func (t *Table) syncMember(ctx context.Context, p *Plan, keyID string, holders *holderCache) error {
	for _, key := range meterKeys(keyID, p.ID, p.ShardCount()) {
		_, err := t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &t.Name, Key: key,
			UpdateExpression:          aws.String("SET pv = :pv"),
			ConditionExpression:       aws.String("pv < :pv"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pv": N(p.Version)},
		})
		if err != nil && !isConditionFailed(err) {
			return fmt.Errorf("sync meter of key %s: %w", keyID, err)
		}
	}
	k, err := t.Key(ctx, keyID)
	if IsKind(err, NotFound) {
		return nil // deleted since the members were listed
	}
	if err != nil {
		return err
	}
	for _, s := range p.APIStages {
		if k.Stages[s.Key()] == p.ID {
			continue
		}
		replace, err := holders.check(ctx, k, s.Key(), p.ID)
		if err != nil {
			if IsKind(err, Conflict) {
				return errorf(Conflict, "%s. Usage plan %s covers that stage too and has the key: remove the key from one of the two plans (DeleteUsagePlanKey), then run UpdateUsagePlan on %s again", err.Error(), p.ID, p.ID)
			}
			return err
		}
		if _, err := t.putClaim(ctx, keyID, s.Key(), p.ID, p.Version, replace); err != nil {
			return err
		}
	}
	for stage, holder := range k.Stages {
		if holder == p.ID && !p.hasStage(stage) {
			if err := t.releaseClaim(ctx, p.ID, p.Version, keyID, stage); err != nil {
				return err
			}
		}
	}
	return nil
}
