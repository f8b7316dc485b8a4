// Package tollgate is Tollgate as a CDK construct for Go CDK apps: the
// DynamoDB table, the authorizer and admin functions, an HttpLambdaAuthorizer
// to put on HTTP API routes, metrics, a dashboard and alarms, and quota
// alerts on EventBridge.
//
//	tg := tollgate.New(stack, "Tollgate", &tollgate.Props{OnLimit: "pass"})
//	api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
//		Path: jsii.String("/items"), Integration: integration, Authorizer: tg.Authorizer,
//	})
//
// The construct builds its functions at synth from Tollgate's module source
// with the local Go toolchain (see FunctionCode), or reads prebuilt ones
// from CodeDir.
package tollgate

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
	"github.com/tollgate-dev/tollgate/internal/store"
	"github.com/tollgate-dev/tollgate/ratelimit"
)

// Props configure Tollgate. The zero value deploys the defaults.
type Props struct {
	// CodeDir holds each function's binary as <function>/bootstrap, built
	// beforehand (make build writes them to dist/). Default: empty, and the
	// functions are built at synth (FunctionCode).
	CodeDir string
	// OnLimit is "deny" (403, the default) or "pass" (allow, and tell the
	// backend in the context so it can answer 429).
	OnLimit string
	// Enforce is "enforce" (the default) or "shadow": requests over a limit
	// of a plan without the tag tollgate:enforce are allowed and reported.
	Enforce string
	// FailMode is "closed" (deny when DynamoDB fails; the default) or "open".
	FailMode string
	// APIKeySource is where requests carry their key: "header:<name>" or
	// "query:<name>". Default: header:x-api-key.
	APIKeySource string
	// AuthorizerEnvironment adds to or overrides the authorizer's
	// environment (see the README's configuration table), e.g.
	// CLOCK_SKEW_GUARD or DENY_CACHE_TTL.
	AuthorizerEnvironment map[string]string
	// Tracing turns on AWS X-Ray for the functions.
	Tracing bool
	// LogRetention is how long function logs are kept. Default: one month.
	LogRetention awslogs.RetentionDays
	// MetricsNamespace is the CloudWatch namespace of the authorizer's
	// metrics. Default: Tollgate.
	MetricsNamespace string
	// LogLevel is every function's LOG_LEVEL, and Lambda's application log
	// level for it: debug, info, warn or error. Default: info. The
	// authorizer's may be set apart in AuthorizerEnvironment.
	LogLevel string
	// AuthorizerMemoryMB is the authorizer's memory, which sets its share
	// of CPU. Default: 256 (see the README's "What it costs").
	AuthorizerMemoryMB float64
	// AuthMode is what identifies a caller: "key" (the default), "jwt",
	// "jwt-and-key" or "jwt-or-key" (the README's "JWT callers"). In jwt
	// mode the authorizer's identity source is the token's header, so API
	// Gateway answers a request without one 401 itself, as its JWT
	// authorizer does.
	AuthMode string
	// JWT says how tokens are validated, in the modes other than key.
	JWT JWTProps
	// AlertEmail, if set, emails quota alerts there: an SNS topic with an
	// email subscription (to confirm), and a rule that sends it the alerts.
	AlertEmail string
	// AlertThresholds are the quota alert thresholds of plans without the
	// tag tollgate:alerts, such as "80,100" (the default) or "off".
	AlertThresholds string
	// AlertBusName is the event bus the alerts go on. Default: the
	// account's default bus.
	AlertBusName string
}

// JWTProps are the JWT settings, as API Gateway's JWT authorizer takes
// them, and Tollgate's own. Each sets the authorizer variable named.
type JWTProps struct {
	Issuer        string              // JWT_ISSUER: the tokens' iss, https
	Audience      []string            // JWT_AUDIENCE: aud, or client_id when there is no aud
	IdentityClaim string              // JWT_IDENTITY_CLAIM: default sub
	Scopes        map[string][]string // JWT_SCOPES: route key → scopes it accepts
	ContextClaims []string            // JWT_CONTEXT_CLAIMS: claims copied into the context (and headers)
	Source        string              // JWT_SOURCE: default header:authorization
	Leeway        time.Duration       // JWT_LEEWAY: default 0
}

