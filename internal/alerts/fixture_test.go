package alerts_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/tollgate-dev/tollgate/internal/alerts"
	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/eventbus"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
	"github.com/tollgate-dev/tollgate/internal/streams"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// clock is a settable clock for the authorizers and the store. DynamoDB
// Local deletes items whose TTL has passed, so tests keep it near the
// real time: markers expire a week after their period.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	t       *testing.T
	db      *dynamodb.Client
	tbl     *store.Table
	clock   *clock
	bus     *eventbus.Bus
	streams *dynamodbstreams.Client
	arn     string
	failed  []streams.FailureMessage // the dead-letter queue
}

// setup makes a table with its stream, a recording EventBridge stand-in,
// and a clock at noon today (UTC).
func setup(t *testing.T) *fixture {
	t.Helper()
	db := dynamotest.Client(t)
	clk := &clock{t: time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)}
	f := &fixture{t: t, db: db, tbl: &store.Table{DB: db, Name: dynamotest.NewStreamTable(t, db), Now: clk.Now}, clock: clk}
	bus, err := eventbus.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	f.bus = bus
	out, err := db.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: &f.tbl.Name})
	if err != nil {
		t.Fatal(err)
	}
	f.arn = aws.ToString(out.Table.LatestStreamArn)
	f.streams = dynamodbstreams.New(dynamodbstreams.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(dynamotest.Endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	// The notifier reaches AWS the way it does in Lambda: the SDK's
	// standard configuration, here pointed at loopback.
	t.Setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", bus.URL)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamotest.Endpoint())
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", dynamotest.Endpoint())
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	return f
}

// notifier is a notifier function instance, wired by alerts.FromEnv.
func (f *fixture) notifier(env ...string) *alerts.Notifier {
	f.t.Helper()
	vars := map[string]string{"TABLE_NAME": f.tbl.Name, "LOG_LEVEL": "error"}
	for i := 0; i+1 < len(env); i += 2 {
		vars[env[i]] = env[i+1]
	}
	n, err := alerts.FromEnv(context.Background(), func(k string) string { return vars[k] })
	if err != nil {
		f.t.Fatal(err)
	}
	// Leases run on the real clock: the notifier's own.
	n.Table.Now = time.Now
	n.Log = slog.New(slog.DiscardHandler)
	return n
}

// mapping runs n on the table's stream as the deployed event source
// mapping does, from the stream's start.
func (f *fixture) mapping(n *alerts.Notifier) *streams.Mapping {
	return &streams.Mapping{
		API: f.streams, StreamARN: f.arn, Handler: n.Invoke, BatchSize: 100, RetryAttempts: 3,
		OnFailure: func(m streams.FailureMessage) { f.failed = append(f.failed, m) },
	}
}

// drain runs a mapping over everything in the stream now.
func (f *fixture) drain(m *streams.Mapping) int {
	f.t.Helper()
	n, err := m.Drain(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) keyInPlan(p plans.Plan) (keyID, value, planID string) {
	f.t.Helper()
	ctx := context.Background()
	value, _ = keys.Generate()
	k := &store.Key{ID: keys.NewID(), Name: "acme-prod", CustomerID: "acme", Enabled: true, Hash: keys.Hash(value)}
	if err := f.tbl.CreateKey(ctx, k); err != nil {
		f.t.Fatal(err)
	}
	p.ID, p.Name = keys.NewID(), "Gold"
	p.APIStages = []plans.APIStage{{APIID: "api1", Stage: "prod"}}
	rec := &store.Plan{Plan: p}
	if _, ok := p.Tags[plans.ShardTag]; ok {
		n, err := p.Shards()
		if err != nil {
			f.t.Fatal(err)
		}
		rec.Shards = n
	}
	if err := f.tbl.CreatePlan(ctx, rec); err != nil {
		f.t.Fatal(err)
	}
	if err := f.tbl.Assign(ctx, p.ID, k.ID); err != nil {
		f.t.Fatal(err)
	}
	return k.ID, value, p.ID
}

// spend sends requests with the key from `instances` authorizers at once,
// each with caches of its own as a Lambda instance has, until `attempts`
// requests were decided; it returns the admissions.
func (f *fixture) spend(value string, instances, attempts int) int {
	f.t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted, tried := 0, 0
	for range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := authorizer.Defaults
			cfg.Table = f.tbl.Name
			// A busy machine must not turn decisions into errors here.
			cfg.Deadline = 20 * time.Second
			a := authorizer.New(cfg, f.db, f.clock.Now, slog.New(slog.DiscardHandler))
			for {
				mu.Lock()
				if tried >= attempts {
					mu.Unlock()
					return
				}
				tried++
				mu.Unlock()
				if a.Authorize(context.Background(), request(value)).IsAuthorized {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return admitted
}

func request(value string) events.APIGatewayV2CustomAuthorizerV2Request {
	return events.APIGatewayV2CustomAuthorizerV2Request{
		Version: "2.0", Type: "REQUEST", RouteKey: "GET /items", RawPath: "/items",
		Headers:        map[string]string{"x-api-key": value},
		RequestContext: events.APIGatewayV2HTTPRequestContext{APIID: "api1", Stage: "prod", RouteKey: "GET /items", RequestID: "r"},
	}
}

// alerts returns the details of the events on the bus for a key, in the
// order of their thresholds and times.
func (f *fixture) alerts(keyID string) []alerts.Detail {
	f.t.Helper()
	var out []alerts.Detail
	for _, ev := range f.bus.Events() {
		if ev.Source != alerts.Source || ev.DetailType != alerts.DetailType {
			f.t.Fatalf("event %s / %s", ev.Source, ev.DetailType)
		}
		var d alerts.Detail
		if err := json.Unmarshal(ev.Detail, &d); err != nil {
			f.t.Fatal(err)
		}
		if d.APIKeyID == keyID {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PeriodStart < out[j].PeriodStart })
	return out
}

// thresholds lists the alerts' thresholds and counts, as "80@40".
func thresholds(ds []alerts.Detail) []string {
	var out []string
	for _, d := range ds {
		out = append(out, itoa(d.Threshold)+"@"+itoa64(d.Used))
	}
	return out
}

func itoa(n int) string     { return itoa64(int64(n)) }
func itoa64(n int64) string { b, _ := json.Marshal(n); return string(b) }

// setCount moves a meter item's quota count by delta, as admissions (or a
// refund, for a negative delta) do, without the authorizer.
func (f *fixture) setCount(keyID, planID string, shard int, window string, delta int64) {
	f.t.Helper()
	_, err := f.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                 &f.tbl.Name,
		Key:                       map[string]types.AttributeValue{"pk": store.S(store.ShardPK(keyID, shard)), "sk": store.S(store.MeterSK(planID))},
		UpdateExpression:          aws.String("ADD #q :d"),
		ExpressionAttributeNames:  map[string]string{"#q": store.PrefixQuota + window},
		ExpressionAttributeValues: map[string]types.AttributeValue{":d": store.N(delta)},
	})
	if err != nil {
		f.t.Fatal(err)
	}
}
