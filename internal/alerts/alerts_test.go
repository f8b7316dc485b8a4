package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/alerts"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/eventbus"
	"github.com/tollgate-dev/tollgate/internal/localstack"
	"github.com/tollgate-dev/tollgate/internal/plans"
)

func monthly(limit int) *plans.Quota { return &plans.Quota{Limit: limit, Period: plans.Month} }

// TestConcurrentInstancesAlertOncePerThreshold spends a quota from 8
// authorizer instances at once, and runs two notifiers over the stream,
// each from its start, as a retried or redelivered stream would.
func TestConcurrentInstancesAlertOncePerThreshold(t *testing.T) {
	f := setup(t)
	keyID, value, planID := f.keyInPlan(plans.Plan{Quota: monthly(50)})
	if n := f.spend(value, 8, 120); n != 50 {
		t.Fatalf("admitted %d, want the quota, 50", n)
	}
	// Two notifiers, each from the stream's start, at the same time.
	calls := &dynamotest.Counter{}
	na, nb := f.notifier(), f.notifier()
	na.Table.DB, nb.Table.DB = dynamotest.Client(t, calls.Install), dynamotest.Client(t, calls.Install)
	a, b := f.mapping(na), f.mapping(nb)
	var records int
	done := make(chan struct{})
	go func() { records = f.drain(a); close(done) }()
	f.drain(b)
	<-done
	got := f.alerts(keyID)
	if want := []string{"80@40", "100@50"}; !slices.Equal(thresholds(got), want) {
		t.Fatalf("alerts %v, want %v (one per threshold, at the count that reached it)", thresholds(got), want)
	}
	w := monthly(50).Window(f.clock.Now())
	d := got[0]
	if d.APIKeyName != "acme-prod" || d.CustomerID != "acme" || d.UsagePlanID != planID || d.UsagePlanName != "Gold" ||
		d.Limit != 50 || d.Period != "MONTH" || d.PeriodStart != w.Start.Format(time.RFC3339) || d.PeriodEnd != w.End.Format(time.RFC3339) ||
		len(d.AlertID) != 32 || d.AlertID == got[1].AlertID {
		t.Errorf("detail %+v", d)
	}
	t.Logf("%d stream records, read by two notifiers: %d PutEvents calls; their DynamoDB calls %v", records, f.bus.Calls(), calls.Snapshot())
	if f.bus.Calls() != 2 {
		t.Errorf("%d PutEvents calls, want 2", f.bus.Calls())
	}
	if len(f.failed) > 0 {
		t.Errorf("dead-lettered: %+v", f.failed)
	}
}

// TestRedeliveredBatchPutsNoDuplicate hands a notifier the same batch
// again, as Lambda does after a timeout, and a cold notifier the whole
// stream again.
func TestRedeliveredBatchPutsNoDuplicate(t *testing.T) {
	f := setup(t)
	keyID, value, _ := f.keyInPlan(plans.Plan{Quota: monthly(5)})
	f.spend(value, 1, 5)
	n := f.notifier()
	var batch []byte
	m := f.mapping(n)
	handler := m.Handler
	m.Handler = func(ctx context.Context, event []byte) ([]byte, error) {
		batch = event
		return handler(ctx, event)
	}
	f.drain(m)
	if got := thresholds(f.alerts(keyID)); !slices.Equal(got, []string{"80@4", "100@5"}) {
		t.Fatalf("alerts %v", got)
	}
	for _, fresh := range []*alerts.Notifier{n, f.notifier()} {
		out, err := fresh.Invoke(context.Background(), batch)
		if err != nil || !strings.Contains(string(out), `"batchItemFailures":[]`) {
			t.Fatalf("redelivered batch: %s %v", out, err)
		}
	}
	f.drain(f.mapping(f.notifier()))
	if got := thresholds(f.alerts(keyID)); len(got) != 2 {
		t.Fatalf("after redeliveries: %v, want the 2 alerts only", got)
	}
}

