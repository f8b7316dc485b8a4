package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Mapping runs a handler on a DynamoDB stream the way a Lambda event source
// mapping does with ReportBatchItemFailures and BisectBatchOnFunctionError
// turned on, as the CDK construct deploys the notifier:
//
//   - each shard's records go to the handler in order, in batches of up to
//     BatchSize, one batch at a time;
//   - a response naming failed records (batchItemFailures) makes the batch
//     count as done up to the first of them, and the rest is retried;
//   - a function error, or a failure at the batch's first record, is
//     retried with the batch split in two, so that a record that keeps
//     failing ends up alone;
//   - after RetryAttempts retries, the batch goes to OnFailure as Lambda
//     describes it to an on-failure destination (its place in the stream,
//     not its records), and the shard moves on.
//
// Lambda's own bookkeeping (checkpoints, leases on shards, retry delays,
// MaximumRecordAge) is beyond it: it is for running the real handler on a
// real stream on one machine, not for measuring Lambda.
type Mapping struct {
	API       API
	StreamARN string
	// Handler is the function: a Lambda DynamoDB event in, its response out.
	Handler func(ctx context.Context, event []byte) ([]byte, error)
	// BatchSize is the most records a batch holds; 100 if 0.
	BatchSize int
	// RetryAttempts is how many times a failing batch is retried.
	RetryAttempts int
	// RetryDelay is the pause before each retry.
	RetryDelay time.Duration
	// OnFailure receives each batch given up on.
	OnFailure func(FailureMessage)
	// Filter, if set, keeps the records it returns true for; the others
	// count as done without reaching the handler, as with an event source
	// mapping's filter criteria. Two mappings with complementary filters
	// stand for two stream shards read at once.
	Filter func(types.Record) bool
	// Poll is the pause between reads of an idle stream, for Run; 250 ms if 0.
	Poll time.Duration
	Log  *slog.Logger

	iters     map[string]*string // per shard: where reading goes on
	shards    []string           // the stream's shards, as last described
	described time.Time
}

// describeEvery is how often Drain asks for the stream's shards: they
// change when DynamoDB splits or rolls them, every few hours.
const describeEvery = 10 * time.Second

// Run reads the stream and runs the handler until ctx ends. It stops
// between batches: the batch in hand runs to its end, retries included,
// with a context that ctx does not cancel, as a Lambda invocation runs
// until it returns or times out. (Cancelling a handler in the middle of
// its work is a crash, which the handler must survive, but not what a
// stopped poller does.)
func (m *Mapping) Run(ctx context.Context) error {
	poll := m.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	work := context.WithoutCancel(ctx)
	for {
		if _, err := m.drain(work, ctx); err != nil && ctx.Err() == nil {
			m.log().Warn("read the table's stream", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// Drain runs the handler on every record the stream holds now, and returns
// how many records it read.
func (m *Mapping) Drain(ctx context.Context) (int, error) { return m.drain(ctx, ctx) }

// drain is Drain with the batches run on ctx, and no new batch read once
// stop has ended.
func (m *Mapping) drain(ctx, stop context.Context) (int, error) {
	if m.iters == nil {
		m.iters = map[string]*string{}
	}
	if m.shards == nil || time.Since(m.described) > describeEvery {
		desc, err := m.API.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(m.StreamARN)})
		if err != nil {
			return 0, fmt.Errorf("describe stream: %w", err)
		}
		m.shards, m.described = m.shards[:0], time.Now()
		for _, shard := range desc.StreamDescription.Shards {
			m.shards = append(m.shards, aws.ToString(shard.ShardId))
		}
	}
	read := 0
	for _, id := range m.shards {
		iter, seen := m.iters[id]
		if !seen {
			it, err := m.API.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
				StreamArn: aws.String(m.StreamARN), ShardId: aws.String(id), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
			})
			if err != nil {
				return read, fmt.Errorf("shard %s: %w", id, err)
			}
			iter = it.ShardIterator
		}
		for iter != nil && stop.Err() == nil {
			size := m.BatchSize
			if size <= 0 {
				size = 100
			}
			res, err := m.API.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(size))})
			if err != nil {
				return read, fmt.Errorf("shard %s: %w", id, err)
			}
			read += len(res.Records)
			if batch := m.filter(res.Records); len(batch) > 0 {
				if err := m.process(ctx, id, batch, 0); err != nil {
					return read, err
				}
			}
			iter = res.NextShardIterator
			m.iters[id] = iter
			if len(res.Records) == 0 {
				break
			}
		}
	}
	return read, nil
}

