package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/jsii-runtime-go"

	"github.com/tollgate-dev/tollgate/infra/tollgate"
	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/decisionlog"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/store"
	"github.com/tollgate-dev/tollgate/ratelimit"
)

// The stacks' templates, synthesized once for the whole test binary: the
// default stack, one that adds routes to an existing API, one for JWT
// callers, one that emails quota alerts from a bus of its own, and a bare
// Tollgate with grants and log levels set.
var demo, existing, jwtStack, emailed, operated map[string]any

func TestMain(m *testing.M) {
	if err := synth(); err != nil {
		fmt.Fprintln(os.Stderr, "synth:", err)
		os.Exit(1)
	}
	dynamotest.Main(m)
}

func synth() error {
	code, err := os.MkdirTemp("", "tollgate-code-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(code)
	for _, fn := range []string{"authorizer", "keys", "plans", "usage", "echo", "notifier"} {
		os.MkdirAll(filepath.Join(code, fn), 0o755)
		if err := os.WriteFile(filepath.Join(code, fn, "bootstrap"), []byte("placeholder "+fn), 0o755); err != nil {
			return err
		}
	}
	out, err := os.MkdirTemp("", "tollgate-cdk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(out)})
	NewStack(app, "Demo", &StackProps{Tollgate: tollgate.Props{CodeDir: code}})
	NewStack(app, "Existing", &StackProps{
		Tollgate:      tollgate.Props{CodeDir: code, OnLimit: "pass", Enforce: "shadow"},
		ExistingAPIID: "a1b2c3d4e5", Routes: []string{"GET /items", "POST /orders/{id}"},
		BackendURL: "https://backend.example.com/{proxy}",
	})
	ctx, err := fromContext(func(k string) string {
		return map[string]string{
			"codeDir": code, "authMode": "jwt", "jwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123",
			"jwtAudience": "3n4b5c6d7e8f9g0h1i2j3k4l5m, other", "jwtScopes": `{"GET /items": ["items:read"]}`,
			"jwtContextClaims": "custom:tenant,email", "jwtLeeway": "30s", "jwtIdentityClaim": "username",
			"httpApiId": "a1b2c3d4e5", "routes": "GET /items", "backendUrl": "https://backend.example.com/{proxy}",
		}[k]
	})
	if err != nil {
		return err
	}
	NewStack(app, "JWT", ctx)
	NewStack(app, "Emailed", &StackProps{Tollgate: tollgate.Props{CodeDir: code,
		AlertEmail: "ops@example.com", AlertBusName: "billing", AlertThresholds: "50,80,100"}})
	ops := awscdk.NewStack(app, jsii.String("Operated"), nil)
	tg := tollgate.New(ops, "Tollgate", &tollgate.Props{CodeDir: code, LogLevel: "warn", AuthorizerMemoryMB: 512,
		AuthorizerEnvironment: map[string]string{"LOG_LEVEL": "error"}})
	tg.GrantAdmin(awsiam.NewRole(ops, jsii.String("CI"), &awsiam.RoleProps{AssumedBy: awsiam.NewAccountRootPrincipal()}))
	tg.GrantUsageRead(awsiam.NewRole(ops, jsii.String("Billing"), &awsiam.RoleProps{AssumedBy: awsiam.NewAccountRootPrincipal()}))
	asm := app.Synth(nil)
	for name, dst := range map[string]*map[string]any{"Demo": &demo, "Existing": &existing, "JWT": &jwtStack, "Emailed": &emailed, "Operated": &operated} {
		b, err := json.Marshal(asm.GetStackByName(jsii.String(name)).Template())
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, dst); err != nil {
			return err
		}
	}
	jsii.Close()
	return nil
}

// check runs one assertion, turning the assertions package's panic into a
// test failure.
func check(t *testing.T, what string, assert func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	assert()
}

func template(tpl map[string]any) assertions.Template {
	return assertions.Template_FromJSON(&tpl, nil)
}

// resources returns a template's resources of one type, by logical id.
func resources(tpl map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tpl["Resources"].(map[string]any) {
		if r := r.(map[string]any); r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

func TestAuthorizer(t *testing.T) {
	tpl := template(demo)
	check(t, "one authorizer", func() { tpl.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::Authorizer"), jsii.Number(1)) })
	check(t, "authorizer settings", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Authorizer"), map[string]any{
			"AuthorizerType":                 "REQUEST",
			"AuthorizerPayloadFormatVersion": "2.0",
			"EnableSimpleResponses":          true,
			"AuthorizerResultTtlInSeconds":   0,
			// No identity source: a request without a key reaches Tollgate
			// and gets its 403, not API Gateway's 401.
			"IdentitySource": []any{},
		})
	})
	for _, route := range []string{"GET /echo", "ANY /{proxy+}"} {
		check(t, route+" is protected", func() {
			tpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Route"), map[string]any{
				"RouteKey": route, "AuthorizationType": "CUSTOM", "AuthorizerId": assertions.Match_AnyValue(),
			})
		})
	}
	check(t, "API Gateway may invoke the authorizer", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Permission"), map[string]any{
			"Action": "lambda:InvokeFunction", "Principal": "apigateway.amazonaws.com",
			"FunctionName": map[string]any{"Fn::GetAtt": []any{logicalID(t, demo, "AWS::Lambda::Function", "Authorizer"), "Arn"}},
		})
	})
}

