package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/lambdatest"
	"github.com/tollgate-dev/tollgate/internal/plans"
)

// Lambda gives a function CPU in proportion to its memory: one vCPU at
// 1,769 MB (AWS's documentation), so 128 MB gets 7.2 % of one.
const fullCPUMB = 1769

// dynamoWait is what a decision that writes waits for DynamoDB, an
// assumption: an UpdateItem in the same region answers in single-digit
// milliseconds; 5 ms is used. Denials from memory wait for nothing.
const dynamoWait = 5 * time.Millisecond

// BenchmarkLambdaCost runs the authorizer binary as Lambda does (one
// process polling a Runtime API stand-in) against DynamoDB Local, and
// measures the process's CPU time per decision from /proc: the runtime
// client, decoding the event, the decision, the SDK's signed HTTPS-less
// call and the answer. Then, for each memory size, it scales that CPU time
// by the size's share of a vCPU, adds dynamoWait for decisions that write,
// and rounds up to Lambda's 1 ms billing: ms per decision and GB-s per
// million. It assumes this machine's core and a Lambda arm64 core do the
// same work in the same time. The binary is built for this machine, as
// make build builds it otherwise.
func BenchmarkLambdaCost(b *testing.B) {
	ctx := context.Background()
	bin, err := lambdatest.Build(".", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	tbl := dynamotest.Store(b, dynamotest.Client(b), nil)
	newKey := func(p plans.Plan) string { return keyInPlan(b, tbl, p) }
	cases := []struct {
		name  string
		value string
		wait  time.Duration
	}{
		{"allowed", newKey(plans.Plan{Throttle: &plans.Throttle{RateLimit: 1e6, BurstLimit: 1e6}}), dynamoWait},
		{"denied-from-memory", newKey(plans.Plan{Throttle: &plans.Throttle{RateLimit: 0.001, BurstLimit: 1}}), 0},
	}
	for _, tc := range cases {
		payload, _ := json.Marshal(events.APIGatewayV2CustomAuthorizerV2Request{
			Version: "2.0", Type: "REQUEST", RouteKey: "GET /items",
			Headers:        map[string]string{"x-api-key": tc.value, "user-agent": "bench"},
			RequestContext: events.APIGatewayV2HTTPRequestContext{APIID: "api1", Stage: "prod", RouteKey: "GET /items", RequestID: "bench"},
		})
		var cpu time.Duration
		var peak int64
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				p, err := lambdatest.Start(bin, "TABLE_NAME="+tbl.Name, "AWS_ENDPOINT_URL_DYNAMODB="+dynamotest.Endpoint())
				if err != nil {
					b.Fatal(err)
				}
				invoke := func(n int) {
					for range n {
						if _, err := p.Invoke(ctx, payload); err != nil {
							b.Fatalf("%v\n%s", err, p.Output())
						}
					}
				}
				invoke(200) // warm: key and plan cached, connections open
				before, err := p.CPUTime()
				if err != nil {
					b.Fatal(err)
				}
				const n = 3000
				invoke(n)
				after, _ := p.CPUTime()
				cpu = (after - before) / n
				peak, _ = p.PeakMemory()
				p.Stop()
			}
			b.ReportMetric(float64(cpu)/float64(time.Microsecond), "cpu-µs/decision")
			b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
			b.ReportMetric(0, "ns/op")
		})
		for _, mb := range []float64{128, 256, 512} {
			b.Run(fmt.Sprintf("%s/memory=%gMB", tc.name, mb), func(b *testing.B) {
				for b.Loop() {
				}
				ms := float64(cpu)/float64(time.Millisecond)/(mb/fullCPUMB) + float64(tc.wait)/float64(time.Millisecond)
				billed := math.Ceil(ms)
				b.ReportMetric(ms, "ms/decision")
				b.ReportMetric(billed, "billed-ms")
				b.ReportMetric(billed/1000*mb/1024*1e6, "GB-s/million")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