// filter keeps the records m.Filter keeps.
func (m *Mapping) filter(records []types.Record) []types.Record {
	if m.Filter == nil {
		return records
	}
	var out []types.Record
	for _, r := range records {
		if m.Filter(r) {
			out = append(out, r)
		}
	}
	return out
}

// process runs one batch to completion: done, or given up on.
func (m *Mapping) process(ctx context.Context, shard string, batch []types.Record, attempt int) error {
	if attempt > 0 && m.RetryDelay > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(m.RetryDelay):
		}
	}
	event, err := Event(batch, m.StreamARN)
	if err != nil {
		return err
	}
	out, err := m.Handler(ctx, event)
	failed := 0
	if err == nil {
		if failed = firstFailure(out, batch); failed < 0 {
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		m.log().Warn("the handler failed a batch", "shard", shard, "records", len(batch), "attempt", attempt+1, "error", err)
	}
	switch {
	case err == nil && failed > 0:
		// Done up to the first failure; the rest is retried.
		return m.process(ctx, shard, batch[failed:], attempt+1)
	case attempt >= m.RetryAttempts:
		m.giveUp(shard, batch, attempt)
		return nil
	case len(batch) > 1:
		half := len(batch) / 2
		if err := m.process(ctx, shard, batch[:half], attempt+1); err != nil {
			return err
		}
		return m.process(ctx, shard, batch[half:], attempt+1)
	default:
		return m.process(ctx, shard, batch, attempt+1)
	}
}

// firstFailure is the index of the first record a response names as
// failed, -1 if none. A response that names a record not in the batch
// fails the whole batch, as Lambda treats it.
func firstFailure(out []byte, batch []types.Record) int {
	var resp events.DynamoDBEventResponse
	if len(out) == 0 || json.Unmarshal(out, &resp) != nil || len(resp.BatchItemFailures) == 0 {
		return -1
	}
	first := -1
	for _, f := range resp.BatchItemFailures {
		i := -1
		for j, r := range batch {
			if aws.ToString(r.Dynamodb.SequenceNumber) == f.ItemIdentifier {
				i = j
			}
		}
		if i < 0 {
			return 0
		}
		if first < 0 || i < first {
			first = i
		}
	}
	return first
}

func (m *Mapping) giveUp(shard string, batch []types.Record, attempt int) {
	var msg FailureMessage
	msg.RequestContext.Condition = "RetryAttemptsExhausted"
	msg.RequestContext.ApproximateInvokeCount = attempt + 1
	msg.ResponseContext.StatusCode = 200
	msg.ResponseContext.ExecutedVersion = "$LATEST"
	msg.ResponseContext.FunctionError = "Unhandled"
	msg.Version = "1.0"
	msg.Timestamp = timestamp(time.Now())
	first, last := batch[0].Dynamodb, batch[len(batch)-1].Dynamodb
	msg.BatchInfo = &BatchInfo{
		ShardID:             shard,
		StartSequenceNumber: aws.ToString(first.SequenceNumber),
		EndSequenceNumber:   aws.ToString(last.SequenceNumber),
		BatchSize:           len(batch),
		StreamARN:           m.StreamARN,
	}
	if first.ApproximateCreationDateTime != nil {
		msg.BatchInfo.ApproximateArrivalOfFirstRecord = timestamp(*first.ApproximateCreationDateTime)
	}
	if last.ApproximateCreationDateTime != nil {
		msg.BatchInfo.ApproximateArrivalOfLastRecord = timestamp(*last.ApproximateCreationDateTime)
	}
	m.log().Error("gave up on a batch after its retries: it goes to the on-failure destination", "shard", shard,
		"startSequenceNumber", msg.BatchInfo.StartSequenceNumber, "endSequenceNumber", msg.BatchInfo.EndSequenceNumber, "records", len(batch))
	if m.OnFailure != nil {
		m.OnFailure(msg)
	}
}

func (m *Mapping) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.New(slog.DiscardHandler)
}
