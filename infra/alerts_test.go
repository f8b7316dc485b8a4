package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/tollgate-dev/tollgate/internal/alerts"
)

func TestAlertsStream(t *testing.T) {
	tpl := template(demo)
	check(t, "the table has a stream with both images", func() {
		tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]any{
			"StreamSpecification": map[string]any{"StreamViewType": "NEW_AND_OLD_IMAGES"},
		})
	})
	table := logicalID(t, demo, "AWS::DynamoDB::Table", "Table")
	notifier := logicalID(t, demo, "AWS::Lambda::Function", "Notifier")
	queue := logicalID(t, demo, "AWS::SQS::Queue", "AlertsDeadLetterQueue")
	check(t, "the notifier reads the stream: retries with bisection, partial batch responses, a dead-letter queue", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]any{
			"FunctionName":                   map[string]any{"Ref": notifier},
			"EventSourceArn":                 map[string]any{"Fn::GetAtt": []any{table, "StreamArn"}},
			"StartingPosition":               "TRIM_HORIZON",
			"BisectBatchOnFunctionError":     true,
			"FunctionResponseTypes":          []any{"ReportBatchItemFailures"},
			"MaximumRetryAttempts":           10,
			"MaximumBatchingWindowInSeconds": 1,
			"BatchSize":                      100,
			"MaximumRecordAgeInSeconds":      6 * 3600,
			"DestinationConfig": map[string]any{"OnFailure": map[string]any{
				"Destination": map[string]any{"Fn::GetAtt": []any{queue, "Arn"}},
			}},
		})
	})
	// Only meter items reach the function.
	esm := resources(demo, "AWS::Lambda::EventSourceMapping")
	if len(esm) != 1 {
		t.Fatalf("%d event source mappings", len(esm))
	}
	for _, m := range esm {
		b, _ := json.Marshal(m["Properties"].(map[string]any)["FilterCriteria"])
		if !strings.Contains(string(b), `{\"dynamodb\":{\"Keys\":{\"pk\":{\"S\":[{\"prefix\":\"METER#\"}]}}}}`) {
			t.Errorf("filter %s, want meter items only", b)
		}
	}
	check(t, "the notifier's settings", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Environment": map[string]any{"Variables": map[string]any{"TABLE_NAME": map[string]any{"Ref": table}}},
			"Timeout":     60, "Handler": "bootstrap",
		})
	})
	check(t, "the dead-letter queue keeps messages 14 days, encrypted", func() {
		tpl.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]any{"MessageRetentionPeriod": 14 * 24 * 3600, "SqsManagedSseEnabled": true})
	})
	check(t, "an alarm on the dead-letter queue", func() {
		tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
			"MetricName": "ApproximateNumberOfMessagesVisible", "Namespace": "AWS/SQS", "Threshold": 1,
			"Dimensions": []any{map[string]any{"Name": "QueueName", "Value": map[string]any{"Fn::GetAtt": []any{queue, "QueueName"}}}},
		})
	})
	if n := len(resources(demo, "AWS::SNS::Topic")); n != 0 {
		t.Errorf("%d SNS topics without AlertEmail", n)
	}
}

