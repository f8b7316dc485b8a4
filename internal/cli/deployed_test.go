package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/tollgate-dev/tollgate/internal/cli/standin"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// deployedStack is a deployed Tollgate as the CLI sees it: the admin
// functions behind a Lambda Invoke stand-in, and stacks' outputs behind a
// DescribeStacks stand-in, reached through the real SDK clients.
type deployedStack struct {
	lambda *standin.Lambda
	cfn    *standin.CloudFormation
	table  *store.Table // the functions' table
}

// unavailable is a function whose every call fails as an admin function
// does when DynamoDB fails through every retry.
type unavailable struct{}

func (unavailable) Invoke(context.Context, []byte) ([]byte, error) {
	return nil, messages.InvokeResponse_Error{Type: "ServiceUnavailableException", Message: "Tollgate could not complete the operation because DynamoDB failed or did not answer; send the same request again"}
}

func newDeployedStack(t *testing.T) *deployedStack {
	db := dynamotest.Client(t)
	table := &store.Table{DB: db, Name: dynamotest.NewTable(t, db), Now: time.Now}
	handlers := adminHandlersOn(t, table)
	d := &deployedStack{
		table: table,
		lambda: standin.NewLambda(map[string]standin.Handler{
			"Tollgate-KeysFunction-1": handlers["keys"], "Tollgate-PlansFunction-1": handlers["plans"], "Tollgate-UsageFunction-1": handlers["usage"],
			"Tollgate-Unavailable": unavailable{},
		}),
		cfn: standin.NewCloudFormation(map[string]map[string]string{
			"Tollgate": {"ApiUrl": "https://a1b2c3.execute-api.us-east-1.amazonaws.com/", "KeysFunctionName": "Tollgate-KeysFunction-1",
				"PlansFunctionName": "Tollgate-PlansFunction-1", "UsageFunctionName": "Tollgate-UsageFunction-1"},
			"KeysOnly": {"KeysFunctionName": "Tollgate-KeysFunction-1"},
		}),
	}
	t.Cleanup(d.lambda.Close)
	t.Cleanup(d.cfn.Close)
	// The SDK reads its configuration from the process environment.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config"), []byte("[profile staging]\nregion = eu-west-2\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "credentials"), []byte("[staging]\naws_access_key_id = AKIDSTAGING\naws_secret_access_key = staging\n"), 0o600)
	for _, kv := range append(standin.Env(d.lambda, d.cfn), "AWS_CONFIG_FILE="+filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"), "AWS_PROFILE=", "AWS_DEFAULT_REGION=",
		"AWS_SESSION_TOKEN=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=", "AWS_WEB_IDENTITY_TOKEN_FILE=") {
		k, v := standin.Split(kv)
		t.Setenv(k, v)
	}
	return d
}

// TestDeployedStack runs the story against a deployed stack: a
// plan, a key, an assignment, usage, and a quota extension.
func TestDeployedStack(t *testing.T) {
	d := newDeployedStack(t)
	tg := newTollgate(t)
	plan := tg.text("create-usage-plan", "--name", "Basic", "--api-stages", "apiId=a1b2c3,stage=prod",
		"--throttle", "burstLimit=2,rateLimit=1", "--quota", "limit=5,period=DAY", "--query", "id")
	key := tg.text("create-api-key", "--name", "partner", "--enabled", "--query", "id")
	tg.ok("create-usage-plan-key", "--usage-plan-id", plan, "--key-id", key, "--key-type", "API_KEY")
	today := time.Now().UTC().Format(time.DateOnly)
	if got := tg.text("get-usage", "--usage-plan-id", plan, "--start-date", today, "--end-date", today, "--query", "items.*[0][]"); got != "0\t5" {
		t.Errorf("get-usage: %q", got)
	}
	if got := tg.text("update-usage", "--usage-plan-id", plan, "--key-id", key, "--patch-operations", "op=replace,path=/remaining,value=100", "--query", "items.*[0][]"); got != "0\t100" {
		t.Errorf("update-usage: %q", got)
	}

	var targets []string
	for _, c := range d.lambda.Calls() {
		targets = append(targets, c.Target)
		if c.AccessKey != "AKIDSTANDIN" || c.Region != "us-east-1" {
			t.Errorf("call signed by %s in %s, want the environment's AKIDSTANDIN and us-east-1", c.AccessKey, c.Region)
		}
	}
	want := []string{"Tollgate-PlansFunction-1", "Tollgate-KeysFunction-1", "Tollgate-PlansFunction-1", "Tollgate-UsageFunction-1", "Tollgate-UsageFunction-1"}
	if !slices.Equal(targets, want) {
		t.Errorf("invoked %v, want %v", targets, want)
	}
	// One DescribeStacks per command, of the default stack.
	if calls := d.cfn.Calls(); len(calls) != 5 || calls[0].Target != "Tollgate" {
		t.Errorf("DescribeStacks calls: %+v", calls)
	}

	// A function's error is the service's error.
	r := tg.run("get-api-key", "--api-key", "nope")
	if r.code != 254 || r.stderr != "\nAn error occurred (NotFoundException) when calling the GetApiKey operation: API key nope not found\n" {
		t.Errorf("a function error: exit %d %q", r.code, r.stderr)
	}
}

