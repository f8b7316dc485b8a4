package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

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
	// Recap is a quota window whose shards an operation is capping, after
	// a change of a sharded plan's quota limit, and RecapToken the
	// operation's claim on it (see caps.go). Whoever settles the plan
	// finishes the capping.
	Recap      string `json:"rc,omitempty"`
	RecapToken string `json:"rt,omitempty"`
	// Token is the change token of the write that made this version, by
	// which an update recognises its own write (see UpdatePlan).
	Token string `json:"ct,omitempty"`
}

// ShardCount is Shards, at least 1.
func (p *Plan) ShardCount() int { return max(1, p.Shards) }

// QuotaLimitIn is the limit of the plan's quota, which it must have, in the
// period w: less the quota's offset in the period the quota was set in
// (QuotaStart).
func (p *Plan) QuotaLimitIn(w plans.Window) int64 {
	var since time.Time
	if p.QuotaStart > 0 {
		since = time.UnixMicro(p.QuotaStart)
	}
	return p.Quota.LimitIn(w, since)
}

// unsettled reports whether an operation on the plan has not finished:
// a change whose keys have not all seen it, or a capping of shards.
func (p *Plan) unsettled() bool { return p.Synced < p.Version || p.Recap != "" }

// hasStage reports whether the plan covers an API stage ("apiId:stage").
func (p *Plan) hasStage(stage string) bool {
	return slices.ContainsFunc(p.APIStages, func(s plans.APIStage) bool { return s.Key() == stage })
}

