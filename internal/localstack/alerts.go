package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/tollgate-dev/tollgate/internal/alerts"
	"github.com/tollgate-dev/tollgate/internal/eventbus"
	"github.com/tollgate-dev/tollgate/internal/store"
	"github.com/tollgate-dev/tollgate/internal/streams"
)

// Quota alerts, locally: the notifier reads DynamoDB Local's stream of the
// table, as the deployed event source mapping reads the real one, and puts
// its events on an EventBridge stand-in that prints each one, in the JSON
// EventBridge delivers to a rule's target.

// newNotifier is the notifier on the local table, with an EventBridge
// stand-in that prints each event to out. Settings as the deployed
// function's: EVENT_BUS_NAME, ALERT_THRESHOLDS.
func newNotifier(getenv func(string) string, db *dynamodb.Client, endpoint, table string, out io.Writer) (*alerts.Notifier, *eventbus.Bus, error) {
	s, err := alerts.ReadSettings(func(k string) string {
		if k == "TABLE_NAME" {
			return table
		}
		return getenv(k)
	})
	if err != nil {
		return nil, nil, err
	}
	bus, err := eventbus.Start("127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	bus.Print = &eventPrinter{w: out}
	creds := credentials.NewStaticCredentialsProvider("local", "local", "")
	n := &alerts.Notifier{
		Table: &store.Table{DB: db, Name: table, Now: time.Now},
		Bus: eventbridge.New(eventbridge.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(bus.URL), Credentials: creds,
			RetryMaxAttempts: 1,
		}),
		BusName:    s.BusName,
		Thresholds: s.Thresholds,
		Streams:    dynamodbstreams.New(dynamodbstreams.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: creds}),
		Log:        slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	return n, bus, nil
}

// eventPrinter heads each event the stand-in prints.
type eventPrinter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *eventPrinter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ev struct {
		Detail alerts.Detail `json:"detail"`
	}
	json.Unmarshal(b, &ev)
	fmt.Fprintf(p.w, "\nQuota alert: key %s reached %d%% of its quota (%d of %d). The notifier put this event on EventBridge:\n",
		ev.Detail.APIKeyID, ev.Detail.Threshold, ev.Detail.Used, ev.Detail.Limit)
	return p.w.Write(b)
}

// runNotifier runs the notifier on the table's stream until ctx ends.
func runNotifier(ctx context.Context, getenv func(string) string, db *dynamodb.Client, endpoint, table string, out io.Writer) (stop func(), err error) {
	arn, err := streamARN(ctx, db, table)
	if err != nil {
		return nil, err
	}
	n, bus, err := newNotifier(getenv, db, endpoint, table, out)
	if err != nil {
		return nil, err
	}
	m := &streams.Mapping{
		API: n.Streams, StreamARN: arn, Handler: n.Invoke, BatchSize: 100, RetryAttempts: 2, RetryDelay: 100 * time.Millisecond,
		Poll: 500 * time.Millisecond,
		OnFailure: func(msg streams.FailureMessage) {
			b, _ := json.Marshal(msg)
			fmt.Fprintf(out, "\nThe notifier gave up on a batch (deployed, it would go to the dead-letter queue). Replay it with\n"+
				"  make invoke FN=notifier EVENT=<a file holding this message>\n%s\n", b)
		},
		Log: n.Log,
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	return func() { cancel(); <-done; bus.Close() }, nil
}

// streamARN is the table's stream, turned on if it is off (a table made
// before Tollgate had alerts).
func streamARN(ctx context.Context, db *dynamodb.Client, table string) (string, error) {
	for range 50 {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			return "", fmt.Errorf("describe table %s: %w", table, err)
		}
		spec := out.Table.StreamSpecification
		if spec != nil && aws.ToBool(spec.StreamEnabled) && out.Table.LatestStreamArn != nil {
			return *out.Table.LatestStreamArn, nil
		}
		if spec == nil || !aws.ToBool(spec.StreamEnabled) {
			_, err := db.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(table),
				StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: store.Schema.StreamView}})
			if err != nil && !strings.Contains(err.Error(), "already") {
				return "", fmt.Errorf("turn on the stream of table %s: %w", table, err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("table %s: the stream did not turn on", table)
}
