package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// args splits a command line as a shell would, for test tables: words
// separated by spaces, single quotes keep spaces.
func args(line string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, any = !quoted, true
		case r == ' ' && !quoted:
			if any {
				out = append(out, cur.String())
			}
			cur.Reset()
			any = false
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// payload builds a command's input from its flags as the CLI would send it.
func payload(t *testing.T, line string, files map[string]string) (map[string]any, error) {
	t.Helper()
	inv, err := parseArgs(args(line))
	if err != nil {
		return nil, err
	}
	op := operation(inv.command)
	if op == nil {
		t.Fatalf("no command %s", inv.command)
	}
	in, _, err := buildInput(op, inv.params, func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	})
	return in, err
}

func jsonOf(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return m
}

func TestFlagsBecomeTheInput(t *testing.T) {
	files := map[string]string{
		"keys.csv":  "Name,Key\none,partnerone0123456789abcdef\n",
		"plan.json": `{"action": "CreateUsagePlan", "name": "From file", "quota": {"limit": 5, "period": "DAY"}}`,
		"bare.json": `{"usagePlanId": "c7y23b"}`,
		"stages":    `[{"apiId": "a1", "stage": "prod"}]`,
	}
	for _, tc := range []struct{ line, want string }{
		{"create-api-key --name k --enabled", `{"name": "k", "enabled": true}`},
		{"create-api-key --name k --no-enabled --customer-id acme", `{"name": "k", "enabled": false, "customerId": "acme"}`},
		{"create-api-key --name=k --tags team=x,tier=gold", `{"name": "k", "tags": {"team": "x", "tier": "gold"}}`},
		{`create-api-key --tags {"team":"x"}`, `{"tags": {"team": "x"}}`},
		{"create-api-key --name app --identities auth0|5f7c8e 3n4b5c", `{"name": "app", "identities": ["auth0|5f7c8e", "3n4b5c"]}`},
		{`create-api-key --identities ["a","b"]`, `{"identities": ["a", "b"]}`},
		{"create-usage-plan --name Basic --throttle burstLimit=2,rateLimit=1 --quota limit=5,period=DAY",
			`{"name": "Basic", "throttle": {"burstLimit": 2, "rateLimit": 1}, "quota": {"limit": 5, "period": "DAY"}}`},
		{"create-usage-plan --name B --throttle burstLimit=2,rateLimit=0.5", `{"name": "B", "throttle": {"burstLimit": 2, "rateLimit": 0.5}}`},
		{"create-usage-plan --name B --api-stages apiId=a1b2c3,stage=prod apiId=a1b2c3,stage=dev",
			`{"name": "B", "apiStages": [{"apiId": "a1b2c3", "stage": "prod"}, {"apiId": "a1b2c3", "stage": "dev"}]}`},
		{`create-usage-plan --name B --api-stages 'apiId=local,stage=$default'`, `{"name": "B", "apiStages": [{"apiId": "local", "stage": "$default"}]}`},
		{`create-usage-plan --name B --api-stages [{"apiId":"a","stage":"s"}]`, `{"name": "B", "apiStages": [{"apiId": "a", "stage": "s"}]}`},
		{`create-usage-plan --name B --api-stages {"apiId":"a","stage":"s"}`, `{"name": "B", "apiStages": [{"apiId": "a", "stage": "s"}]}`},
		{"create-usage-plan --name B --api-stages file://stages", `{"name": "B", "apiStages": [{"apiId": "a1", "stage": "prod"}]}`},
		{"update-api-key --api-key k1 --patch-operations op=replace,path=/enabled,value=false op=replace,path=/name,value=n",
			`{"apiKey": "k1", "patchOperations": [{"op": "replace", "path": "/enabled", "value": "false"}, {"op": "replace", "path": "/name", "value": "n"}]}`},
		{"update-usage-plan --usage-plan-id p --patch-operations op=add,path=/apiStages,value=a1b2c3:dev",
			`{"usagePlanId": "p", "patchOperations": [{"op": "add", "path": "/apiStages", "value": "a1b2c3:dev"}]}`},
		// A value with commas or spaces is quoted.
		{`update-api-key --api-key k1 --patch-operations 'op=replace,path=/description,value="late, again"'`,
			`{"apiKey": "k1", "patchOperations": [{"op": "replace", "path": "/description", "value": "late, again"}]}`},
		{"update-usage --usage-plan-id p --key-id k --patch-operations op=replace,path=/remaining,value=10",
			`{"usagePlanId": "p", "keyId": "k", "patchOperations": [{"op": "replace", "path": "/remaining", "value": "10"}]}`},
		{"import-api-keys --body fileb://keys.csv --format csv --fail-on-warnings",
			`{"body": "Name,Key\none,partnerone0123456789abcdef\n", "format": "csv", "failOnWarnings": true}`},
		{"import-api-keys --body file://keys.csv --format csv", `{"body": "Name,Key\none,partnerone0123456789abcdef\n", "format": "csv"}`},
		// --cli-input-json: action may be there; flags override its members.
		{"create-usage-plan --cli-input-json file://plan.json", `{"name": "From file", "quota": {"limit": 5, "period": "DAY"}}`},
		{"create-usage-plan --cli-input-json file://plan.json --name Flag", `{"name": "Flag", "quota": {"limit": 5, "period": "DAY"}}`},
		{"get-usage-plan --cli-input-json file://bare.json", `{"usagePlanId": "c7y23b"}`},
		{`get-usage-plan --cli-input-json {"usagePlanId":"x"}`, `{"usagePlanId": "x"}`},
		{"get-usage --usage-plan-id p --start-date 2026-11-01 --end-date 2026-11-21 --key-id k",
			`{"usagePlanId": "p", "startDate": "2026-11-01", "endDate": "2026-11-21", "keyId": "k"}`},
		// The service's own paging members, as the AWS CLI takes them.
		{"get-api-keys --limit 2 --position pos1", `{"limit": 2, "position": "pos1"}`},
		{"get-usage-plan-keys --usage-plan-id p --limit 500", `{"usagePlanId": "p", "limit": 500}`},
		{"rotate-api-key --api-key k --grace-period 86400", `{"apiKey": "k", "gracePeriod": 86400}`},
		{"rotate-api-key --api-key k --grace-period 0 --value own-value-0123456789ab --client-token deploy-1",
			`{"apiKey": "k", "gracePeriod": 0, "value": "own-value-0123456789ab", "clientToken": "deploy-1"}`},
		{"tag-resource --resource-arn arn:aws:apigateway:us-east-1::/usageplans/p --tags tollgate:enforce=shadow,tier=basic",
			`{"resourceArn": "arn:aws:apigateway:us-east-1::/usageplans/p", "tags": {"tollgate:enforce": "shadow", "tier": "basic"}}`},
		{"untag-resource --resource-arn arn:aws:apigateway:us-east-1::/apikeys/k --tag-keys team cost-center",
			`{"resourceArn": "arn:aws:apigateway:us-east-1::/apikeys/k", "tagKeys": ["team", "cost-center"]}`},
		{`untag-resource --resource-arn arn:aws:apigateway:us-east-1::/apikeys/k --tag-keys ["team"]`,
			`{"resourceArn": "arn:aws:apigateway:us-east-1::/apikeys/k", "tagKeys": ["team"]}`},
		{"get-tags --resource-arn arn:aws:apigateway:us-east-1::/apikeys/k --position x --limit 5",
			`{"resourceArn": "arn:aws:apigateway:us-east-1::/apikeys/k", "position": "x", "limit": 5}`},
	} {
		got, err := payload(t, tc.line, files)
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if want := jsonOf(t, tc.want); !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			t.Errorf("%s:\n got  %s\n want %s", tc.line, g, tc.want)
		}
	}
}

