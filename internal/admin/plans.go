package admin

import (
	"context"
	"encoding/json"
	"maps"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

var planOperations = map[string]operation{
	"CreateUsagePlan":    op(createUsagePlan),
	"GetUsagePlan":       op(getUsagePlan),
	"GetUsagePlans":      op(getUsagePlans),
	"UpdateUsagePlan":    op(updateUsagePlan),
	"DeleteUsagePlan":    op(deleteUsagePlan),
	"CreateUsagePlanKey": op(createUsagePlanKey),
	"GetUsagePlanKey":    op(getUsagePlanKey),
	"GetUsagePlanKeys":   op(getUsagePlanKeys),
	"DeleteUsagePlanKey": op(deleteUsagePlanKey),
	"TagResource":        tagResource(kindPlans),
	"UntagResource":      untagResource(kindPlans),
	"GetTags":            getTags(kindPlans),
}

type createUsagePlanInput struct {
	action
	Name        string            `json:"name"`
	Description string            `json:"description"`
	APIStages   []plans.APIStage  `json:"apiStages"`
	Throttle    *plans.Throttle   `json:"throttle"`
	Quota       *plans.Quota      `json:"quota"`
	Tags        map[string]string `json:"tags"`
}

func createUsagePlan(ctx context.Context, s *Service, in *createUsagePlanInput) (any, error) {
	p := plans.Plan{
		ID: keys.NewID(), Name: in.Name, Description: in.Description, APIStages: in.APIStages,
		Throttle: in.Throttle, Quota: in.Quota, Tags: in.Tags,
	}
	if in.Quota != nil && in.Quota.Period == "" {
		return nil, badRequest("quota.period is required: DAY, WEEK or MONTH")
	}
	if e := checkPlan(&p); e != nil {
		return nil, e
	}
	if e := checkReservedTags(kindPlans, p.Tags); e != nil {
		return nil, e
	}
	shards, _ := p.Shards() // checkPlan has checked it
	if _, tagged := p.Tags[plans.ShardTag]; !tagged && shards > 1 {
		p.Tags = maps.Clone(p.Tags)
		if p.Tags == nil {
			p.Tags = map[string]string{}
		}
		p.Tags[plans.ShardTag] = strconv.Itoa(shards)
	}
	rec := &store.Plan{Plan: p, Shards: shards}
	if err := s.Store.CreatePlan(ctx, rec); err != nil {
		return nil, err
	}
	return usagePlan(rec), nil
}

// usagePlan is the plan as API Gateway returns it.
func usagePlan(p *store.Plan) UsagePlan {
	out := UsagePlan{ID: p.ID, Name: p.Name, Description: p.Description, APIStages: p.APIStages,
		Throttle: p.Throttle, Quota: p.Quota, ProductCode: p.ProductCode, Tags: p.Tags}
	if out.APIStages == nil {
		out.APIStages = []plans.APIStage{}
	}
	return out
}

type usagePlanInput struct {
	action
	UsagePlanID string `json:"usagePlanId"`
}

func (in *usagePlanInput) check() *Error {
	if in.UsagePlanID == "" {
		return badRequest("usagePlanId is required: the id of the usage plan")
	}
	return nil
}

func getUsagePlan(ctx context.Context, s *Service, in *usagePlanInput) (any, error) {
	if e := in.check(); e != nil {
		return nil, e
	}
	p, err := s.Store.Plan(ctx, in.UsagePlanID)
	if err != nil {
		return nil, err
	}
	return usagePlan(p), nil
}

type getUsagePlansInput struct {
	action
	paging
	KeyID string `json:"keyId"`
}

func getUsagePlans(ctx context.Context, s *Service, in *getUsagePlansInput) (any, error) {
	limit, after, e := in.read()
	if e != nil {
		return nil, e
	}
	var page store.Page
	if in.KeyID != "" {
		if _, err := s.Store.Key(ctx, in.KeyID); err != nil {
			return nil, err
		}
		// A key is in at most a few plans: one page, in id order.
		ids, err := s.Store.KeyPlans(ctx, in.KeyID)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if id > after && len(page.IDs) < limit {
				page.IDs = append(page.IDs, id)
			}
		}
	} else {
		var err error
		if page, err = s.Store.PlanIDs(ctx, after, limit); err != nil {
			return nil, err
		}
	}
	found, err := s.Store.Plans(ctx, page.IDs)
	if err != nil {
		return nil, err
	}
	out := List[UsagePlan]{Items: []UsagePlan{}, Position: encodePosition(page.Next)}
	for _, id := range page.IDs {
		if p := found[id]; p != nil {
			out.Items = append(out.Items, usagePlan(p))
		}
	}
	return out, nil
}