func TestDeployedStackConfiguration(t *testing.T) {
	d := newDeployedStack(t)
	tg := newTollgate(t)
	lastCall := func() standin.Call {
		calls := d.lambda.Calls()
		return calls[len(calls)-1]
	}
	cfnCalls := func() int { return len(d.cfn.Calls()) }

	// Named functions need no DescribeStacks.
	before := cfnCalls()
	tg.ok("get-api-keys", "--keys-function", "Tollgate-KeysFunction-1")
	tg.env["TOLLGATE_PLANS_FUNCTION"] = "Tollgate-PlansFunction-1"
	tg.ok("get-usage-plans")
	delete(tg.env, "TOLLGATE_PLANS_FUNCTION")
	if cfnCalls() != before {
		t.Errorf("named functions still described the stack")
	}
	if c := lastCall(); c.Target != "Tollgate-PlansFunction-1" {
		t.Errorf("TOLLGATE_PLANS_FUNCTION invoked %s", c.Target)
	}

	// --profile and AWS_PROFILE, --region. As in the AWS CLI, variables
	// beat the profile's settings, so these run without them.
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	tg.ok("get-api-keys", "--profile", "staging")
	if c := lastCall(); c.AccessKey != "AKIDSTAGING" || c.Region != "eu-west-2" {
		t.Errorf("--profile staging: signed by %s in %s", c.AccessKey, c.Region)
	}
	t.Setenv("AWS_PROFILE", "staging")
	tg.ok("get-api-keys", "--region", "eu-central-1")
	if c := lastCall(); c.AccessKey != "AKIDSTAGING" || c.Region != "eu-central-1" {
		t.Errorf("AWS_PROFILE=staging --region eu-central-1: signed by %s in %s", c.AccessKey, c.Region)
	}
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSTANDIN")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "standin")

	for _, tc := range []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"get-api-keys", "--stack", "Missing"}, nil, 254,
			"\nAn error occurred (ValidationError) when calling the DescribeStacks operation: Stack with id Missing does not exist (tollgate reads"},
		{[]string{"get-usage-plans", "--stack", "KeysOnly"}, nil, 253,
			"Stack KeysOnly has no output PlansFunctionName: name the plans function with --plans-function or TOLLGATE_PLANS_FUNCTION"},
		{[]string{"get-api-keys", "--keys-function", "Gone"}, nil, 254,
			"\nAn error occurred (ResourceNotFoundException) when calling the GetApiKeys operation: Lambda could not invoke Gone: Function not found"},
		{[]string{"get-api-keys", "--profile", "nobody"}, nil, 253, "The config profile (nobody) could not be found"},
		{[]string{"get-api-keys"}, []string{"AWS_REGION="}, 253, "You must specify a region."},
		{[]string{"get-api-keys"}, []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="}, 253, "Unable to locate credentials."},
	} {
		for _, kv := range tc.env {
			k, v := standin.Split(kv)
			t.Setenv(k, v)
		}
		r := tg.run(tc.args...)
		if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%v %v: exit %d %q, want %d and %q", tc.env, tc.args, r.code, r.stderr, tc.code, tc.want)
		}
		for _, kv := range tc.env {
			k, _ := standin.Split(kv)
			t.Setenv(k, map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDSTANDIN", "AWS_SECRET_ACCESS_KEY": "standin"}[k])
		}
	}
}

