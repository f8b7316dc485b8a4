package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Page is one page of ids in a stable order, and where the next begins.
type Page struct {
	IDs []string
	// Next is the id to continue after, or "" at the end.
	Next string
}

// KeyIDs pages through every key id in id order, after the id `after`.
func (t *Table) KeyIDs(ctx context.Context, after string, limit int) (Page, error) {
	return t.page(ctx, pkCatalog, catalogKey, after, limit)
}

// PlanIDs pages through every plan id in id order.
func (t *Table) PlanIDs(ctx context.Context, after string, limit int) (Page, error) {
	return t.page(ctx, pkCatalog, catalogPlan, after, limit)
}

// MemberIDs pages through the ids of the keys in a plan, in id order.
func (t *Table) MemberIDs(ctx context.Context, planID, after string, limit int) (Page, error) {
	return t.page(ctx, planPK(planID), skMember, after, limit)
}

// page reads up to limit sort keys with prefix under pk, strongly
// consistent, after the id `after`. Sort keys order the ids, so a page
// never shifts under inserts or deletes elsewhere in the list.
func (t *Table) page(ctx context.Context, pk, prefix, after string, limit int) (Page, error) {
	in := prefixQuery(pk, prefix)
	in.TableName = &t.Name
	in.ConsistentRead = aws.Bool(true)
	in.ProjectionExpression = aws.String("sk")
	in.Limit = aws.Int32(int32(limit))
	if after != "" {
		in.ExclusiveStartKey = itemKey(pk, prefix+after)
	}
	var p Page
	for len(p.IDs) < limit {
		out, err := t.DB.Query(ctx, in)
		if err != nil {
			return Page{}, fmt.Errorf("list %s%s: %w", pk, prefix, err)
		}
		for _, item := range out.Items {
			p.IDs = append(p.IDs, strings.TrimPrefix(Str(item, AttrSK), prefix))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return p, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		in.Limit = aws.Int32(int32(limit - len(p.IDs)))
	}
	p.Next = p.IDs[len(p.IDs)-1]
	return p, nil
}

// Keys reads key records by id; ids with no key are absent from the map.
// Stage claims are not read: listings do not need them.
func (t *Table) Keys(ctx context.Context, ids []string) (map[string]*Key, error) {
	out := make(map[string]*Key, len(ids))
	err := t.batchGet(ctx, ids, func(id string) map[string]types.AttributeValue { return itemKey(KeyPK(id), skKey) },
		func(item map[string]types.AttributeValue) error {
			k := new(Key)
			if err := unmarshal(item, k); err != nil {
				return err
			}
			out[k.ID] = k
			return nil
		})
	return out, err
}

// Plans reads plans by id; ids with no plan are absent from the map.
func (t *Table) Plans(ctx context.Context, ids []string) (map[string]*Plan, error) {
	out := make(map[string]*Plan, len(ids))
	err := t.batchGet(ctx, ids, func(id string) map[string]types.AttributeValue { return itemKey(planPK(id), skPlan) },
		func(item map[string]types.AttributeValue) error {
			p := new(Plan)
			if err := unmarshal(item, p); err != nil {
				return err
			}
			out[p.ID] = p
			return nil
		})
	return out, err
}

// batchGet reads items 100 at a time, strongly consistent, retrying what
// DynamoDB leaves unprocessed.
func (t *Table) batchGet(ctx context.Context, ids []string, key func(string) map[string]types.AttributeValue, each func(map[string]types.AttributeValue) error) error {
	for start := 0; start < len(ids); start += 100 {
		var keys []map[string]types.AttributeValue
		seen := map[string]bool{}
		for _, id := range ids[start:min(start+100, len(ids))] {
			if !seen[id] {
				seen[id] = true
				keys = append(keys, key(id))
			}
		}
		req := map[string]types.KeysAndAttributes{t.Name: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for len(req) > 0 {
			out, err := t.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return fmt.Errorf("batch get: %w", err)
			}
			for _, item := range out.Responses[t.Name] {
				if err := each(item); err != nil {
					return err
				}
			}
			req = out.UnprocessedKeys
		}
	}
	return nil
}