// CreatePlan stores a new plan.
func (t *Table) CreatePlan(ctx context.Context, p *Plan) error {
	p.Version, p.Synced, p.Keys, p.Epoch = 1, 1, 0, 0
	p.Token = newToken()
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
	if err == nil {
		return nil
	}
	// The SDK's retries of a transaction are idempotent; but if they all
	// failed, the plan may be there all the same. Its token says whether
	// it is ours.
	if cur, rerr := t.Plan(ctx, p.ID); rerr == nil && cur.Token == p.Token {
		return nil
	}
	if errors.Is(err, errRetry) {
		return errorf(Conflict, "usage plan %s already exists", p.ID)
	}
	return fmt.Errorf("create plan %s: %w", p.ID, err)
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
//
// UpdatePlan is safe to repeat and to cut short. It first finishes whatever
// an earlier call left unsettled (see settle). A change that leaves the
// plan as it is still settles the plan and repairs its keys' claims, so
// repeating a call converges, and a change that does nothing is the
// repair. Every call, that one too, moves the plan's version: a write of
// an earlier call cut short (a Lambda timeout) that DynamoDB still holds
// is conditional on the version that call read, so it can no longer land
// after this one and undo what this one settled. The plan's write carries
// a change token (ct): if its answer is lost, or the SDK's retry of it
// fails its condition because the first attempt landed, reading the token
// back tells that the write is ours, and the update goes on instead of
// taking it for a lost race.
func (t *Table) UpdatePlan(ctx context.Context, id string, change func(*plans.Plan) error) (*Plan, error) {
	var next *Plan
	err := retrying(ctx, "update usage plan "+id, func() error {
		old, err := t.Plan(ctx, id)
		if err != nil {
			return err
		}
		if old.unsettled() {
			if err := t.settle(ctx, old); err != nil {
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
		p.Token = newToken()
		members, err := t.PlanMembers(ctx, id)
		if err != nil {
			return err
		}
		claimed, err := t.claimStages(ctx, &p, members, stageDiff(p.APIStages, old.APIStages))
		if err != nil {
			t.releaseClaims(ctx, &p, claimed)
			return err
		}
		capping := "" // our claim on capping the old plan's shards
		if window, _, to, lower, ok := quotaChange(old, &p, t.now()); ok && lower {
			// Cap the shards at the new limit before any authorizer can
			// hold the new plan, and hold the old plan's to it too. If
			// this stops half-way, the plan's claim on capping (rc, rt)
			// stays, and whoever next settles the plan thaws the shards.
			if err := t.claimCapping(ctx, old, window); err != nil {
				t.releaseClaims(ctx, &p, claimed)
				return err
			}
			capping = old.RecapToken
			if err := t.capAll(ctx, old, members, window, to); err != nil {
				return err
			}
		} else if ok {
			// A raise: lift the caps once every meter item has the new plan.
			p.Recap, p.RecapToken = window, newToken()
		}
		err = t.putPlan(ctx, &p, old, capping)
		if err == nil {
			next = &p
			return nil
		}
		cur, rerr := t.Plan(ctx, id)
		switch {
		case rerr == nil && cur.Token == p.Token:
			next = &p // ours landed; only its answer was lost
			return nil
		case rerr == nil && isConditionFailed(err) && cur.Version == old.Version:
			// An assignment or another capping got in first, and ours can
			// never land: its condition names what they moved.
			t.releaseClaims(ctx, &p, claimed)
			return errRetry
		case isConditionFailed(err):
			// Another update landed. Ours did not, or was overwritten:
			// apply the change to what is there now. Claims made for it
			// are left to that plan's settle.
			return errRetry
		}
		// Neither landed nor refused: whether it lands is unknown. Leave
		// everything as it is; the next call settles whichever it was.
		return fmt.Errorf("update plan %s: %w", id, err)
	})
	if err != nil {
		return nil, err
	}
	err = retrying(ctx, "finish updating usage plan "+id, func() error {
		err := t.settle(ctx, next)
		if errors.Is(err, errRetry) {
			// If the plan moved on meanwhile, settle what it is now.
			if cur, rerr := t.Plan(ctx, id); rerr == nil && cur.Version > next.Version {
				next = cur
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("usage plan %s changed, but not every key saw it yet (run UpdateUsagePlan on it again, with no patchOperations to change nothing, to finish): %w", id, err)
	}
	return next, nil
}

// putPlan writes p over old, if nothing else changed it: not the plan, not
// its assignments (ae), not the claim on capping (capping is ours, or ""
// for none).
func (t *Table) putPlan(ctx context.Context, p, old *Plan, capping string) error {
	rec, err := marshal(p, planPK(p.ID), skPlan)
	if err != nil {
		return err
	}
	cond := "pv = :pv AND ae = :ae AND attribute_not_exists(rt)"
	values := map[string]types.AttributeValue{":pv": N(old.Version), ":ae": N(old.Epoch)}
	if capping != "" {
		cond = "pv = :pv AND ae = :ae AND rt = :rt"
		values[":rt"] = S(capping)
	}
	_, err = t.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &t.Name, Item: rec, ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
	})
	return err
}

// DeletePlan deletes a plan that has no keys and no stages left. A plan
// that is gone is NotFound, as in API Gateway, also when an earlier call
// deleted it and its answer was lost.
func (t *Table) DeletePlan(ctx context.Context, id string) error {
	return retrying(ctx, "delete usage plan "+id, func() error {
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
		if err != nil && !errors.Is(err, errRetry) {
			return fmt.Errorf("delete usage plan %s: %w", id, err)
		}
		return err // errRetry: it changed since we read it; read again
	})
}

// claim is one stage claim made for a key.
type claim struct{ keyID, stage string }

// claimStages claims stages for every key in members, for plan p at its new
// version, before p is written: a claim whose plan lacks the stage admits
// nothing, so claims made for a change that never lands are harmless, and
// the plan's next settle releases them. On a Conflict it returns what it
// claimed so far, for the caller to release.
func (t *Table) claimStages(ctx context.Context, p *Plan, members []string, stages []string) ([]claim, error) {
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
			replace, err := holders.check(ctx, k, stage, p.ID)
			if err != nil {
				return err
			}
			if replace == p.ID {
				continue
			}
			ok, err := t.putClaim(ctx, keyID, stage, p.ID, p.Version-1, replace)
			if err != nil {
				return err
			}
			if ok {
				mu.Lock()
				claimed = append(claimed, claim{keyID, stage})
				mu.Unlock()
			}
		}
		return nil
	})
	return claimed, err
}

// putClaim claims stage for a member of planID, over the claim of replace
// (a plan that no longer has the stage) if there is one, provided the plan
// is still at version: an operation on an older version of the plan
// changes no claim. It writes nothing, and reports false, if the key is no
// longer in the plan: a claim exists only for a member, for a key's claims
// are cleaned up only through its memberships. Writing a claim twice is
// harmless.
func (t *Table) putClaim(ctx context.Context, keyID, stage, planID string, version int64, replace string) (bool, error) {
	failed, err := t.transactReasons(ctx, []types.TransactWriteItem{
		{Put: claimPut(keyID, stage, planID, replace)},
		{ConditionCheck: &types.ConditionCheck{Key: itemKey(planPK(planID), skMember+keyID), ConditionExpression: aws.String("attribute_exists(pk)")}},
		planAt(planID, version),
	})
	switch {
	case err == nil:
		return true, nil
	case len(failed) == 3 && failed[1] && !failed[2]:
		return false, nil
	case errors.Is(err, errRetry):
		return false, err // another plan claimed it, or the plan moved on: read again
	}
	return false, fmt.Errorf("claim API stage %s for key %s: %w", stage, keyID, err)
}

// planAt checks that a plan is at version.
func planAt(planID string, version int64) types.TransactWriteItem {
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		Key:                       itemKey(planPK(planID), skPlan),
		ConditionExpression:       aws.String("pv = :pv"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pv": N(version)},
	}}
}