type updateUsagePlanInput struct {
	action
	UsagePlanID     string           `json:"usagePlanId"`
	PatchOperations []PatchOperation `json:"patchOperations"`
}

// updateUsagePlan applies patch operations to a plan. Applying them again
// leaves the plan as it is and succeeds, and any call first finishes what
// an earlier one left half-done (a Lambda timeout, DynamoDB failing);
// with no patch operations it does only that, and repairs the plan's
// keys: the repair operation (see store.SettlePlan).
func updateUsagePlan(ctx context.Context, s *Service, in *updateUsagePlanInput) (any, error) {
	if in.UsagePlanID == "" {
		return nil, badRequest("usagePlanId is required: the id of the usage plan")
	}
	p, err := s.Store.UpdatePlan(ctx, in.UsagePlanID, func(p *plans.Plan) error {
		for i, op := range in.PatchOperations {
			if e := patchPlan(p, i, op); e != nil {
				return e
			}
		}
		if e := checkPlan(p); e != nil {
			return e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return usagePlan(p), nil
}

// patchPlan applies one patch operation, with the paths API Gateway
// documents for UpdateUsagePlan.
func patchPlan(p *plans.Plan, i int, op PatchOperation) *Error {
	unsupported := func() *Error {
		return badRequest("patchOperations[%d]: UpdateUsagePlan does not support %s %s; see the README's operations cheat-sheet for the paths it takes", i, op.Op, op.Path)
	}
	set := op.Op == "replace" || op.Op == "add"
	value := func() (string, *Error) { return op.value(i) }
	switch {
	case op.Path == "/name" && op.Op == "replace":
		v, e := value()
		p.Name = v
		return e
	case op.Path == "/description" && op.Op == "replace":
		v, e := value()
		p.Description = v
		return e
	case op.Path == "/productCode" && op.Op == "replace":
		v, e := value()
		p.ProductCode = v
		return e
	case op.Path == "/throttle" && op.Op == "remove":
		p.Throttle = nil
	case op.Path == "/quota" && op.Op == "remove":
		p.Quota = nil
	case strings.HasPrefix(op.Path, "/throttle/") && set:
		if p.Throttle == nil {
			p.Throttle = &plans.Throttle{}
		}
		return setThrottleField(p.Throttle, i, op)
	case strings.HasPrefix(op.Path, "/quota/") && set:
		if p.Quota == nil {
			p.Quota = &plans.Quota{}
		}
		v, e := value()
		if e != nil {
			return e
		}
		switch strings.TrimPrefix(op.Path, "/quota/") {
		case "limit":
			return parseInt(i, v, &p.Quota.Limit)
		case "offset":
			return parseInt(i, v, &p.Quota.Offset)
		case "period":
			p.Quota.Period = strings.ToUpper(v)
		default:
			return unsupported()
		}
	case op.Path == "/apiStages" && (op.Op == "add" || op.Op == "remove"):
		v, e := value()
		if e != nil {
			return e
		}
		apiID, stage, ok := strings.Cut(v, ":")
		if !ok || apiID == "" || stage == "" {
			return badRequest("patchOperations[%d].value must name a stage as apiId:stage, not %q", i, v)
		}
		// Adding a stage the plan has, or removing one it lacks, changes
		// nothing and succeeds, so that a repeated call converges.
		idx := stageIndex(p, apiID+":"+stage)
		switch {
		case op.Op == "add" && idx < 0:
			p.APIStages = append(p.APIStages, plans.APIStage{APIID: apiID, Stage: stage})
		case op.Op == "remove" && idx >= 0:
			p.APIStages = append(p.APIStages[:idx], p.APIStages[idx+1:]...)
		}
	case strings.HasPrefix(op.Path, "/apiStages/"):
		return patchStageThrottle(p, i, op)
	default:
		return unsupported()
	}
	return nil
}

// patchStageThrottle handles /apiStages/{apiId}:{stage}/throttle[...]. The
// throttle key keeps its slashes ("/items/{id}/GET"); JSON-pointer escapes
// (~1 for /, ~0 for ~) are accepted too.
func patchStageThrottle(p *plans.Plan, i int, op PatchOperation) *Error {
	rest := strings.TrimPrefix(op.Path, "/apiStages/")
	stageKey, tail, ok := strings.Cut(rest, "/throttle")
	if !ok {
		return badRequest("patchOperations[%d]: %s is not a stage's throttle path; use /apiStages/{apiId}:{stage}/throttle/{resourcePath}/{httpMethod}/rateLimit", i, op.Path)
	}
	idx := stageIndex(p, unescape(stageKey))
	if idx < 0 {
		return errorf(NotFound, "patchOperations[%d]: the plan does not cover API stage %s; add it first with add /apiStages", i, unescape(stageKey))
	}
	s := &p.APIStages[idx]
	if tail == "" { // the stage's whole throttle map
		switch op.Op {
		case "remove":
			s.Throttle = nil
			return nil
		case "replace", "add":
			v, e := op.value(i)
			if e != nil {
				return e
			}
			var m map[string]plans.Throttle
			if err := json.Unmarshal([]byte(v), &m); err != nil {
				return badRequest("patchOperations[%d].value must be a JSON object of route throttles, e.g. {\"/items/GET\":{\"rateLimit\":1,\"burstLimit\":2}}: %v", i, err)
			}
			s.Throttle = m
			return nil
		}
		return badRequest("patchOperations[%d]: %s takes op replace or remove", i, op.Path)
	}
	key := unescape(strings.TrimPrefix(tail, "/"))
	field := ""
	for _, f := range []string{"rateLimit", "burstLimit"} {
		if k, ok := strings.CutSuffix(key, "/"+f); ok {
			key, field = k, f
		}
	}
	if !plans.ValidThrottleKey(key) {
		return badRequest("patchOperations[%d]: %q is not a route throttle key: write /{resourcePath}/{httpMethod}, e.g. /items/{id}/GET", i, key)
	}
	if field == "" {
		if op.Op != "remove" {
			return badRequest("patchOperations[%d]: to change a route's throttle, end the path with /rateLimit or /burstLimit", i)
		}
		if _, ok := s.Throttle[key]; !ok {
			return errorf(NotFound, "patchOperations[%d]: API stage %s has no throttle for %s", i, s.Key(), key)
		}
		delete(s.Throttle, key)
		return nil
	}
	if op.Op != "replace" && op.Op != "add" {
		return badRequest("patchOperations[%d]: %s takes op replace", i, op.Path)
	}
	if s.Throttle == nil {
		s.Throttle = map[string]plans.Throttle{}
	}
	t := s.Throttle[key]
	if e := setThrottleField(&t, i, PatchOperation{Op: op.Op, Path: "/" + field, Value: op.Value}); e != nil {
		return e
	}
	s.Throttle[key] = t
	return nil
}

func setThrottleField(t *plans.Throttle, i int, op PatchOperation) *Error {
	v, e := op.value(i)
	if e != nil {
		return e
	}
	switch op.Path[strings.LastIndexByte(op.Path, '/')+1:] {
	case "rateLimit":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return badRequest("patchOperations[%d].value must be a number of requests per second, not %q", i, v)
		}
		t.RateLimit = f
	case "burstLimit":
		return parseInt(i, v, &t.BurstLimit)
	default:
		return badRequest("patchOperations[%d]: a throttle has rateLimit and burstLimit, not %s", i, op.Path)
	}
	return nil
}

func parseInt(i int, v string, dst *int) *Error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return badRequest("patchOperations[%d].value must be a whole number, not %q", i, v)
	}
	*dst = n
	return nil
}

