package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tollgate-dev/tollgate/infra/tollgate"
)

// StackProps configure the default stack.
type StackProps struct {
	awscdk.StackProps
	Tollgate tollgate.Props
	// ExistingAPIID, with Routes, adds protected routes to an HTTP API that
	// already exists, by its id.
	ExistingAPIID string
	Routes        []string
	// BackendURL is where those routes go: an HTTP proxy integration that
	// receives the decision as headers (ratelimit.Middleware reads them).
	// Default: the demo echo function.
	BackendURL string
}

// NewStack is Tollgate with a demo HTTP API: GET /echo and ANY /{proxy+}
// in front of an echo function that answers with the authorizer's context,
// and 429 to requests over a limit when ON_LIMIT=pass.
func NewStack(scope constructs.Construct, id string, props *StackProps) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	tg := tollgate.New(stack, "Tollgate", &props.Tollgate)

	retention := props.Tollgate.LogRetention
	if retention == "" {
		retention = awslogs.RetentionDays_ONE_MONTH
	}
	echo := tollgate.NewFunction(stack, "Echo", &tollgate.FunctionProps{
		Code:         tollgate.FunctionCode(props.Tollgate.CodeDir, "echo"),
		Description:  "Tollgate demo backend: answers with the authorizer's decision",
		MemoryMB:     128,
		Timeout:      3,
		Tracing:      props.Tollgate.Tracing,
		LogRetention: retention,
	})
	toEcho := awsapigatewayv2integrations.NewHttpLambdaIntegration(jsii.String("EchoIntegration"), echo, nil)

	api := awsapigatewayv2.NewHttpApi(stack, jsii.String("DemoApi"), &awsapigatewayv2.HttpApiProps{
		Description: jsii.String("Tollgate demo: send x-api-key"),
	})
	for _, path := range []string{"/echo", "/{proxy+}"} {
		method := awsapigatewayv2.HttpMethod_ANY
		if path == "/echo" {
			method = awsapigatewayv2.HttpMethod_GET
		}
		api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
			Path: jsii.String(path), Methods: &[]awsapigatewayv2.HttpMethod{method},
			Integration: toEcho, Authorizer: tg.Authorizer,
		})
	}

	if props.ExistingAPIID != "" {
		existing := awsapigatewayv2.HttpApi_FromHttpApiAttributes(stack, jsii.String("ExistingApi"),
			&awsapigatewayv2.HttpApiAttributes{HttpApiId: jsii.String(props.ExistingAPIID)})
		var backend awsapigatewayv2.HttpRouteIntegration = awsapigatewayv2integrations.NewHttpLambdaIntegration(jsii.String("ExistingEchoIntegration"), echo, nil)
		if props.BackendURL != "" {
			backend = awsapigatewayv2integrations.NewHttpUrlIntegration(jsii.String("ExistingBackend"), jsii.String(props.BackendURL),
				&awsapigatewayv2integrations.HttpUrlIntegrationProps{ParameterMapping: tollgate.DecisionHeaders(props.Tollgate.JWT.ContextClaims...)})
		}
		for _, r := range props.Routes {
			tg.AddRoute(stack, existing, r, backend)
		}
	}

	out := func(id, description string, value *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(description)})
	}
	out("ApiUrl", "The demo HTTP API: curl -H 'x-api-key: <key>' <url>/echo", api.ApiEndpoint())
	out("TableName", "Tollgate's DynamoDB table", tg.Table.TableName())
	out("AuthorizerFunctionName", "The Lambda authorizer", tg.AuthorizerFunction.FunctionName())
	out("KeysFunctionName", "Admin: API keys (aws lambda invoke --function-name ...)", tg.KeysFunction.FunctionName())
	out("PlansFunctionName", "Admin: usage plans and their keys", tg.PlansFunction.FunctionName())
	out("UsageFunctionName", "Admin: usage", tg.UsageFunction.FunctionName())
	out("NotifierFunctionName", "Quota alerts: give it a dead-letter message to replay", tg.Alerts.Function.FunctionName())
	out("AlertsDeadLetterQueueUrl", "Quota alerts: batches the notifier gave up on", tg.Alerts.DeadLetterQueue.QueueUrl())
	return stack
}
