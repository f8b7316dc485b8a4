// Command notifier is Tollgate's quota alerts function: it reads the
// table's stream and puts an EventBridge event when a key reaches a
// threshold of its quota. See internal/alerts.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tollgate-dev/tollgate/internal/alerts"
)

func main() {
	n, err := alerts.FromEnv(context.Background(), os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambda.Start(n)
}