// Tollgate is the deployed system.
type Tollgate struct {
	constructs.Construct
	Table awsdynamodb.Table
	// Authorizer is an authorizer for one HTTP API. For more APIs, use
	// NewAuthorizer or AddRoute: CDK binds an authorizer to one API only.
	Authorizer awsapigatewayv2authorizers.HttpLambdaAuthorizer

	AuthorizerFunction awslambda.Function
	KeysFunction       awslambda.Function
	PlansFunction      awslambda.Function
	UsageFunction      awslambda.Function

	Dashboard awscloudwatch.Dashboard
	Alarms    []awscloudwatch.Alarm
	// Alerts is the quota alerts notifier (see alerts.go).
	Alerts *Alerts

	namespace      string
	authorizers    map[string]awsapigatewayv2authorizers.HttpLambdaAuthorizer
	identitySource []*string
}

// New deploys Tollgate under scope.
func New(scope constructs.Construct, id string, props *Props) *Tollgate {
	if props == nil {
		props = &Props{}
	}
	p := *props
	p.OnLimit = or(p.OnLimit, "deny")
	p.Enforce = or(p.Enforce, "enforce")
	p.FailMode = or(p.FailMode, "closed")
	p.APIKeySource = or(p.APIKeySource, "header:x-api-key")
	p.MetricsNamespace = or(p.MetricsNamespace, "Tollgate")
	p.LogLevel = or(p.LogLevel, "info")
	if p.AuthorizerMemoryMB == 0 {
		p.AuthorizerMemoryMB = DefaultAuthorizerMemoryMB
	}
	if p.LogRetention == "" {
		p.LogRetention = awslogs.RetentionDays_ONE_MONTH
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	t := &Tollgate{Construct: c, namespace: p.MetricsNamespace, authorizers: map[string]awsapigatewayv2authorizers.HttpLambdaAuthorizer{}}

	t.Table = NewTable(c, "Table")
	env := map[string]string{
		"TABLE_NAME":        *t.Table.TableName(),
		"API_KEY_SOURCE":    p.APIKeySource,
		"ON_LIMIT":          p.OnLimit,
		"ENFORCE":           p.Enforce,
		"FAIL_MODE":         p.FailMode,
		"METRICS_NAMESPACE": p.MetricsNamespace,
		"LOG_LEVEL":         p.LogLevel,
	}
	identitySource, err := p.jwtEnvironment(env)
	if err != nil {
		panic("tollgate: " + err.Error())
	}
	t.identitySource = identitySource
	for k, v := range p.AuthorizerEnvironment {
		env[k] = v
	}
	fn := func(name, description string, memory, seconds float64, env map[string]string) awslambda.Function {
		fp := &FunctionProps{
			Code: FunctionCode(p.CodeDir, strings.ToLower(name)), Description: description,
			MemoryMB: memory, Timeout: seconds, Environment: env, Tracing: p.Tracing, LogRetention: p.LogRetention,
		}
		if name == "Authorizer" {
			// WARN drops Lambda's START, END and REPORT lines: about 300
			// bytes a request. Errors, timeouts and crashes still show.
			fp.SystemLogLevel = "WARN"
		}
		return NewFunction(c, name, fp)
	}
	// The authorizer's budget is DYNAMODB_DEADLINE (1 s) per decision; API
	// Gateway waits 10 s at most. More memory buys a faster CPU.
	t.AuthorizerFunction = fn("Authorizer", "Tollgate: API keys and usage plans for HTTP APIs (Lambda authorizer)", p.AuthorizerMemoryMB, 5, env)
	// Admin operations fan out over a plan's keys; give them time.
	admin := map[string]string{"TABLE_NAME": *t.Table.TableName(), "LOG_LEVEL": p.LogLevel}
	t.KeysFunction = fn("Keys", "Tollgate admin: API keys (CreateApiKey, ImportApiKeys, ...)", 512, 300, admin)
	t.PlansFunction = fn("Plans", "Tollgate admin: usage plans and their keys (CreateUsagePlan, CreateUsagePlanKey, ...)", 512, 300, admin)
	t.UsageFunction = fn("Usage", "Tollgate admin: usage (GetUsage, UpdateUsage)", 512, 60, admin)

	// The authorizer gets a value's (or an identity's) pointer and a plan,
	// queries a key's record with its stage claims, and updates meters.
	pointers := []string{store.PartitionHash, store.PartitionPlan}
	if env["AUTH_MODE"] != "" && env["AUTH_MODE"] != string(authorizer.AuthKey) {
		pointers = append(pointers, store.PartitionIdentity)
	}
	GrantItems(t.Table, t.AuthorizerFunction, []string{"dynamodb:GetItem"}, pointers)
	GrantItems(t.Table, t.AuthorizerFunction, []string{"dynamodb:Query"}, []string{store.PartitionKey})
	GrantItems(t.Table, t.AuthorizerFunction, []string{"dynamodb:UpdateItem"}, []string{store.PartitionMeter})
	GrantItems(t.Table, t.UsageFunction, readOnly, []string{store.PartitionPlan, store.PartitionMeter})
	GrantItems(t.Table, t.UsageFunction, []string{"dynamodb:UpdateItem"}, []string{store.PartitionMeter})
	GrantItems(t.Table, t.KeysFunction, readWrite, nil)
	GrantItems(t.Table, t.PlansFunction, readWrite, nil)

	t.Authorizer = t.NewAuthorizer("Authorizer")
	t.Dashboard = t.newDashboard(c)
	t.Alarms = t.newAlarms(c)
	t.Alerts = t.newAlerts(c, &p, fn)
	return t
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// NewTable creates the Tollgate table from store.Schema: on demand, with
// point-in-time recovery and deletion protection, kept when the stack goes,
// expiring usage history by TTL, and a stream for the notifier.
func NewTable(scope constructs.Construct, id string) awsdynamodb.Table {
	s := store.Schema
	return awsdynamodb.NewTable(scope, jsii.String(id), &awsdynamodb.TableProps{
		PartitionKey: &awsdynamodb.Attribute{Name: jsii.String(s.PartitionKey), Type: awsdynamodb.AttributeType_STRING},
		SortKey:      &awsdynamodb.Attribute{Name: jsii.String(s.SortKey), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		DeletionProtection:  jsii.Bool(true),
		RemovalPolicy:       awscdk.RemovalPolicy_RETAIN,
		TimeToLiveAttribute: jsii.String(s.TTLAttribute),
		Stream:              awsdynamodb.StreamViewType(s.StreamView),
	})
}

// DefaultAuthorizerMemoryMB is the authorizer's memory unless
// Props.AuthorizerMemoryMB says otherwise. Measured (BENCHMARKS.md, "Cost
// per request"): 128 MB would save under a cent per million requests but
// add about 5 ms to each, and bill a flood's denials 2 ms instead of 1.
const DefaultAuthorizerMemoryMB = 256

// FunctionProps configure one Tollgate function.
type FunctionProps struct {
	Code         awslambda.Code // FunctionCode
	Description  string
	MemoryMB     float64
	Timeout      float64 // seconds
	Environment  map[string]string
	Tracing      bool
	LogRetention awslogs.RetentionDays
	// SystemLogLevel is Lambda's own log level (DEBUG, INFO or WARN).
	// Default: INFO, which logs START, END and REPORT for every request.
	SystemLogLevel string
}

// NewFunction creates a Go function on provided.al2023 for arm64, with a
// log group of its own that keeps logs for LogRetention, and a role that
// may write to that log group and nothing else until granted more. (CDK's
// default role would carry AWSLambdaBasicExecutionRole, which allows logs
// actions on every resource.) Its logs are JSON, filtered by Lambda at the
// level in its LOG_LEVEL (default info).
func NewFunction(scope constructs.Construct, id string, p *FunctionProps) awslambda.Function {
	appLevel, err := applicationLogLevel(p.Environment["LOG_LEVEL"])
	if err != nil {
		panic(fmt.Sprintf("tollgate: %s: %v", id, err))
	}
	sysLevel := awslambda.SystemLogLevel(or(p.SystemLogLevel, "INFO"))
	logs := awslogs.NewLogGroup(scope, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     p.LogRetention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	role := awsiam.NewRole(scope, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("Tollgate " + id + ": writes its own logs; other grants are added"),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: jsii.Strings(*logs.LogGroupArn()),
	}))
	env := map[string]*string{}
	for k, v := range p.Environment {
		env[k] = jsii.String(v)
	}
	tracing := awslambda.Tracing_DISABLED
	if p.Tracing {
		tracing = awslambda.Tracing_ACTIVE
	}
	return awslambda.NewFunction(scope, jsii.String(id), &awslambda.FunctionProps{
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         p.Code,
		Description:  jsii.String(p.Description),
		MemorySize:   jsii.Number(p.MemoryMB),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(p.Timeout)),
		Environment:  &env,
		Tracing:      tracing,
		LogGroup:     logs,
		Role:         role,
		// JSON lines pass through as they are; Lambda filters them by
		// their "level", and its own lines by SystemLogLevel.
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2: appLevel,
		SystemLogLevelV2:      sysLevel,
	})
}

// applicationLogLevel is Lambda's application log level for a LOG_LEVEL,
// which internal/logs reads: the same levels, so that Lambda drops what
// the function would not write anyway, and nothing it does.
func applicationLogLevel(level string) (awslambda.ApplicationLogLevel, error) {
	switch strings.ToUpper(or(level, "info")) {
	case "DEBUG":
		return awslambda.ApplicationLogLevel_DEBUG, nil
	case "INFO":
		return awslambda.ApplicationLogLevel_INFO, nil
	case "WARN":
		return awslambda.ApplicationLogLevel_WARN, nil
	case "ERROR":
		return awslambda.ApplicationLogLevel_ERROR, nil
	}
	return "", fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", level)
}

// Item-level DynamoDB actions. No function gets Scan or table-level actions.
// The admin functions' transactions check items they do not write (a
// plan's version, a membership, a capping's claim): TransactWriteItems
// needs ConditionCheckItem for those, besides the actions of its writes.
var (
	readOnly  = []string{"dynamodb:GetItem", "dynamodb:Query"}
	readWrite = []string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
		"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
)

// GrantItems lets fn use actions on the table's items, and only on items
// whose partition key starts with one of prefixes, if any are given
// (dynamodb:LeadingKeys). Tollgate's table has no index.
func GrantItems(table awsdynamodb.Table, fn awslambda.Function, actions, prefixes []string) {
	st := &awsiam.PolicyStatementProps{
		Actions:   jsii.Strings(actions...),
		Resources: jsii.Strings(*table.TableArn()),
	}
	if len(prefixes) > 0 {
		var like []*string
		for _, p := range prefixes {
			like = append(like, jsii.String(p+"*"))
		}
		st.Conditions = &map[string]any{
			"ForAllValues:StringLike": map[string]any{"dynamodb:LeadingKeys": like},
		}
	}
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(st))
}

