package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// MaxPlansPerKey is how many usage plans one key may be in, as API
// Gateway's default quota. With MaxMeterItems it keeps every key change
// one transaction.
const MaxPlansPerKey = 10

// MaxMeterItems is how many meter items one key may have across its plans:
// one per plan, or a plan's shard count for a sharded plan.
const MaxMeterItems = 40

// Key is an API key's record. The value is never stored: Hash is its SHA-256.
type Key struct {
	ID              string            `json:"id"`
	Name            string            `json:"name,omitempty"`
	Description     string            `json:"description,omitempty"`
	Enabled         bool              `json:"enabled"`
	CustomerID      string            `json:"customerId,omitempty"`
	CreatedDate     int64             `json:"createdDate"` // epoch seconds
	LastUpdatedDate int64             `json:"lastUpdatedDate"`
	Tags            map[string]string `json:"tags,omitempty"`
	Hash            string            `json:"h"`
	// Version moves with every change to the key, its assignments
	// included, and is copied to the key's meter items in the same
	// transaction.
	Version int64 `json:"kv"`
	Plans   int   `json:"np"`
	// Identities are the values of JWT_IDENTITY_CLAIM that this key
	// meters (or, with AUTH_MODE=jwt-and-key, that may use it). Each has an
	// identity item that points back, so an identity belongs to one key.
	Identities []string `json:"idents,omitempty"`
	Lifecycle

	// Stages maps "apiId:stage" to the plan that holds it for this key, from
	// the key's stage claims. Not stored in the record itself.
	Stages map[string]string `json:"-"`
}

