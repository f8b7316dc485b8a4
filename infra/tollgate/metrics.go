package tollgate

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

var fiveMinutes = awscdk.Duration_Minutes(jsii.Number(5))

// search graphs every series of a metric by dimensions. Plans come and go
// after deployment, so the dashboard finds them with SEARCH rather than
// naming them.
func (t *Tollgate) search(metric, dims, label string) awscloudwatch.IMetric {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String(fmt.Sprintf(`SEARCH('{%s,%s} MetricName="%s"', 'Sum', 300)`, t.namespace, dims, metric)),
		Label:      jsii.String(label),
		Period:     fiveMinutes,
	})
}

func (t *Tollgate) metric(name, stat string, dims map[string]*string) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String(t.namespace), MetricName: jsii.String(name),
		Statistic: jsii.String(stat), Period: fiveMinutes, DimensionsMap: &dims,
	})
}

func graph(title string, metrics ...awscloudwatch.IMetric) awscloudwatch.IWidget {
	return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title: jsii.String(title), Left: &metrics, Width: jsii.Number(12), Height: jsii.Number(6),
	})
}

// newDashboard graphs usage per plan, as API Gateway's console does for
// usage plans, and the authorizer's health.
func (t *Tollgate) newDashboard(scope constructs.Construct) awscloudwatch.Dashboard {
	fn := t.AuthorizerFunction
	return awscloudwatch.NewDashboard(scope, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		Widgets: &[]*[]awscloudwatch.IWidget{
			{
				graph("Requests decided, by usage plan", t.search("Decisions", "usagePlanId", "")),
				graph("Decisions, by outcome and reason", t.search("Decisions", "outcome,reason", "")),
			},
			{
				graph("Throttled, by usage plan", t.search("Throttled", "usagePlanId", "")),
				graph("Over quota, by usage plan", t.search("QuotaExceeded", "usagePlanId", "")),
			},
			{
				// Plans in shadow: what enforcing them would refuse.
				graph("Shadow: would be throttled, by usage plan", t.search("ShadowThrottled", "usagePlanId", "")),
				graph("Shadow: would be over quota, by usage plan", t.search("ShadowQuotaExceeded", "usagePlanId", "")),
			},
			{
				graph("Authorizer latency (ms)",
					t.metric("Latency", "p50", nil), t.metric("Latency", "p99", nil), t.metric("DynamoDBLatency", "p99", nil)),
				graph("DynamoDB calls",
					t.metric("DynamoDBCalls", "Sum", nil), t.search("Decisions", "usagePlanId", "decisions")),
			},
			{
				graph("Authorizer function", fn.MetricInvocations(nil), fn.MetricErrors(nil), fn.MetricThrottles(nil)),
				graph("Table throttling", t.tableThrottles()),
			},
		},
	})
}

// tableThrottles counts the table's read and write throttle events.
func (t *Tollgate) tableThrottles() awscloudwatch.IMetric {
	events := func(name string) awscloudwatch.IMetric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("AWS/DynamoDB"), MetricName: jsii.String(name), Statistic: jsii.String("Sum"),
			Period: fiveMinutes, DimensionsMap: &map[string]*string{"TableName": t.Table.TableName()},
		})
	}
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   jsii.String("FILL(r, 0) + FILL(w, 0)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{"r": events("ReadThrottleEvents"), "w": events("WriteThrottleEvents")},
		Label:        jsii.String("throttle events"),
		Period:       fiveMinutes,
	})
}

// newAlarms watches for the authorizer failing (Lambda errors: it never
// returns one on purpose, so any is a crash or a timeout), for decisions
// made without DynamoDB (reason "error", denied or failed open), for
// DynamoDB throttling the table, and for lost meter writes given up on
// (LateWritesUnreconciled, which the authorizer also writes without
// dimensions so that the alarm need not know the reasons and plans). They
// have no actions: add yours with AddAlarmAction.
func (t *Tollgate) newAlarms(scope constructs.Construct) []awscloudwatch.Alarm {
	alarm := func(id, description string, metric awscloudwatch.IMetric) awscloudwatch.Alarm {
		return awscloudwatch.NewAlarm(scope, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(1),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
	}
	decisionErrors := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("FILL(denied, 0) + FILL(open, 0)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"denied": t.metric("Decisions", "Sum", map[string]*string{"outcome": jsii.String("deny"), "reason": jsii.String("error")}),
			"open":   t.metric("Decisions", "Sum", map[string]*string{"outcome": jsii.String("allow"), "reason": jsii.String("error")}),
		},
		Label:  jsii.String("decisions without DynamoDB"),
		Period: fiveMinutes,
	})
	return []awscloudwatch.Alarm{
		alarm("AuthorizerErrors", "Tollgate's authorizer function failed (crash or timeout): API Gateway answered 500.",
			t.AuthorizerFunction.MetricErrors(&awscloudwatch.MetricOptions{Period: fiveMinutes, Statistic: jsii.String("Sum")})),
		alarm("DecisionErrors", "Tollgate decided requests without DynamoDB (FAIL_MODE): denied them, or let them through unmetered.", decisionErrors),
		alarm("TableThrottled", "DynamoDB throttled Tollgate's table: a key may be above the per-item write ceiling.", t.tableThrottles()),
		alarm("LateWritesUnreconciled", "Tollgate gave up on meter writes whose answer was lost: a key's usage may count up to that many "+
			"requests that were denied (see docs/semantics.md#under-faults). The authorizer's error lines with LateWritesPending name the keys "+
			"and plans. If you bill on usage, check those keys' counts and correct them with GetUsage and UpdateUsage.",
			t.metric("LateWritesUnreconciled", "Sum", nil)),
	}
}
