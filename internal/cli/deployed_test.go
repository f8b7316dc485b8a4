package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/cli/standin"
)

// deployedStack is a deployed Tollgate as the CLI sees it: the admin
// functions behind a Lambda Invoke stand-in, and stacks' outputs behind a
// DescribeStacks stand-in, reached through the real SDK clients.
type deployedStack struct {
	lambda *standin.Lambda
	cfn    *standin.CloudFormation
}

func newDeployedStack(t *testing.T) *deployedStack {
	handlers := adminHandlers(t)
	d := &deployedStack{
		lambda: standin.NewLambda(map[string]standin.Handler{
			"Tollgate-KeysFunction-1": handlers["keys"], "Tollgate-PlansFunction-1": handlers["plans"], "Tollgate-UsageFunction-1": handlers["usage"],
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
