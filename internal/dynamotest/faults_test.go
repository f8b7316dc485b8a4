package dynamotest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// Each fault does to a write what it says: applied or not, and what the
// client hears.
func TestFaultProxy(t *testing.T) {
	db := dynamotest.Client(t)
	table := dynamotest.NewTable(t, db)
	p := dynamotest.NewFaultProxy(t)
	p.Delay = time.Second
	noRetry := dynamotest.Client(t, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(p.URL); o.RetryMaxAttempts = 1 })
	cases := []struct {
		fault   dynamotest.Fault
		applied bool
		failed  bool
	}{
		{dynamotest.Pass, true, false},
		{dynamotest.ErrorBefore, false, true},
		{dynamotest.Throttle, false, true},
		{dynamotest.ThroughputExceeded, false, true},
		{dynamotest.ErrorAfter, true, true},
		{dynamotest.ResetAfter, true, true},
		{dynamotest.Late, true, true},
		{dynamotest.Hang, false, true},
		{dynamotest.Refuse, false, true},
	}
	for _, c := range cases {
		t.Run(c.fault.String(), func(t *testing.T) {
			p.SetRule(func(dynamotest.Call) dynamotest.Fault { return c.fault })
			key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "k"}, "sk": &types.AttributeValueMemberS{Value: c.fault.String()}}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := noRetry.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &table, Key: key,
				UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}})
			if (err != nil) != c.failed {
				t.Fatalf("error %v, want failed=%v", err, c.failed)
			}
			if c.fault == dynamotest.Throttle {
				var te *types.ThrottlingException
				if !errors.As(err, &te) {
					t.Errorf("error %T %v, want a ThrottlingException", err, err)
				}
			}
			if c.fault == dynamotest.Late {
				p.WaitLate() // it lands after the client gave up
			}
			out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &table, Key: key, ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			if applied := out.Item != nil; applied != c.applied {
				t.Fatalf("applied=%v, want %v", applied, c.applied)
			}
		})
	}
	if n := p.Faults()[dynamotest.ErrorAfter]; n != 1 {
		t.Errorf("counted %d error-after faults, want 1", n)
	}
}
