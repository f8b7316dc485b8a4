package store

import (
	"fmt"
	"hash/fnv"
	"strconv"
)

// The table holds these items. Every item has a string pk and sk.
//
//	item                      pk                  sk
//	API key                   KEY#<keyId>         K
//	stage claim               KEY#<keyId>         K#S#<apiId>:<stage>
//	deleted key's tombstone   KEY#<keyId>         D
//	meter (an assignment)     METER#<keyId>       P#<planId>
//	usage history             METER#<keyId>       U#<planId>#<yyyymm>
//	meter shard i of n        METER#<keyId>#<i>   P#<planId>
//	shard i's usage history   METER#<keyId>#<i>   U#<planId>#<yyyymm>
//	key value → key           HASH#<sha256 hex>   H
//	identity → key            IDENT#<sha256 hex>  I
//	usage plan                PLAN#<planId>       P
//	plan member               PLAN#<planId>       M#<keyId>
//	catalog entry             CATALOG             K#<keyId> or P#<planId>
//	quota alert marker        ALERT#<keyId>       <planId>#<window>#<arm>#<pct>
//
// A key's record and its stage claims share the sk prefix "K", so one Query
// loads everything the authorizer needs to route a request. Meters live in
// a partition of their own so that IAM (dynamodb:LeadingKeys) can let the
// authorizer update meters and nothing else. A stage claim
// exists only if absent, which makes "one plan per key per API stage" a
// DynamoDB condition rather than a check that can race. A claim records
// the plan (plan), and exists only for a key in the plan. A deleted key's
// tombstone lives until the delete has removed the rest, so that a delete
// cut short can be finished.
//
// An identity item says which key an identity (a JWT claim value, see
// Key.Identities) belongs to; its pk holds the SHA-256 of the claim value.
// It exists only if absent, so an identity belongs to at most one key even
// when two keys claim it at once, and it is written in the same
// transaction as the key's record, which moves kv: an authorizer that
// cached the key fails its next write and reads the identity again. It
// lives in a namespace of its own: no API key value can be looked up as an
// identity, nor an identity as a key value.
//
// The meter item is the one item the authorizer writes. A plan whose keys
// are too hot for one item spreads each over n of them, shards, each with
// a share of every limit (see plans.Shards); shard 0 is the usual item and
// the others have partitions of their own, so that DynamoDB can place them
// apart. Every shard carries the same attributes, and shard 0 also ns, the
// shard count, so that admin operations find the others. Meter items carry:
//
//	ns            the shard count, on shard 0, when more than 1
//	kv            the key's version when the item was last synced; absent
//	              when the key is not (or no longer) assigned to the plan
//	pv            the plan's version the item has been synced to
//	tat           TAT of the plan's token bucket, µs since the epoch
//	r<8 hex>      TAT of a route override's bucket
//	q<window>     requests admitted in a quota period (qD20250601,
//	              qW20250602, qM202506)
//	c<window>     on a shard, the most its q<window> may reach, after a
//	              change of the quota limit within the period (capShards)
//	d<yyyymmdd>   requests admitted on that UTC day
//	e<yyyymmdd>   quota remaining after that day's last admission or
//	              extension
//	ut            the change token of the last extension (SetRemaining)
//	x<window>     the last extension (UpdateUsage) in a quota period, a map:
//	              t, when (µs), and u, the key's whole quota count right
//	              after it (limit - remaining), the same on every shard.
//	              It re-arms the period's quota alerts (see alerts.go);
//	              nothing else ever moves it
//	w<tag>        a write slot: the id of the latest write by the authorizer
//	              instance whose tag (4 characters of [0-9A-Za-z]) it names,
//	              so that the instance recognises its own write when it comes
//	              back (an SDK retry, a late copy); see package meter
//	lw            the tag of the instance that made the latest admission
//
// No other name starts with "w" (the others are pk sk ns kv pv tat r q c d
// e ut x exp), so a name is a slot iff IsSlot says so. A slot takes 13 bytes
// (5 of name, 8 of a 13-digit number), lw 6. An instance that sees an item
// whole with 8 or more slots of others older than the meter's prune age (a
// minute) removes them, and each instance sees each item it writes whole
// at least once a prune age; so an item holds about one slot for each
// instance that wrote it in the last two minutes, plus at most 7. A meter
// item is about 100 to 200 bytes without slots: up to about 60 instances
// writing one item within two minutes keep it under 1 KB, one write
// capacity unit a write.
//
// A quota alert marker records that the notifier put (or is putting, or
// chose not to put) the event for one threshold of one key, plan, period
// and arming; see alerts.go. Markers have a partition of their own, so
// that IAM can confine the notifier's writes to them, and expire by TTL a
// while after their period ends.
//
// Every admin change that matters to a decision moves kv or pv on the meter
// items it affects, and every decision is conditional on both, so a cached
// key or plan that is out of date fails its write instead of being obeyed.
// Days older than yesterday move to usage history items so that the meter
// item stays well under 1 KB and each write costs 1 WCU.

