// Command usage is Tollgate's admin function for usage reports and extensions: see internal/admin.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tollgate-dev/tollgate/internal/admin"
)

func main() {
	h, err := admin.FromEnv(context.Background(), "usage", os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambda.Start(h)
}