func stageIndex(p *plans.Plan, key string) int {
	for i, s := range p.APIStages {
		if s.Key() == key {
			return i
		}
	}
	return -1
}

func unescape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

func deleteUsagePlan(ctx context.Context, s *Service, in *usagePlanInput) (any, error) {
	if e := in.check(); e != nil {
		return nil, e
	}
	if err := s.Store.DeletePlan(ctx, in.UsagePlanID); err != nil {
		return nil, err
	}
	return Empty{}, nil
}

// usagePlanKeyInput names a key in a plan.
type usagePlanKeyInput struct {
	action
	UsagePlanID string `json:"usagePlanId"`
	KeyID       string `json:"keyId"`
}

type createUsagePlanKeyInput struct {
	usagePlanKeyInput
	KeyType string `json:"keyType"`
}

func (in *usagePlanKeyInput) check() *Error {
	switch {
	case in.UsagePlanID == "":
		return badRequest("usagePlanId is required: the id of the usage plan")
	case in.KeyID == "":
		return badRequest("keyId is required: the id of the API key")
	}
	return nil
}

// createUsagePlanKey puts a key in a plan. A key already in it is
// success, so that a repeated call converges.
func createUsagePlanKey(ctx context.Context, s *Service, in *createUsagePlanKeyInput) (any, error) {
	if e := in.check(); e != nil {
		return nil, e
	}
	if in.KeyType != KeyType {
		return nil, badRequest("keyType must be %q, the only type of usage plan key", KeyType)
	}
	if err := s.Store.Assign(ctx, in.UsagePlanID, in.KeyID); err != nil {
		return nil, err
	}
	k, err := s.Store.Key(ctx, in.KeyID)
	if err != nil {
		return nil, err
	}
	return UsagePlanKey{ID: k.ID, Type: KeyType, Name: k.Name}, nil
}

