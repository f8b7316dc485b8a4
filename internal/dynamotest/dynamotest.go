// Package dynamotest gives tests a real DynamoDB: the one at
// AWS_ENDPOINT_URL_DYNAMODB, or a DynamoDB Local started for the test
// binary. Each test gets a fresh table built from store.Schema.
package dynamotest

import (
	"context"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/tollgate-dev/tollgate/internal/dynamolocal"
	"github.com/tollgate-dev/tollgate/internal/store"
)

var endpoint string

// Main is TestMain for packages whose tests need DynamoDB.
//
//	func TestMain(m *testing.M) { dynamotest.Main(m) }
func Main(m *testing.M) {
	endpoint = os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
	if endpoint != "" {
		os.Exit(m.Run())
	}
	srv, err := dynamolocal.Start(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "dynamotest:", err)
		os.Exit(1)
	}
	endpoint = srv.Endpoint
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// Endpoint is the DynamoDB endpoint tests use, for processes they start.
func Endpoint() string { return endpoint }

// Client returns a client for the test endpoint with dummy credentials.
func Client(t testing.TB, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	if endpoint == "" {
		t.Fatal("dynamotest: no endpoint: call dynamotest.Main from the package's TestMain")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:   &http.Client{Transport: transport},
	}, append([]func(*dynamodb.Options){store.LocalFriendly}, opts...)...)
}

var tableSeq atomic.Int64

// NewTable creates a table from store.Schema, deleted when the test ends,
// without the schema's stream: DynamoDB Local makes every write to a table
// with a stream about 2.4 times as slow (8.2 ms against 3.4 ms, 8 writers
// at once), and only the notifier's tests read it. They use
// NewStreamTable.
func NewTable(t testing.TB, db *dynamodb.Client) string {
	t.Helper()
	return newTable(t, db, false)
}

// NewStreamTable is NewTable with the schema's stream.
func NewStreamTable(t testing.TB, db *dynamodb.Client) string {
	t.Helper()
	return newTable(t, db, true)
}

func newTable(t testing.TB, db *dynamodb.Client, stream bool) string {
	t.Helper()
	name := fmt.Sprintf("tollgate-test-%d-%d-%s", os.Getpid(), tableSeq.Add(1), sanitize(t.Name()))
	if len(name) > 200 {
		name = name[:200]
	}
	ctx := context.Background()
	in := store.Schema.CreateTableInput(name)
	if !stream {
		in.StreamSpecification = nil
	}
	if _, err := db.CreateTable(ctx, in); err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
	if _, err := db.UpdateTimeToLive(ctx, store.Schema.UpdateTimeToLiveInput(name)); err != nil {
		t.Fatalf("enable TTL on %s: %v", name, err)
	}
	t.Cleanup(func() {
		db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

// Store returns a store.Table on a fresh table, with the given clock.
func Store(t testing.TB, db *dynamodb.Client, now func() time.Time) *store.Table {
	return &store.Table{DB: db, Name: NewTable(t, db), Now: now}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// Counter counts DynamoDB calls by operation, and UpdateItem calls by item.
// Every attempt counts, retries included, because every attempt costs.
type Counter struct {
	mu    sync.Mutex
	n     map[string]int
	items map[string]int
}

type itemKey struct{}

// Install adds the counter to a client's middleware stack.
func (c *Counter) Install(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		err := s.Initialize.Add(middleware.InitializeMiddlewareFunc("tollgate-count-item",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if u, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok {
					ctx = context.WithValue(ctx, itemKey{}, ItemName(u.Key))
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
		if err != nil {
			return err
		}
		return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("tollgate-count",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				item, _ := ctx.Value(itemKey{}).(string)
				c.add(awsmiddleware.GetOperationName(ctx), item)
				return next.HandleDeserialize(ctx, in)
			}), middleware.After)
	})
}

// ItemName names an item by its key, "pk sk", as Items reports it.
func ItemName(key map[string]types.AttributeValue) string {
	return store.Str(key, store.AttrPK) + " " + store.Str(key, store.AttrSK)
}

func (c *Counter) add(op, item string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
		c.items = map[string]int{}
	}
	c.n[op]++
	if item != "" {
		c.items[item]++
	}
}

// Items returns the UpdateItem calls made on each item, by ItemName.
func (c *Counter) Items() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.items)
}

// Get returns the calls of one operation, or of all if op is "".
func (c *Counter) Get(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if op != "" {
		return c.n[op]
	}
	total := 0
	for _, n := range c.n {
		total += n
	}
	return total
}

// Snapshot returns a copy of the counts.
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// Reset zeroes the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.items = nil, nil
}

// Proxy forwards HTTP to a DynamoDB endpoint and counts the calls by
// operation, for processes whose SDK middleware a test cannot reach.
type Proxy struct {
	URL string
	Counter
	srv *http.Server
}

// NewProxy starts a counting proxy in front of the test endpoint.
func NewProxy(t testing.TB) *Proxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{URL: "http://" + l.Addr().String()}
	rp := newReverseProxy(target)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		if i := strings.LastIndexByte(op, '.'); i >= 0 {
			op = op[i+1:]
		}
		p.add(op, "")
		rp.ServeHTTP(w, r)
	})}
	go p.srv.Serve(l)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func newReverseProxy(target *url.URL) *httputil.ReverseProxy {
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	// A client that gave up is no news to a test.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	return rp
}
