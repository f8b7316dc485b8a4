package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/streams"
)

// Invoke is the Lambda function. It takes either
//
//   - a batch of the table's stream records, from the event source
//     mapping: it answers which records failed (ReportBatchItemFailures),
//     or fails the invocation if the first did, so that Lambda splits
//     the batch (BisectBatchOnFunctionError) and a record that keeps
//     failing ends up alone in the dead-letter queue; or
//   - a message from that dead-letter queue (the on-failure destination's
//     JSON, or {"replay": <it>}): it reads the batch's records from the
//     stream again and processes them, failing if any still fails. This is
//     how a dead-lettered batch is replayed, within the stream's 24 hours.
func (n *Notifier) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var in struct {
		Records []events.DynamoDBEventRecord `json:"Records"`
		streams.FailureMessage
		Replay *streams.FailureMessage `json:"replay"`
	}
	if err := json.Unmarshal(payload, &in); err != nil {
		return nil, fmt.Errorf("the notifier takes a DynamoDB stream event or a dead-letter message to replay: %w", err)
	}
	if in.Replay != nil {
		in.FailureMessage = *in.Replay
	}
	if info := in.BatchInfo; info != nil {
		return n.replay(ctx, *info)
	}
	failed, err := n.Process(ctx, in.Records)
	switch {
	case failed < 0:
		return json.Marshal(events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}})
	case failed == 0:
		n.log().Error("the batch's first record failed: the batch is retried, split", "records", len(in.Records), "error", err)
		return nil, err
	}
	seq := in.Records[failed].Change.SequenceNumber
	n.log().Warn("a record failed: the batch is retried from it", "sequenceNumber", seq, "done", failed, "records", len(in.Records), "error", err)
	return json.Marshal(events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: seq}}})
}

// replay processes a dead-lettered batch again.
func (n *Notifier) replay(ctx context.Context, info streams.BatchInfo) ([]byte, error) {
	if n.Streams == nil {
		return nil, errors.New("replay: no DynamoDB Streams client")
	}
	raw, err := streams.Read(ctx, n.Streams, info)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("replay: the stream no longer holds records %s to %s of shard %s (it keeps them 24 hours)", info.StartSequenceNumber, info.EndSequenceNumber, info.ShardID)
	}
	records, err := streams.Records(raw, info.StreamARN)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	if failed, err := n.Process(ctx, records); failed >= 0 {
		return nil, fmt.Errorf("replay: record %s failed again: %w", records[failed].Change.SequenceNumber, err)
	}
	n.log().Info("replayed a dead-lettered batch", "shard", info.ShardID, "records", len(records))
	return json.Marshal(map[string]any{"replayed": len(records)})
}