func TestFunctions(t *testing.T) {
	tpl := template(demo)
	check(t, "six functions", func() { tpl.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(6)) })
	table := logicalID(t, demo, "AWS::DynamoDB::Table", "Table")
	for id, fn := range resources(demo, "AWS::Lambda::Function") {
		p := fn["Properties"].(map[string]any)
		if p["Runtime"] != "provided.al2023" || p["Handler"] != "bootstrap" || fmt.Sprint(p["Architectures"]) != "[arm64]" {
			t.Errorf("%s: runtime %v, handler %v, architectures %v", id, p["Runtime"], p["Handler"], p["Architectures"])
		}
		if strings.HasPrefix(id, "Echo") {
			continue
		}
		vars := p["Environment"].(map[string]any)["Variables"].(map[string]any)
		if ref, _ := vars["TABLE_NAME"].(map[string]any); ref["Ref"] != table {
			t.Errorf("%s: TABLE_NAME = %v, want a Ref to the table", id, vars["TABLE_NAME"])
		}
	}
	check(t, "the authorizer's settings", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Environment": map[string]any{"Variables": map[string]any{
				"ON_LIMIT": "deny", "ENFORCE": "enforce", "FAIL_MODE": "closed", "API_KEY_SOURCE": "header:x-api-key", "METRICS_NAMESPACE": "Tollgate",
			}},
			"Timeout": 5, "MemorySize": 256,
		})
	})
	for _, lg := range resources(demo, "AWS::Logs::LogGroup") {
		if lg["Properties"].(map[string]any)["RetentionInDays"] != 30.0 {
			t.Errorf("a log group keeps logs for %v days, want 30", lg["Properties"])
		}
	}
	if n := len(resources(demo, "AWS::Logs::LogGroup")); n != 6 {
		t.Errorf("%d log groups, want one per function", n)
	}
}

// TestLogging: every function logs JSON, and Lambda filters its lines at
// the level of its own LOG_LEVEL; the authorizer drops Lambda's START, END
// and REPORT lines (system level WARN).
func TestLogging(t *testing.T) {
	for name, tpl := range map[string]map[string]any{"demo": demo, "operated": operated} {
		for id, fn := range resources(tpl, "AWS::Lambda::Function") {
			p := fn["Properties"].(map[string]any)
			cfg, _ := p["LoggingConfig"].(map[string]any)
			level := "info"
			if env, ok := p["Environment"].(map[string]any); ok {
				if v, ok := env["Variables"].(map[string]any)["LOG_LEVEL"].(string); ok {
					level = v
				}
			}
			system := "INFO"
			if strings.HasPrefix(id, "TollgateAuthorizer") {
				system = "WARN"
			}
			want := map[string]any{"LogFormat": "JSON", "ApplicationLogLevel": strings.ToUpper(level), "SystemLogLevel": system}
			if fmt.Sprint(cfg["LogFormat"], cfg["ApplicationLogLevel"], cfg["SystemLogLevel"]) != fmt.Sprint(want["LogFormat"], want["ApplicationLogLevel"], want["SystemLogLevel"]) {
				t.Errorf("%s %s: LoggingConfig %v, want %v", name, id, cfg, want)
			}
		}
	}
	// Props.LogLevel sets every function's; AuthorizerEnvironment may set
	// the authorizer's apart.
	levels := map[string]string{}
	for id, fn := range resources(operated, "AWS::Lambda::Function") {
		levels[strings.TrimPrefix(id, "Tollgate")[:4]] = fn["Properties"].(map[string]any)["LoggingConfig"].(map[string]any)["ApplicationLogLevel"].(string)
	}
	if want := map[string]string{"Auth": "ERROR", "Keys": "WARN", "Noti": "WARN", "Plan": "WARN", "Usag": "WARN"}; fmt.Sprint(levels) != fmt.Sprint(want) {
		t.Errorf("application log levels %v, want %v", levels, want)
	}
	check(t, "AuthorizerMemoryMB", func() {
		template(operated).HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"MemorySize": 512, "Environment": map[string]any{"Variables": map[string]any{"ON_LIMIT": "deny"}},
		})
	})
}