// NewAuthorizer returns another HttpLambdaAuthorizer on Tollgate's function,
// for another HTTP API. It takes simple responses (payload 2.0), caches
// nothing, so that every request is metered, and names no identity source,
// so that a request without a key reaches Tollgate and gets 403 rather than
// API Gateway's 401.
func (t *Tollgate) NewAuthorizer(id string) awsapigatewayv2authorizers.HttpLambdaAuthorizer {
	return awsapigatewayv2authorizers.NewHttpLambdaAuthorizer(jsii.String(id), t.AuthorizerFunction,
		&awsapigatewayv2authorizers.HttpLambdaAuthorizerProps{
			AuthorizerName:  jsii.String("tollgate"),
			ResponseTypes:   &[]awsapigatewayv2authorizers.HttpLambdaResponseType{awsapigatewayv2authorizers.HttpLambdaResponseType_SIMPLE},
			ResultsCacheTtl: awscdk.Duration_Seconds(jsii.Number(0)),
			IdentitySource:  &t.identitySource,
		})
}

// Check reports what New would refuse in props' JWT settings, naming the
// setting, for callers that would rather print an error than panic.
func Check(props *Props) error {
	_, err := props.jwtEnvironment(map[string]string{"TABLE_NAME": "check"})
	return err
}

// jwtEnvironment adds the JWT settings to the authorizer's environment and
// checks them as the authorizer will, so that a mistake fails the synth,
// not the first request. It returns the authorizer's identity source:
// none, or in jwt mode the token's header.
func (p *Props) jwtEnvironment(env map[string]string) ([]*string, error) {
	if p.AuthMode == "" || p.AuthMode == string(authorizer.AuthKey) {
		return []*string{}, nil
	}
	j := p.JWT
	env["AUTH_MODE"] = p.AuthMode
	env["JWT_ISSUER"] = j.Issuer
	env["JWT_AUDIENCE"] = strings.Join(j.Audience, ",")
	set := func(name, v string) {
		if v != "" {
			env[name] = v
		}
	}
	set("JWT_IDENTITY_CLAIM", j.IdentityClaim)
	set("JWT_CONTEXT_CLAIMS", strings.Join(j.ContextClaims, ","))
	set("JWT_SOURCE", j.Source)
	if j.Leeway != 0 {
		env["JWT_LEEWAY"] = j.Leeway.String()
	}
	if len(j.Scopes) > 0 {
		b, err := json.Marshal(j.Scopes)
		if err != nil {
			return nil, err
		}
		env["JWT_SCOPES"] = string(b)
	}
	cfg, err := authorizer.FromEnv(func(k string) string {
		if v, ok := p.AuthorizerEnvironment[k]; ok {
			return v
		}
		return env[k]
	})
	if err != nil {
		return nil, err
	}
	if cfg.Auth != authorizer.AuthJWT {
		return []*string{}, nil
	}
	where := "$request.header."
	if cfg.TokenSource.Query {
		where = "$request.querystring."
	}
	return []*string{jsii.String(where + cfg.TokenSource.Name)}, nil
}

