package tollgate

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tollgate-dev/tollgate/internal/alerts"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// Alerts is Tollgate's quota alerts: the notifier function on the table's
// stream, which puts an EventBridge event when a key reaches a threshold
// of its quota (see internal/alerts), and what surrounds it.
type Alerts struct {
	Function awslambda.Function
	// Bus is the event bus the events go on.
	Bus awsevents.IEventBus
	// DeadLetterQueue receives, from the stream's event source mapping,
	// each batch the notifier failed after its retries (where it is in the
	// stream, not its records: replay it within 24 hours; see the README).
	DeadLetterQueue awssqs.Queue
	// DeadLetterAlarm goes off when the queue holds a message.
	DeadLetterAlarm awscloudwatch.Alarm
	// Topic and Rule email the alerts, with Props.AlertEmail; nil otherwise.
	Topic awssns.Topic
	Rule  awsevents.Rule
}

// Stream settings of the notifier's event source mapping.
const (
	alertBatchSize    = 100
	alertBatchWindow  = 1  // seconds: a busy key's records come in one batch a second
	alertRetries      = 10 // then the dead-letter queue
	alertRecordMaxAge = 6 * 60 * 60
	// A retry of a record that crashed may wait out its claim's lease
	// (alerts.DefaultLease, 30 s) before it puts the event.
	alertTimeout = 60
)

// newAlerts deploys the notifier on the table's stream.
func (t *Tollgate) newAlerts(scope constructs.Construct, p *Props, fn func(name, description string, memory, seconds float64, env map[string]string) awslambda.Function) *Alerts {
	a := &Alerts{}
	bus := "default"
	if p.AlertBusName != "" {
		bus = p.AlertBusName
	}
	a.Bus = awsevents.EventBus_FromEventBusName(scope, jsii.String("AlertBus"), jsii.String(bus))
	env := map[string]string{"TABLE_NAME": *t.Table.TableName(), "LOG_LEVEL": p.LogLevel}
	if p.AlertBusName != "" {
		env["EVENT_BUS_NAME"] = p.AlertBusName
	}
	if p.AlertThresholds != "" {
		env["ALERT_THRESHOLDS"] = p.AlertThresholds
	}
	a.Function = fn("Notifier", "Tollgate: quota alerts from the table's stream to EventBridge", 256, alertTimeout, env)

	// Reads: plans (limits, thresholds), keys (names), a sharded key's
	// other meter items. Writes: its own markers, nothing else.
	GrantItems(t.Table, a.Function, []string{"dynamodb:GetItem"}, []string{store.PartitionPlan})
	GrantItems(t.Table, a.Function, []string{"dynamodb:Query"}, []string{store.PartitionKey})
	GrantItems(t.Table, a.Function, []string{"dynamodb:BatchGetItem"}, []string{store.PartitionMeter})
	GrantItems(t.Table, a.Function, []string{"dynamodb:PutItem", "dynamodb:UpdateItem"}, []string{store.PartitionAlert})
	// The stream, for the event source mapping and for replays. (CDK's
	// DynamoEventSource would also grant ListStreams on every resource.)
	a.Function.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"),
		Resources: jsii.Strings(*t.Table.TableStreamArn()),
	}))
	a.Bus.GrantPutEventsTo(a.Function, nil)

	a.DeadLetterQueue = awssqs.NewQueue(scope, jsii.String("AlertsDeadLetterQueue"), &awssqs.QueueProps{
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
	})
	awslambda.NewEventSourceMapping(scope, jsii.String("NotifierStream"), &awslambda.EventSourceMappingProps{
		Target:                  a.Function,
		EventSourceArn:          t.Table.TableStreamArn(),
		StartingPosition:        awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:               jsii.Number(alertBatchSize),
		MaxBatchingWindow:       awscdk.Duration_Seconds(jsii.Number(alertBatchWindow)),
		BisectBatchOnError:      jsii.Bool(true),
		ReportBatchItemFailures: jsii.Bool(true),
		RetryAttempts:           jsii.Number(alertRetries),
		MaxRecordAge:            awscdk.Duration_Seconds(jsii.Number(alertRecordMaxAge)),
		OnFailure:               awslambdaeventsources.NewSqsDlq(a.DeadLetterQueue),
		// Only meter items can alert: the function never hears of the rest.
		Filters: &[]*map[string]any{awslambda.FilterCriteria_Filter(&map[string]any{
			"dynamodb": map[string]any{"Keys": map[string]any{store.Schema.PartitionKey: map[string]any{
				"S": awslambda.FilterRule_BeginsWith(jsii.String(store.PartitionMeter)),
			}}},
		})},
	})
	a.DeadLetterAlarm = awscloudwatch.NewAlarm(scope, jsii.String("AlertsDeadLettered"), &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String("Tollgate's notifier gave up on stream records: quota alerts may be missing. " +
			"Replay each message of the dead-letter queue within 24 hours (see the README, Quota alerts)."),
		Metric: a.DeadLetterQueue.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{
			Period: fiveMinutes, Statistic: jsii.String("Maximum"),
		}),
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	t.Alarms = append(t.Alarms, a.DeadLetterAlarm)

	if p.AlertEmail != "" {
		a.Topic = awssns.NewTopic(scope, jsii.String("AlertTopic"), &awssns.TopicProps{
			DisplayName: jsii.String("Tollgate quota alerts"),
			EnforceSSL:  jsii.Bool(true),
		})
		a.Topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(p.AlertEmail), nil))
		a.Rule = awsevents.NewRule(scope, jsii.String("AlertRule"), &awsevents.RuleProps{
			Description: jsii.String("Tollgate quota alerts to the alert email"),
			EventBus:    a.Bus,
			EventPattern: &awsevents.EventPattern{
				Source: jsii.Strings(alerts.Source), DetailType: jsii.Strings(alerts.DetailType),
			},
		})
		field := func(name string) string { return *awsevents.EventField_FromPath(jsii.String("$.detail." + name)) }
		a.Rule.AddTarget(awseventstargets.NewSnsTopic(a.Topic, &awseventstargets.SnsTopicProps{
			Message: awsevents.RuleTargetInput_FromText(jsii.String(
				"API key " + field("apiKeyName") + " (" + field("apiKeyId") + ", customer " + field("customerId") + ") reached " +
					field("threshold") + "% of its quota in usage plan " + field("usagePlanName") + " (" + field("usagePlanId") + "): " +
					field("used") + " of " + field("limit") + " requests in the " + field("period") + " from " +
					field("periodStart") + " to " + field("periodEnd") + ". Alert " + field("alertId") + ".")),
		}))
	}
	return a
}
