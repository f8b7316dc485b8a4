package alerts

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/tollgate-dev/tollgate/internal/logs"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// Settings are the notifier's environment, less the AWS SDK's own.
type Settings struct {
	Table      string // TABLE_NAME
	BusName    string // EVENT_BUS_NAME; "" is the default bus
	Thresholds []int  // ALERT_THRESHOLDS, default 80,100
}

// busName is what PutEvents takes as an entry's EventBusName: a bus's
// name or ARN. PutEvents would refuse anything else, an event at a time.
var busName = regexp.MustCompile(`^(arn:aws[\w-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/)?[/._A-Za-z0-9-]{1,256}$`)

// ReadSettings reads and checks the notifier's environment.
func ReadSettings(getenv func(string) string) (Settings, error) {
	s := Settings{Table: getenv("TABLE_NAME"), BusName: getenv("EVENT_BUS_NAME"), Thresholds: plans.DefaultThresholds}
	if s.Table == "" {
		return s, fmt.Errorf("TABLE_NAME is not set: set it to the Tollgate table's name")
	}
	if s.BusName != "" && !busName.MatchString(s.BusName) {
		return s, fmt.Errorf("EVENT_BUS_NAME=%q: want an event bus's name (letters, digits and . - _ /) or ARN, or leave it unset for the default bus", s.BusName)
	}
	if v := getenv("ALERT_THRESHOLDS"); v != "" {
		t, err := plans.ParseThresholds(v)
		if err != nil {
			return s, fmt.Errorf("ALERT_THRESHOLDS=%q: %w", v, err)
		}
		s.Thresholds = t
	}
	return s, nil
}

// FromEnv wires the notifier for Lambda: a JSON logger on stdout
// (LOG_LEVEL), its settings, and DynamoDB, DynamoDB Streams and
// EventBridge clients from the SDK's standard configuration (so
// AWS_ENDPOINT_URL_EVENTBRIDGE points EventBridge elsewhere).
func FromEnv(ctx context.Context, getenv func(string) string) (*Notifier, error) {
	log, err := logs.New(os.Stdout, getenv)
	if err != nil {
		return nil, err
	}
	s, err := ReadSettings(getenv)
	if err != nil {
		return nil, err
	}
	// A failed call fails its record, and Lambda retries the batch: the
	// SDK's retries need not wait long.
	db, err := store.NewClient(ctx, 5, time.Second)
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return &Notifier{
		Table:      &store.Table{DB: db, Name: s.Table, Now: time.Now},
		Bus:        eventbridge.NewFromConfig(cfg),
		BusName:    s.BusName,
		Thresholds: s.Thresholds,
		Streams:    dynamodbstreams.NewFromConfig(cfg),
		Log:        log,
	}, nil
}
