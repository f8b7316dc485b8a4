package authorizer

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

type statsKey struct{}

// callStats counts and times one decision's DynamoDB calls.
type callStats struct {
	calls int
	dur   time.Duration
}

// Instrument is a DynamoDB client option that counts and times every call
// (every attempt, retries included) made for a decision, for its log line
// and metrics.
func Instrument(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("tollgate-decision-stats",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				stats, _ := ctx.Value(statsKey{}).(*callStats)
				if stats == nil {
					return next.HandleDeserialize(ctx, in)
				}
				start := time.Now()
				out, md, err := next.HandleDeserialize(ctx, in)
				stats.calls++
				stats.dur += time.Since(start)
				return out, md, err
			}), middleware.After)
	})
}