// AddRoute adds a route protected by Tollgate to an HTTP API, one defined
// in this app or an existing one imported with HttpApi_FromHttpApiAttributes.
// routeKey is an HTTP API route key such as "GET /items/{id}", "ANY /{proxy+}"
// or "$default".
func (t *Tollgate) AddRoute(scope constructs.Construct, api awsapigatewayv2.IHttpApi, routeKey string, integration awsapigatewayv2.HttpRouteIntegration) awsapigatewayv2.HttpRoute {
	key, err := RouteKey(routeKey)
	if err != nil {
		panic(err)
	}
	apiID := *api.Node().Addr()
	authz, ok := t.authorizers[apiID]
	if !ok {
		authz = t.NewAuthorizer(fmt.Sprintf("Authorizer%d", len(t.authorizers)+1))
		t.authorizers[apiID] = authz
	}
	id := "Route" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, routeKey)
	return awsapigatewayv2.NewHttpRoute(scope, jsii.String(id), &awsapigatewayv2.HttpRouteProps{
		HttpApi: api, RouteKey: key, Integration: integration, Authorizer: authz,
	})
}

// RouteKey parses an HTTP API route key.
func RouteKey(s string) (awsapigatewayv2.HttpRouteKey, error) {
	if s == "$default" {
		return awsapigatewayv2.HttpRouteKey_DEFAULT(), nil
	}
	method, path, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok || !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("route %q: write METHOD /path, such as GET /items/{id}, or $default", s)
	}
	for _, m := range []awsapigatewayv2.HttpMethod{
		awsapigatewayv2.HttpMethod_GET, awsapigatewayv2.HttpMethod_POST, awsapigatewayv2.HttpMethod_PUT,
		awsapigatewayv2.HttpMethod_PATCH, awsapigatewayv2.HttpMethod_DELETE, awsapigatewayv2.HttpMethod_HEAD,
		awsapigatewayv2.HttpMethod_OPTIONS, awsapigatewayv2.HttpMethod_ANY,
	} {
		if string(m) == strings.ToUpper(method) {
			return awsapigatewayv2.HttpRouteKey_With(jsii.String(path), m), nil
		}
	}
	return nil, fmt.Errorf("route %q: unknown method %q", s, method)
}

// DecisionHeaders is the parameter mapping that hands the authorizer's
// decision to an HTTP integration's backend as request headers, for
// ratelimit.Middleware, with the claims named (JWT_CONTEXT_CLAIMS) as
// X-Tollgate-Claim-<name>. Each header is overwritten from the authorizer's
// context, and the authorizer sets every key on every request it allows,
// so a copy sent by the client never gets through.
func DecisionHeaders(contextClaims ...string) awsapigatewayv2.ParameterMapping {
	m := awsapigatewayv2.NewParameterMapping()
	for _, f := range ratelimit.Fields {
		m.OverwriteHeader(jsii.String(strings.ToLower(f.Header)),
			awsapigatewayv2.MappingValue_ContextVariable(jsii.String("authorizer."+f.Key)))
	}
	for _, c := range contextClaims {
		m.OverwriteHeader(jsii.String(strings.ToLower(ratelimit.ClaimHeader(c))),
			awsapigatewayv2.MappingValue_ContextVariable(jsii.String("authorizer."+ratelimit.ClaimKey(c))))
	}
	return m
}
