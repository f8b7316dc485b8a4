package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Quota alerts. The notifier reads meter items' changes from the table's
// stream and puts an event when a key's quota count reaches a threshold.
// Each threshold alerts once per key, plan, period and arming: a period
// starts armed, and an extension (SetRemaining) arms it again, leaving its
// mark (x<window>) on the meter items. A marker item per alert makes
// "once" a DynamoDB condition, whatever the number of notifier instances
// and retries.
//
// A marker goes through these states:
//
//	pending   a notifier claimed the alert and is putting the event; the
//	          claim names its owner (one attempt at one stream record),
//	          the record, and lapses at its lease's end
//	sent      the event was put; nobody puts it again
//	skipped   the alert is not due: the key was already past the
//	          threshold when an extension re-armed the period
//
// The owner may claim again (an SDK retry of a claim that was applied),
// and anyone once the lease has lapsed or the owner released it. An owner
// that crashed after PutEvents took the event and before it marked the
// alert sent leaves a duplicate then, and only then.

// Arm is the mark an extension leaves on a key's meter items for one quota
// period: when it happened (µs), and the key's whole quota count right
// after it. The zero Arm is a period that has had no extension.
type Arm struct {
	At   int64
	Used int64
}

func armValue(a Arm) types.AttributeValue {
	return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"t": N(a.At), "u": N(a.Used)}}
}

// ReadArm reads a meter item's arm mark for a quota period.
func ReadArm(item map[string]types.AttributeValue, window string) Arm {
	m, ok := item[PrefixArm+window].(*types.AttributeValueMemberM)
	if !ok {
		return Arm{}
	}
	at, _ := Int(m.Value, "t")
	used, _ := Int(m.Value, "u")
	return Arm{At: at, Used: used}
}

// Alert names one quota alert: a threshold (percent) of a key's quota in
// one period of a plan, under one arming (Arm.At).
type Alert struct {
	KeyID, PlanID, Window string
	Arm                   int64
	Threshold             int
}

// ID identifies the alert, the same for every copy of its event: an
// opaque 32 hex digits.
func (a Alert) ID() string {
	h := sha256.Sum256([]byte(a.KeyID + "\x00" + a.sk()))
	return hex.EncodeToString(h[:16])
}

func (a Alert) sk() string {
	return fmt.Sprintf("%s#%s#%d#%03d", a.PlanID, a.Window, a.Arm, a.Threshold)
}

// AlertPK is the partition of a key's alert markers.
func AlertPK(keyID string) string { return PartitionAlert + keyID }

func (a Alert) key() map[string]types.AttributeValue { return itemKey(AlertPK(a.KeyID), a.sk()) }

// Claim is the outcome of ClaimAlert.
type Claim int

// Claims.
const (
	// Claimed: the caller owns the alert and puts its event.
	Claimed Claim = iota + 1
	// Done: the event was put, or is not due.
	Done
	// Busy: another record's claim holds it, until its lease ends.
	Busy
	// Held: another attempt at the same record holds it, until its lease
	// ends: an earlier attempt that crashed, or one running beside this.
	Held
)

// Alert marker states.
const (
	alertPending = "pending"
	alertSent    = "sent"
	alertSkipped = "skipped"
)

// ClaimAlert claims an alert for owner, an attempt at processing record,
// until lease from now, unless it is done or another owner's unlapsed
// claim holds it. One conditional write: a repeat by the same owner
// succeeds, so an SDK retry of a claim that was applied and whose answer
// was lost finds it its own. The marker expires (TTL) at expires. until is
// when another owner's claim lapses, for Busy and Held.
func (t *Table) ClaimAlert(ctx context.Context, a Alert, owner, record string, lease time.Duration, expires time.Time) (c Claim, until time.Time, err error) {
	now := t.now()
	item := a.key()
	item["st"], item["ow"], item["rec"] = S(alertPending), S(owner), S(record)
	item["lu"] = N(now.Add(lease).UnixMicro())
	item[AttrExpires] = N(expires.Unix())
	_, err = t.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &t.Name,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk) OR (st = :pending AND (ow = :owner OR lu < :now))"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pending": S(alertPending), ":owner": S(owner), ":now": N(now.UnixMicro()),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return Claimed, time.Time{}, nil
	case !errors.As(err, &failed):
		return 0, time.Time{}, fmt.Errorf("claim alert %s: %w", a.ID(), err)
	case Str(failed.Item, "st") != alertPending:
		return Done, time.Time{}, nil
	}
	lu, _ := Int(failed.Item, "lu")
	if Str(failed.Item, "rec") == record {
		return Held, time.UnixMicro(lu), nil
	}
	return Busy, time.UnixMicro(lu), nil
}

