package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/plans"
)

// Plan is a usage plan's record.
type Plan struct {
	plans.Plan
	// Version moves with every change to the plan. Meter items copy it
	// (pv), so an authorizer holding an older plan fails its next write.
	Version int64 `json:"pv"`
	// Synced is the Version every member's meter item has reached. It lags
	// Version only while UpdatePlan fans out, or after a crash in between;
	// the next change to the plan finishes the job first.
	Synced int64 `json:"ps"`
	// Keys counts assigned keys; Epoch moves with every assignment and
	// removal, so that a plan change and an assignment cannot interleave.
	Keys  int64 `json:"nk"`
	Epoch int64 `json:"ae"`
	// QuotaStart is when the quota was set, in µs since the epoch: the
	// quota's offset applies to the period containing it.
	QuotaStart int64 `json:"qs,omitempty"`
	// Shards is how many meter items each key's usage is spread over
	// (plans.Shards); 0 means 1. It never changes.
	Shards int `json:"ns,omitempty"`
	// Recap is the quota window whose shards the sync caps, after a change
	// of a sharded plan's quota limit (see capShards).
	Recap string `json:"rc,omitempty"`
}

// ShardCount is Shards, at least 1.
func (p *Plan) ShardCount() int { return max(1, p.Shards) }

// CreatePlan stores a new plan.
func (t *Table) CreatePlan(ctx context.Context, p *Plan) error {
	p.Version, p.Synced, p.Keys, p.Epoch = 1, 1, 0, 0
	if p.Quota != nil {
		p.QuotaStart = t.now().UnixMicro()
	}
	rec, err := marshal(p, planPK(p.ID), skPlan)
	if err != nil {
		return fmt.Errorf("create plan %s: %w", p.ID, err)
	}
	err = t.transact(ctx, []types.TransactWriteItem{
		{Put: &types.Put{Item: rec, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: &types.Put{Item: itemKey(pkCatalog, catalogPlan+p.ID)}},
	})
	if err == errRetry {
		return errorf(Conflict, "usage plan %s already exists", p.ID)
	}
	if err != nil {
		return fmt.Errorf("create plan %s: %w", p.ID, err)
	}
	return nil
}

// Plan loads a plan, strongly consistent.
func (t *Table) Plan(ctx context.Context, id string) (*Plan, error) {
	out, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &t.Name, Key: itemKey(planPK(id), skPlan), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get plan %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, errorf(NotFound, "usage plan %s not found", id)
	}
	p := new(Plan)
	if err := unmarshal(out.Item, p); err != nil {
		return nil, fmt.Errorf("decode plan %s: %w", id, err)
	}
	return p, nil
}

