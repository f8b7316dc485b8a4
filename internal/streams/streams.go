// Package streams reads a DynamoDB stream as Lambda hands it to a function:
// records in the JSON of a Lambda DynamoDB event, batches from an event
// source mapping, and the message its on-failure destination gets for a
// batch it gave up on. Mapping runs a handler on a stream as Lambda's event
// source mapping does, for the local stack and the tests; Read fetches the
// records a failure message names, for replays.
package streams

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// API is the part of the DynamoDB Streams client the package uses.
type API interface {
	DescribeStream(context.Context, *dynamodbstreams.DescribeStreamInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(context.Context, *dynamodbstreams.GetShardIteratorInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(context.Context, *dynamodbstreams.GetRecordsInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// BatchInfo is what Lambda sends a DynamoDB event source mapping's
// on-failure destination about a batch it discarded: where the records
// are, not the records. They stay readable for the stream's retention,
// 24 hours.
type BatchInfo struct {
	ShardID                         string `json:"shardId"`
	StartSequenceNumber             string `json:"startSequenceNumber"`
	EndSequenceNumber               string `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"`
	StreamARN                       string `json:"streamArn"`
}

// FailureMessage is the on-failure destination's message (SQS body).
type FailureMessage struct {
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionARN            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError"`
	} `json:"responseContext"`
	Version   string     `json:"version"`
	Timestamp string     `json:"timestamp"`
	BatchInfo *BatchInfo `json:"DDBStreamBatchInfo"`
}

// Event is a Lambda DynamoDB event as JSON, for a stream's records.
func Event(records []types.Record, streamARN string) ([]byte, error) {
	out := make([]map[string]any, len(records))
	for i, r := range records {
		rec, err := eventRecord(r, streamARN)
		if err != nil {
			return nil, err
		}
		out[i] = rec
	}
	return json.Marshal(map[string]any{"Records": out})
}

// Records are a stream's records as a Lambda DynamoDB event holds them.
func Records(records []types.Record, streamARN string) ([]events.DynamoDBEventRecord, error) {
	b, err := Event(records, streamARN)
	if err != nil {
		return nil, err
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("decode stream records: %w", err)
	}
	return ev.Records, nil
}

func eventRecord(r types.Record, streamARN string) (map[string]any, error) {
	d := r.Dynamodb
	if d == nil {
		return nil, fmt.Errorf("stream record %s has no dynamodb part", aws.ToString(r.EventID))
	}
	body := map[string]any{
		"SequenceNumber": aws.ToString(d.SequenceNumber),
		"SizeBytes":      aws.ToInt64(d.SizeBytes),
		"StreamViewType": string(d.StreamViewType),
	}
	if d.ApproximateCreationDateTime != nil {
		body["ApproximateCreationDateTime"] = d.ApproximateCreationDateTime.Unix()
	}
	for name, image := range map[string]map[string]types.AttributeValue{"Keys": d.Keys, "NewImage": d.NewImage, "OldImage": d.OldImage} {
		if image != nil {
			body[name] = attributes(image)
		}
	}
	region := "us-east-1"
	if r.AwsRegion != nil {
		region = *r.AwsRegion
	}
	return map[string]any{
		"eventID":        aws.ToString(r.EventID),
		"eventName":      string(r.EventName),
		"eventVersion":   aws.ToString(r.EventVersion),
		"eventSource":    "aws:dynamodb",
		"awsRegion":      region,
		"dynamodb":       body,
		"eventSourceARN": streamARN,
	}, nil
}

// attributes writes an item in DynamoDB's JSON, as Lambda's events do.
func attributes(item map[string]types.AttributeValue) map[string]any {
	out := make(map[string]any, len(item))
	for k, v := range item {
		out[k] = attribute(v)
	}
	return out
}

func attribute(v types.AttributeValue) map[string]any {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return map[string]any{"S": v.Value}
	case *types.AttributeValueMemberN:
		return map[string]any{"N": v.Value}
	case *types.AttributeValueMemberB:
		return map[string]any{"B": base64.StdEncoding.EncodeToString(v.Value)}
	case *types.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": v.Value}
	case *types.AttributeValueMemberNULL:
		return map[string]any{"NULL": true}
	case *types.AttributeValueMemberSS:
		return map[string]any{"SS": v.Value}
	case *types.AttributeValueMemberNS:
		return map[string]any{"NS": v.Value}
	case *types.AttributeValueMemberBS:
		bs := make([]string, len(v.Value))
		for i, b := range v.Value {
			bs[i] = base64.StdEncoding.EncodeToString(b)
		}
		return map[string]any{"BS": bs}
	case *types.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			l[i] = attribute(e)
		}
		return map[string]any{"L": l}
	case *types.AttributeValueMemberM:
		return map[string]any{"M": attributes(v.Value)}
	}
	return map[string]any{"NULL": true}
}

// Read returns the records a failure message names, from the stream,
// in order. They must still be in the stream (24 hours).
func Read(ctx context.Context, api API, info BatchInfo) ([]types.Record, error) {
	it, err := api.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(info.StreamARN), ShardId: aws.String(info.ShardID),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(info.StartSequenceNumber),
	})
	if err != nil {
		return nil, fmt.Errorf("read stream shard %s from %s (records stay 24 hours): %w", info.ShardID, info.StartSequenceNumber, err)
	}
	iter := it.ShardIterator
	var out []types.Record
	for empty := 0; iter != nil && empty < 3; {
		res, err := api.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return nil, fmt.Errorf("read stream shard %s: %w", info.ShardID, err)
		}
		if len(res.Records) == 0 {
			empty++
		}
		for _, r := range res.Records {
			seq := aws.ToString(r.Dynamodb.SequenceNumber)
			if Less(info.EndSequenceNumber, seq) {
				return out, nil
			}
			out = append(out, r)
			if seq == info.EndSequenceNumber {
				return out, nil
			}
		}
		iter = res.NextShardIterator
	}
	return out, nil
}

// Less compares two sequence numbers, which are decimal numbers of up to
// 40 digits.
func Less(a, b string) bool {
	x, okx := new(big.Int).SetString(a, 10)
	y, oky := new(big.Int).SetString(b, 10)
	if !okx || !oky {
		return a < b
	}
	return x.Cmp(y) < 0
}

// timestamp is Lambda's time format in failure messages.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
