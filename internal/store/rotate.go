package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Rotation is a new value for a key.
type Rotation struct {
	// Hash is the new value's SHA-256.
	Hash string
	// Grace is how long the value it replaces keeps working: until now +
	// Grace, rounded up to a whole second so that the instant reads well;
	// 0 ends it now.
	Grace time.Duration
	// Token is the SHA-256 of the caller's clientToken, or "".
	Token string
}

// RotateKey gives a key a new value. The value it replaces keeps working
// for r.Grace: its hash item stays, pointing at the key, and the record
// says until when. The value an earlier rotation replaced stops at once:
// its hash item goes. Everything is one key-change transaction, so every
// authorizer holding the key reloads it on its next write, and of two
// racing rotations exactly one wins; the other is a Conflict and changes
// nothing. Both values are the same key id, with the same meter items.
//
// A rotation that comes again is recognised rather than applied twice:
// with the same value, which is the key's value already; or with the same
// Token, whose value was made but never delivered, so it is replaced and
// the previous value keeps its grace period. Within one call, a write whose
// answer was lost is recognised the same way, by the key's value.
func (t *Table) RotateKey(ctx context.Context, id string, r Rotation) (*Key, error) {
	var (
		k    *Key
		from string // the value the rotation replaces, as first read
		redo bool   // repeating the rotation that set from
	)
	err := t.keyRetrying(ctx, "rotate API key "+id, func() error {
		c, err := t.beginKeyChange(ctx, id)
		if err != nil {
			return err
		}
		cur := c.key
		if cur.Hash == r.Hash {
			k = cur
			return nil
		}
		switch {
		case from == "":
			from, redo = cur.Hash, r.Token != "" && cur.RotationToken == r.Token
		case cur.Hash != from:
			return errorf(Conflict, "API key %s was rotated by another request at the same time, so this rotation changed nothing: the key's value is the one that request returned; rotate again to replace it", id)
		}
		if r.Hash == cur.PreviousHash {
			return errorf(Conflict, "this value is API key %s's previous value, the one a rotation replaced: rotate to a new value", id)
		}
		if owner, err := t.KeyIDByHash(ctx, r.Hash); err == nil {
			return errorf(Conflict, "an API key with this value already exists (id %s): values must be unique", owner)
		} else if !IsKind(err, NotFound) {
			return err
		}

		now := t.now()
		var gone string // a value whose hash item goes
		if redo {
			gone = from
		} else {
			gone = cur.PreviousHash
			cur.PreviousHash, cur.PreviousExpiresAt = from, graceEnd(now, r.Grace)
			cur.RotationToken = r.Token
		}
		cur.Hash = r.Hash
		items, err := c.items(now.Unix())
		if err != nil {
			return fmt.Errorf("rotate API key %s: %w", id, err)
		}
		hash := itemKey(hashPK(r.Hash), skHash)
		hash["id"] = S(id)
		items = append(items, types.TransactWriteItem{Put: &types.Put{Item: hash, ConditionExpression: aws.String("attribute_not_exists(pk)")}})
		if gone != "" {
			items = append(items, types.TransactWriteItem{Delete: &types.Delete{Key: itemKey(hashPK(gone), skHash)}})
		}
		err = t.transact(ctx, items)
		if err != nil && !errors.Is(err, errRetry) {
			// The answer may be lost rather than the write: look.
			if now, rerr := t.Key(ctx, id); rerr == nil && now.Hash == r.Hash {
				k = now
				return nil
			}
			return fmt.Errorf("rotate API key %s: %w", id, err)
		}
		if err != nil {
			return err
		}
		k = cur
		return nil
	})
	return k, err
}

// graceEnd is when a grace period that starts now ends, in µs.
func graceEnd(now time.Time, grace time.Duration) int64 {
	if grace <= 0 {
		return now.UnixMicro()
	}
	end := now.Add(grace)
	if whole := end.Truncate(time.Second); whole.Before(end) {
		end = whole.Add(time.Second)
	}
	return end.UnixMicro()
}