// TestPutEventsFailuresAreRetriedThenDeadLettered fails PutEvents: a
// passing failure is retried and the event put once; a lasting one sends
// the record alone to the dead-letter queue, past which the stream moves
// on, and a replay of the dead-lettered batch puts the event.
func TestPutEventsFailuresAreRetriedThenDeadLettered(t *testing.T) {
	f := setup(t)
	key1, value1, _ := f.keyInPlan(plans.Plan{Quota: monthly(1)})
	f.bus.Fault = func(c eventbus.Call) eventbus.Fault {
		if c.N <= 4 {
			return eventbus.Refuse // the SDK retries too: 3 attempts a try
		}
		return eventbus.Accept
	}
	f.spend(value1, 1, 1)
	f.drain(f.mapping(f.notifier()))
	if got := thresholds(f.alerts(key1)); !slices.Equal(got, []string{"80@1", "100@1"}) || len(f.failed) != 0 {
		t.Fatalf("after passing failures: alerts %v, dead-lettered %d", got, len(f.failed))
	}

	// Key 2's events fail for good; key 3's, written after, do not.
	key2, value2, _ := f.keyInPlan(plans.Plan{Quota: monthly(1), Tags: map[string]string{plans.AlertTag: "100"}})
	key3, value3, _ := f.keyInPlan(plans.Plan{Quota: monthly(1), Tags: map[string]string{plans.AlertTag: "100"}})
	f.spend(value2, 1, 1)
	f.spend(value3, 1, 1)
	f.bus.Fault = func(c eventbus.Call) eventbus.Fault {
		if strings.Contains(c.Details[0], key2) {
			return eventbus.FailEntries
		}
		return eventbus.Accept
	}
	f.drain(f.mapping(f.notifier()))
	if got := f.alerts(key2); len(got) != 0 {
		t.Fatalf("key 2 alerted %v through a failing bus", thresholds(got))
	}
	if got := thresholds(f.alerts(key3)); !slices.Equal(got, []string{"100@1"}) {
		t.Fatalf("key 3, after key 2's poison record: %v, want its alert (the stream moves on)", got)
	}
	if len(f.failed) != 1 || f.failed[0].BatchInfo.BatchSize != 1 {
		t.Fatalf("dead-lettered %+v, want one batch of the one poison record", f.failed)
	}

	// Replay: the dead-letter message, given to the function.
	f.bus.Fault = nil
	msg, _ := json.Marshal(f.failed[0])
	out, err := f.notifier().Invoke(context.Background(), msg)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if got := thresholds(f.alerts(key2)); !slices.Equal(got, []string{"100@1"}) {
		t.Fatalf("after the replay (%s): key 2's alerts %v", out, got)
	}
	if _, err := f.notifier().Invoke(context.Background(), []byte(`{"replay": `+string(msg)+`}`)); err != nil {
		t.Fatal(err)
	}
	if got := f.alerts(key2); len(got) != 1 {
		t.Fatalf("a second replay put the alert again: %v", thresholds(got))
	}
}

// TestLostAnswerMayDuplicate pins down the one duplicate the design
// allows: PutEvents took the event and its answer was lost. The retry puts
// a second copy, with the same alertId.
func TestLostAnswerMayDuplicate(t *testing.T) {
	f := setup(t)
	keyID, value, _ := f.keyInPlan(plans.Plan{Quota: monthly(1), Tags: map[string]string{plans.AlertTag: "100"}})
	f.spend(value, 1, 1)
	f.bus.Fault = func(c eventbus.Call) eventbus.Fault {
		if c.N == 1 {
			return eventbus.LoseAnswer
		}
		return eventbus.Accept
	}
	f.drain(f.mapping(f.notifier()))
	got := f.alerts(keyID)
	if len(got) != 2 || got[0].AlertID != got[1].AlertID {
		t.Fatalf("alerts %+v, want two copies with one alertId", got)
	}
}

