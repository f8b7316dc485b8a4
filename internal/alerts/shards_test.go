package alerts_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// TestConcurrentStreamShardsAlertOnce spends a sharded key's quota from 8
// authorizer instances while two notifiers read the stream at once, each
// the records of half the key's meter items, as Lambda reads two stream
// shards in parallel when a key's items land on different shards. The
// threshold applies to the total, which neither notifier's records alone
// show, and each alerts once between them.
func TestConcurrentStreamShardsAlertOnce(t *testing.T) {
	f := setup(t)
	keyID, value, _ := f.keyInPlan(plans.Plan{Quota: monthly(100), Tags: map[string]string{plans.ShardTag: "4"}})
	ofShards := func(shards ...int) func(types.Record) bool {
		pks := map[string]bool{}
		for _, s := range shards {
			pks[store.ShardPK(keyID, s)] = true
		}
		return func(r types.Record) bool {
			pk, ok := r.Dynamodb.Keys[store.AttrPK].(*types.AttributeValueMemberS)
			return ok && pks[pk.Value]
		}
	}
	a, b := f.mapping(f.notifier()), f.mapping(f.notifier())
	a.Filter, b.Filter = ofShards(0, 2), ofShards(1, 3)
	a.Poll, b.Poll = 10*time.Millisecond, 10*time.Millisecond
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, m := range []interface{ Run(context.Context) error }{a, b} {
		go func() { m.Run(ctx); done <- struct{}{} }()
	}
	admitted := f.spend(value, 8, 200)
	stop()
	<-done
	<-done
	if admitted != 100 {
		t.Fatalf("admitted %d, want 100", admitted)
	}
	ra, rb := f.drain(a), f.drain(b)
	got := f.alerts(keyID)
	t.Logf("two notifiers, half the shards each: %v; %d PutEvents calls (records left after the spend: %d and %d)", thresholds(got), f.bus.Calls(), ra, rb)
	if len(got) != 2 || got[0].Threshold != 80 || got[0].Used < 80 || got[1].Threshold != 100 || got[1].Used != 100 {
		t.Fatalf("alerts %v, want 80 (at 80 or a little past) and 100 (at 100), once each: %+v", thresholds(got), got)
	}
	if f.bus.Calls() != 2 || len(f.failed) != 0 {
		t.Errorf("%d PutEvents calls, %d batches dead-lettered; want 2 and none", f.bus.Calls(), len(f.failed))
	}
}