// TestGrants: GrantAdmin may invoke the three admin functions and nothing
// else; GrantUsageRead the usage function alone.
func TestGrants(t *testing.T) {
	invokes := func(role string) []string {
		var out []string
		for _, pol := range resources(operated, "AWS::IAM::Policy") {
			p := pol["Properties"].(map[string]any)
			for _, r := range p["Roles"].([]any) {
				if !strings.HasPrefix(fmt.Sprint(r.(map[string]any)["Ref"]), role) {
					continue
				}
				for _, st := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
					st := st.(map[string]any)
					if fmt.Sprint(st["Action"]) != "lambda:InvokeFunction" || st["Effect"] != "Allow" {
						t.Errorf("%s may %v", role, st["Action"])
						continue
					}
					res := st["Resource"]
					if _, ok := res.([]any); !ok {
						res = []any{res}
					}
					for _, r := range res.([]any) {
						ref := r.(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
						out = append(out, strings.TrimPrefix(ref, "Tollgate")[:4])
					}
				}
			}
		}
		slices.Sort(out)
		return out
	}
	if got := invokes("CI"); fmt.Sprint(got) != "[Keys Plan Usag]" {
		t.Errorf("GrantAdmin: invokes %v, want the keys, plans and usage functions", got)
	}
	if got := invokes("Billing"); fmt.Sprint(got) != "[Usag]" {
		t.Errorf("GrantUsageRead: invokes %v, want the usage function", got)
	}
}