// TestShardedKeyAlertsOnItsTotal: a key spread over 4 meter items alerts
// when the shards' total reaches a threshold, though no shard reached its
// share of it, and never before.
func TestShardedKeyAlertsOnItsTotal(t *testing.T) {
	f := setup(t)
	keyID, _, planID := f.keyInPlan(plans.Plan{Quota: monthly(100), Tags: map[string]string{plans.ShardTag: "4"}})
	w := monthly(100).Window(f.clock.Now()).ID
	m := f.mapping(f.notifier())
	// 19 + 20 + 20 + 20 = 79: just short of 80.
	for shard, n := range []int64{19, 20, 20, 20} {
		f.setCount(keyID, planID, shard, w, n)
	}
	f.drain(m)
	if got := f.alerts(keyID); len(got) != 0 {
		t.Fatalf("alerted at 79 of 100: %v", thresholds(got))
	}
	// Shard 0 reaches 20, its share of 80: the total is 80.
	f.setCount(keyID, planID, 0, w, 1)
	f.drain(m)
	if got := thresholds(f.alerts(keyID)); !slices.Equal(got, []string{"80@80"}) {
		t.Fatalf("at 80 of 100: %v", got)
	}

	// And under 8 authorizer instances, with the notifier running as they
	// spend: how far past 80 the first batch that sees it is depends on
	// timing, and is only logged.
	key2, value2, _ := f.keyInPlan(plans.Plan{Quota: monthly(100), Tags: map[string]string{plans.ShardTag: "4"}})
	ctx, stop := context.WithCancel(context.Background())
	m.Poll = 10 * time.Millisecond
	running := make(chan struct{})
	go func() { m.Run(ctx); close(running) }()
	admitted := f.spend(value2, 8, 200)
	stop()
	<-running
	if admitted != 100 {
		t.Fatalf("admitted %d, want 100", admitted)
	}
	f.drain(m)
	got := f.alerts(key2)
	if len(got) != 2 || got[0].Threshold != 80 || got[0].Used < 80 || got[1].Threshold != 100 || got[1].Used != 100 {
		t.Fatalf("alerts %v, want 80 (at 80 or a little past) and 100 (at 100)", thresholds(got))
	}
	t.Logf("sharded key, 8 instances: %v", thresholds(got))
}

// TestUpdateUsageRearms: an extension re-arms the thresholds the key is
// below right after it, and not the others; a refund re-arms nothing.
func TestUpdateUsageRearms(t *testing.T) {
	for _, shards := range []string{"1", "3"} {
		t.Run("shards="+shards, func(t *testing.T) {
			f := setup(t)
			keyID, value, planID := f.keyInPlan(plans.Plan{Quota: monthly(10), Tags: map[string]string{plans.ShardTag: shards}})
			n, _ := (&plans.Plan{Tags: map[string]string{plans.ShardTag: shards}}).Shards()
			m := f.mapping(f.notifier())
			f.spend(value, 2, 20)
			f.drain(m)
			if got := thresholds(f.alerts(keyID)); !slices.Equal(got, []string{"80@8", "100@10"}) && n == 1 {
				t.Fatalf("first arming: %v", got)
			}
			if got := f.alerts(keyID); len(got) != 2 {
				t.Fatalf("first arming: %v", thresholds(got))
			}
			w := monthly(10).Window(f.clock.Now())
			extend := func(remaining int64) {
				t.Helper()
				f.clock.Add(time.Second) // arm marks are times
				if err := f.tbl.SetRemaining(context.Background(), keyID, planID, n, w.ID, f.clock.Now().Format("20060102"), 10, remaining); err != nil {
					t.Fatal(err)
				}
			}
			// To 1 remaining: the key is at 90 %, past 80 %: only 100 % re-arms.
			extend(1)
			f.clock.Add(2 * time.Second) // past the authorizers' memory of the denial
			f.spend(value, 2, 5)
			f.drain(m)
			got := f.alerts(keyID)
			if len(got) != 3 || got[2].Threshold != 100 || got[2].Used != 10 {
				t.Fatalf("after an extension to 1 remaining: %v, want 100 %% again only", thresholds(got))
			}
			// To 5 remaining: both re-arm.
			extend(5)
			f.clock.Add(2 * time.Second)
			f.spend(value, 2, 10)
			f.drain(m)
			got = f.alerts(keyID)
			if len(got) != 5 || got[3].Threshold != 80 || got[4].Threshold != 100 || got[4].Used != 10 {
				t.Fatalf("after an extension to 5 remaining: %v, want 80 %% and 100 %% again", thresholds(got))
			}
			// A refund takes one back, and the count returns: no alert.
			f.setCount(keyID, planID, 0, w.ID, -1)
			f.setCount(keyID, planID, 0, w.ID, 1)
			f.drain(m)
			if got := f.alerts(keyID); len(got) != 5 {
				t.Fatalf("a refund re-armed: %v", thresholds(got))
			}
		})
	}
}

