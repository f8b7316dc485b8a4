package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Invoker runs an admin function on a payload and returns its response.
// A function's error comes back as a *ServiceError.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
}

// localStack calls the local stack's /_admin routes (make run), which run
// the same handlers as the Lambda functions.
type localStack struct {
	base   *url.URL
	client *http.Client
}

// newLocalStack calls the local stack at endpoint, which the flag or
// variable named by from gave.
func newLocalStack(endpoint, from string, client *http.Client) (*localStack, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("Bad value for %s %q: scheme is missing.  Must be of the form http://<hostname>/ or https://<hostname>/", from, endpoint)
	}
	return &localStack{base: u, client: client}, nil
}

// connectError is a call that never reached an answer.
type connectError struct {
	url string
	err error
}

func (e *connectError) Error() string {
	return fmt.Sprintf("Could not connect to the endpoint URL: %q (%v): is the local stack running (make run)?", e.url, e.err)
}

func (e *connectError) Unwrap() error { return e.err }

func (l *localStack) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	u := l.base.JoinPath("_admin", function).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &connectError{url: u, err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &connectError{url: u, err: err}
	}
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	if e := functionError(body); e != nil {
		return nil, e
	}
	return nil, fmt.Errorf("%s answered HTTP %d, not an admin function's answer: is it Tollgate's local stack (make run)? %s",
		u, resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)])))
}

// functionError reads {"errorType", "errorMessage"}, as the admin
// functions fail, or returns nil.
func functionError(body []byte) *ServiceError {
	var e struct {
		Type    string `json:"errorType"`
		Message string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &e) != nil || (e.Type == "" && e.Message == "") {
		return nil
	}
	if e.Type == "" {
		e.Type = "Unhandled"
	}
	return &ServiceError{Code: e.Type, Message: e.Message}
}

func asServiceError(err error) (*ServiceError, bool) {
	var se *ServiceError
	ok := errors.As(err, &se)
	return se, ok
}