func TestTable(t *testing.T) {
	tpl := template(demo)
	check(t, "one table", func() { tpl.ResourceCountIs(jsii.String("AWS::DynamoDB::Table"), jsii.Number(1)) })
	check(t, "on demand, PITR, deletion protection, TTL, the schema from store.Schema", func() {
		tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]any{
			"BillingMode":                      "PAY_PER_REQUEST",
			"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
			"DeletionProtectionEnabled":        true,
			"TimeToLiveSpecification":          map[string]any{"AttributeName": store.Schema.TTLAttribute, "Enabled": true},
			"KeySchema": []any{
				map[string]any{"AttributeName": store.Schema.PartitionKey, "KeyType": "HASH"},
				map[string]any{"AttributeName": store.Schema.SortKey, "KeyType": "RANGE"},
			},
		})
	})
	check(t, "the table outlives the stack", func() {
		tpl.HasResource(jsii.String("AWS::DynamoDB::Table"), map[string]any{"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})
	})
}

// statements returns every IAM statement of the roles of one function.
func statements(t *testing.T, tpl map[string]any, function string) []map[string]any {
	fn := resources(tpl, "AWS::Lambda::Function")[logicalID(t, tpl, "AWS::Lambda::Function", function)]
	role := fn["Properties"].(map[string]any)["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0]
	var out []map[string]any
	for _, pol := range resources(tpl, "AWS::IAM::Policy") {
		p := pol["Properties"].(map[string]any)
		for _, r := range p["Roles"].([]any) {
			if r.(map[string]any)["Ref"] == role {
				for _, st := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
					out = append(out, st.(map[string]any))
				}
			}
		}
	}
	return out
}

func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

func TestLeastPrivilege(t *testing.T) {
	table := logicalID(t, demo, "AWS::DynamoDB::Table", "Table")
	tableArn := fmt.Sprint(map[string]any{"Fn::GetAtt": []any{table, "Arn"}})
	// No managed policies (AWSLambdaBasicExecutionRole allows logs on *).
	for id, role := range resources(demo, "AWS::IAM::Role") {
		if _, ok := role["Properties"].(map[string]any)["ManagedPolicyArns"]; ok {
			t.Errorf("role %s has managed policies", id)
		}
	}
	// No * anywhere.
	for _, tpl := range []map[string]any{demo, existing, jwtStack, emailed} {
		for id, pol := range resources(tpl, "AWS::IAM::Policy") {
			for _, st := range pol["Properties"].(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
				st := st.(map[string]any)
				for _, a := range strs(st["Action"]) {
					if strings.Contains(a, "*") {
						t.Errorf("%s allows action %s", id, a)
					}
				}
				for _, r := range strs(st["Resource"]) {
					if r == "*" {
						t.Errorf("%s allows %v on every resource", id, st["Action"])
					}
				}
			}
		}
	}
	// Each function's DynamoDB actions, and the partitions they may touch.
	want := map[string]map[string]string{
		"Authorizer": {"dynamodb:GetItem": "HASH#* PLAN#*", "dynamodb:Query": "KEY#*", "dynamodb:UpdateItem": "METER#*"},
		"Usage":      {"dynamodb:GetItem": "PLAN#* METER#*", "dynamodb:Query": "PLAN#* METER#*", "dynamodb:UpdateItem": "METER#*"},
		"Keys": {"dynamodb:GetItem": "", "dynamodb:Query": "", "dynamodb:BatchGetItem": "", "dynamodb:PutItem": "",
			"dynamodb:UpdateItem": "", "dynamodb:DeleteItem": "", "dynamodb:ConditionCheckItem": ""},
	}
	want["Plans"] = want["Keys"]
	for fn, actions := range want {
		got := map[string]string{}
		for _, st := range statements(t, demo, fn) {
			if !strings.HasPrefix(strs(st["Action"])[0], "dynamodb:") {
				continue
			}
			if fmt.Sprint(st["Resource"]) != tableArn {
				t.Errorf("%s: DynamoDB statement on %v, want only the table", fn, st["Resource"])
			}
			leading := ""
			if c, ok := st["Condition"].(map[string]any); ok {
				leading = strings.Join(strs(c["ForAllValues:StringLike"].(map[string]any)["dynamodb:LeadingKeys"]), " ")
			}
			for _, a := range strs(st["Action"]) {
				got[a] = leading
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(actions) {
			t.Errorf("%s may do %v, want %v", fn, got, actions)
		}
	}
}

func TestExistingAPI(t *testing.T) {
	tpl := template(existing)
	for _, route := range []string{"GET /items", "POST /orders/{id}"} {
		check(t, route+" on the existing API", func() {
			tpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Route"), map[string]any{
				"ApiId": "a1b2c3d4e5", "RouteKey": route, "AuthorizationType": "CUSTOM",
			})
		})
	}
	check(t, "an authorizer of its own on the existing API", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Authorizer"), map[string]any{"ApiId": "a1b2c3d4e5", "AuthorizerResultTtlInSeconds": 0})
	})
	mapping := map[string]any{}
	for _, f := range ratelimit.Fields {
		mapping["overwrite:header."+strings.ToLower(f.Header)] = "$context.authorizer." + f.Key
	}
	check(t, "the backend gets the decision as headers that overwrite any a client sent", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Integration"), map[string]any{
			"ApiId": "a1b2c3d4e5", "IntegrationType": "HTTP_PROXY", "IntegrationUri": "https://backend.example.com/{proxy}",
			"RequestParameters": mapping,
		})
	})
	check(t, "onLimit and enforce reach the authorizer", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Environment": map[string]any{"Variables": map[string]any{"ON_LIMIT": "pass", "ENFORCE": "shadow"}},
		})
	})
}

