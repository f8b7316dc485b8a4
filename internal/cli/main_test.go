package cli

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/localstack"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// localStackURL serves the local stack's routes (the emulator of make run,
// with the admin functions) over a fresh table in DynamoDB Local.
func localStackURL(t *testing.T) string {
	t.Helper()
	db := dynamotest.Client(t)
	table := dynamotest.NewTable(t, db)
	cfg := localstack.Config{Table: table, APIID: "local", Stage: "$default", Routes: []string{"$default"}}
	// A generous deadline: the authorizer's decisions must not fail on a
	// machine busy with other work.
	getenv := func(k string) string { return map[string]string{"DYNAMODB_DEADLINE": "30s"}[k] }
	em, err := localstack.NewEmulator(cfg, getenv, db)
	if err != nil {
		t.Fatal(err)
	}
	em.Log = slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	return srv.URL
}

// adminHandlers are the three admin functions over a fresh table.
func adminHandlers(t *testing.T) map[string]*admin.Handler {
	t.Helper()
	db := dynamotest.Client(t)
	return adminHandlersOn(t, &store.Table{DB: db, Name: dynamotest.NewTable(t, db), Now: time.Now})
}

// adminHandlersOn are the three admin functions over a table.
func adminHandlersOn(t *testing.T, table *store.Table) map[string]*admin.Handler {
	t.Helper()
	svc := &admin.Service{Store: table, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	out := map[string]*admin.Handler{}
	for _, fn := range admin.Functions {
		h, err := admin.New(fn, svc)
		if err != nil {
			t.Fatal(err)
		}
		out[fn] = h
	}
	return out
}

type result struct {
	stdout, stderr string
	code           int
}

// tollgate runs the command line in-process with the given environment.
type tollgate struct {
	t     *testing.T
	env   map[string]string
	files map[string]string // for file:// and fileb://
	tty   bool
	now   time.Time
}

func newTollgate(t *testing.T, env ...string) *tollgate {
	tg := &tollgate{t: t, env: map[string]string{}, files: map[string]string{}}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		tg.env[k] = v
	}
	return tg
}

func (tg *tollgate) run(args ...string) result {
	tg.t.Helper()
	var out, errOut bytes.Buffer
	now := tg.now
	if now.IsZero() {
		now = time.Now()
	}
	c := &CLI{
		Stdout: &out, Stderr: &errOut,
		Getenv:   func(k string) string { return tg.env[k] },
		Now:      func() time.Time { return now },
		Terminal: func() (bool, int) { return tg.tty, 100 },
		ReadFile: func(p string) ([]byte, error) {
			if s, ok := tg.files[p]; ok {
				return []byte(s), nil
			}
			return os.ReadFile(p)
		},
		Version: "test",
	}
	code := c.Run(context.Background(), args)
	return result{out.String(), errOut.String(), code}
}

// ok runs a command that must succeed and returns its stdout.
func (tg *tollgate) ok(args ...string) string {
	tg.t.Helper()
	r := tg.run(args...)
	if r.code != 0 {
		tg.t.Fatalf("tollgate %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// text runs a command with --output text and returns its trimmed stdout.
func (tg *tollgate) text(args ...string) string {
	tg.t.Helper()
	return strings.TrimSpace(tg.ok(append(args, "--output", "text")...))
}