// Key and attribute names.
const (
	AttrPK      = "pk"
	AttrSK      = "sk"
	AttrExpires = "exp"

	AttrShards      = "ns"
	AttrKeyVersion  = "kv"
	AttrPlanVersion = "pv"
	AttrTAT         = "tat"
	PrefixRoute     = "r"
	PrefixQuota     = "q"
	PrefixDay       = "d"
	PrefixRemaining = "e"
	PrefixCap       = "c"
	PrefixArm       = "x"
	PrefixSlot      = "w"
	AttrLastWriter  = "lw"

	attrPlan       = "plan" // on a stage claim: the plan that holds the stage
	attrUsageToken = "ut"   // on a meter item: the last extension's change token
)

const (
	skKey       = "K"
	skClaim     = "K#S#"
	skTombstone = "D"
	skMeter     = "P#"
	skHistory   = "U#"
	skHash      = "H"
	skIdentity  = "I"
	skPlan      = "P"
	skMember    = "M#"
	pkCatalog   = PartitionIndex
	catalogKey  = "K#"
	catalogPlan = "P#"
)

// KeyPK is the partition of a key's record and stage claims.
func KeyPK(keyID string) string { return PartitionKey + keyID }

// MeterPK is the partition of a key's meter and usage history items, or
// of shard 0's when a plan has shards.
func MeterPK(keyID string) string { return PartitionMeter + keyID }

// ShardPK is the partition of meter shard i of a key.
func ShardPK(keyID string, i int) string {
	if i == 0 {
		return MeterPK(keyID)
	}
	return MeterPK(keyID) + "#" + strconv.Itoa(i)
}

// Partition prefixes, for IAM policies that confine a function to some
// items (dynamodb:LeadingKeys).
const (
	PartitionKey   = "KEY#"
	PartitionMeter = "METER#"
	PartitionHash  = "HASH#"
	// PartitionIdentity holds identity items: JWT claim value → key.
	PartitionIdentity = "IDENT#"
	PartitionPlan     = "PLAN#"
	PartitionIndex    = "CATALOG"
	PartitionAlert    = "ALERT#"
)

// MeterSK is the sort key of the meter item for a key's assignment to a plan.
func MeterSK(planID string) string { return skMeter + planID }

// HistorySK is the sort key of a month of usage history for a key and plan.
func HistorySK(planID, yyyymm string) string { return skHistory + planID + "#" + yyyymm }

// RouteAttr names the TAT attribute of a route override's bucket: "r" and
// eight hex digits of an FNV-1a hash of the stage and the throttle key. A
// collision would only make two routes share a bucket, never admit more.
func RouteAttr(stage, throttleKey string) string {
	h := fnv.New32a()
	h.Write([]byte(stage))
	h.Write([]byte{0})
	h.Write([]byte(throttleKey))
	return fmt.Sprintf("%s%08x", PrefixRoute, h.Sum32())
}

func hashPK(hash string) string   { return PartitionHash + hash }
func planPK(planID string) string { return PartitionPlan + planID }
func claimSK(stage string) string { return skClaim + stage }

// SlotAttr names the write slot of an authorizer instance's tag.
func SlotAttr(tag string) string { return PrefixSlot + tag }

// IsSlot reports whether an attribute name is a write slot: "w" and four
// characters of [0-9A-Za-z].
func IsSlot(name string) bool {
	if len(name) != len(PrefixSlot)+4 || name[:len(PrefixSlot)] != PrefixSlot {
		return false
	}
	for _, c := range name[len(PrefixSlot):] {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}
