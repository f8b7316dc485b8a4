// Package eventbus is a stand-in for Amazon EventBridge's PutEvents on
// loopback, for tests and the local stack: the SDK's real EventBridge
// client talks to it (AWS_ENDPOINT_URL_EVENTBRIDGE, or BaseEndpoint), and
// it keeps each event it accepts as EventBridge would deliver it to a
// rule's target. It can also fail calls the ways PutEvents fails.
package eventbus

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Event is an event as EventBridge delivers it.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
	// Bus is the bus it was put on ("default" if none was named). It is
	// not part of EventBridge's JSON.
	Bus string `json:"-"`
}

// Fault is what the stand-in does with one PutEvents call.
type Fault int

// Faults.
const (
	// Accept records the entries and answers with their ids.
	Accept Fault = iota
	// Refuse answers HTTP 500 InternalException and records nothing.
	Refuse
	// FailEntries answers 200 with every entry failed (InternalFailure),
	// as PutEvents reports a partial failure, and records nothing.
	FailEntries
	// LoseAnswer records the entries and then answers 500, as when the
	// answer to an accepted call is lost.
	LoseAnswer
)

// Call is what Fault sees of a PutEvents call: its number, from 1, and
// its entries' details.
type Call struct {
	N       int
	Details []string
}

// Bus is a running stand-in.
type Bus struct {
	// URL is the endpoint to give the SDK.
	URL string
	// Fault, if set, picks each call's fate.
	Fault func(Call) Fault
	// Print, if set, gets each accepted event as indented JSON.
	Print io.Writer

	mu     sync.Mutex
	calls  int
	events []Event
	srv    *http.Server
}

// Start serves a stand-in on addr ("127.0.0.1:0" for any free port).
func Start(addr string) (*Bus, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("eventbus: %w", err)
	}
	b := &Bus{URL: "http://" + l.Addr().String()}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go b.srv.Serve(l)
	return b, nil
}

// Close stops the stand-in.
func (b *Bus) Close() error { return b.srv.Close() }

// Events returns the events accepted so far.
func (b *Bus) Events() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.events...)
}

// Calls is the number of PutEvents calls so far.
func (b *Bus) Calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

type entry struct {
	Source       string          `json:"Source"`
	DetailType   string          `json:"DetailType"`
	Detail       string          `json:"Detail"`
	EventBusName string          `json:"EventBusName"`
	Resources    []string        `json:"Resources"`
	Time         json.RawMessage `json:"Time"`
}

// ServeHTTP answers PutEvents in the AWS JSON 1.1 protocol.
func (b *Bus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get("X-Amz-Target"); target != "AWSEvents.PutEvents" {
		fail(w, http.StatusBadRequest, "UnknownOperationException", "the stand-in knows PutEvents only, not "+target)
		return
	}
	var in struct {
		Entries []entry `json:"Entries"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.Entries) == 0 || len(in.Entries) > 10 {
		fail(w, http.StatusBadRequest, "ValidationException", "Entries must hold 1 to 10 entries")
		return
	}
	b.mu.Lock()
	b.calls++
	fault := Accept
	if b.Fault != nil {
		call := Call{N: b.calls}
		for _, e := range in.Entries {
			call.Details = append(call.Details, e.Detail)
		}
		fault = b.Fault(call)
	}
	b.mu.Unlock()
	type result struct {
		EventID      string `json:"EventId,omitempty"`
		ErrorCode    string `json:"ErrorCode,omitempty"`
		ErrorMessage string `json:"ErrorMessage,omitempty"`
	}
	out := struct {
		FailedEntryCount int      `json:"FailedEntryCount"`
		Entries          []result `json:"Entries"`
	}{}
	switch fault {
	case Refuse:
		fail(w, http.StatusInternalServerError, "InternalException", "the stand-in refused the call")
		return
	case FailEntries:
		for range in.Entries {
			out.Entries = append(out.Entries, result{ErrorCode: "InternalFailure", ErrorMessage: "the stand-in failed the entry"})
		}
		out.FailedEntryCount = len(in.Entries)
		reply(w, out)
		return
	}
	for _, e := range in.Entries {
		ev, err := b.accept(e)
		if err != nil {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, result{ErrorCode: "MalformedDetail", ErrorMessage: err.Error()})
			continue
		}
		out.Entries = append(out.Entries, result{EventID: ev.ID})
	}
	if fault == LoseAnswer {
		fail(w, http.StatusInternalServerError, "InternalException", "the stand-in took the events and lost the answer")
		return
	}
	reply(w, out)
}

func (b *Bus) accept(e entry) (Event, error) {
	if !json.Valid([]byte(e.Detail)) || !strings.HasPrefix(strings.TrimSpace(e.Detail), "{") {
		return Event{}, fmt.Errorf("Detail is not a JSON object")
	}
	when := time.Now().UTC()
	var secs float64
	if len(e.Time) > 0 && json.Unmarshal(e.Time, &secs) == nil {
		whole, frac := math.Modf(secs)
		when = time.Unix(int64(whole), int64(frac*1e9)).UTC()
	}
	ev := Event{
		Version: "0", ID: uuid(), DetailType: e.DetailType, Source: e.Source, Account: "000000000000",
		Time: when.Format(time.RFC3339), Region: "us-east-1", Resources: e.Resources, Detail: json.RawMessage(e.Detail),
		Bus: e.EventBusName,
	}
	if ev.Resources == nil {
		ev.Resources = []string{}
	}
	if ev.Bus == "" {
		ev.Bus = "default"
	}
	b.mu.Lock()
	b.events = append(b.events, ev)
	print := b.Print
	b.mu.Unlock()
	if print != nil {
		pretty, _ := json.MarshalIndent(ev, "", "  ")
		fmt.Fprintf(print, "%s\n", pretty)
	}
	return ev, nil
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