func TestObservability(t *testing.T) {
	tpl := template(demo)
	check(t, "a dashboard", func() { tpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Dashboard"), jsii.Number(1)) })
	body, _ := json.Marshal(resources(demo, "AWS::CloudWatch::Dashboard"))
	for _, want := range []string{`{Tollgate,usagePlanId} MetricName=\\\"Decisions\\\"`, "Throttled", "QuotaExceeded", "ShadowThrottled", "ShadowQuotaExceeded", "DynamoDBCalls"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the dashboard does not graph %s", want)
		}
	}
	alarms := resources(demo, "AWS::CloudWatch::Alarm")
	if len(alarms) != 5 {
		t.Errorf("%d alarms, want authorizer errors, decision errors, table throttling, lost writes given up and dead-lettered alerts", len(alarms))
	}
	check(t, "an alarm on the authorizer's errors", func() {
		tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{"MetricName": "Errors", "Namespace": "AWS/Lambda"})
	})
	// Written without dimensions: the alarm cannot know the reasons and
	// plans of the decisions that gave the writes up.
	check(t, "an alarm on lost meter writes given up, at the first", func() {
		tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
			"MetricName": "LateWritesUnreconciled", "Namespace": "Tollgate", "Statistic": "Sum", "Period": 300,
			"Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "EvaluationPeriods": 1, "TreatMissingData": "notBreaching",
			"Dimensions": assertions.Match_Absent(),
		})
	})
	for _, a := range alarms {
		p := a["Properties"].(map[string]any)
		if p["MetricName"] != "LateWritesUnreconciled" {
			continue
		}
		for _, want := range []string{"denied", "semantics.md#under-faults", "GetUsage", "UpdateUsage"} {
			if d, _ := p["AlarmDescription"].(string); !strings.Contains(d, want) {
				t.Errorf("the LateWritesUnreconciled alarm's description does not say %q: %s", want, d)
			}
		}
	}
	outputs, _ := demo["Outputs"].(map[string]any)
	for _, name := range []string{"ApiUrl", "TableName", "AuthorizerFunctionName", "KeysFunctionName", "PlansFunctionName", "UsageFunctionName",
		"NotifierFunctionName", "AlertsDeadLetterQueueUrl"} {
		if _, ok := outputs[name]; !ok {
			t.Errorf("no output %s", name)
		}
	}
}

