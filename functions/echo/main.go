// Command echo is the demo backend of Tollgate's default stack: it answers
// with the authorizer's context, and 429 to requests over a limit.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tollgate-dev/tollgate/internal/echo"
	"github.com/tollgate-dev/tollgate/ratelimit"
)

func main() {
	lambda.Start(ratelimit.Wrap(echo.Lambda))
}