// ReleaseAlert gives up owner's claim, which lapses at once: its attempt
// at putting the event is over, and failed.
func (t *Table) ReleaseAlert(ctx context.Context, a Alert, owner string) error {
	_, err := t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &t.Name,
		Key:                       a.key(),
		UpdateExpression:          aws.String("SET lu = :zero"),
		ConditionExpression:       aws.String("st = :pending AND ow = :owner"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": N(0), ":pending": S(alertPending), ":owner": S(owner)},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("release alert %s: %w", a.ID(), err)
	}
	return nil
}

// AlertSent marks an alert sent by owner, with the event's id. If the
// claim is no longer owner's (its lease lapsed and another took it over),
// it reports false: the other owner puts the event again.
func (t *Table) AlertSent(ctx context.Context, a Alert, owner, eventID string) (bool, error) {
	_, err := t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &t.Name,
		Key:                       a.key(),
		UpdateExpression:          aws.String("SET st = :sent, ev = :ev, sa = :now REMOVE lu"),
		ConditionExpression:       aws.String("ow = :owner"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":sent": S(alertSent), ":ev": S(eventID), ":now": N(t.now().UnixMicro()), ":owner": S(owner)},
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mark alert %s sent: %w", a.ID(), err)
	}
	return true, nil
}

// SkipAlert records that an alert is not due, unless its marker exists.
func (t *Table) SkipAlert(ctx context.Context, a Alert, expires time.Time) error {
	item := a.key()
	item["st"], item[AttrExpires] = S(alertSkipped), N(expires.Unix())
	_, err := t.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &t.Name, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("skip alert %s: %w", a.ID(), err)
	}
	return nil
}

// AlertState is a marker's state ("pending", "sent", "skipped"), or "" if
// there is none.
func (t *Table) AlertState(ctx context.Context, a Alert) (string, error) {
	out, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &t.Name, Key: a.key(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("read alert %s: %w", a.ID(), err)
	}
	return Str(out.Item, "st"), nil
}

// ShardCount is one meter item's quota count and arm mark for a period.
type ShardCount struct {
	Count    int64
	Arm      Arm
	Assigned bool // the item has kv: the key is in the plan
}

// QuotaCounts reads the quota count and arm mark of a period from each of
// a key's meter items in a plan, shard 0 first, in one strongly consistent
// BatchGetItem (a key has at most plans.MaxShards of them).
func (t *Table) QuotaCounts(ctx context.Context, keyID, planID string, shards int, window string) ([]ShardCount, error) {
	keys := meterKeys(keyID, planID, shards)
	index := map[string]int{}
	for i := range keys {
		index[ShardPK(keyID, i)] = i
	}
	out := make([]ShardCount, len(keys))
	req := map[string]types.KeysAndAttributes{t.Name: {
		Keys: keys, ConsistentRead: aws.Bool(true),
		ProjectionExpression:     aws.String("pk, kv, #q, #x"),
		ExpressionAttributeNames: map[string]string{"#q": PrefixQuota + window, "#x": PrefixArm + window},
	}}
	for attempt := 0; len(req) > 0; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
			}
		}
		res, err := t.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return nil, fmt.Errorf("read quota counts of key %s in plan %s: %w", keyID, planID, err)
		}
		for _, item := range res.Responses[t.Name] {
			i, ok := index[Str(item, AttrPK)]
			if !ok {
				continue
			}
			out[i].Count, _ = Int(item, PrefixQuota+window)
			out[i].Arm = ReadArm(item, window)
			_, out[i].Assigned = item[AttrKeyVersion]
		}
		req = res.UnprocessedKeys
	}
	return out, nil
}

// alertExpiry is how long after its period ends a marker is kept: longer
// than a stream record lives (24 hours), so that a late or replayed record
// still finds it.
const alertExpiry = 7 * 24 * time.Hour

// AlertExpires is when the markers of a period ending at end expire.
func AlertExpires(end time.Time) time.Time { return end.Add(alertExpiry) }