// TestTemplateRunsTheFunctionsUnchanged builds a table in DynamoDB Local
// from the template's table definition and runs the authorizer and an admin
// function with the template's environment: nothing but the table's name,
// which CloudFormation fills in, is set by hand.
func TestTemplateRunsTheFunctionsUnchanged(t *testing.T) {
	props := resources(demo, "AWS::DynamoDB::Table")[logicalID(t, demo, "AWS::DynamoDB::Table", "Table")]["Properties"].(map[string]any)
	name := "tollgate-from-template"
	in := &dynamodb.CreateTableInput{TableName: aws.String(name), BillingMode: types.BillingMode(props["BillingMode"].(string))}
	for _, a := range props["AttributeDefinitions"].([]any) {
		a := a.(map[string]any)
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a["AttributeName"].(string)), AttributeType: types.ScalarAttributeType(a["AttributeType"].(string))})
	}
	for _, k := range props["KeySchema"].([]any) {
		k := k.(map[string]any)
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{
			AttributeName: aws.String(k["AttributeName"].(string)), KeyType: types.KeyType(k["KeyType"].(string))})
	}
	db := dynamotest.Client(t, authorizer.Instrument) // as the function builds it: calls counted and timed
	ctx := context.Background()
	if _, err := db.CreateTable(ctx, in); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}) })

	env := map[string]string{}
	fn := resources(demo, "AWS::Lambda::Function")[logicalID(t, demo, "AWS::Lambda::Function", "Authorizer")]
	for k, v := range fn["Properties"].(map[string]any)["Environment"].(map[string]any)["Variables"].(map[string]any) {
		if s, ok := v.(string); ok {
			env[k] = s
		}
	}
	env["TABLE_NAME"] = name
	cfg, err := authorizer.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the template's environment: %v", err)
	}
	svc := &admin.Service{Store: &store.Table{DB: db, Name: name, Now: time.Now}, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	keysFn, _ := admin.New("keys", svc)
	plansFn, _ := admin.New("plans", svc)
	call := func(h *admin.Handler, payload string) map[string]any {
		out, e := h.Handle(ctx, []byte(payload))
		if e != nil {
			t.Fatalf("%s: %v", payload, e)
		}
		b, _ := json.Marshal(out)
		var m map[string]any
		json.Unmarshal(b, &m)
		return m
	}
	// A key in each plan: a quota of 1 and a throttle with a burst of 1,
	// enforced and in shadow, so that the records carry every count the
	// dashboard reads (a record carries only the counts that happened).
	var logs bytes.Buffer
	a := authorizer.New(cfg, db, time.Now, slog.New(slog.NewJSONHandler(&logs, nil)))
	for _, tc := range []struct{ limits, tags string }{
		{`"quota":{"limit":1,"period":"DAY"}`, `{}`},
		{`"throttle":{"rateLimit":0.001,"burstLimit":1}`, `{}`},
		{`"quota":{"limit":1,"period":"DAY"}`, `{"tollgate:enforce":"shadow"}`},
		{`"throttle":{"rateLimit":0.001,"burstLimit":1}`, `{"tollgate:enforce":"shadow"}`},
	} {
		plan := call(plansFn, `{"action":"CreateUsagePlan","name":"p","apiStages":[{"apiId":"api","stage":"prod"}],`+tc.limits+`,"tags":`+tc.tags+`}`)["id"].(string)
		key := call(keysFn, `{"action":"CreateApiKey","name":"k"}`)
		call(plansFn, `{"action":"CreateUsagePlanKey","usagePlanId":"`+plan+`","keyId":"`+key["id"].(string)+`","keyType":"API_KEY"}`)
		req := events.APIGatewayV2CustomAuthorizerV2Request{RouteKey: "GET /x", Headers: map[string]string{"x-api-key": key["value"].(string)},
			RequestContext: events.APIGatewayV2HTTPRequestContext{APIID: "api", Stage: "prod"}}
		// Enforced, the second is refused; in shadow, let through marked shadow.
		shadow := tc.tags != `{}`
		first, second := a.Authorize(ctx, req), a.Authorize(ctx, req)
		if !first.IsAuthorized || second.IsAuthorized != shadow || (second.Context["shadow"] == true) != shadow {
			t.Fatalf("against the template's table, a plan with %s and tags %s: %v, then %v; want one admitted, then one over the limit",
				tc.limits, tc.tags, first, second)
		}
	}

	// Every metric the dashboard and the alarms read, by name and
	// dimensions, is among those the authorizer's log produces.
	a.Flush(ctx)
	data, err := decisionlog.Extract(logs.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	produced := map[string]bool{}
	for _, d := range data {
		if d.Namespace == "Tollgate" {
			produced[d.Name+" by {"+d.DimensionNames()+"}"] = true
		}
	}
	used := dashboardMetrics(t, demo)
	t.Logf("the dashboard and alarms read %v", used)
	if len(used) < 7 {
		t.Fatalf("found only %v in the dashboard and alarms", used)
	}
	// make bench checks the log against the same list (BenchmarkLogBytes).
	if list, err := os.ReadFile("testdata/dashboard-metrics.txt"); err != nil {
		t.Error(err)
	} else if got := strings.Join(used, "\n") + "\n"; string(list) != got {
		t.Errorf("testdata/dashboard-metrics.txt lists\n%s\nthe dashboard and alarms read\n%s", list, got)
	}
	for _, m := range used {
		if !produced[m] && underFaults[m] == "" {
			t.Errorf("the dashboard or an alarm reads %s, which the authorizer does not produce (it does %v)", m, produced)
		}
	}
}

// underFaults are the metrics the alarms read that only faults produce,
// which the template's run above cannot provoke, and the test that
// produces each.
var underFaults = map[string]string{
	"LateWritesUnreconciled by {}": "TestGivenUpWritesReachTheAlarm in internal/authorizer",
}

// dashboardMetrics returns the Tollgate metrics the dashboard and alarms
// read, as "Name by {dimension,names}".
func dashboardMetrics(t *testing.T, tpl map[string]any) []string {
	seen := map[string]bool{}
	body, _ := json.Marshal(resources(tpl, "AWS::CloudWatch::Dashboard"))
	unescaped := strings.ReplaceAll(string(body), `\`, ``)
	unescaped = strings.ReplaceAll(unescaped, `\"`, `"`)
	for _, m := range regexp.MustCompile(`\{Tollgate,([A-Za-z,]+)\} MetricName="(\w+)"`).FindAllStringSubmatch(unescaped, -1) {
		seen[m[2]+" by {"+m[1]+"}"] = true
	}
	for _, m := range regexp.MustCompile(`\["Tollgate","(\w+)"`).FindAllStringSubmatch(unescaped, -1) {
		seen[m[1]+" by {}"] = true
	}
	for _, alarm := range resources(tpl, "AWS::CloudWatch::Alarm") {
		props := alarm["Properties"].(map[string]any)
		read := []map[string]any{props} // an alarm on one metric names it in its properties
		metrics, _ := props["Metrics"].([]any)
		for _, m := range metrics { // one on an expression, in its metrics
			if stat, ok := m.(map[string]any)["MetricStat"].(map[string]any); ok {
				read = append(read, stat["Metric"].(map[string]any))
			}
		}
		for _, metric := range read {
			if metric["Namespace"] != "Tollgate" {
				continue
			}
			var dims []string
			named, _ := metric["Dimensions"].([]any)
			for _, d := range named {
				dims = append(dims, d.(map[string]any)["Name"].(string))
			}
			slices.Sort(dims)
			seen[metric["MetricName"].(string)+" by {"+strings.Join(dims, ",")+"}"] = true
		}
	}
	var out []string
	for m := range seen {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// logicalID finds the one resource of a type whose id contains name.
func logicalID(t *testing.T, tpl map[string]any, typ, name string) string {
	t.Helper()
	var found []string
	for id := range resources(tpl, typ) {
		if strings.Contains(id, name) {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s resources named like %s: %v", len(found), typ, name, found)
	}
	return found[0]
}

func TestJWTCallers(t *testing.T) {
	tpl := template(jwtStack)
	check(t, "the JWT settings reach the authorizer", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Environment": map[string]any{"Variables": map[string]any{
				"AUTH_MODE": "jwt", "JWT_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123",
				"JWT_AUDIENCE": "3n4b5c6d7e8f9g0h1i2j3k4l5m,other", "JWT_SCOPES": `{"GET /items":["items:read"]}`,
				"JWT_CONTEXT_CLAIMS": "custom:tenant,email", "JWT_LEEWAY": "30s", "JWT_IDENTITY_CLAIM": "username",
			}},
		})
	})
	// As API Gateway's JWT authorizer: no token, 401 without invoking.
	// Caching stays off.
	check(t, "the token's header is the identity source", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Authorizer"), map[string]any{
			"IdentitySource": []any{"$request.header.authorization"}, "AuthorizerResultTtlInSeconds": 0,
		})
	})
	mapping := map[string]any{}
	for _, f := range ratelimit.Fields {
		mapping["overwrite:header."+strings.ToLower(f.Header)] = "$context.authorizer." + f.Key
	}
	mapping["overwrite:header.x-tollgate-claim-custom-tenant"] = "$context.authorizer.claim_custom_tenant"
	mapping["overwrite:header.x-tollgate-claim-email"] = "$context.authorizer.claim_email"
	check(t, "identity, scopes and the context claims reach the backend as headers", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Integration"), map[string]any{"RequestParameters": mapping})
	})
	// The authorizer may read identity items; in key mode it may not.
	var leading []string
	for _, st := range statements(t, jwtStack, "Authorizer") {
		if slices.Contains(strs(st["Action"]), "dynamodb:GetItem") {
			leading = strs(st["Condition"].(map[string]any)["ForAllValues:StringLike"].(map[string]any)["dynamodb:LeadingKeys"])
		}
	}
	if !slices.Contains(leading, store.PartitionIdentity+"*") {
		t.Errorf("the authorizer may read %v, not identity items", leading)
	}

	// Bad settings fail the synth with a message naming them.
	for _, bad := range []map[string]string{
		{"authMode": "jwt"},
		{"authMode": "jwt", "jwtIssuer": "http://issuer.example.com", "jwtAudience": "a"},
		{"authMode": "jwt", "jwtIssuer": "https://issuer.example.com"},
		{"authMode": "jwt", "jwtIssuer": "https://issuer.example.com", "jwtAudience": "a", "jwtScopes": `["x"]`},
		{"authMode": "jwt", "jwtIssuer": "https://issuer.example.com", "jwtAudience": "a", "jwtLeeway": "soon"},
		{"authMode": "oauth"},
	} {
		if _, err := fromContext(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}
