package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// MaxIdentities is how many identities one key may have. With the meter
// items and assignments it keeps every key change one transaction (at most
// 100 items).
const MaxIdentities = 25

// IdentityHash is the hex SHA-256 of a claim value, the identity item's
// partition suffix. Identities live under IDENT#, API key values under
// HASH#, so neither can ever be looked up as the other.
func IdentityHash(identity string) string {
	sum := sha256.Sum256([]byte(identity))
	return hex.EncodeToString(sum[:])
}

func identityKey(identity string) map[string]types.AttributeValue {
	return itemKey(PartitionIdentity+IdentityHash(identity), skIdentity)
}

// claimIdentity writes an identity item for key id, if no key holds the
// identity: of two keys claiming it at once, one transaction fails.
func claimIdentity(id, identity string) types.TransactWriteItem {
	item := identityKey(identity)
	item["id"] = S(id)
	return types.TransactWriteItem{Put: &types.Put{Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}}
}

// releaseIdentity deletes key id's identity item, and never another key's.
func releaseIdentity(id, identity string) types.TransactWriteItem {
	return types.TransactWriteItem{Delete: &types.Delete{
		Key:                       identityKey(identity),
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR id = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": S(id)},
	}}
}

func checkIdentityCount(n int) error {
	if n > MaxIdentities {
		return errorf(LimitExceeded, "an API key may have at most %d identities, and this one would have %d: for many callers per plan, meter a claim they share (JWT_IDENTITY_CLAIM), such as a tenant id", MaxIdentities, n)
	}
	return nil
}

// KeyIDByIdentity returns the id of the key an identity belongs to, or a
// NotFound Error.
func (t *Table) KeyIDByIdentity(ctx context.Context, identity string) (string, error) {
	out, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &t.Name, Key: identityKey(identity), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", fmt.Errorf("get key by identity: %w", err)
	}
	id := Str(out.Item, "id")
	if id == "" {
		return "", errorf(NotFound, "no API key has this identity")
	}
	return id, nil
}

// KeyByIdentity loads the key an identity belongs to, with its stage
// claims: two strongly consistent reads, as KeyByHash.
func (t *Table) KeyByIdentity(ctx context.Context, identity string) (*Key, error) {
	id, err := t.KeyIDByIdentity(ctx, identity)
	if err != nil {
		return nil, err
	}
	k, err := t.Key(ctx, id)
	if IsKind(err, NotFound) || err == nil && !slices.Contains(k.Identities, identity) {
		// The pointer outlived a change that is still finishing.
		return nil, errorf(NotFound, "no API key has this identity")
	}
	return k, err
}

// identitiesHeld returns a Conflict naming the first of identities that
// another key than id holds, or nil.
func (t *Table) identitiesHeld(ctx context.Context, id string, identities []string) error {
	for _, ident := range identities {
		holder, err := t.KeyIDByIdentity(ctx, ident)
		if IsKind(err, NotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if holder != id {
			return errorf(Conflict, "identity %q already belongs to API key %s: an identity belongs to one key; remove it there first (UpdateApiKey, op remove, path /identities)", ident, holder)
		}
	}
	return nil
}
