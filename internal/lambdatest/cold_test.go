package lambdatest_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/lambdatest"
)

// BenchmarkColdStart times each function binary from process start to its
// first response through the Runtime API stand-in, with a request that
// needs no DynamoDB call (a request without a key; an unknown action), so
// that it times the binary and nothing else. It reports the binary's size.
func BenchmarkColdStart(b *testing.B) {
	for _, fn := range []struct {
		name    string
		payload string
	}{
		{"authorizer", `{"version":"2.0","type":"REQUEST","routeKey":"GET /","headers":{},"requestContext":{"apiId":"a","stage":"s"}}`},
		{"keys", `{"action":"Nothing"}`},
		{"plans", `{"action":"Nothing"}`},
		{"usage", `{"action":"Nothing"}`},
		{"echo", `{"version":"2.0","routeKey":"GET /","rawPath":"/","headers":{},"requestContext":{"http":{"method":"GET","path":"/"}}}`},
	} {
		b.Run(fn.name, func(b *testing.B) {
			bin, err := lambdatest.Build("../../functions/"+fn.name, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			info, err := os.Stat(bin)
			if err != nil {
				b.Fatal(err)
			}
			var total time.Duration
			for b.Loop() {
				p, err := lambdatest.Start(bin, "TABLE_NAME=bench", "AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:9")
				if err != nil {
					b.Fatal(err)
				}
				_, err = p.Invoke(context.Background(), []byte(fn.payload))
				total += time.Since(p.Started)
				var fe *lambdatest.FunctionError
				if err != nil && !errors.As(err, &fe) {
					b.Fatalf("%v\n%s", err, p.Output())
				}
				p.Stop()
			}
			b.ReportMetric(float64(total)/float64(time.Millisecond)/float64(b.N), "ms/start")
			b.ReportMetric(float64(info.Size())/(1<<20), "MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}
