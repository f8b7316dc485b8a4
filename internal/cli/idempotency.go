package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"

	smithyrand "github.com/aws/smithy-go/rand"
)

// TokenProvider makes idempotency tokens: the AWS SDK for Go's
// IdempotencyTokenProvider.
type TokenProvider interface {
	GetIdempotencyToken() (string, error)
}

// fillTokens gives each idempotency token member that the input leaves
// out (or empty) a fresh token, as botocore does for members with the
// idempotencyToken trait: one per invocation, so that every retry of the
// call, by the SDK or by tollgate, carries the same one. It returns the
// tokens it made, by member.
func (c *CLI) fillTokens(op *Operation, input map[string]any) (map[string]string, error) {
	made := map[string]string{}
	for _, m := range op.Input {
		if !m.IdempotencyToken {
			continue
		}
		if v, _ := input[m.Name].(string); v != "" {
			continue
		}
		tokens := c.Tokens
		if tokens == nil {
			tokens = smithyrand.NewUUIDIdempotencyToken(rand.Reader)
		}
		t, err := tokens.GetIdempotencyToken()
		if err != nil {
			return nil, fmt.Errorf("make a %s: %w", m.Name, err)
		}
		input[m.Name] = t
		made[m.Name] = t
	}
	return made, nil
}

// mayBeApplied lists the error codes after which a call may have been
// applied with its answer lost: the admin functions' (DynamoDB failed or
// throttled through every retry), and Lambda's for a function that failed
// or timed out without an answer.
var mayBeApplied = []string{"ServiceUnavailableException", "TooManyRequestsException", "ServiceException", "Unhandled"}

// tokenAdvice adds, to the error of a call that may have been applied,
// the token tollgate made for it: running the command again makes a new
// one, so repeating the same request safely means passing it back.
func tokenAdvice(ctx context.Context, op *Operation, made map[string]string, err error) error {
	if len(made) == 0 || ctx.Err() != nil {
		return err
	}
	var sent, again []string
	for _, name := range sortedKeys(made) {
		sent = append(sent, fmt.Sprintf("%s %s", name, made[name]))
		again = append(again, fmt.Sprintf("--%s %s", kebab(name), made[name]))
	}
	advice := fmt.Sprintf("tollgate sent %s: to send the same request again, run the command with %s", strings.Join(sent, ", "), strings.Join(again, " "))
	var (
		call   *callError
		param  *paramError
		usage  *usageError
		config *configError
	)
	switch {
	case errors.As(err, &call):
		if call.op != op.Name || !(slices.Contains(mayBeApplied, call.err.Code) || strings.HasPrefix(call.err.Code, "Sandbox.")) {
			return err // a definite answer, or no call made
		}
		return &callError{op: call.op, err: &ServiceError{Code: call.err.Code, Message: call.err.Message + " (" + advice + ")"}}
	case errors.As(err, &param), errors.As(err, &usage), errors.As(err, &config):
		return err // nothing was sent
	}
	return fmt.Errorf("%w\n(%s)", err, advice) // no answer at all
}
