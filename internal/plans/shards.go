package plans

import (
	"fmt"
	"math"
	"strconv"
)

// Sharding. DynamoDB takes about 1,000 writes a second on one item, failed
// conditional writes included, and every admission is a write to the key's
// meter item. A plan whose keys may be admitted faster than that spreads
// each key over several meter items, shards, each holding a share of every
// limit: of the rate, of the burst and of the quota. No shard admits more
// than its share, so the key never admits more than the whole.
//
// A plan's shard count is fixed when the plan is created, because each
// shard's state (its bucket and its counters) means something only for its
// share. It comes from the plan's ShardTag, or from its rates.
const (
	// ShardTag is the plan tag that sets the shard count. CreateUsagePlan
	// adds it when it chooses more than one shard, so that GetUsagePlan
	// shows the choice.
	ShardTag = "tollgate:shards"
	// MaxShards is the most shards a plan may have.
	MaxShards = 16
	// ShardRate is the rate one shard is sized for. A decision costs at
	// most two writes, and a flooded key about 2.6 a admission, so a shard
	// admitting 300/s takes 600 to 800 writes/s: under DynamoDB's ceiling
	// of about 1,000 for one item.
	ShardRate = 300.0
)

// Shards is the shard count for a new plan: the ShardTag if set, else
// enough shards that the plan's rates, added up, come to at most ShardRate
// each, within MaxShards and the smallest burst.
func (p *Plan) Shards() (int, error) {
	if v, ok := p.Tags[ShardTag]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxShards {
			return 0, fmt.Errorf("tag %s must be a whole number from 1 to %d, not %q", ShardTag, MaxShards, v)
		}
		if err := p.CheckShards(n); err != nil {
			return 0, err
		}
		return n, nil
	}
	var rate float64
	smallest := MaxShards
	p.eachThrottle(func(t Throttle) {
		rate += t.RateLimit
		smallest = min(smallest, t.BurstLimit)
	})
	n := int(min(math.Ceil(rate/ShardRate), MaxShards))
	return max(1, min(n, smallest)), nil
}

// CheckShards says whether every throttle of the plan can be split over n
// shards: each must hold at least one token of every bucket.
func (p *Plan) CheckShards(n int) error {
	var err error
	p.eachThrottle(func(t Throttle) {
		if err == nil && t.BurstLimit < n {
			err = fmt.Errorf("the plan spreads each key over %d meter items (tag %s), each with a share of every limit, so every burstLimit must be at least %d, not %d", n, ShardTag, n, t.BurstLimit)
		}
	})
	return err
}

// eachThrottle calls fn for every throttle of the plan that limits.
func (p *Plan) eachThrottle(fn func(Throttle)) {
	if p.Throttle.Limited() {
		fn(*p.Throttle)
	}
	for _, s := range p.APIStages {
		for _, t := range s.Throttle {
			if t.Limited() {
				fn(t)
			}
		}
	}
}

// Share is shard i's share of total when it is split over n shards: an
// nth, with the remainder going one each to the first shards. The shares
// add up to total exactly.
func Share(total int64, i, n int) int64 {
	if n <= 1 {
		return total
	}
	s := total / int64(n)
	if int64(i) < total%int64(n) {
		s++
	}
	return s
}