// PlanMembers returns the ids of the keys assigned to a plan.
func (t *Table) PlanMembers(ctx context.Context, planID string) ([]string, error) {
	var ids []string
	in := prefixQuery(planPK(planID), skMember)
	in.ProjectionExpression = aws.String("sk")
	err := t.queryAll(ctx, in, func(item map[string]types.AttributeValue) error {
		ids = append(ids, strings.TrimPrefix(Str(item, AttrSK), skMember))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys of plan %s: %w", planID, err)
	}
	return ids, nil
}

// UpdatePlan applies change to a plan and then brings every member's meter
// item to the new version, so that authorizers holding the old plan fail
// their next write and reload it. Stages the change adds are claimed for
// every member first; if a member already has another plan for one of them,
// nothing changes and the Conflict names that plan. change may run more than
// once under concurrency.
func (t *Table) UpdatePlan(ctx context.Context, id string, change func(*plans.Plan) error) (*Plan, error) {
	var next *Plan
	var removed []string
	err := retrying(ctx, "update usage plan "+id, func() error {
		old, err := t.Plan(ctx, id)
		if err != nil {
			return err
		}
		if old.Synced < old.Version {
			if err := t.syncPlan(ctx, old, nil); err != nil {
				return err
			}
		}
		p := *old
		p.Plan = clonePlan(old.Plan)
		if err := change(&p.Plan); err != nil {
			return err
		}
		if p.Quota != nil && (old.Quota == nil || old.Quota.Period != p.Quota.Period) {
			p.QuotaStart = t.now().UnixMicro()
		}
		if p.Quota == nil {
			p.QuotaStart = 0
		}
		p.Version = old.Version + 1
		added := stageDiff(p.APIStages, old.APIStages)
		removed = stageDiff(old.APIStages, p.APIStages)
		members, err := t.PlanMembers(ctx, id)
		if err != nil {
			return err
		}
		claimed, err := t.claimStages(ctx, id, members, added)
		if err != nil {
			t.releaseClaims(ctx, id, claimed)
			return err
		}
		undo := func() { t.releaseClaims(ctx, id, claimed) }
		p.Recap = ""
		if window, from, to, lower, ok := quotaChange(old, &p, t.now()); ok && lower {
			// Cap the shards at the new limit before any authorizer can
			// hold the new plan, and hold the old plan's to it too.
			if err := t.capAll(ctx, old, members, window, to); err != nil {
				undo()
				return err
			}
			undo = func() {
				t.releaseClaims(ctx, id, claimed)
				t.capAll(ctx, old, members, window, from)
			}
		} else if ok {
			// A raise: lift the caps once every meter item has the new plan.
			p.Recap = window
		}
		rec, err := marshal(&p, planPK(id), skPlan)
		if err != nil {
			undo()
			return err
		}
		_, err = t.DB.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &t.Name, Item: rec,
			ConditionExpression:       aws.String("pv = :pv AND ae = :ae"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pv": N(old.Version), ":ae": N(old.Epoch)},
		})
		if err != nil {
			undo()
			if isConditionFailed(err) {
				return errRetry
			}
			return fmt.Errorf("update plan %s: %w", id, err)
		}
		next = &p
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := t.syncPlan(ctx, next, removed); err != nil {
		return nil, fmt.Errorf("usage plan %s changed, but not every key saw it yet (run the update again to finish): %w", id, err)
	}
	next.Synced = next.Version
	return next, nil
}

// DeletePlan deletes a plan that has no keys and no stages left.
func (t *Table) DeletePlan(ctx context.Context, id string) error {
	p, err := t.Plan(ctx, id)
	if err != nil {
		return err
	}
	if p.Keys > 0 {
		return errorf(Conflict, "usage plan %s still has %d API key(s): remove them with DeleteUsagePlanKey first", id, p.Keys)
	}
	if len(p.APIStages) > 0 {
		return errorf(Conflict, "usage plan %s is still associated with API stages: remove them with UpdateUsagePlan (op remove, path /apiStages, value apiId:stage) first", id)
	}
	err = t.transact(ctx, []types.TransactWriteItem{
		{Delete: &types.Delete{Key: itemKey(planPK(id), skPlan),
			ConditionExpression:       aws.String("nk = :zero AND pv = :pv"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":zero": N(0), ":pv": N(p.Version)}}},
		{Delete: &types.Delete{Key: itemKey(pkCatalog, catalogPlan+id)}},
	})
	if err == errRetry {
		return errorf(Conflict, "usage plan %s changed while being deleted: check it and try again", id)
	}
	return err
}

// syncPlan moves every member's meter item to p.Version and releases the
// members' claims on the removed stages. Each step is idempotent, so an
// interrupted sync is finished by running it again. A claim left behind is
// harmless: whoever meets it checks that its plan still has the stage.
func (t *Table) syncPlan(ctx context.Context, p *Plan, removed []string) error {
	members, err := t.PlanMembers(ctx, p.ID)
	if err != nil {
		return err
	}
	err = forEach(ctx, members, func(keyID string) error {
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
		for _, stage := range removed {
			if err := t.releaseClaim(ctx, p.ID, keyID, stage); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if window, limit, ok := p.quotaNow(t.now()); ok && p.Recap == window && p.ShardCount() > 1 {
		// Every meter item has the new version: cap the shards afresh.
		if err := t.capAll(ctx, p, members, window, limit); err != nil {
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
	return nil
}

// claim is one stage claim made for a key.
type claim struct{ keyID, stage string }

// claimStages claims stages for every key in members, for plan planID. On a
// Conflict it returns what it claimed so far, for the caller to release.
func (t *Table) claimStages(ctx context.Context, planID string, members []string, stages []string) ([]claim, error) {
	if len(stages) == 0 || len(members) == 0 {
		return nil, nil
	}
	var mu sync.Mutex
	var claimed []claim
	holders := &holderCache{t: t, plans: map[string]*Plan{}}
	err := forEach(ctx, members, func(keyID string) error {
		k, err := t.Key(ctx, keyID)
		if IsKind(err, NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, stage := range stages {
			replace, err := holders.check(ctx, k, stage, planID)
			if err != nil {
				return err
			}
			if replace == planID {
				continue
			}
			if err := t.putClaim(ctx, keyID, stage, planID, replace); err != nil {
				return err
			}
			mu.Lock()
			claimed = append(claimed, claim{keyID, stage})
			mu.Unlock()
		}
		return nil
	})
	return claimed, err
}

func (t *Table) putClaim(ctx context.Context, keyID, stage, planID, replace string) error {
	put := claimPut(keyID, stage, planID, replace)
	_, err := t.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &t.Name, Item: put.Item, ConditionExpression: put.ConditionExpression,
		ExpressionAttributeNames: put.ExpressionAttributeNames, ExpressionAttributeValues: put.ExpressionAttributeValues,
	})
	if isConditionFailed(err) {
		return errRetry
	}
	return err
}

func (t *Table) releaseClaims(ctx context.Context, planID string, claims []claim) {
	for _, c := range claims {
		t.releaseClaim(ctx, planID, c.keyID, c.stage)
	}
}

func (t *Table) releaseClaim(ctx context.Context, planID, keyID, stage string) error {
	_, err := t.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &t.Name, Key: itemKey(KeyPK(keyID), claimSK(stage)),
		ConditionExpression:       aws.String("#plan = :plan"),
		ExpressionAttributeNames:  map[string]string{"#plan": attrPlan},
		ExpressionAttributeValues: map[string]types.AttributeValue{":plan": S(planID)},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("release stage %s of key %s: %w", stage, keyID, err)
	}
	return nil
}

// claimPut writes a stage claim where there is none, or over the claim of
// replace: a plan that no longer has the stage, or planID itself.
func claimPut(keyID, stage, planID, replace string) *types.Put {
	item := itemKey(KeyPK(keyID), claimSK(stage))
	item[attrPlan] = S(planID)
	put := &types.Put{Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}
	if replace != "" {
		put.ConditionExpression = aws.String("attribute_not_exists(pk) OR #plan = :replace")
		put.ExpressionAttributeNames = map[string]string{"#plan": attrPlan}
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":replace": S(replace)}
	}
	return put
}

// holderCache resolves who holds a key's stage, reading each plan once.
type holderCache struct {
	t     *Table
	mu    sync.Mutex
	plans map[string]*Plan
}

// check returns a Conflict if another plan that really has the stage holds
// it for k. Otherwise it returns the claim's current holder, if any, which
// the caller may overwrite: planID itself, or a plan that dropped the stage.
func (h *holderCache) check(ctx context.Context, k *Key, stage, planID string) (replace string, err error) {
	holder, ok := k.Stages[stage]
	if !ok || holder == planID {
		return holder, nil
	}
	h.mu.Lock()
	p, seen := h.plans[holder]
	h.mu.Unlock()
	if !seen {
		p, err = h.t.Plan(ctx, holder)
		if err != nil && !IsKind(err, NotFound) {
			return "", err
		}
		h.mu.Lock()
		h.plans[holder] = p
		h.mu.Unlock()
	}
	if p != nil && slices.ContainsFunc(p.APIStages, func(s plans.APIStage) bool { return s.Key() == stage }) {
		return "", errorf(Conflict, "API key %s is already in usage plan %s for API stage %s: a key may have only one plan per API stage", k.ID, holder, stage)
	}
	return holder, nil
}

// stageDiff returns the keys of the stages in a that are not in b.
func stageDiff(a, b []plans.APIStage) []string {
	var out []string
	for _, s := range a {
		if !slices.ContainsFunc(b, func(o plans.APIStage) bool { return o.Key() == s.Key() }) {
			out = append(out, s.Key())
		}
	}
	return out
}

func clonePlan(p plans.Plan) plans.Plan {
	c := p
	if p.Throttle != nil {
		th := *p.Throttle
		c.Throttle = &th
	}
	if p.Quota != nil {
		q := *p.Quota
		c.Quota = &q
	}
	c.APIStages = make([]plans.APIStage, len(p.APIStages))
	for i, s := range p.APIStages {
		c.APIStages[i] = s
		if s.Throttle != nil {
			c.APIStages[i].Throttle = make(map[string]plans.Throttle, len(s.Throttle))
			for k, v := range s.Throttle {
				c.APIStages[i].Throttle[k] = v
			}
		}
	}
	if p.Tags != nil {
		c.Tags = make(map[string]string, len(p.Tags))
		for k, v := range p.Tags {
			c.Tags[k] = v
		}
	}
	return c
}

// forEach runs fn over ids with bounded concurrency and returns the first
// error. Plans may have many thousands of keys.
func forEach(ctx context.Context, ids []string, fn func(string) error) error {
	const workers = 16
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan string)
	)
	for range min(workers, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				if err := fn(id); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, id := range ids {
		select {
		case next <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}