func TestBadParametersExit252(t *testing.T) {
	tg := newTollgate(t, "TOLLGATE_ENDPOINT_URL=http://127.0.0.1:9") // nothing is called
	tg.files["other.json"] = `{"action": "GetApiKey", "apiKey": "x"}`
	for _, tc := range []struct{ line, want string }{
		// Missing and unknown flags name the flag and what the command takes.
		{"get-api-key", "the following arguments are required: --api-key"},
		{"create-usage-plan-key --usage-plan-id p", "the following arguments are required: --key-id, --key-type"},
		{"get-usage-plan --usage-plan p", "Unknown options: --usage-plan, did you mean --usage-plan-id?\nget-usage-plan takes --usage-plan-id, --cli-input-json"},
		{"get-api-key --api-key a b", "Unknown options: b"},
		{"create-api-key --enabled yes", "Unknown options: yes (--enabled takes no value: use --enabled or --no-enabled)"},
		{"get-api-key --api-key", "argument --api-key: expected string"},
		{"create-usage-plan --name B --throttle", "argument --throttle: expected burstLimit=integer,rateLimit=double"},
		{"get-api-key --api-key k --max-items 2", "Unknown options: --max-items"},
		{"get-api-keys --max-items two", "argument --max-items: expected a whole number, 1 or more, not 'two'"},
		{"get-api-keys --page-size 0", "argument --page-size: expected a whole number, 1 or more, not '0'"},
		{"get-api-keys --starting-token nope", "argument --starting-token: \"nope\" is not a NextToken"},
		{"get-api-keys --output xml", "argument --output: Invalid choice 'xml', valid choices are: json, text, table"},
		{"get-api-keys --color sometimes", "argument --color: Invalid choice 'sometimes', valid choices are: on, off, auto"},
		{"get-api-keys --query", "argument --query: expected one argument"},
		{"get-api-keys --query items[", "argument --query: Bad value for --query items[:"},
		{"get-api-kees", "Invalid choice 'get-api-kees', did you mean get-api-keys?"},
		{"", "the following arguments are required: command"},
		{"--name x get-api-keys", "Unknown options: --name (options that are not global go after the command)"},
		{"create-api-key --generate-cli-skeleton output", "argument --generate-cli-skeleton: Invalid choice 'output', valid choices are: input"},
		// Shorthand and JSON that cannot be read.
		{"create-usage-plan --name B --throttle burstLimit", "Error parsing parameter '--throttle': Expected: '=', received: 'EOF' for input:\nburstLimit\n          ^\n" +
			"--throttle takes burstLimit=integer,rateLimit=double (or JSON)\n"},
		{`update-api-key --api-key k --patch-operations op=replace,path=/name,value=x op=replace,path="/name`, "Error parsing parameter '--patch-operations': Expected: " +
			"'<double quoted>', received: '\"' for input:\nop=replace,path=\"/name\n                ^\n--patch-operations takes op=add|remove|replace|move|copy|test,path=string,value=string,from=string ... (or JSON)\n"},
		{"create-api-key --tags team", "Error parsing parameter '--tags': Expected: '=', received: 'EOF' for input:\nteam\n    ^\n--tags takes KeyName1=string,KeyName2=string (or JSON)\n"},
		{"create-usage-plan --name B --quota limit=five,period=DAY", "Error parsing parameter '--quota': limit must be a whole number, not 'five'"},
		{"create-usage-plan --name B --throttle burstLimit=1,rateLimit=fast", "Error parsing parameter '--throttle': rateLimit must be a number, not 'fast'"},
		{`create-usage-plan --name B --throttle {"burstLimit":`, "Error parsing parameter '--throttle': Invalid JSON:"},
		{"import-api-keys --body fileb://missing.csv --format csv", "Error parsing parameter '--body': Unable to load paramfile fileb://missing.csv"},
		// Validation against the model, as botocore reports it.
		{"create-usage-plan --name B --throttle burstLimit=1,rate=2", `Parameter validation failed:
Unknown parameter in throttle: "rate", must be one of: burstLimit, rateLimit`},
		{`create-usage-plan --name B --quota {"limit":"5"}`, "Invalid type for parameter quota.limit, value: 5, type: string, valid types: integer"},
		{`create-usage-plan --name B --quota {"limit":5.5}`, "Invalid type for parameter quota.limit, value: 5.5, type: double, valid types: integer"},
		// An unquoted value with a comma becomes a list, which value is not.
		{"update-api-key --api-key k --patch-operations op=replace,path=/description,value=a,b",
			"Invalid type for parameter patchOperations[0].value, value: [\"a\",\"b\"], type: list, valid types: string"},
		{`get-usage-plan --cli-input-json {"usagePlanId":"p","extra":1}`, `Unknown parameter in input: "extra", must be one of: usagePlanId`},
		{`get-usage-plan --cli-input-json {}`, `Missing required parameter in input: "usagePlanId"`},
		{"get-usage-plan --cli-input-json [1]", "the input must be a JSON object"},
		{"get-usage-plan --cli-input-json file://other.json", "its action is GetApiKey, but this is get-usage-plan (GetUsagePlan)"},
		{"get-usage --usage-plan-id p --start-date a --end-date b --format csv --max-items 1", "argument --max-items: counts items"},
		{"usage-report", "the following arguments are required: --usage-plan-id"},
		{"usage-report --usage-plan-id p --days 0", "argument --days: expected a whole number of days from 1 to 366, not '0'"},
		{"usage-report --usage-plan-id p --output table", "usage-report prints a chart, or CSV with --output csv"},
		{"usage-report --usage-plan-id p --weeks 2", "Unknown options: --weeks"},
		{"get-api-keys --endpoint-url localhost:8080", "Bad value for --endpoint-url \"localhost:8080\": scheme is missing."},
		// The tag operations' ARN picks the function, so a bad one is found
		// before any call, in the functions' words.
		{"tag-resource --resource-arn c7y23b --tags a=b", `Error parsing parameter '--resource-arn': resourceArn must be arn:aws:apigateway:<region>::/usageplans/<id> or arn:aws:apigateway:<region>::/apikeys/<id>, not "c7y23b"`},
		{"get-tags --resource-arn arn:aws:apigateway:us-east-1::/restapis/a1", "Error parsing parameter '--resource-arn': resourceArn \"arn:aws:apigateway:us-east-1::/restapis/a1\": Tollgate tags usage plans (::/usageplans/<id>) and API keys (::/apikeys/<id>), not restapis"},
		{`untag-resource --cli-input-json {"resourceArn":"arn:aws:apigateway:us-east-1::/usageplans/","tagKeys":["a"]}`, "Error parsing parameter '--resource-arn': resourceArn must be"},
		{"untag-resource --resource-arn arn:aws:apigateway:us-east-1::/apikeys/k", "the following arguments are required: --tag-keys"},
		{"get-tags --resource-arn arn:aws:apigateway:us-east-1::/apikeys/k --page-size 5", "Unknown options: --page-size"},
		{"rotate-api-key --api-key k", "the following arguments are required: --grace-period"},
		{"rotate-api-key --api-key k --grace-period 1d", "Error parsing parameter '--grace-period': gracePeriod must be a whole number, not '1d'"},
	} {
		r := tg.run(args(tc.line)...)
		if r.code != 252 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("tollgate %s: exit %d, stdout %q, stderr:\n%s\nwant 252 and %q", tc.line, r.code, r.stdout, r.stderr, tc.want)
		}
	}
	// A bad endpoint from the environment is named as such.
	bad := newTollgate(t, "TOLLGATE_ENDPOINT_URL=localhost:8080")
	if r := bad.run("get-api-keys"); r.code != 252 || !strings.Contains(r.stderr, `Bad value for TOLLGATE_ENDPOINT_URL "localhost:8080"`) {
		t.Errorf("TOLLGATE_ENDPOINT_URL=localhost:8080: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestHelp(t *testing.T) {
	tg := newTollgate(t)
	top := tg.ok("help")
	for _, op := range operations {
		if !strings.Contains(top, "\n  "+op.Command()+" ") {
			t.Errorf("tollgate help does not list %s", op.Command())
		}
	}
	if tg.ok("--help") != top || tg.ok("-h") != top {
		t.Error("--help and -h differ from help")
	}
	for _, op := range operations {
		for _, form := range [][]string{{op.Command(), "help"}, {op.Command(), "--help"}, {op.Command(), "-h"}} {
			out := tg.ok(form...)
			for _, m := range op.Input {
				// Each flag on a line of its own, with its help.
				line := ""
				for _, l := range strings.Split(out, "\n") {
					if strings.HasPrefix(strings.TrimSpace(l), "--"+kebab(m.Name)+" ") {
						line = l
					}
				}
				if line == "" || !strings.Contains(line, m.Doc) {
					t.Errorf("tollgate %s: no line for --%s with its help:\n%s", strings.Join(form, " "), kebab(m.Name), out)
				}
			}
		}
	}
	if tg.ok("help", "get-usage") != tg.ok("get-usage", "help") {
		t.Error("tollgate help get-usage differs from tollgate get-usage help")
	}
	if out := tg.ok("usage-report", "help"); !strings.Contains(out, "--days <n>") {
		t.Errorf("usage-report help:\n%s", out)
	}
	if out := tg.ok("--version"); out != "tollgate/test\n" {
		t.Errorf("--version: %q", out)
	}
}

func TestGenerateCLISkeleton(t *testing.T) {
	tg := newTollgate(t)
	out := tg.ok("create-usage-plan", "--generate-cli-skeleton")
	want := `{
    "name": "",
    "description": "",
    "apiStages": [
        {
            "apiId": "",
            "stage": "",
            "throttle": {
                "KeyName": {
                    "burstLimit": 0,
                    "rateLimit": 0
                }
            }
        }
    ],
    "throttle": {
        "burstLimit": 0,
        "rateLimit": 0
    },
    "quota": {
        "limit": 0,
        "offset": 0,
        "period": "DAY"
    },
    "tags": {
        "KeyName": ""
    }
}
`
	if out != want {
		t.Errorf("skeleton:\n%s\nwant:\n%s", out, want)
	}
	// A skeleton feeds --cli-input-json back, once filled in.
	out = tg.ok("get-api-keys", "--generate-cli-skeleton", "input")
	if !strings.Contains(out, `"nameQuery": ""`) || !strings.Contains(out, `"limit": 0`) {
		t.Errorf("get-api-keys skeleton:\n%s", out)
	}
}

// TestEverySampleIsACLIInput checks that each payload in events/ works as
// its command's --cli-input-json as it is, and sends the same payload (to
// which rotate-api-key then adds a clientToken, when the sample has none).
func TestEverySampleIsACLIInput(t *testing.T) {
	files, _ := filepath.Glob("../../events/*/*.json")
	n := 0
	for _, file := range files {
		if strings.Contains(file, "/authorizer/") || strings.Contains(file, "/notifier/") {
			continue // not admin payloads
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		sample := jsonOf(t, string(b))
		op := operation(kebab(sample["action"].(string)))
		if op == nil {
			t.Errorf("%s: no command for %s", file, sample["action"])
			continue
		}
		in, _, err := buildInput(op, []param{{name: "cli-input-json", values: []string{"file://" + file}}}, os.ReadFile)
		if err != nil {
			t.Errorf("tollgate %s --cli-input-json file://%s: %v", op.Command(), file, err)
			continue
		}
		in["action"] = op.Name
		if !reflect.DeepEqual(in, sample) {
			t.Errorf("%s: sends %v, want %v", file, in, sample)
		}
		n++
	}
	if n < 31 {
		t.Errorf("found %d samples", n)
	}
}
