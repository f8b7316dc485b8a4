package alerts_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/lambdatest"
	"github.com/tollgate-dev/tollgate/internal/localstack"
)

// TestFunctionBinary builds functions/notifier, runs it as a Lambda
// execution environment with nothing but its deployed settings and the
// endpoints, and sends it the sample stream record, then a malformed
// payload.
func TestFunctionBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	f := setup(t)
	if err := localstack.SeedSamples(context.Background(), f.tbl); err != nil {
		t.Fatal(err)
	}
	bin, err := lambdatest.Build("../../functions/notifier", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := lambdatest.Start(bin, "TABLE_NAME="+f.tbl.Name, "AWS_ENDPOINT_URL_DYNAMODB="+dynamotest.Endpoint(),
		"AWS_ENDPOINT_URL_EVENTBRIDGE="+f.bus.URL, "EVENT_BUS_NAME=billing")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	record, _ := os.ReadFile("../../events/notifier/stream-record.json")
	out, err := p.Invoke(context.Background(), record)
	if err != nil || string(out) != `{"batchItemFailures":[]}` {
		t.Fatalf("%s %v\n%s", out, err, p.Output())
	}
	if ev := f.bus.Events(); len(ev) != 1 || ev[0].Bus != "billing" || !strings.Contains(string(ev[0].Detail), `"threshold":80`) {
		t.Fatalf("events %+v", ev)
	}
	// The process's output reaches the test through a pipe, a moment later.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.Output(), `"msg":"quota alert"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the alert:\n%s", p.Output())
		}
	}
	if _, err := p.Invoke(context.Background(), []byte(`{"Records": 7}`)); err == nil {
		t.Fatal("a malformed payload did not fail the invocation")
	}
}
