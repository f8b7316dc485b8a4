package authorizer_test

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// baseline is the limiter most people would write first, kept here only
// to measure Tollgate against: read the key's bucket (tokens, when last
// filled, a version) and quota count, decide in memory, and write the
// result back on condition that the version has not moved, reading again
// if it has. It knows its plan up front and looks up nothing else, which
// flatters it. It is exact too; what it costs is two calls per admission,
// one per denial, and a read again for every lost race.
type baseline struct {
	db    store.API
	table string
	plan  plans.Plan
}

func (l *baseline) decide(ctx context.Context, value string) bool {
	key := map[string]types.AttributeValue{"pk": store.S("BASELINE#" + keys.Hash(value)), "sk": store.S("B")}
	th, q := l.plan.Throttle, l.plan.Quota
	for range 20 {
		out, err := l.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &l.table, Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return false
		}
		now := time.Now()
		ver, _ := store.Int(out.Item, "ver")
		used, _ := store.Int(out.Item, "used")
		tokens := 0.0
		if th.Limited() {
			tokens = float64(th.BurstLimit)
			if last, ok := store.Int(out.Item, "last"); ok {
				t, _ := strconv.ParseFloat(store.Str(out.Item, "tokens"), 64)
				tokens = min(tokens, t+now.Sub(time.UnixMicro(last)).Seconds()*th.RateLimit)
			}
			if tokens < 1 {
				return false
			}
			tokens--
		}
		if q != nil && used >= int64(q.Limit) {
			return false
		}
		_, err = l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                &l.table,
			Key:                      key,
			UpdateExpression:         aws.String("SET tokens = :t, #last = :now, used = :u, ver = :next"),
			ConditionExpression:      aws.String("attribute_not_exists(ver) OR ver = :ver"),
			ExpressionAttributeNames: map[string]string{"#last": "last"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":t": store.S(strconv.FormatFloat(tokens, 'g', -1, 64)), ":now": store.N(now.UnixMicro()),
				":u": store.N(used + 1), ":ver": store.N(ver), ":next": store.N(ver + 1),
			},
		})
		var failed *types.ConditionalCheckFailedException
		if errors.As(err, &failed) {
			continue // another instance wrote first: read again
		}
		return err == nil
	}
	return false
}