// CreateKey stores a new key. Its value's hash must be new: two keys with
// one value would be one key to the authorizer.
func (t *Table) CreateKey(ctx context.Context, k *Key) error {
	now := t.now().Unix()
	k.CreatedDate, k.LastUpdatedDate, k.Version, k.Plans = now, now, 1, 0
	rec, err := marshal(k, KeyPK(k.ID), skKey)
	if err != nil {
		return fmt.Errorf("create key %s: %w", k.ID, err)
	}
	if err := checkIdentityCount(len(k.Identities)); err != nil {
		return err
	}
	hash := itemKey(hashPK(k.Hash), skHash)
	hash["id"] = S(k.ID)
	items := []types.TransactWriteItem{
		{Put: &types.Put{Item: rec, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: &types.Put{Item: hash, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: &types.Put{Item: itemKey(pkCatalog, catalogKey+k.ID)}},
	}
	for _, ident := range k.Identities {
		items = append(items, claimIdentity(k.ID, ident))
	}
	err = retrying(ctx, "create API key "+k.ID, func() error {
		err := t.transact(ctx, items)
		if err == nil {
			return nil
		}
		// The SDK's retries of a transaction are idempotent; but if they
		// all failed, or a condition did, the key may be there all the
		// same. The value's hash pointing at this key's id, which is new,
		// says that it is ours, whose answer was lost.
		id, rerr := t.KeyIDByHash(ctx, k.Hash)
		switch {
		case id == k.ID:
			return nil
		case err != errRetry:
			return err
		case id != "":
			return errorf(Conflict, "an API key with this value already exists (id %s): values must be unique", id)
		case rerr != nil && !IsKind(rerr, NotFound):
			return rerr
		}
		// Say which other condition failed; if none did, another
		// transaction was in the way, and trying again settles it.
		if err := t.identitiesHeld(ctx, k.ID, k.Identities); err != nil {
			return err
		}
		if _, err := t.Key(ctx, k.ID); err == nil {
			return errorf(Conflict, "API key %s already exists", k.ID)
		}
		return errRetry
	})
	if err != nil {
		return fmt.Errorf("create key %s: %w", k.ID, err)
	}
	return nil
}

// KeyIDByHash returns the id of the key whose value hashes to hash, or a
// NotFound Error.
func (t *Table) KeyIDByHash(ctx context.Context, hash string) (string, error) {
	out, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &t.Name, Key: itemKey(hashPK(hash), skHash), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", fmt.Errorf("get key by hash: %w", err)
	}
	id := Str(out.Item, "id")
	if id == "" {
		return "", errorf(NotFound, "no API key has this value")
	}
	return id, nil
}

// KeyByHash loads the key whose value hashes to hash, with its stage claims.
func (t *Table) KeyByHash(ctx context.Context, hash string) (*Key, error) {
	id, err := t.KeyIDByHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	k, err := t.Key(ctx, id)
	if IsKind(err, NotFound) {
		// The value's pointer outlived a delete that is still finishing.
		return nil, errorf(NotFound, "no API key has this value")
	}
	return k, err
}

// Key loads a key's record and stage claims in one strongly consistent Query.
func (t *Table) Key(ctx context.Context, id string) (*Key, error) {
	var k *Key
	stages := map[string]string{}
	err := t.queryAll(ctx, prefixQuery(KeyPK(id), skKey), func(item map[string]types.AttributeValue) error {
		sk := Str(item, AttrSK)
		if sk == skKey {
			k = new(Key)
			return unmarshal(item, k)
		}
		stages[strings.TrimPrefix(sk, skClaim)] = Str(item, attrPlan)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get key %s: %w", id, err)
	}
	if k == nil {
		return nil, errorf(NotFound, "API key %s not found", id)
	}
	k.Stages = stages
	return k, nil
}

// meterRef is an assignment's meter items as admin operations see them.
type meterRef struct {
	planID  string
	version int64 // its kv
	shards  int
}

// keys are the keys of the assignment's meter items, shard 0 first.
func (m meterRef) keys(keyID string) []map[string]types.AttributeValue {
	return meterKeys(keyID, m.planID, m.shards)
}

// meterKeys are the keys of a key's meter items in a plan, shard 0 first.
func meterKeys(keyID, planID string, shards int) []map[string]types.AttributeValue {
	out := make([]map[string]types.AttributeValue, max(shards, 1))
	for i := range out {
		out[i] = itemKey(ShardPK(keyID, i), MeterSK(planID))
	}
	return out
}

// meterItems counts the meter items of assignments.
func meterItems(refs []meterRef) int {
	n := 0
	for _, m := range refs {
		n += m.shards
	}
	return n
}

// assignedPlans lists the plans a key is assigned to, from its meter items.
func (t *Table) assignedPlans(ctx context.Context, keyID string) ([]meterRef, error) {
	in := prefixQuery(MeterPK(keyID), skMeter)
	in.ProjectionExpression = aws.String("sk, kv, ns")
	var refs []meterRef
	err := t.queryAll(ctx, in, func(item map[string]types.AttributeValue) error {
		if kv, ok := Int(item, AttrKeyVersion); ok {
			ns, _ := Int(item, AttrShards)
			refs = append(refs, meterRef{planID: strings.TrimPrefix(Str(item, AttrSK), skMeter), version: kv, shards: max(int(ns), 1)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list plans of key %s: %w", keyID, err)
	}
	return refs, nil
}

// KeyPlans returns the ids of the plans a key is assigned to.
func (t *Table) KeyPlans(ctx context.Context, keyID string) ([]string, error) {
	refs, err := t.assignedPlans(ctx, keyID)
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.planID
	}
	return ids, err
}

// keyChange is a transaction that rewrites a key's record at the next
// version and moves every assigned meter item with it. Any two changes to a
// key therefore serialise on the record's version, and an authorizer with
// a cached copy of the key fails its next write and reloads.
type keyChange struct {
	key    *Key
	old    int64
	meters []meterRef
	skip   string   // a plan whose meter item the caller writes itself
	idents []string // the key's identities as read
}

func (t *Table) beginKeyChange(ctx context.Context, id string) (*keyChange, error) {
	k, err := t.Key(ctx, id)
	if err != nil {
		return nil, err
	}
	meters, err := t.assignedPlans(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, m := range meters {
		if m.version < 0 {
			return nil, &frozenError{keyID: id, planID: m.planID} // for a moment, by capShards
		}
	}
	return &keyChange{key: k, old: k.Version, meters: meters, idents: slices.Clone(k.Identities)}, nil
}

// keyRetrying is retrying for operations that change a key. A key whose
// shards a capping froze waits; if it stays frozen through every attempt,
// the capping stopped half-way, and settling its plan thaws the key.
func (t *Table) keyRetrying(ctx context.Context, what string, op func() error) error {
	err := retrying(ctx, what, op)
	var f *frozenError
	if !errors.As(err, &f) {
		return err
	}
	if _, err := t.SettlePlan(ctx, f.planID); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return retrying(ctx, what, op)
}

// items returns the record's conditional Put and the meter updates.
func (c *keyChange) items(now int64) ([]types.TransactWriteItem, error) {
	if err := checkIdentityCount(len(c.key.Identities)); err != nil {
		return nil, err
	}
	c.key.Version = c.old + 1
	c.key.LastUpdatedDate = now
	rec, err := marshal(c.key, KeyPK(c.key.ID), skKey)
	if err != nil {
		return nil, err
	}
	items := []types.TransactWriteItem{{Put: &types.Put{
		Item:                      rec,
		ConditionExpression:       aws.String("kv = :old"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":old": N(c.old)},
	}}}
	for _, m := range c.meters {
		if m.planID == c.skip {
			continue
		}
		for _, key := range m.keys(c.key.ID) {
			items = append(items, types.TransactWriteItem{Update: &types.Update{
				Key:                       key,
				UpdateExpression:          aws.String("SET kv = :new"),
				ConditionExpression:       aws.String("kv = :old"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":old": N(m.version), ":new": N(c.key.Version)},
			}})
		}
	}
	added, removed := c.identityChanges()
	for _, ident := range added {
		items = append(items, claimIdentity(c.key.ID, ident))
	}
	for _, ident := range removed {
		items = append(items, releaseIdentity(c.key.ID, ident))
	}
	return items, nil
}

// identityChanges are the identities the change adds and removes.
func (c *keyChange) identityChanges() (added, removed []string) {
	for _, ident := range c.key.Identities {
		if !slices.Contains(c.idents, ident) {
			added = append(added, ident)
		}
	}
	for _, ident := range c.idents {
		if !slices.Contains(c.key.Identities, ident) {
			removed = append(removed, ident)
		}
	}
	return added, removed
}

// UpdateKey applies change to a key's record. change may be called more than
// once if the key changes concurrently; it must not keep state between calls.
func (t *Table) UpdateKey(ctx context.Context, id string, change func(*Key) error) (*Key, error) {
	var k *Key
	err := t.keyRetrying(ctx, "update API key "+id, func() error {
		c, err := t.beginKeyChange(ctx, id)
		if err != nil {
			return err
		}
		if err := change(c.key); err != nil {
			return err
		}
		items, err := c.items(t.now().Unix())
		if err != nil {
			return err
		}
		if err := t.transact(ctx, items); err != nil {
			if added, _ := c.identityChanges(); err == errRetry && len(added) > 0 {
				// Lost a race for an identity, or the key moved: say which.
				if err := t.identitiesHeld(ctx, id, added); err != nil {
					return err
				}
			}
			return err
		}
		k = c.key
		return nil
	})
	return k, err
}

// DeleteKey deletes a key, its values' hashes, its assignments and its usage.
// The first transaction makes the key unusable everywhere at once, and
// leaves a tombstone; claims and history go afterwards, the tombstone
// last. A delete that stops in between is finished by the next DeleteKey
// of the key, which finds the tombstone. A key that is gone without one is
// NotFound, as in API Gateway, also when an earlier call deleted it and its
// answer was lost.
func (t *Table) DeleteKey(ctx context.Context, id string) error {
	shards := 1
	err := t.keyRetrying(ctx, "delete API key "+id, func() error {
		c, err := t.beginKeyChange(ctx, id)
		if err != nil {
			return err
		}
		k := c.key
		shards = 1
		for _, m := range c.meters {
			shards = max(shards, m.shards)
		}
		tomb := itemKey(KeyPK(id), skTombstone)
		tomb[AttrShards] = N(int64(shards))
		items := []types.TransactWriteItem{
			{Delete: &types.Delete{Key: itemKey(KeyPK(id), skKey), ConditionExpression: aws.String("kv = :old"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":old": N(c.old)}}},
			{Put: &types.Put{Item: tomb}},
			{Delete: &types.Delete{Key: itemKey(hashPK(k.Hash), skHash)}},
			{Delete: &types.Delete{Key: itemKey(pkCatalog, catalogKey+id)}},
		}
		if k.PreviousHash != "" {
			items = append(items, types.TransactWriteItem{Delete: &types.Delete{Key: itemKey(hashPK(k.PreviousHash), skHash)}})
		}
		for _, ident := range k.Identities {
			items = append(items, releaseIdentity(id, ident))
		}
		for _, m := range c.meters {
			for _, key := range m.keys(id) {
				items = append(items, types.TransactWriteItem{Delete: &types.Delete{Key: key,
					ConditionExpression:       aws.String("kv = :old"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":old": N(m.version)}}})
			}
			items = append(items,
				types.TransactWriteItem{Delete: &types.Delete{Key: itemKey(planPK(m.planID), skMember+id)}},
				planMembership(m.planID, -1),
			)
		}
		return t.transact(ctx, items)
	})
	if IsKind(err, NotFound) {
		out, gerr := t.DB.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: &t.Name, Key: itemKey(KeyPK(id), skTombstone), ConsistentRead: aws.Bool(true),
		})
		if gerr != nil {
			return fmt.Errorf("delete key %s: %w", id, gerr)
		}
		if out.Item == nil {
			return err
		}
		ns, _ := Int(out.Item, AttrShards)
		shards = int(ns)
	} else if err != nil {
		return err
	}
	return t.finishDelete(ctx, id, shards)
}

// finishDelete removes what a deleted key left: its usage, in every shard
// partition, then its claims, then its tombstone. Shard 0's meter items,
// those of plans the key had left included, say how many shard partitions
// there are, so they go after the others.
func (t *Table) finishDelete(ctx context.Context, id string, shards int) error {
	n, err := t.partitionShards(ctx, MeterPK(id))
	if err != nil {
		return err
	}
	for i := max(n, shards) - 1; i >= 0; i-- {
		if err := t.deletePartition(ctx, ShardPK(id, i), ""); err != nil {
			return err
		}
	}
	if err := t.deletePartition(ctx, KeyPK(id), skTombstone); err != nil {
		return err
	}
	_, err = t.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &t.Name, Key: itemKey(KeyPK(id), skTombstone)})
	if err != nil {
		return fmt.Errorf("delete key %s: %w", id, err)
	}
	return nil
}

// partitionShards returns the most shards a meter item under pk records (1
// for none).
func (t *Table) partitionShards(ctx context.Context, pk string) (int, error) {
	in := prefixQuery(pk, skMeter)
	in.ProjectionExpression = aws.String("ns")
	shards := 1
	err := t.queryAll(ctx, in, func(item map[string]types.AttributeValue) error {
		if ns, ok := Int(item, AttrShards); ok {
			shards = max(shards, int(ns))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read meters in %s: %w", pk, err)
	}
	return shards, nil
}

// deletePartition removes whatever is left under pk but the item whose
// sort key is keep.
func (t *Table) deletePartition(ctx context.Context, pk, keep string) error {
	in := &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": S(pk)},
		ProjectionExpression:      aws.String("pk, sk"),
	}
	return t.queryAll(ctx, in, func(item map[string]types.AttributeValue) error {
		sk := Str(item, AttrSK)
		if sk == keep {
			return nil
		}
		_, err := t.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &t.Name, Key: itemKey(pk, sk)})
		if err != nil {
			return fmt.Errorf("delete %s %s: %w", pk, sk, err)
		}
		return nil
	})
}