// TestNotifierLeastPrivilege: the notifier reads what it needs, writes
// only its markers, reads only its table's stream, and puts events on the
// one bus.
func TestNotifierLeastPrivilege(t *testing.T) {
	for name, tpl := range map[string]map[string]any{"default bus": demo, "named bus": emailed} {
		table := logicalID(t, tpl, "AWS::DynamoDB::Table", "Table")
		got := map[string]string{}
		for _, st := range statements(t, tpl, "Notifier") {
			res, _ := json.Marshal(st["Resource"])
			where := string(res)
			if c, ok := st["Condition"].(map[string]any); ok {
				where += " " + strings.Join(strs(c["ForAllValues:StringLike"].(map[string]any)["dynamodb:LeadingKeys"]), " ")
			}
			for _, a := range strs(st["Action"]) {
				got[a] = strings.TrimSpace(got[a] + " " + where)
			}
		}
		tableArn := fmt.Sprintf(`{"Fn::GetAtt":[%q,"Arn"]}`, table)
		stream := fmt.Sprintf(`{"Fn::GetAtt":[%q,"StreamArn"]}`, table)
		want := map[string]string{
			"dynamodb:GetItem":          tableArn + " PLAN#*",
			"dynamodb:Query":            tableArn + " KEY#*",
			"dynamodb:BatchGetItem":     tableArn + " METER#*",
			"dynamodb:PutItem":          tableArn + " ALERT#*",
			"dynamodb:UpdateItem":       tableArn + " ALERT#*",
			"dynamodb:DescribeStream":   stream,
			"dynamodb:GetRecords":       stream,
			"dynamodb:GetShardIterator": stream,
			"dynamodb:ListStreams":      stream,
		}
		for a, w := range want {
			if got[a] != w {
				t.Errorf("%s: %s on %s, want %s", name, a, got[a], w)
			}
			delete(got, a)
		}
		bus := "event-bus/default"
		if tpl["Resources"] != nil && name == "named bus" {
			bus = "event-bus/billing"
		}
		if !strings.Contains(got["events:PutEvents"], bus) {
			t.Errorf("%s: events:PutEvents on %s, want the %s bus only", name, got["events:PutEvents"], bus)
		}
		delete(got, "events:PutEvents")
		for a, where := range got {
			if !strings.HasPrefix(a, "logs:") && !strings.HasPrefix(a, "sqs:") {
				t.Errorf("%s: the notifier may also %s on %s", name, a, where)
			}
			if strings.HasPrefix(a, "sqs:") && !strings.Contains(where, "AlertsDeadLetterQueue") {
				t.Errorf("%s: %s on %s, want the dead-letter queue only", name, a, where)
			}
		}
	}
}

func TestAlertEmail(t *testing.T) {
	tpl := template(emailed)
	topic := logicalID(t, emailed, "AWS::SNS::Topic", "AlertTopic")
	check(t, "an email subscription", func() {
		tpl.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]any{
			"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": map[string]any{"Ref": topic},
		})
	})
	check(t, "a rule on the alerts' bus sends them to the topic", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]any{
			"EventBusName": "billing",
			"EventPattern": map[string]any{"source": []any{alerts.Source}, "detail-type": []any{alerts.DetailType}},
			"Targets":      []any{map[string]any{"Arn": map[string]any{"Ref": topic}, "Id": "Target0", "InputTransformer": map[string]any{}}},
		})
	})
	check(t, "EventBridge may publish to the topic", func() {
		tpl.HasResourceProperties(jsii.String("AWS::SNS::TopicPolicy"), map[string]any{
			"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
				"Action": "sns:Publish", "Effect": "Allow", "Principal": map[string]any{"Service": "events.amazonaws.com"},
				"Resource": map[string]any{"Ref": topic},
			})})},
		})
	})
	// The email names every field of the detail.
	rules := resources(emailed, "AWS::Events::Rule")
	b, _ := json.Marshal(rules)
	var detail map[string]any
	json.Unmarshal(sampleDetail(t), &detail)
	for field := range detail {
		if !strings.Contains(string(b), "$.detail."+field) {
			t.Errorf("the email leaves out %s", field)
		}
	}
	check(t, "the notifier's bus and thresholds", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Environment": map[string]any{"Variables": map[string]any{"EVENT_BUS_NAME": "billing", "ALERT_THRESHOLDS": "50,80,100"}},
		})
	})
}

func TestAlertContext(t *testing.T) {
	p, err := fromContext(func(k string) string {
		return map[string]string{"alertEmail": "ops@example.com", "alertThresholds": "50,80,100", "alertBus": "billing"}[k]
	})
	if err != nil || p.Tollgate.AlertEmail != "ops@example.com" || p.Tollgate.AlertThresholds != "50,80,100" || p.Tollgate.AlertBusName != "billing" {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := fromContext(func(k string) string { return map[string]string{"alertThresholds": "80,120"}[k] }); err == nil {
		t.Fatal("alertThresholds=80,120 accepted")
	}
}

// sampleDetail is the detail of events/notifier/QuotaThresholdReached.json.
func sampleDetail(t *testing.T) []byte {
	t.Helper()
	var ev struct {
		Detail json.RawMessage `json:"detail"`
	}
	b := readFile(t, "../events/notifier/QuotaThresholdReached.json")
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.Detail
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
