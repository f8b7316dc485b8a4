package dynamotest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault is what a FaultProxy does to one request. The faults are those a
// DynamoDB client meets in production: some leave the request unapplied,
// and some apply it and lose the answer, which is what makes a retried
// write dangerous.
type Fault uint8

// Faults.
const (
	Pass Fault = iota
	// ErrorBefore answers HTTP 500 InternalServerError without forwarding:
	// the request is not applied.
	ErrorBefore
	// Throttle answers ThrottlingException without forwarding.
	Throttle
	// ThroughputExceeded answers ProvisionedThroughputExceededException
	// without forwarding.
	ThroughputExceeded
	// ErrorAfter forwards the request, so DynamoDB applies it, and then
	// answers HTTP 500 instead of DynamoDB's answer.
	ErrorAfter
	// ResetAfter forwards the request, so DynamoDB applies it, and then
	// resets the connection (TCP RST) instead of answering.
	ResetAfter
	// Late holds the request for the proxy's Delay, then forwards it, so
	// that it is applied after a client that gave up at its deadline; the
	// answer goes back to whoever still listens.
	Late
	// Hang never answers and never forwards, until the client gives up.
	Hang
	// Refuse resets the connection without forwarding, as an endpoint
	// that cannot be reached.
	Refuse
	faults
)

var faultNames = [...]string{"pass", "error-before", "throttle", "throughput-exceeded", "error-after", "reset-after", "late", "hang", "refuse"}

func (f Fault) String() string {
	if int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "fault?"
}

// Applies reports whether DynamoDB applies a request that meets the fault.
func (f Fault) Applies() bool { return f == Pass || f == ErrorAfter || f == ResetAfter || f == Late }

// Call is what a Rule sees of a request: its operation (UpdateItem,
// TransactWriteItems, …) and its JSON body.
type Call struct {
	Op   string
	Body []byte
}

// Rule picks the fault for a call. It may be called from many goroutines.
type Rule func(Call) Fault

// FaultProxy forwards HTTP to DynamoDB and injects faults chosen by a
// Rule. It counts calls by operation, as Proxy does, and faults by kind.
type FaultProxy struct {
	URL string
	Counter
	// Delay is how long Late holds a request.
	Delay time.Duration

	mu     sync.Mutex
	rule   Rule
	counts [faults]int
	rp     http.Handler
	srv    *httptest.Server
	late   sync.WaitGroup // requests Late holds, until DynamoDB answered them
}

// NewFaultProxy starts a proxy in front of the test endpoint that passes
// everything until SetRule says otherwise.
func NewFaultProxy(t testing.TB) *FaultProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &FaultProxy{Delay: time.Second}
	rp := newReverseProxy(target)
	p.rp = rp
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// SetRule replaces the rule; nil passes everything.
func (p *FaultProxy) SetRule(r Rule) {
	p.mu.Lock()
	p.rule = r
	p.mu.Unlock()
}

// WaitLate waits until DynamoDB has answered every request that Late held
// back: then every late write that will land has landed.
func (p *FaultProxy) WaitLate() { p.late.Wait() }

// Faults returns how many calls met each fault, Pass included.
func (p *FaultProxy) Faults() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[Fault]int{}
	for f, n := range p.counts {
		if n > 0 {
			out[Fault(f)] = n
		}
	}
	return out
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	op := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	p.mu.Lock()
	rule := p.rule
	p.mu.Unlock()
	f := Pass
	if rule != nil {
		f = rule(Call{Op: op, Body: body})
	}
	p.mu.Lock()
	p.counts[f]++
	p.mu.Unlock()
	p.add(op, "")

	switch f {
	case ErrorBefore:
		awsError(w, http.StatusInternalServerError, "com.amazon.coral.service#InternalFailure", "injected: failed before applying")
	case Throttle:
		awsError(w, http.StatusBadRequest, "com.amazonaws.dynamodb.v20120810#ThrottlingException", "injected: rate of requests exceeds the allowed throughput")
	case ThroughputExceeded:
		awsError(w, http.StatusBadRequest, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "injected: the level of configured provisioned throughput for the table was exceeded")
	case ErrorAfter:
		p.rp.ServeHTTP(httptest.NewRecorder(), r)
		awsError(w, http.StatusInternalServerError, "com.amazon.coral.service#InternalFailure", "injected: failed after applying")
	case ResetAfter:
		p.rp.ServeHTTP(httptest.NewRecorder(), r)
		reset(w)
	case Refuse:
		reset(w)
	case Hang:
		<-r.Context().Done()
	case Late:
		// Detached from the client: DynamoDB applies it whether or not the
		// client still waits, as it would a request stuck in a queue.
		late := r.Clone(context.Background())
		late.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		p.late.Add(1)
		go func() {
			defer p.late.Done()
			time.Sleep(p.Delay)
			p.rp.ServeHTTP(rec, late)
			close(done)
		}()
		select {
		case <-done:
			copyResponse(w, rec)
		case <-r.Context().Done():
		}
	default:
		p.rp.ServeHTTP(w, r)
	}
}

func awsError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	io.WriteString(w, `{"__type":"`+typ+`","message":"`+msg+`"}`)
}

// reset closes the client's connection with a TCP RST, so that the client
// reads "connection reset by peer" rather than a clean EOF.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("dynamotest: the proxy's connections cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	conn.Close()
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// Sometimes is a rule that gives fault to a share of the calls of
// operation op (every operation if op is ""), at random, and passes the
// rest.
func Sometimes(op string, share float64, fault Fault, random func() float64) Rule {
	return func(c Call) Fault {
		if (op == "" || c.Op == op) && random() < share {
			return fault
		}
		return Pass
	}
}

// ClosedEndpoint returns the URL of a loopback port that refuses
// connections, as an unreachable DynamoDB does.
func ClosedEndpoint(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
