package admin

import (
	"context"
	"maps"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/resourcearn"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// Tags, as API Gateway manages them: TagResource, UntagResource and
// GetTags on a resource's ARN. The keys function serves API keys' tags and
// the plans function usage plans'; each points to the other for the other
// kind. A change to a plan's tags moves its version, like any other change
// to the plan, so that a tollgate:enforce switch applies on the next
// decision.

// Resource kinds, as their ARNs' paths name them.
const (
	kindKeys  = resourcearn.APIKeys
	kindPlans = resourcearn.UsagePlans
)

var kindNames = map[string]string{kindKeys: "API keys", kindPlans: "usage plans"}
var kindFunctions = map[string]string{kindKeys: "keys", kindPlans: "plans"}

// parseARN reads a resourceArn, as the tollgate command line does.
func parseARN(arn string) (resourcearn.ARN, *Error) {
	r, err := resourcearn.Parse(arn)
	if err != nil {
		return r, badRequest("%s", err)
	}
	return r, nil
}

// resource parses a resourceArn and checks that this function serves it.
func resource(arn, kind string) (resourcearn.ARN, *Error) {
	r, e := parseARN(arn)
	if e == nil && r.Kind != kind {
		fn := kindFunctions[r.Kind]
		return r, badRequest("%s' tags are served by the %s function, not %s: invoke functions/%s", kindNames[r.Kind], fn, kindFunctions[kind], fn)
	}
	return r, e
}

// reservedPrefix starts the tags that mean something to Tollgate.
const reservedPrefix = "tollgate:"

// checkReservedTags validates the tollgate: tags among tags being set on
// a resource of kind. Matching is case-insensitive, so that a near miss
// such as Tollgate:Enforce is an error rather than a tag that does nothing.
func checkReservedTags(kind string, tags map[string]string) *Error {
	for k, v := range tags {
		if !strings.HasPrefix(strings.ToLower(k), reservedPrefix) {
			continue
		}
		switch {
		case kind == kindKeys:
			return badRequest("tag %q: tags starting with %s are reserved, and API keys take none (%s, %s and %s are usage plans' tags)", k, reservedPrefix, plans.EnforceTag, plans.ShardTag, plans.AlertTag)
		case k == plans.EnforceTag:
			if !plans.ValidEnforce(v) {
				return badRequest("tag %s must be %s (requests over a limit are allowed, and reported) or %s (they are refused), not %q", k, plans.Shadow, plans.Enforce, v)
			}
		case k == plans.ShardTag, k == plans.AlertTag: // checkPlan checks them
		default:
			return badRequest("tag %q: tags starting with %s are reserved; usage plans take %s (%s or %s), %s and %s", k, reservedPrefix, plans.EnforceTag, plans.Shadow, plans.Enforce, plans.ShardTag, plans.AlertTag)
		}
	}
	return nil
}

// fixedShards refuses a change to tollgate:shards after creation.
func fixedShards(shards int) *Error {
	return badRequest("tag %s cannot change after a usage plan is created: each key's usage is spread over the plan's %d meter item(s), each holding its share of every limit, and another count would strand them; create a new usage plan with the tag and move the keys to it",
		plans.ShardTag, shards)
}

type tagResourceInput struct {
	action
	ResourceArn string            `json:"resourceArn"`
	Tags        map[string]string `json:"tags"`
}

type untagResourceInput struct {
	action
	ResourceArn string   `json:"resourceArn"`
	TagKeys     []string `json:"tagKeys"`
}

type getTagsInput struct {
	action
	ResourceArn string `json:"resourceArn"`
	// API Gateway takes these and documents them as not supported: all
	// tags come back at once. Accepted, so that scripts that send them run.
	Position string `json:"position"`
	Limit    *int   `json:"limit"`
}

// Tags is GetTags' response.
type Tags struct {
	Tags map[string]string `json:"tags"`
}

// tagResource is TagResource for the function serving kind: it adds tags
// or changes their values.
func tagResource(kind string) operation {
	return op(func(ctx context.Context, s *Service, in *tagResourceInput) (any, error) {
		r, e := resource(in.ResourceArn, kind)
		if e != nil {
			return nil, e
		}
		if len(in.Tags) == 0 {
			return nil, badRequest(`tags is empty: give the tags to add or change, e.g. {"team": "payments"}`)
		}
		if e := checkReservedTags(kind, in.Tags); e != nil {
			return nil, e
		}
		return Empty{}, s.changeTags(ctx, r, func(tags map[string]string, shards int) *Error {
			if v, ok := in.Tags[plans.ShardTag]; ok && r.Kind == kindPlans && v != strconv.Itoa(shards) {
				return fixedShards(shards)
			}
			maps.Copy(tags, in.Tags)
			return nil
		})
	})
}

// untagResource is UntagResource for the function serving kind. Keys the
// resource does not have are ignored, as in AWS.
func untagResource(kind string) operation {
	return op(func(ctx context.Context, s *Service, in *untagResourceInput) (any, error) {
		r, e := resource(in.ResourceArn, kind)
		if e != nil {
			return nil, e
		}
		if len(in.TagKeys) == 0 {
			return nil, badRequest(`tagKeys is empty: list the keys of the tags to remove, e.g. ["team"]`)
		}
		return Empty{}, s.changeTags(ctx, r, func(tags map[string]string, shards int) *Error {
			for _, k := range in.TagKeys {
				if _, ok := tags[k]; ok && k == plans.ShardTag && r.Kind == kindPlans {
					return fixedShards(shards)
				}
				delete(tags, k)
			}
			return nil
		})
	})
}

// getTags is GetTags for the function serving kind.
func getTags(kind string) operation {
	return op(func(ctx context.Context, s *Service, in *getTagsInput) (any, error) {
		r, e := resource(in.ResourceArn, kind)
		if e != nil {
			return nil, e
		}
		var tags map[string]string
		if r.Kind == kindKeys {
			k, err := s.Store.Key(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			tags = k.Tags
		} else {
			p, err := s.Store.Plan(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			tags = p.Tags
		}
		if tags == nil {
			tags = map[string]string{}
		}
		return Tags{Tags: tags}, nil
	})
}

// changeTags applies change to a resource's tags, as one change to the key
// or plan, and checks the result. change gets the tags to modify, and for
// a plan its shard count; it may run more than once under concurrency.
func (s *Service) changeTags(ctx context.Context, r resourcearn.ARN, change func(tags map[string]string, shards int) *Error) error {
	apply := func(tags map[string]string, shards int) (map[string]string, *Error) {
		tags = maps.Clone(tags)
		if tags == nil {
			tags = map[string]string{}
		}
		if e := change(tags, shards); e != nil {
			return nil, e
		}
		if e := checkTags(tags); e != nil {
			return nil, e
		}
		if len(tags) == 0 {
			tags = nil
		}
		return tags, nil
	}
	if r.Kind == kindKeys {
		_, err := s.Store.UpdateKey(ctx, r.ID, func(k *store.Key) error {
			tags, e := apply(k.Tags, 0)
			if e != nil {
				return e
			}
			k.Tags = tags
			return nil
		})
		return err
	}
	current, err := s.Store.Plan(ctx, r.ID)
	if err != nil {
		return err
	}
	shards := current.ShardCount() // fixed at creation
	_, err = s.Store.UpdatePlan(ctx, r.ID, func(p *plans.Plan) error {
		tags, e := apply(p.Tags, shards)
		if e != nil {
			return e
		}
		p.Tags = tags
		if e := checkPlan(p); e != nil {
			return e
		}
		return nil
	})
	return err
}
