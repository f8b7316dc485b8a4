// Package store keeps Tollgate's API keys, usage plans, assignments and
// usage in one DynamoDB table. It owns the table's schema and item layout
// (see items.go); the authorizer's hot-path write lives in package meter.
package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// API is the part of the DynamoDB client the store uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Table is the Tollgate table.
type Table struct {
	DB   API
	Name string
	// Now is the clock for timestamps and quota starts; time.Now if nil.
	Now func() time.Time
}

func (t *Table) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// NewClient returns a DynamoDB client configured the SDK's standard way:
// environment, shared config files, and AWS_ENDPOINT_URL_DYNAMODB for
// DynamoDB Local. Retries back off for at most maxBackoff between attempts;
// callers bound the total with their context's deadline.
func NewClient(ctx context.Context, maxAttempts int, maxBackoff time.Duration, opts ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer {
		// A write that meets a transaction in progress on its item is
		// rejected, not applied, so it is safe to try again.
		return retry.AddWithErrorCodes(retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.MaxBackoff = maxBackoff
		}), (*types.TransactionConflictException)(nil).ErrorCode())
	}))
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return dynamodb.NewFromConfig(cfg, append([]func(*dynamodb.Options){LocalFriendly}, opts...)...), nil
}

// LocalFriendly turns off response CRC32 checks when the endpoint is
// overridden: DynamoDB Local sends no checksum on error responses, and the
// SDK would log a warning for each one. TLS still protects real endpoints.
func LocalFriendly(o *dynamodb.Options) {
	if o.BaseEndpoint != nil {
		o.DisableValidateResponseChecksum = true
	}
}

// Kind classifies a store Error.
type Kind int

// Error kinds, which the admin API maps to API Gateway's exceptions.
const (
	NotFound Kind = iota + 1
	Conflict
	LimitExceeded
	BadRequest
)

// Error is a failure the caller caused or can act on. Msg says what is wrong
// and how to fix it.
type Error struct {
	Kind Kind
	Msg  string
	err  error // what caused it, if anything
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the error behind a Conflict that retrying gave up on.
func (e *Error) Unwrap() error { return e.err }

func errorf(kind Kind, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// IsKind reports whether err is a store Error of kind k.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// errRetry marks an optimistic write that lost a race: the operation reads
// again and retries.
var errRetry = errors.New("store: concurrent change, retry")

// retrying runs op until it returns something other than errRetry, backing
// off with jitter. Admin operations are rare, so a handful of attempts
// settles any realistic race. The Conflict it gives up with wraps op's last
// error, so that callers can tell why.
func retrying(ctx context.Context, what string, op func() error) error {
	const attempts = 12
	backoff := 5 * time.Millisecond
	for i := 0; ; i++ {
		err := op()
		if !errors.Is(err, errRetry) {
			return err
		}
		if i == attempts-1 {
			msg := "the resource kept changing under concurrent updates; try again"
			var f *frozenError
			if errors.As(err, &f) {
				msg = f.Error()
			}
			return &Error{Kind: Conflict, Msg: what + ": " + msg, err: err}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(backoff/2 + rand.N(backoff)):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// transact writes items atomically. A cancelled transaction becomes
// errRetry when a condition failed or another transaction got in the way:
// callers wrote their conditions against what they read, so reading again
// tells them what changed.
func (t *Table) transact(ctx context.Context, items []types.TransactWriteItem) error {
	_, err := t.transactReasons(ctx, items)
	return err
}

// transactReasons is transact, also returning which items failed their
// conditions when the transaction was cancelled for that reason.
//
// The SDK gives every TransactWriteItems call an idempotency token
// (ClientRequestToken) and sends the same token on its own retries, so a
// transaction that DynamoDB applied and whose answer was lost succeeds
// when retried, rather than failing its conditions. A second call of our
// own, with a new token, does not have that protection: callers recognise
// their own write by reading.
func (t *Table) transactReasons(ctx context.Context, items []types.TransactWriteItem) (failed []bool, err error) {
	for i := range items {
		switch {
		case items[i].Put != nil:
			items[i].Put.TableName = &t.Name
		case items[i].Update != nil:
			items[i].Update.TableName = &t.Name
		case items[i].Delete != nil:
			items[i].Delete.TableName = &t.Name
		case items[i].ConditionCheck != nil:
			items[i].ConditionCheck.TableName = &t.Name
		}
	}
	_, err = t.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var canceled *types.TransactionCanceledException
	var conflict *types.TransactionConflictException
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &canceled):
		failed = make([]bool, len(items))
		for i, r := range canceled.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "None", "TransactionConflict":
			case "ConditionalCheckFailed":
				if i < len(failed) {
					failed[i] = true
				}
			default:
				return nil, fmt.Errorf("transaction: %w", err)
			}
		}
		return failed, errRetry
	case errors.As(err, &conflict):
		return nil, errRetry
	}
	return nil, fmt.Errorf("transaction: %w", err)
}

// newToken returns a random change token. A write that carries one can be
// recognised afterwards: if its answer was lost, or a retry of it failed
// its condition because the first attempt had landed, reading the item
// back and finding the token says that the write is ours.
func newToken() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}

// IsThrottled reports whether err is DynamoDB refusing requests for their
// rate (after the SDK's retries gave up), rather than failing.
func IsThrottled(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded":
		return true
	}
	return false
}

// itemKey is the primary key of an item.
func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: S(pk), AttrSK: S(sk)}
}

// S and N build attribute values.
func S(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// N is a number attribute.
func N(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// Int reads an integer attribute; ok is false if it is missing or not one.
func Int(item map[string]types.AttributeValue, name string) (int64, bool) {
	n, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	return v, err == nil
}

// Str reads a string attribute.
func Str(item map[string]types.AttributeValue, name string) string {
	s, _ := item[name].(*types.AttributeValueMemberS)
	if s == nil {
		return ""
	}
	return s.Value
}

var codec = func(o *attributevalue.EncoderOptions) { o.TagKey = "json" }
var decodec = func(o *attributevalue.DecoderOptions) { o.TagKey = "json" }

func marshal(v any, pk, sk string) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMapWithOptions(v, codec)
	if err != nil {
		return nil, err
	}
	item[AttrPK], item[AttrSK] = S(pk), S(sk)
	return item, nil
}

func unmarshal(item map[string]types.AttributeValue, v any) error {
	return attributevalue.UnmarshalMapWithOptions(item, v, decodec)
}

// queryAll runs a Query to the end, strongly consistent.
func (t *Table) queryAll(ctx context.Context, in *dynamodb.QueryInput, each func(map[string]types.AttributeValue) error) error {
	in.TableName = &t.Name
	in.ConsistentRead = aws.Bool(true)
	for {
		out, err := t.DB.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			if err := each(item); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// prefixQuery selects items of partition pk whose sort key starts with prefix.
func prefixQuery(pk, prefix string) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": S(pk), ":p": S(prefix)},
	}
}
