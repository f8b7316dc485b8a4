package meter

import (
	"context"
	"time"
)

// Sharded keys (see plans.Shards). Each shard is a meter item with its
// share of every limit, decided by take exactly as an unsharded item is, so
// no shard admits more than its share and the key never more than the
// whole. An instance sends a key's requests to a home shard, chosen at
// random for it: its own last write there keeps its sight of that shard
// fresh, so it guesses the bucket's state right more often than on a shard
// it visits now and then. If the home shard denies, the request goes on to
// a random other shard and from there to the next: past any number of
// shards whose quota share is spent, so that no quota is stranded in one
// shard while another denies, but past at most one more shard whose bucket
// is empty, so that a flooded key costs at most two writes a decision.
// Denials this instance remembers cost nothing and do not count.
//
// What sharding gives up is burst granularity (a shard holds its share of
// the burst, so a burst aimed at one shard finds only that) and some
// admissions while load is uneven: one shard's bucket may be empty while
// another's has tokens, and a decision writes to two at most.

// takeSharded decides one request on a sharded key.
func (m *Meter) takeSharded(ctx context.Context, req *Request, st *State) (Result, error) {
	n := len(st.items)
	first := min(int(m.random()*float64(n-1)), n-2) // of the others, the one to try first
	var calls, writes int
	retry := time.Duration(-1) // the soonest a throttled shard admits again
	denied := Result{Outcome: QuotaExceeded, TokensRemaining: -1}
	for k := 0; k < n && writes < 2; k++ {
		i := st.home
		if k > 0 {
			// The others are home+1 … home+n-1; take them in turn from first.
			i = (st.home + 1 + (first+k-1)%(n-1)) % n
		}
		sub := *req
		if req.Bucket != nil {
			b := req.Bucket.Shard(i, n)
			sub.Bucket = &b
		}
		if req.Quota != nil {
			q := req.Quota.Shard(i, n)
			sub.Quota = &q
		}
		res, err := m.take(ctx, &sub, st.items[i])
		wrote := res.Calls > 0
		calls += res.Calls
		res.Calls = calls
		switch {
		case err != nil:
			return res, err
		case res.Outcome == Admitted:
			st.sum(&res, req, i)
			return res, nil
		case res.Outcome == Stale:
			return res, nil
		case res.Outcome == QuotaExceeded:
			denied.RetryAfter = res.RetryAfter
		case res.Outcome == Throttled:
			if retry < 0 || res.RetryAfter < retry {
				retry = res.RetryAfter
			}
			if wrote {
				writes++
			}
		}
	}
	if retry >= 0 {
		denied = Result{Outcome: Throttled, RetryAfter: retry, NextToken: retry}
	}
	denied.Calls = calls
	denied.Used = st.used(req.Quota)
	return denied, nil
}

// sum turns an admission's figures from shard i's into the key's, as far
// as this instance knows them: tokens left and quota used, added up over
// the shards as it last saw them. Shards it has not seen count as full.
func (st *State) sum(res *Result, req *Request, i int) {
	n := len(st.items)
	if b := req.Bucket; b != nil {
		tokens := res.TokensRemaining
		for j, it := range st.items {
			if j != i {
				sb := b.Shard(j, n)
				tokens += it.tokens(&sb, req.Now)
			}
		}
		res.TokensRemaining = min(tokens, b.Burst)
		// n shards refill side by side: the key gains a token n times as often.
		res.NextToken /= time.Duration(n)
		if res.TokensRemaining == b.Burst {
			res.NextToken = 0
		}
	}
	res.Used = st.used(req.Quota)
}

// used is the quota used in q's period across the shards, as last seen.
func (st *State) used(q *Quota) int64 {
	var used int64
	for _, it := range st.items {
		used += it.usedIn(q)
	}
	return used
}

// tokens is how many tokens the item's bucket b held at now, as last seen.
func (st *item) tokens(b *Bucket, now int64) int64 {
	tat, ok := st.tats[b.Attr]
	if !ok {
		return b.Burst
	}
	return max(b.Burst-ceilDiv(tat-now, b.T), 0)
}
