package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// The event's envelope.
const (
	Source     = "tollgate"
	DetailType = "Quota Threshold Reached"
)

// Detail is the event's detail. Times are RFC 3339, UTC.
type Detail struct {
	// AlertID is the same in every copy of one alert's event: a consumer
	// that must act once dedupes on it (see the README: PutEvents has no
	// idempotency key, so a lost answer can mean a second copy).
	AlertID       string `json:"alertId"`
	APIKeyID      string `json:"apiKeyId"`
	APIKeyName    string `json:"apiKeyName"`
	CustomerID    string `json:"customerId"`
	UsagePlanID   string `json:"usagePlanId"`
	UsagePlanName string `json:"usagePlanName"`
	// Threshold is the percentage of the limit reached.
	Threshold int `json:"threshold"`
	// Used is the key's quota count in the period when the notifier saw it
	// reach the threshold: limit - remaining, so after an UpdateUsage it is
	// not the number of requests made.
	Used        int64  `json:"used"`
	Limit       int64  `json:"limit"`
	Period      string `json:"period"`
	PeriodStart string `json:"periodStart"`
	PeriodEnd   string `json:"periodEnd"`
}

// Bus is the part of the EventBridge client the notifier uses.
type Bus interface {
	PutEvents(context.Context, *eventbridge.PutEventsInput, ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// put puts one event on the bus and returns the id EventBridge gave it.
// Any failure, of the call or of the entry, is an error: the record is
// retried.
func (n *Notifier) put(ctx context.Context, d *Detail, at time.Time) (string, error) {
	body, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	entry := types.PutEventsRequestEntry{
		Source: aws.String(Source), DetailType: aws.String(DetailType), Detail: aws.String(string(body)),
	}
	if n.BusName != "" {
		entry.EventBusName = aws.String(n.BusName)
	}
	if !at.IsZero() {
		entry.Time = aws.Time(at)
	}
	out, err := n.Bus.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{entry}})
	if err != nil {
		return "", fmt.Errorf("put the event of alert %s: %w", d.AlertID, err)
	}
	if out.FailedEntryCount > 0 || len(out.Entries) != 1 || out.Entries[0].EventId == nil {
		code, msg := "", ""
		if len(out.Entries) == 1 {
			code, msg = aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage)
		}
		return "", fmt.Errorf("put the event of alert %s: EventBridge refused it: %s %s", d.AlertID, code, msg)
	}
	return aws.ToString(out.Entries[0].EventId), nil
}

// PeriodTime formats a period boundary for the event.
func PeriodTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