// releaseClaims undoes claimStages, for a change that did not land.
func (t *Table) releaseClaims(ctx context.Context, p *Plan, claims []claim) {
	for _, c := range claims {
		t.releaseClaim(ctx, p.ID, p.Version-1, c.keyID, c.stage)
	}
}

// releaseClaim deletes planID's claim on a key's stage, provided the plan
// is still at version (any version if 0): an operation on an older version
// of the plan cannot undo what a newer one did.
func (t *Table) releaseClaim(ctx context.Context, planID string, version int64, keyID, stage string) error {
	del := &types.Delete{
		Key:                       itemKey(KeyPK(keyID), claimSK(stage)),
		ConditionExpression:       aws.String("#plan = :plan"),
		ExpressionAttributeNames:  map[string]string{"#plan": attrPlan},
		ExpressionAttributeValues: map[string]types.AttributeValue{":plan": S(planID)},
	}
	var err error
	if version == 0 {
		_, err = t.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &t.Name, Key: del.Key,
			ConditionExpression: del.ConditionExpression, ExpressionAttributeNames: del.ExpressionAttributeNames,
			ExpressionAttributeValues: del.ExpressionAttributeValues})
		if isConditionFailed(err) {
			return nil
		}
	} else {
		var failed []bool
		failed, err = t.transactReasons(ctx, []types.TransactWriteItem{{Delete: del}, planAt(planID, version)})
		if len(failed) == 2 && failed[0] && !failed[1] {
			return nil // gone already, or another plan's now
		}
	}
	if err != nil && !errors.Is(err, errRetry) {
		return fmt.Errorf("release stage %s of key %s: %w", stage, keyID, err)
	}
	return err
}

// claimPut writes a stage claim for planID where there is none, or over
// the claim of replace (a plan that no longer has the stage), or over
// planID's own.
func claimPut(keyID, stage, planID, replace string) *types.Put {
	item := itemKey(KeyPK(keyID), claimSK(stage))
	item[attrPlan] = S(planID)
	cond := "attribute_not_exists(pk) OR #plan = :me"
	values := map[string]types.AttributeValue{":me": S(planID)}
	if replace != "" && replace != planID {
		cond += " OR #plan = :replace"
		values[":replace"] = S(replace)
	}
	return &types.Put{Item: item, ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: map[string]string{"#plan": attrPlan}, ExpressionAttributeValues: values}
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