// TestNewPeriodRearms: a daily quota alerts again the next day.
func TestNewPeriodRearms(t *testing.T) {
	f := setup(t)
	keyID, value, _ := f.keyInPlan(plans.Plan{Quota: &plans.Quota{Limit: 5, Period: plans.Day}})
	m := f.mapping(f.notifier())
	f.spend(value, 2, 8)
	f.drain(m)
	f.clock.Add(24 * time.Hour)
	f.spend(value, 2, 8)
	f.drain(m)
	got := f.alerts(keyID)
	if !slices.Equal(thresholds(got), []string{"80@4", "100@5", "80@4", "100@5"}) {
		t.Fatalf("alerts %v, want 80 and 100 on each day", thresholds(got))
	}
	if got[0].PeriodStart == got[2].PeriodStart || got[2].PeriodStart != got[1].PeriodEnd {
		t.Fatalf("periods %s and %s", got[0].PeriodStart, got[2].PeriodStart)
	}
}

// TestLoweredLimitAlerts: lowering a limit past a key's count alerts for
// the thresholds it crosses, when the change reaches the key's meter item.
func TestLoweredLimitAlerts(t *testing.T) {
	f := setup(t)
	keyID, value, planID := f.keyInPlan(plans.Plan{Quota: monthly(10)})
	m := f.mapping(f.notifier())
	f.spend(value, 1, 7)
	f.drain(m)
	if got := f.alerts(keyID); len(got) != 0 {
		t.Fatalf("at 7 of 10: %v", thresholds(got))
	}
	_, err := f.tbl.UpdatePlan(context.Background(), planID, func(p *plans.Plan) error { p.Quota.Limit = 8; return nil })
	if err != nil {
		t.Fatal(err)
	}
	f.drain(m)
	got := f.alerts(keyID)
	if !slices.Equal(thresholds(got), []string{"80@7"}) || got[0].Limit != 8 {
		t.Fatalf("after lowering the limit to 8: %v, want 80 %% at 7 of 8", thresholds(got))
	}
}

// TestThresholdsFromTheTag: a plan's tag replaces the defaults, "off"
// silences it, and ALERT_THRESHOLDS sets the defaults.
func TestThresholdsFromTheTag(t *testing.T) {
	f := setup(t)
	tagged, v1, _ := f.keyInPlan(plans.Plan{Quota: monthly(10), Tags: map[string]string{plans.AlertTag: "50/90"}})
	off, v2, _ := f.keyInPlan(plans.Plan{Quota: monthly(10), Tags: map[string]string{plans.AlertTag: "off"}})
	plain, v3, _ := f.keyInPlan(plans.Plan{Quota: monthly(10)})
	for _, v := range []string{v1, v2, v3} {
		f.spend(v, 1, 10)
	}
	f.drain(f.mapping(f.notifier("ALERT_THRESHOLDS", "30,60")))
	if got := thresholds(f.alerts(tagged)); !slices.Equal(got, []string{"50@5", "90@9"}) {
		t.Errorf("tag 50/90: %v", got)
	}
	if got := f.alerts(off); len(got) != 0 {
		t.Errorf("tag off: %v", thresholds(got))
	}
	if got := thresholds(f.alerts(plain)); !slices.Equal(got, []string{"30@3", "60@6"}) {
		t.Errorf("ALERT_THRESHOLDS=30,60: %v", got)
	}
}

