// Package admin is Tollgate's control plane: API keys, usage plans and their
// keys, and usage, with the operations, field names and JSON shapes of API
// Gateway's API (CreateApiKey, CreateUsagePlan, GetUsage, …). Three Lambda
// functions serve them: keys, plans and usage. Each takes a payload
//
//	{"action": "CreateApiKey", "name": "…", …}
//
// with the operation's input in API Gateway's camelCase names, and returns
// the resource as the AWS CLI prints it. Errors carry API Gateway's error
// types (BadRequestException, NotFoundException, ConflictException,
// LimitExceededException, TooManyRequestsException,
// ServiceUnavailableException) and say what is wrong and how to fix it.
package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/tollgate-dev/tollgate/internal/store"
)

// Service holds what every operation needs.
type Service struct {
	Store *store.Table
	Now   func() time.Time
	Log   *slog.Logger
}

// Error types, as API Gateway names them.
const (
	BadRequest         = "BadRequestException"
	NotFound           = "NotFoundException"
	Conflict           = "ConflictException"
	LimitExceeded      = "LimitExceededException"
	TooManyRequests    = "TooManyRequestsException"
	ServiceUnavailable = "ServiceUnavailableException"
)

// Error is an operation's failure in API Gateway's terms.
type Error struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

func errorf(typ, format string, args ...any) *Error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error { return errorf(BadRequest, format, args...) }

// apiError turns any error into an Error: store errors keep their meaning,
// anything else is the service failing.
func apiError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var se *store.Error
	if errors.As(err, &se) {
		switch se.Kind {
		case store.NotFound:
			return &Error{Type: NotFound, Message: se.Msg}
		case store.Conflict:
			return &Error{Type: Conflict, Message: se.Msg}
		case store.LimitExceeded:
			return &Error{Type: LimitExceeded, Message: se.Msg}
		case store.BadRequest:
			return &Error{Type: BadRequest, Message: se.Msg}
		}
	}
	// Every operation is safe to repeat: after either of these, the same
	// call again finishes what this one may have left half-done.
	if store.IsThrottled(err) {
		return &Error{Type: TooManyRequests, Message: "DynamoDB is throttling Tollgate's table; wait a few seconds and send the same request again: " + err.Error()}
	}
	return &Error{Type: ServiceUnavailable, Message: "Tollgate could not complete the operation because DynamoDB failed or did not answer; send the same request again: " + err.Error()}
}

// operation runs one action on its raw payload.
type operation func(ctx context.Context, s *Service, payload []byte) (any, error)

// op adapts a typed operation: it decodes the payload strictly into In.
func op[In any](fn func(context.Context, *Service, *In) (any, error)) operation {
	return func(ctx context.Context, s *Service, payload []byte) (any, error) {
		in := new(In)
		if err := decode(payload, in); err != nil {
			return nil, err
		}
		return fn(ctx, s, in)
	}
}

// action is embedded in every input, so that strict decoding accepts it.
type action struct {
	Action string `json:"action"`
}

// Handler serves one function's operations.
type Handler struct {
	Name string // keys, plans or usage
	ops  map[string]operation
	svc  *Service
}

// Functions are the three admin functions' names.
var Functions = []string{"keys", "plans", "usage"}

// operations maps each function to its actions.
func operations(fn string) map[string]operation {
	switch fn {
	case "keys":
		return keyOperations
	case "plans":
		return planOperations
	case "usage":
		return usageOperations
	}
	return nil
}

// New returns the handler of one admin function: keys, plans or usage.
func New(fn string, svc *Service) (*Handler, error) {
	ops := operations(fn)
	if ops == nil {
		return nil, fmt.Errorf("no admin function %q: want one of %s", fn, strings.Join(Functions, ", "))
	}
	return &Handler{Name: fn, ops: ops, svc: svc}, nil
}

// servedBy names the function that serves an action, or "".
func servedBy(action string) string {
	for _, fn := range Functions {
		if _, ok := operations(fn)[action]; ok {
			return fn
		}
	}
	return ""
}

// Actions lists the handler's actions, sorted.
func (h *Handler) Actions() []string {
	var names []string
	for a := range h.ops {
		names = append(names, a)
	}
	slices.Sort(names)
	return names
}

// Handle runs the action a payload names and returns its result.
func (h *Handler) Handle(ctx context.Context, payload []byte) (any, *Error) {
	var head struct {
		Action *string `json:"action"`
	}
	// Only the first JSON value: decode reports anything after it.
	if err := json.NewDecoder(bytes.NewReader(payload)).Decode(&head); err != nil {
		return nil, decodeError(err, "")
	}
	if head.Action == nil || *head.Action == "" {
		return nil, badRequest(`the payload needs an "action": one of %s`, strings.Join(h.Actions(), ", "))
	}
	name := *head.Action
	run, ok := h.ops[name]
	if !ok {
		if fn := servedBy(name); fn != "" {
			return nil, badRequest("%s is served by the %s function, not %s: invoke functions/%s", name, fn, h.Name, fn)
		}
		return nil, badRequest("unknown action %q for the %s function: it serves %s", name, h.Name, strings.Join(h.Actions(), ", "))
	}
	out, err := run(ctx, h.svc, payload)
	if err != nil {
		e := apiError(err)
		level := slog.LevelInfo
		switch e.Type {
		case ServiceUnavailable:
			level = slog.LevelError
		case TooManyRequests:
			level = slog.LevelWarn
		}
		h.svc.Log.LogAttrs(ctx, level, "operation failed", slog.String("action", name),
			slog.String("errorType", e.Type), slog.String("errorMessage", e.Message))
		return nil, e
	}
	h.svc.Log.LogAttrs(ctx, slog.LevelInfo, "operation", slog.String("action", name))
	return out, nil
}

// Invoke implements lambda.Handler. Errors reach the caller with their API
// Gateway type as errorType.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	out, e := h.Handle(ctx, payload)
	if e != nil {
		return nil, messages.InvokeResponse_Error{Type: e.Type, Message: e.Message}
	}
	return json.Marshal(out)
}

// decode reads payload into v, rejecting unknown fields and wrong types
// with a message that names the field.
func decode(payload []byte, v any) *Error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, fieldList(v))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("the payload has data after its JSON object: send one object")
	}
	return nil
}

func decodeError(err error, fields string) *Error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return badRequest("the payload is not valid JSON (at byte %d): %v", syntax.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("the payload must be a JSON object, not a JSON %s", typ.Value)
		}
		return badRequest("field %q must be %s, not a JSON %s", typ.Field, describe(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return badRequest("unknown field %s: this action takes %s", field, fields)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the payload is not valid JSON: it ends before its object is closed")
	case errors.Is(err, io.EOF):
		return badRequest("the payload is empty: send a JSON object with an \"action\"")
	}
	return badRequest("the payload cannot be read: %v", err)
}

// describe names a Go type the way a JSON user thinks of it.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return describe(t.Elem())
	}
	return t.String()
}

// fieldList names the JSON fields an input takes.
func fieldList(v any) string {
	t := reflect.TypeOf(v).Elem()
	var names []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" && name != "action" {
				names = append(names, name)
			}
		}
	}
	walk(t)
	if len(names) == 0 {
		return "no fields but \"action\""
	}
	return strings.Join(names, ", ")
}
