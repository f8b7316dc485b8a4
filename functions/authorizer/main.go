// Command authorizer is Tollgate's Lambda authorizer for HTTP APIs
// (payload 2.0, simple responses). See internal/authorizer.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/logs"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func main() {
	log, err := logs.New(os.Stdout, os.Getenv)
	if err != nil {
		log.Error("bad configuration", "error", err.Error())
		os.Exit(1)
	}
	cfg, err := authorizer.FromEnv(os.Getenv)
	if err != nil {
		log.Error("bad configuration", "error", err.Error())
		os.Exit(1)
	}
	// Retries back off briefly; DYNAMODB_DEADLINE bounds their total.
	db, err := store.NewClient(context.Background(), 5, 100*time.Millisecond, authorizer.Instrument)
	if err != nil {
		log.Error("cannot configure DynamoDB", "error", err.Error())
		os.Exit(1)
	}
	a := authorizer.New(cfg, db, time.Now, log)
	// Metrics are counted in memory for METRICS_INTERVAL: write them when
	// Lambda shuts the instance down (SIGTERM, about 500 ms before SIGKILL).
	lambda.StartWithOptions(a, lambda.WithEnableSIGTERM(func() {
		a.Flush(context.Background())
		os.Exit(0)
	}))
}
