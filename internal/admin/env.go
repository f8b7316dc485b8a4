package admin

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tollgate-dev/tollgate/internal/logs"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// The admin functions' DynamoDB client retries each call up to
// ClientAttempts times, backing off up to ClientMaxBackoff in between:
// admin operations may wait out DynamoDB throttling, and the Lambda's own
// timeout bounds them.
const (
	ClientAttempts   = 10
	ClientMaxBackoff = 2 * time.Second
)

// FromEnv wires an admin function for Lambda: a JSON logger on stdout
// (LOG_LEVEL), the table named by TABLE_NAME, and a DynamoDB client from
// the SDK's standard configuration.
func FromEnv(ctx context.Context, fn string, getenv func(string) string) (*Handler, error) {
	log, err := logs.New(os.Stdout, getenv)
	if err != nil {
		return nil, err
	}
	table := getenv("TABLE_NAME")
	if table == "" {
		return nil, fmt.Errorf("TABLE_NAME is not set: set it to the Tollgate table's name")
	}
	db, err := store.NewClient(ctx, ClientAttempts, ClientMaxBackoff)
	if err != nil {
		return nil, err
	}
	return New(fn, &Service{Store: &store.Table{DB: db, Name: table, Now: time.Now}, Now: time.Now, Log: log})
}
