package localstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/localstack"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestJWTModes runs the local stack (make run) in the JWT modes that
// cmd/tollgate-local's tests do not start, jwt-and-key and jwt-or-key,
// against the tests' DynamoDB: each serves the local issuer, prints how to
// get a token, and decides as its mode says. Neither has the token as an
// identity source, so a request without one gets the authorizer's 403,
// not API Gateway's 401.
func TestJWTModes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the local stack")
	}
	type call struct {
		name       string
		key, token bool
		status     int
		method     string // authMethod when allowed
	}
	for _, tt := range []struct {
		mode  string
		calls []call
	}{
		{"jwt-and-key", []call{
			{"token and key", true, true, 200, "jwt"},
			{"token alone", false, true, 403, ""},
			{"key alone", true, false, 403, ""},
			{"neither", false, false, 403, ""},
		}},
		{"jwt-or-key", []call{
			{"token", false, true, 200, "jwt"},
			{"key", true, false, 200, "key"},
			{"neither", false, false, 403, ""},
		}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			base, out := run(t, tt.mode)
			if !strings.Contains(out, "AUTH_MODE="+tt.mode) || !strings.Contains(out, "/_local/token") {
				t.Fatalf("the banner does not say how to get a token:\n%s", out)
			}
			value := regexp.MustCompile(`tgk_[0-9A-Za-z]+`).FindString(out)
			resp, err := http.Post(base+"/_local/token", "application/json", strings.NewReader(`{"sub": "`+localstack.DemoIdentity+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			if value == "" || tok.AccessToken == "" {
				t.Fatalf("demo key %q, token %q", value, tok.AccessToken)
			}
			for _, c := range tt.calls {
				req, _ := http.NewRequest(http.MethodGet, base+"/echo", nil)
				if c.key {
					req.Header.Set("x-api-key", value)
				}
				if c.token {
					req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.status {
					t.Errorf("%s: %d, want %d: %s", c.name, resp.StatusCode, c.status, body)
					continue
				}
				if c.status != 200 {
					continue
				}
				var echo struct {
					Authorizer map[string]string `json:"authorizer"`
				}
				if err := json.Unmarshal(body, &echo); err != nil {
					t.Fatalf("%s: %v: %s", c.name, err, body)
				}
				identity := ""
				if c.token {
					identity = localstack.DemoIdentity
				}
				if a := echo.Authorizer; a["authMethod"] != c.method || a["identity"] != identity {
					t.Errorf("%s: the backend saw %v, want authMethod %s and identity %q", c.name, a, c.method, identity)
				}
			}
		})
	}
}

// run starts the local stack in mode on a free port, on a table of its
// own, and returns its URL and what it printed once it is running.
func run(t *testing.T, mode string) (base, banner string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	table := fmt.Sprintf("tollgate-local-%s-%d", mode, time.Now().UnixNano())
	env := map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB": dynamotest.Endpoint(), "PORT": fmt.Sprint(port), "TABLE_NAME": table,
		"AUTH_MODE": mode, "LOG_LEVEL": "error",
		// What is decided is tested here, not how fast.
		"DYNAMODB_DEADLINE": "10s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- localstack.Run(ctx, func(k string) string { return env[k] }, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the local stack: %v", err)
		}
		db := dynamotest.Client(t)
		db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "Tollgate is running.") {
		select {
		case err := <-done:
			t.Fatalf("the local stack stopped (%v):\n%s", err, out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the local stack did not start:\n%s", out)
		}
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port), out.String()
}
