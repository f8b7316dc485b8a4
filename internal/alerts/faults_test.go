package alerts_test

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/plans"
)

// notifierCall is what a fault rule reads of one of the notifier's
// DynamoDB calls.
type notifierCall struct {
	op, body string
	marker   string // the marker's sk, for writes to markers
	claim    bool   // a claim (PutItem of a pending marker)
	release  bool
}

func readCall(c dynamotest.Call) notifierCall {
	var in struct {
		Item, Key        map[string]map[string]any
		UpdateExpression string
	}
	json.Unmarshal(c.Body, &in)
	nc := notifierCall{op: c.Op, body: string(c.Body)}
	item := in.Item
	if item == nil {
		item = in.Key
	}
	if pk, _ := item["pk"]["S"].(string); strings.HasPrefix(pk, "ALERT#") {
		nc.marker, _ = item["sk"]["S"].(string)
		st, _ := item["st"]["S"].(string)
		nc.claim = c.Op == "PutItem" && st == "pending"
		nc.release = strings.HasPrefix(in.UpdateExpression, "SET lu = ")
	}
	return nc
}

// TestDynamoDBFaultsNeitherLoseNorDuplicate runs the notifier with its
// DynamoDB calls through a proxy that fails them as DynamoDB and the
// network do, including writes it applies and whose answers it loses.
// The notifier recognises its own claims and marks when the SDK or the
// stream retries them, so each alert is put exactly once: PutEvents'
// answers are not lost here, and only those may cause a second copy.
func TestDynamoDBFaultsNeitherLoseNorDuplicate(t *testing.T) {
	t.Run("answers lost once or twice", func(t *testing.T) {
		f := setup(t)
		proxy := dynamotest.NewFaultProxy(t)
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.URL)
		var mu sync.Mutex
		seen := map[string]int{}
		proxy.SetRule(func(c dynamotest.Call) dynamotest.Fault {
			nc := readCall(c)
			mu.Lock()
			defer mu.Unlock()
			seen[nc.body]++
			switch n := seen[nc.body]; {
			case nc.marker != "" && n == 1:
				return dynamotest.ErrorAfter // applied; the answer is an error
			case nc.marker != "" && n == 2:
				return dynamotest.ResetAfter // applied; the connection is reset
			case nc.marker == "" && n == 1:
				return dynamotest.ErrorBefore // the reads: not applied
			}
			return dynamotest.Pass
		})
		key1, value1, _ := f.keyInPlan(plans.Plan{Quota: monthly(5)})
		key2, value2, _ := f.keyInPlan(plans.Plan{Quota: monthly(10), Tags: map[string]string{plans.AlertTag: "50/80/100"}})
		f.spend(value1, 2, 6)
		f.spend(value2, 2, 12)
		f.drain(f.mapping(f.notifier()))
		if got := thresholds(f.alerts(key1)); !slices.Equal(got, []string{"80@4", "100@5"}) {
			t.Errorf("key 1: alerts %v, want 80@4 and 100@5, once each", got)
		}
		if got := thresholds(f.alerts(key2)); !slices.Equal(got, []string{"50@5", "80@8", "100@10"}) {
			t.Errorf("key 2: alerts %v, want 50@5, 80@8 and 100@10, once each", got)
		}
		t.Logf("faults %v; %d PutEvents calls", proxy.Faults(), f.bus.Calls())
		if f.bus.Calls() != 5 || len(f.failed) != 0 {
			t.Errorf("%d PutEvents calls, %d batches dead-lettered; want 5 and none", f.bus.Calls(), len(f.failed))
		}
	})

	// An attempt claims the alert, and every answer is lost, then its
	// release fails too: its claim stays, as if the function had crashed.
	// The record fails; its retry, another attempt at the same record,
	// waits for the claim's lease to lapse, then puts the event, once.
	t.Run("a claim left behind", func(t *testing.T) {
		f := setup(t)
		proxy := dynamotest.NewFaultProxy(t)
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.URL)
		var mu sync.Mutex
		first := map[string]string{} // marker -> the body of its first claim
		proxy.SetRule(func(c dynamotest.Call) dynamotest.Fault {
			nc := readCall(c)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case nc.claim && first[nc.marker] == "":
				first[nc.marker] = nc.body
				return dynamotest.ErrorAfter
			case nc.claim && first[nc.marker] == nc.body:
				return dynamotest.ErrorAfter // the SDK's retries of it
			case nc.release:
				return dynamotest.ErrorBefore
			}
			return dynamotest.Pass
		})
		keyID, value, _ := f.keyInPlan(plans.Plan{Quota: monthly(5), Tags: map[string]string{plans.AlertTag: "100"}})
		f.spend(value, 1, 5)
		n := f.notifier()
		n.Lease = time.Second
		start := time.Now()
		f.drain(f.mapping(n))
		took := time.Since(start)
		if got := thresholds(f.alerts(keyID)); !slices.Equal(got, []string{"100@5"}) {
			t.Fatalf("alerts %v, want 100@5 once", got)
		}
		t.Logf("faults %v; the event put after %s", proxy.Faults(), took.Round(time.Millisecond))
		if f.bus.Calls() != 1 || len(f.failed) != 0 || len(first) != 1 {
			t.Errorf("%d PutEvents calls, %d batches dead-lettered, %d claims left behind; want 1, none, 1", f.bus.Calls(), len(f.failed), len(first))
		}
		if took < n.Lease {
			t.Errorf("the event was put %s after the first claim, before its lease of %s lapsed", took, n.Lease)
		}
	})
}
