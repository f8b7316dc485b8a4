// Package standin serves, on loopback, the two AWS APIs that tollgate calls
// for a deployed stack and that have no local server: Lambda's Invoke and
// CloudFormation's DescribeStacks. Tests point the real SDK clients at them
// with AWS_ENDPOINT_URL_LAMBDA and AWS_ENDPOINT_URL_CLOUDFORMATION. The
// Lambda stand-in runs real handlers, such as the admin functions against
// DynamoDB Local.
package standin

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/lambda/messages"
)

// Handler is a function's code: lambda.Handler's Invoke.
type Handler interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// Call is one request a stand-in answered.
type Call struct {
	Target    string // the function's name, or the stack's
	AccessKey string // from the request's SigV4 credential scope
	Region    string
	Payload   []byte // what an invocation sent
}

// credential reads "Credential=AKID/date/region/service/aws4_request".
var credential = regexp.MustCompile(`Credential=([^/]+)/[^/]+/([^/]+)/`)

func signedBy(r *http.Request) (key, region string) {
	if m := credential.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return m[1], m[2]
	}
	return "", ""
}

// Lambda serves the Invoke API for a set of functions, by name.
type Lambda struct {
	URL string

	srv       *httptest.Server
	functions map[string]Handler
	mu        sync.Mutex
	calls     []Call
	lose      int // answers still to lose
}

// NewLambda starts a Lambda stand-in; Close stops it.
func NewLambda(functions map[string]Handler) *Lambda {
	l := &Lambda{functions: functions}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", l.invoke)
	l.srv = httptest.NewServer(mux)
	l.URL = l.srv.URL
	return l
}

func (l *Lambda) Close() { l.srv.Close() }

// LoseAnswers makes the next n invocations run their function and then
// drop the connection without an answer, as a network failure after the
// call landed would: the caller cannot tell whether it was applied.
func (l *Lambda) LoseAnswers(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lose = n
}

// Calls returns the invocations so far.
func (l *Lambda) Calls() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Call(nil), l.calls...)
}

func (l *Lambda) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	key, region := signedBy(r)
	payload, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	l.calls = append(l.calls, Call{Target: name, AccessKey: key, Region: region, Payload: payload})
	lose := l.lose > 0
	if lose {
		l.lose--
	}
	l.mu.Unlock()
	h, ok := l.functions[name]
	if !ok {
		// As Lambda answers: the error code in a header, the message in JSON.
		w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"Type": "User",
			"message": fmt.Sprintf("Function not found: arn:aws:lambda:%s:123456789012:function:%s", region, name)})
		return
	}
	out, err := h.Invoke(r.Context(), payload)
	if lose {
		if conn, _, herr := http.NewResponseController(w).Hijack(); herr == nil {
			conn.Close()
			return
		}
	}
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	if err != nil {
		// A function error is a 200 with X-Amz-Function-Error, and the
		// error as the runtime serialises it.
		var fe messages.InvokeResponse_Error
		if !errors.As(err, &fe) {
			fe = messages.InvokeResponse_Error{Type: fmt.Sprintf("%T", err), Message: err.Error()}
		}
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		out, _ = json.Marshal(fe)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// CloudFormation serves DescribeStacks for a set of stacks' outputs.
type CloudFormation struct {
	URL string

	srv    *httptest.Server
	stacks map[string]map[string]string
	mu     sync.Mutex
	calls  []Call
}

// NewCloudFormation starts a CloudFormation stand-in with stacks, each a
// map of its outputs; Close stops it.
func NewCloudFormation(stacks map[string]map[string]string) *CloudFormation {
	c := &CloudFormation{stacks: stacks}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	c.URL = c.srv.URL
	return c
}

func (c *CloudFormation) Close() { c.srv.Close() }

// Calls returns the DescribeStacks calls so far.
func (c *CloudFormation) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.calls...)
}

type output struct {
	Key   string `xml:"OutputKey"`
	Value string `xml:"OutputValue"`
}

type stack struct {
	Name    string   `xml:"StackName"`
	ID      string   `xml:"StackId"`
	Created string   `xml:"CreationTime"`
	Status  string   `xml:"StackStatus"`
	Outputs []output `xml:"Outputs>member"`
}

type describeStacksResponse struct {
	XMLName xml.Name `xml:"DescribeStacksResponse"`
	NS      string   `xml:"xmlns,attr"`
	Stacks  []stack  `xml:"DescribeStacksResult>Stacks>member"`
	Request string   `xml:"ResponseMetadata>RequestId"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	NS      string   `xml:"xmlns,attr"`
	Type    string   `xml:"Error>Type"`
	Code    string   `xml:"Error>Code"`
	Message string   `xml:"Error>Message"`
	Request string   `xml:"RequestId"`
}

const cfnNamespace = "http://cloudformation.amazonaws.com/doc/2010-05-15/"

// serve answers the query protocol: a form-encoded POST naming the action.
func (c *CloudFormation) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	name := r.PostForm.Get("StackName")
	key, region := signedBy(r)
	c.mu.Lock()
	c.calls = append(c.calls, Call{Target: name, AccessKey: key, Region: region})
	c.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	if action := r.PostForm.Get("Action"); action != "DescribeStacks" {
		w.WriteHeader(http.StatusBadRequest)
		xml.NewEncoder(w).Encode(errorResponse{NS: cfnNamespace, Type: "Sender", Code: "InvalidAction",
			Message: "the stand-in serves DescribeStacks only, not " + action, Request: "standin"})
		return
	}
	outputs, ok := c.stacks[name]
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		xml.NewEncoder(w).Encode(errorResponse{NS: cfnNamespace, Type: "Sender", Code: "ValidationError",
			Message: "Stack with id " + name + " does not exist", Request: "standin"})
		return
	}
	s := stack{Name: name, ID: "arn:aws:cloudformation:" + region + ":123456789012:stack/" + name + "/standin",
		Created: "2026-11-21T10:00:00.000Z", Status: "CREATE_COMPLETE"}
	for k, v := range outputs {
		s.Outputs = append(s.Outputs, output{Key: k, Value: v})
	}
	xml.NewEncoder(w).Encode(describeStacksResponse{NS: cfnNamespace, Stacks: []stack{s}, Request: "standin"})
}

// Env is the environment that points the SDK at the stand-ins, with
// dummy credentials and no instance metadata lookups.
func Env(l *Lambda, c *CloudFormation) []string {
	env := []string{"AWS_ACCESS_KEY_ID=AKIDSTANDIN", "AWS_SECRET_ACCESS_KEY=standin", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true"}
	if l != nil {
		env = append(env, "AWS_ENDPOINT_URL_LAMBDA="+l.URL)
	}
	if c != nil {
		env = append(env, "AWS_ENDPOINT_URL_CLOUDFORMATION="+c.URL)
	}
	return env
}

// Split turns "K=V" into its name and value.
func Split(kv string) (string, string) {
	k, v, _ := strings.Cut(kv, "=")
	return k, v
}