func TestSettings(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	s, err := alerts.ReadSettings(env("TABLE_NAME", "t"))
	if err != nil || !slices.Equal(s.Thresholds, plans.DefaultThresholds) || s.BusName != "" {
		t.Errorf("defaults: %+v %v", s, err)
	}
	s, err = alerts.ReadSettings(env("TABLE_NAME", "t", "EVENT_BUS_NAME", "billing", "ALERT_THRESHOLDS", "off"))
	if err != nil || len(s.Thresholds) != 0 || s.BusName != "billing" {
		t.Errorf("set: %+v %v", s, err)
	}
	for _, bus := range []string{"aws.partner/example.com/123/events", "arn:aws:events:eu-west-1:123456789012:event-bus/billing"} {
		if s, err := alerts.ReadSettings(env("TABLE_NAME", "t", "EVENT_BUS_NAME", bus)); err != nil || s.BusName != bus {
			t.Errorf("EVENT_BUS_NAME=%s: %+v %v", bus, s, err)
		}
	}
	for _, bad := range [][]string{{}, {"TABLE_NAME", "t", "ALERT_THRESHOLDS", "80/120"}, {"TABLE_NAME", "t", "EVENT_BUS_NAME", "billing bus"}} {
		if _, err := alerts.ReadSettings(env(bad...)); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// TestSampleEvents runs events/notifier/stream-record.json, a record of
// the sample key's meter item reaching 4 of 5, through the notifier on a
// table seeded as make run seeds it: the event it puts is
// events/notifier/QuotaThresholdReached.json, bar the id EventBridge gives.
func TestSampleEvents(t *testing.T) {
	f := setup(t)
	if err := localstack.SeedSamples(context.Background(), f.tbl); err != nil {
		t.Fatal(err)
	}
	record, err := os.ReadFile("../../events/notifier/stream-record.json")
	if err != nil {
		t.Fatal(err)
	}
	n := f.notifier()
	for range 2 { // the second time, the marker says it was sent
		if out, err := n.Invoke(context.Background(), record); err != nil || string(out) != `{"batchItemFailures":[]}` {
			t.Fatalf("%s %v", out, err)
		}
	}
	got := f.bus.Events()
	if len(got) != 1 {
		t.Fatalf("%d events, want 1", len(got))
	}
	var want eventbus.Event
	b, err := os.ReadFile("../../events/notifier/QuotaThresholdReached.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	var gotDetail, wantDetail map[string]any
	json.Unmarshal(got[0].Detail, &gotDetail)
	json.Unmarshal(want.Detail, &wantDetail)
	if fmt.Sprint(gotDetail) != fmt.Sprint(wantDetail) {
		t.Errorf("detail\n %v\nwant (the sample)\n %v", gotDetail, wantDetail)
	}
	if got[0].Source != want.Source || got[0].DetailType != want.DetailType || got[0].Time != want.Time || got[0].Version != want.Version {
		t.Errorf("event %+v\nwant %+v", got[0], want)
	}
	// Every field of Detail is in the sample, and nothing else.
	var d alerts.Detail
	dec := json.NewDecoder(strings.NewReader(string(want.Detail)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Errorf("the sample's detail: %v", err)
	}
	all, _ := json.Marshal(alerts.Detail{})
	var fields map[string]any
	json.Unmarshal(all, &fields)
	if len(fields) != len(wantDetail) {
		t.Errorf("the sample has %d detail fields, Detail %d", len(wantDetail), len(fields))
	}
}
