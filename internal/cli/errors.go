package cli

import (
	"fmt"
	"strings"
)

// Exit codes, as the AWS CLI documents them ("Command line return codes").
const (
	exitOK          = 0
	exitUsage       = 252 // bad syntax, an unknown parameter or a bad value
	exitConfig      = 253 // the environment or configuration is invalid
	exitService     = 254 // the service answered with an error
	exitOther       = 255 // anything else
	exitInterrupted = 130 // SIGINT
)

// usageError is a command line that cannot be parsed. It prints after the
// usage lines, as argparse's errors do in the AWS CLI.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// paramError is a parameter whose value cannot be used: a malformed
// shorthand or JSON value, a file that cannot be read, or an input that
// fails validation against the model.
type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

func paramErrorf(format string, args ...any) error { return &paramError{fmt.Sprintf(format, args...)} }

// parsingError is the AWS CLI's "Error parsing parameter '--x': ...".
func parsingError(flag string, err error) error {
	return &paramError{fmt.Sprintf("Error parsing parameter '%s': %v", flag, err)}
}

// validationError lists what validation found, as botocore does.
func validationError(problems []string) error {
	return &paramError{"Parameter validation failed:\n" + strings.Join(problems, "\n")}
}

// configError is a setting that keeps the command from running: no
// region, no credentials, a profile or stack output that does not exist.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// ServiceError is an error that Tollgate (or AWS on its way) answered
// with: an admin function's errorType and errorMessage.
type ServiceError struct {
	Code    string
	Message string
}

func (e *ServiceError) Error() string { return e.Code + ": " + e.Message }

// callError is a ServiceError of one operation, printed as the AWS CLI
// prints a service's error.
type callError struct {
	op  string
	err *ServiceError
}

func (e *callError) Error() string {
	return fmt.Sprintf("An error occurred (%s) when calling the %s operation: %s", e.err.Code, e.op, e.err.Message)
}