func getUsagePlanKey(ctx context.Context, s *Service, in *usagePlanKeyInput) (any, error) {
	if e := in.check(); e != nil {
		return nil, e
	}
	if err := s.member(ctx, in.UsagePlanID, in.KeyID); err != nil {
		return nil, err
	}
	k, err := s.Store.Key(ctx, in.KeyID)
	if err != nil {
		return nil, err
	}
	return UsagePlanKey{ID: k.ID, Type: KeyType, Name: k.Name}, nil
}

// member checks that the plan exists and the key is in it.
func (s *Service) member(ctx context.Context, planID, keyID string) error {
	if _, err := s.Store.Plan(ctx, planID); err != nil {
		return err
	}
	ids, err := s.Store.KeyPlans(ctx, keyID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id == planID {
			return nil
		}
	}
	return errorf(NotFound, "API key %s is not in usage plan %s", keyID, planID)
}

type getUsagePlanKeysInput struct {
	action
	paging
	UsagePlanID string `json:"usagePlanId"`
	NameQuery   string `json:"nameQuery"`
}

func getUsagePlanKeys(ctx context.Context, s *Service, in *getUsagePlanKeysInput) (any, error) {
	if in.UsagePlanID == "" {
		return nil, badRequest("usagePlanId is required: the id of the usage plan")
	}
	limit, after, e := in.read()
	if e != nil {
		return nil, e
	}
	if _, err := s.Store.Plan(ctx, in.UsagePlanID); err != nil {
		return nil, err
	}
	members := func(ctx context.Context, after string, n int) (store.Page, error) {
		return s.Store.MemberIDs(ctx, in.UsagePlanID, after, n)
	}
	found, next, err := s.scanKeys(ctx, members, limit, after, func(k *store.Key) bool {
		return strings.HasPrefix(k.Name, in.NameQuery)
	})
	if err != nil {
		return nil, err
	}
	out := List[UsagePlanKey]{Items: []UsagePlanKey{}, Position: encodePosition(next)}
	for _, k := range found {
		out.Items = append(out.Items, UsagePlanKey{ID: k.ID, Type: KeyType, Name: k.Name})
	}
	return out, nil
}

// deleteUsagePlanKey takes a key out of a plan. A key that is not in it
// (any more) is success, so that a repeated call converges; a key or plan
// that does not exist is NotFound.
func deleteUsagePlanKey(ctx context.Context, s *Service, in *usagePlanKeyInput) (any, error) {
	if e := in.check(); e != nil {
		return nil, e
	}
	if _, err := s.Store.Plan(ctx, in.UsagePlanID); err != nil {
		return nil, err
	}
	if err := s.Store.Unassign(ctx, in.UsagePlanID, in.KeyID); err != nil {
		return nil, err
	}
	return Empty{}, nil
}