var uuid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestDeployedRotationSurvivesALostAnswer rotates a key through the
// Lambda Invoke API, whose first answer is lost after the function ran.
// The SDK sends the invocation again, with the clientToken tollgate made,
// so the function recognises its own rotation: the value before it keeps
// its grace period, and the value in the lost answer, which nobody
// received, is replaced. Without the token the retry would be a second
// rotation, ending the first value's grace at once.
func TestDeployedRotationSurvivesALostAnswer(t *testing.T) {
	d := newDeployedStack(t)
	tg := newTollgate(t)
	ctx := context.Background()
	id := tg.text("create-api-key", "--name", "rotated", "--query", "id")
	original, err := d.table.Key(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	d.lambda.LoseAnswers(1)
	before := len(d.lambda.Calls())
	value := tg.text("rotate-api-key", "--api-key", id, "--grace-period", "3600", "--query", "value")
	calls := d.lambda.Calls()[before:]
	if len(calls) != 2 || !bytes.Equal(calls[0].Payload, calls[1].Payload) {
		t.Fatalf("want the invocation and the SDK's retry of it, alike; got %d calls", len(calls))
	}
	var sent struct{ ClientToken string }
	if err := json.Unmarshal(calls[0].Payload, &sent); err != nil || !uuid.MatchString(sent.ClientToken) {
		t.Errorf("the rotation carried clientToken %q (%v), want a random UUID", sent.ClientToken, err)
	}
	k, err := d.table.Key(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if k.Hash != keys.Hash(value) {
		t.Errorf("the key's value is not the one tollgate printed")
	}
	if k.PreviousHash != original.Hash {
		t.Errorf("the value before the rotation lost its grace period: the retry rotated a second time")
	}

	// Each run makes a token of its own.
	tg.ok("rotate-api-key", "--api-key", id, "--grace-period", "0")
	calls = d.lambda.Calls()
	var next struct{ ClientToken string }
	json.Unmarshal(calls[len(calls)-1].Payload, &next)
	if !uuid.MatchString(next.ClientToken) || next.ClientToken == sent.ClientToken {
		t.Errorf("a second run sent clientToken %q after %q", next.ClientToken, sent.ClientToken)
	}
}

// TestRotationFailureNamesTheToken checks that a rotation that may have
// been applied tells how to repeat it safely: running the command again
// would make a new token, so the error gives the one it sent.
func TestRotationFailureNamesTheToken(t *testing.T) {
	d := newDeployedStack(t)
	tg := newTollgate(t)
	lastToken := func() string {
		calls := d.lambda.Calls()
		var p struct{ ClientToken string }
		json.Unmarshal(calls[len(calls)-1].Payload, &p)
		return p.ClientToken
	}

	r := tg.run("rotate-api-key", "--api-key", "k", "--grace-period", "60", "--keys-function", "Tollgate-Unavailable")
	token := lastToken()
	want := "\nAn error occurred (ServiceUnavailableException) when calling the RotateApiKey operation: Tollgate could not complete the operation because DynamoDB failed or did not answer; send the same request again" +
		" (tollgate sent clientToken " + token + ": to send the same request again, run the command with --client-token " + token + ")\n"
	if r.code != 254 || r.stderr != want || !uuid.MatchString(token) {
		t.Errorf("exit %d, stderr %q; want 254 and %q", r.code, r.stderr, want)
	}
	// With the user's own token, sending the same command again is safe.
	r = tg.run("rotate-api-key", "--api-key", "k", "--grace-period", "60", "--client-token", "deploy-7", "--keys-function", "Tollgate-Unavailable")
	if r.code != 254 || strings.Contains(r.stderr, "tollgate sent") || lastToken() != "deploy-7" {
		t.Errorf("own token: exit %d, stderr %q, sent %q", r.code, r.stderr, lastToken())
	}
	// An empty token, as a filled-in skeleton leaves it, is left out.
	r = tg.run("rotate-api-key", "--cli-input-json", `{"apiKey": "k", "gracePeriod": 60, "clientToken": ""}`, "--keys-function", "Tollgate-Unavailable")
	if token = lastToken(); r.code != 254 || !uuid.MatchString(token) || !strings.Contains(r.stderr, "--client-token "+token) {
		t.Errorf("empty clientToken: exit %d, sent %q, stderr %q", r.code, token, r.stderr)
	}
	// A definite answer needs no advice.
	r = tg.run("rotate-api-key", "--api-key", "nope", "--grace-period", "60")
	if r.code != 254 || r.stderr != "\nAn error occurred (NotFoundException) when calling the RotateApiKey operation: API key nope not found\n" {
		t.Errorf("no such key: exit %d, stderr %q", r.code, r.stderr)
	}
	// No answer at all: the SDK gave up (here after one attempt).
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	d.lambda.LoseAnswers(1)
	r = tg.run("rotate-api-key", "--api-key", "nope", "--grace-period", "60")
	token = lastToken()
	if r.code != 255 || !strings.HasSuffix(r.stderr, "\n(tollgate sent clientToken "+token+": to send the same request again, run the command with --client-token "+token+")\n") {
		t.Errorf("lost answer: exit %d, stderr %q", r.code, r.stderr)
	}
}
