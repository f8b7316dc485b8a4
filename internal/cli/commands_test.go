package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/dynamotest"
)

// TestEverySubcommandAgainstTheLocalStack runs each subcommand against the
// local stack's /_admin routes, as a user of aws apigateway would.
func TestEverySubcommandAgainstTheLocalStack(t *testing.T) {
	tg := newTollgate(t, "TOLLGATE_ENDPOINT_URL="+localStackURL(t))
	covered := map[string]bool{}
	run := func(args ...string) string {
		covered[args[0]] = true
		return tg.ok(args...)
	}

	plan := strings.TrimSpace(run("create-usage-plan", "--name", "Basic", "--description", "5 a day",
		"--api-stages", "apiId=a1b2c3,stage=prod", "--throttle", "burstLimit=2,rateLimit=1",
		"--quota", "limit=5,period=DAY", "--tags", "tier=gold", "--query", "id", "--output", "text"))
	// Keys in the order the service sends them (API Gateway's), indented
	// by 4.
	want := `{
    "id": "` + plan + `",
    "name": "Basic",
    "description": "5 a day",
    "apiStages": [
        {
            "apiId": "a1b2c3",
            "stage": "prod"
        }
    ],
    "throttle": {
        "burstLimit": 2,
        "rateLimit": 1
    },
    "quota": {
        "limit": 5,
        "offset": 0,
        "period": "DAY"
    },
    "tags": {
        "tier": "gold"
    }
}
`
	if got := run("get-usage-plan", "--usage-plan-id", plan); got != want {
		t.Errorf("get-usage-plan:\n%s\nwant:\n%s", got, want)
	}

	// A key's id and value, as scripts read them.
	idValue := strings.Fields(run("create-api-key", "--name", "walk", "--enabled", "--customer-id", "acme",
		"--query", "[id, value]", "--output", "text"))
	if len(idValue) != 2 || !strings.HasPrefix(idValue[1], "tgk_") {
		t.Fatalf("create-api-key: %q", idValue)
	}
	key := idValue[0]
	got := run("get-api-key", "--api-key", key)
	if !regexp.MustCompile(`(?s)^\{\n    "id": "` + key + `",\n    "name": "walk",\n    "customerId": "acme",\n    "enabled": true,\n    "createdDate": "[-0-9T:]+\+00:00",\n    "lastUpdatedDate": "[-0-9T:]+\+00:00",\n    "stageKeys": \[\]\n\}\n$`).MatchString(got) {
		t.Errorf("get-api-key prints keys in API Gateway's order, indented by 4:\n%s", got)
	}
	if got := tg.text("get-api-keys", "--name-query", "wal", "--query", "items[].name"); got != "walk" {
		t.Errorf("get-api-keys: %q", got)
	}
	covered["get-api-keys"] = true
	if got := tg.text("update-api-key", "--api-key", key, "--patch-operations", "op=replace,path=/description,value=\"late, again\"",
		"op=replace,path=/enabled,value=false", "--query", "[description, enabled]"); got != "late, again\tFalse" {
		t.Errorf("update-api-key: %q", got)
	}
	covered["update-api-key"] = true

	if got := run("create-usage-plan-key", "--usage-plan-id", plan, "--key-id", key, "--key-type", "API_KEY"); got != "{\n    \"id\": \""+key+"\",\n    \"type\": \"API_KEY\",\n    \"name\": \"walk\"\n}\n" {
		t.Errorf("create-usage-plan-key:\n%s", got)
	}
	if got := tg.text("get-usage-plan-key", "--usage-plan-id", plan, "--key-id", key); got != key+"\twalk\tAPI_KEY" {
		t.Errorf("get-usage-plan-key --output text: %q", got)
	}
	covered["get-usage-plan-key"] = true
	if got := tg.text("get-usage-plan-keys", "--usage-plan-id", plan); got != "ITEMS\t"+key+"\twalk\tAPI_KEY" {
		t.Errorf("get-usage-plan-keys --output text: %q", got)
	}
	covered["get-usage-plan-keys"] = true
	if got := tg.text("get-usage-plans", "--key-id", key, "--query", "items[].id"); got != plan {
		t.Errorf("get-usage-plans --key-id: %q", got)
	}
	covered["get-usage-plans"] = true

	if got := tg.text("update-usage-plan", "--usage-plan-id", plan, "--patch-operations", "op=replace,path=/quota/limit,value=10",
		"op=add,path=/apiStages,value=a1b2c3:dev", "--query", "[quota.limit, length(apiStages)]"); got != "10\t2" {
		t.Errorf("update-usage-plan: %q", got)
	}
	covered["update-usage-plan"] = true

	today := time.Now().UTC().Format(time.DateOnly)
	usage := run("get-usage", "--usage-plan-id", plan, "--start-date", today, "--end-date", today)
	if want := `{
    "usagePlanId": "` + plan + `",
    "startDate": "` + today + `",
    "endDate": "` + today + `",
    "items": {
        "` + key + `": [
            [
                0,
                10
            ]
        ]
    }
}
`; usage != want {
		t.Errorf("get-usage:\n%s\nwant:\n%s", usage, want)
	}
	if got := tg.text("update-usage", "--usage-plan-id", plan, "--key-id", key, "--patch-operations",
		"op=replace,path=/remaining,value=50", "--query", "items.*[0][]"); got != "0\t50" {
		t.Errorf("update-usage: %q", got)
	}
	covered["update-usage"] = true

	tg.files["keys.csv"] = "Name,Key,UsagePlanIds\nimported-1,importedone0123456789abcd," + plan + "\nimported-2,importedtwo0123456789abcd,\n"
	if got := tg.text("import-api-keys", "--body", "fileb://keys.csv", "--format", "csv", "--fail-on-warnings", "--query", "length(ids)"); got != "2" {
		t.Errorf("import-api-keys: %q", got)
	}
	covered["import-api-keys"] = true

	// rotate-api-key: a new value, shown once, and when the old one stops,
	// a grace period from now, ended on a whole second.
	before := time.Now()
	rotated := strings.Split(tg.text("rotate-api-key", "--api-key", key, "--grace-period", "60", "--query", "[id, value, previousValueExpiresAt]"), "\t")
	after := time.Now()
	covered["rotate-api-key"] = true
	if len(rotated) != 3 || rotated[0] != key || !strings.HasPrefix(rotated[1], "tgk_") || rotated[1] == idValue[1] {
		t.Fatalf("rotate-api-key: %q", rotated)
	}
	if ends, err := time.Parse(time.RFC3339, rotated[2]); err != nil || ends.Before(before.Add(60*time.Second).Truncate(time.Second)) || ends.After(after.Add(61*time.Second)) {
		t.Errorf("rotate-api-key --grace-period 60 between %s and %s: previousValueExpiresAt %s", before, after, rotated[2])
	}
	if got := tg.text("rotate-api-key", "--api-key", key, "--grace-period", "0", "--value", "walkownvalue0123456789ab", "--client-token", "deploy-1", "--query", "value"); got != "walkownvalue0123456789ab" {
		t.Errorf("rotate-api-key --value: %q", got)
	}

	// Tags: each ARN goes to the function that serves its kind; changes
	// print nothing, as the AWS CLI prints an empty answer.
	planARN := "arn:aws:apigateway:us-east-1::/usageplans/" + plan
	keyARN := "arn:aws:apigateway:us-east-1::/apikeys/" + key
	for _, args := range [][]string{
		{"tag-resource", "--resource-arn", planARN, "--tags", "tollgate:enforce=shadow,team=x"},
		{"tag-resource", "--resource-arn", keyARN, "--tags", "team=y,cost-center=4711"},
		{"untag-resource", "--resource-arn", keyARN, "--tag-keys", "cost-center", "gone"},
		{"untag-resource", "--resource-arn", planARN, "--tag-keys", "tollgate:enforce"},
	} {
		if got := run(args...); got != "" {
			t.Errorf("%s printed %q", strings.Join(args, " "), got)
		}
	}
	if got := run("get-tags", "--resource-arn", planARN); got != "{\n    \"tags\": {\n        \"team\": \"x\",\n        \"tier\": \"gold\"\n    }\n}\n" {
		t.Errorf("get-tags of the plan:\n%s", got)
	}
	if got := tg.text("get-tags", "--resource-arn", keyARN, "--limit", "1", "--query", "tags"); got != "y" {
		t.Errorf("get-tags of the key: %q", got)
	}
	if got := tg.text("get-api-key", "--api-key", key, "--query", "tags.team"); got != "y" {
		t.Errorf("get-api-key after tag-resource: team=%q", got)
	}

	// Deletes print nothing.
	for _, args := range [][]string{
		{"delete-usage-plan-key", "--usage-plan-id", plan, "--key-id", key},
		{"delete-api-key", "--api-key", key},
	} {
		if got := run(args...); got != "" {
			t.Errorf("%s printed %q", args[0], got)
		}
	}
	for _, id := range strings.Fields(tg.text("get-usage-plan-keys", "--usage-plan-id", plan, "--query", "items[].id")) {
		tg.ok("delete-usage-plan-key", "--usage-plan-id", plan, "--key-id", id)
	}
	tg.ok("update-usage-plan", "--usage-plan-id", plan, "--patch-operations", "op=remove,path=/apiStages,value=a1b2c3:prod", "op=remove,path=/apiStages,value=a1b2c3:dev")
	if got := run("delete-usage-plan", "--usage-plan-id", plan); got != "" {
		t.Errorf("delete-usage-plan printed %q", got)
	}

	for _, op := range operations {
		if !covered[op.Command()] {
			t.Errorf("%s was not run", op.Command())
		}
	}
}

// TestServiceErrorsExit254 checks that an admin function's error prints
// as the AWS CLI prints a service's, on stderr, with exit code 254.
func TestServiceErrorsExit254(t *testing.T) {
	tg := newTollgate(t, "TOLLGATE_ENDPOINT_URL="+localStackURL(t))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get-api-key", "--api-key", "nope"}, "\nAn error occurred (NotFoundException) when calling the GetApiKey operation: API key nope not found\n"},
		{[]string{"create-usage-plan-key", "--usage-plan-id", "p", "--key-id", "k", "--key-type", "OTHER"},
			"\nAn error occurred (BadRequestException) when calling the CreateUsagePlanKey operation: keyType must be \"API_KEY\", the only type of usage plan key\n"},
		{[]string{"get-api-key", "--api-key", "k", "--include-value"}, "\nAn error occurred (BadRequestException) when calling the GetApiKey operation: includeValue: Tollgate stores only a SHA-256 hash"},
	} {
		r := tg.run(tc.args...)
		if r.code != 254 || r.stdout != "" || !strings.HasPrefix(r.stderr, tc.want) {
			t.Errorf("tollgate %s: exit %d, stdout %q, stderr %q; want 254 and %q", strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, tc.want)
		}
	}
	// Nothing listening: the AWS CLI's "Could not connect", 255.
	closed := dynamotest.ClosedEndpoint(t)
	down := newTollgate(t, "TOLLGATE_ENDPOINT_URL="+closed)
	if r := down.run("get-api-keys"); r.code != 255 || !strings.Contains(r.stderr, `Could not connect to the endpoint URL: "`+closed+`/_admin/keys"`) {
		t.Errorf("no local stack: exit %d %q", r.code, r.stderr)
	}
	// An interrupted command exits 130.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &CLI{Stdout: &strings.Builder{}, Stderr: &strings.Builder{}, Getenv: func(k string) string { return tg.env[k] }, Now: time.Now}
	if code := c.Run(ctx, []string{"get-api-keys"}); code != 130 {
		t.Errorf("interrupted: exit %d, want 130", code)
	}
}

// TestPaging pages as the AWS CLI does: all pages merged by default,
// --max-items with a NextToken that --starting-token resumes from, even in
// the middle of a page, and --page-size changing only the calls.
func TestPaging(t *testing.T) {
	tg := newTollgate(t, "TOLLGATE_ENDPOINT_URL="+localStackURL(t))
	var ids []string
	for i := range 7 {
		ids = append(ids, tg.text("create-api-key", "--name", "pg-"+string(rune('a'+i)), "--query", "id"))
	}
	slices.Sort(ids)
	list := func(args ...string) (got []string, next string) {
		var out struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextToken string
			Position  string `json:"position"`
		}
		raw := tg.ok(append([]string{"get-api-keys", "--name-query", "pg-"}, args...)...)
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatal(err)
		}
		unpaged := slices.ContainsFunc(args, func(a string) bool {
			return slices.Contains([]string{"--no-paginate", "--limit", "--position", "--cli-input-json"}, a)
		})
		if out.Position != "" && !unpaged {
			t.Errorf("the service's position is printed: %s", raw)
		}
		for _, it := range out.Items {
			got = append(got, it.ID)
		}
		return got, out.NextToken
	}
	if got, next := list("--page-size", "2"); !slices.Equal(got, ids) || next != "" {
		t.Errorf("all pages, 2 a call: %v %q, want %v", got, next, ids)
	}
	for _, size := range []string{"2", "3", "25"} {
		var all []string
		token := ""
		for range 10 {
			args := []string{"--max-items", "3", "--page-size", size}
			if token != "" {
				args = append(args, "--starting-token", token)
			}
			got, next := list(args...)
			if len(got) > 3 {
				t.Fatalf("--max-items 3 printed %d", len(got))
			}
			all = append(all, got...)
			if token = next; token == "" {
				break
			}
		}
		if !slices.Equal(all, ids) {
			t.Errorf("page size %s: resumed runs printed %v, want each of %v once", size, all, ids)
		}
	}
	// One call, printed as it came, position included: --no-paginate, or
	// the service's own --limit and --position (undocumented in the AWS
	// CLI, and in its help, but scripts that page by hand use them), also
	// in --cli-input-json. They turn paging off.
	if got, _ := list("--no-paginate"); !slices.Equal(got, ids) {
		t.Errorf("--no-paginate printed %v, want the first page, all of %v", got, ids)
	}
	var page1 struct {
		Items    []struct{ ID string }
		Position string
	}
	raw := tg.ok("get-api-keys", "--name-query", "pg-", "--limit", "3")
	if err := json.Unmarshal([]byte(raw), &page1); err != nil || len(page1.Items) != 3 || page1.Items[2].ID != ids[2] || page1.Position == "" {
		t.Fatalf("--limit 3 prints one page of 3, position included:\n%s", raw)
	}
	if got, _ := list("--no-paginate", "--limit", "3", "--position", page1.Position); !slices.Equal(got, ids[3:6]) {
		t.Errorf("--limit 3 --position <the first page's>: %v, want %v", got, ids[3:6])
	}
	if got, _ := list("--cli-input-json", `{"nameQuery": "pg-", "limit": 2}`); !slices.Equal(got, ids[:2]) {
		t.Errorf("--cli-input-json with limit 2: %v, want one page, %v", got, ids[:2])
	}
	// Without paging, the CLI's paging options are an error, as in the AWS CLI.
	// Turned off by --limit or --position, the error says so too.
	byHand := "\n--limit and --position page by hand, which turns paging off: drop them to page with "
	for _, tc := range []struct{ args, want string }{
		{"--no-paginate --max-items 2", "--max-items"},
		{"--limit 2 --page-size 2", "--page-size" + byHand + "--page-size"},
		{"--position x --max-items 1 --starting-token x", "--starting-token, --max-items" + byHand + "--starting-token, --max-items"},
	} {
		r := tg.run(append([]string{"get-api-keys"}, strings.Fields(tc.args)...)...)
		if r.code != 252 || r.stdout != "" || r.stderr != "\nCannot specify --no-paginate along with pagination arguments: "+tc.want+"\n" {
			t.Errorf("get-api-keys %s: exit %d, stdout %q, stderr %q", tc.args, r.code, r.stdout, r.stderr)
		}
	}
	// Text prints the resume token last, as NEXTTOKEN.
	text := tg.text("get-api-keys", "--name-query", "pg-", "--max-items", "2")
	lines := strings.Split(text, "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "NEXTTOKEN\t") {
		t.Errorf("text with --max-items:\n%s", text)
	}
	// --query applies to the merged result, NextToken included.
	if tok := tg.text("get-api-keys", "--name-query", "pg-", "--max-items", "2", "--query", "NextToken"); !strings.HasPrefix(lines[2], "NEXTTOKEN\t"+tok) {
		t.Errorf("--query NextToken printed %q; text printed %q", tok, lines[2])
	}

	// GetUsage pages over keys: items is a map by key.
	plan := tg.text("create-usage-plan", "--name", "paged", "--quota", "limit=9,period=WEEK", "--query", "id")
	for _, id := range ids[:3] {
		tg.ok("create-usage-plan-key", "--usage-plan-id", plan, "--key-id", id, "--key-type", "API_KEY")
	}
	today := time.Now().UTC().Format(time.DateOnly)
	usage := []string{"get-usage", "--usage-plan-id", plan, "--start-date", today, "--end-date", today, "--page-size", "1"}
	if got := tg.text(append(usage, "--query", "length(keys(items))")...); got != "3" {
		t.Errorf("get-usage over 3 pages has %s keys", got)
	}
	first := tg.ok(append(usage, "--max-items", "2")...)
	var page struct {
		Items     map[string]any `json:"items"`
		NextToken string
	}
	json.Unmarshal([]byte(first), &page)
	if len(page.Items) != 2 || page.NextToken == "" {
		t.Fatalf("get-usage --max-items 2:\n%s", first)
	}
	if got := tg.text(append(usage, "--starting-token", page.NextToken, "--query", "keys(items)")...); got != ids[2] {
		t.Errorf("get-usage resumed: %q, want %s", got, ids[2])
	}
	csv := tg.text("get-usage", "--usage-plan-id", plan, "--start-date", today, "--end-date", today, "--format", "csv", "--page-size", "1", "--query", "body")
	if rows := strings.Split(csv, "\n"); len(rows) != 4 || rows[0] != "keyId,date,used,remaining" {
		t.Errorf("get-usage --format csv over 3 pages, one header:\n%s", csv)
	}
}

// TestTheTableMatchesTheService checks the command table against the
// admin functions: each operation's members are those its function takes,
// and every action they serve has a subcommand.
func TestTheTableMatchesTheService(t *testing.T) {
	handlers := adminHandlers(t)
	fields := regexp.MustCompile(`this action takes (.*)$`)
	for _, op := range operations {
		for _, fn := range op.functions() {
			h := handlers[fn]
			if h == nil || !slices.Contains(h.Actions(), op.Name) {
				t.Errorf("%s: the %s function does not serve it", op.Name, fn)
				continue
			}
			_, e := h.Handle(context.Background(), []byte(`{"action": "`+op.Name+`", "notAField": 1}`))
			m := fields.FindStringSubmatch(e.Message)
			if m == nil {
				t.Errorf("%s: %v", op.Name, e)
				continue
			}
			served := strings.Split(m[1], ", ")
			var ours []string
			for _, member := range op.shape().Members {
				ours = append(ours, member.Name)
			}
			slices.Sort(served)
			slices.Sort(ours)
			if !slices.Equal(served, ours) {
				t.Errorf("%s: the table has %v, the %s function takes %v", op.Name, ours, fn, served)
			}
		}
	}
	for fn, h := range handlers {
		for _, action := range h.Actions() {
			op := operation(kebab(action))
			switch {
			case op == nil:
				t.Errorf("the %s function serves %s, but tollgate has no %s: add its entry to operations", fn, action, kebab(action))
			case !slices.Contains(op.functions(), fn):
				t.Errorf("the %s function serves %s, but tollgate sends %s only to %v", fn, action, kebab(action), op.functions())
			}
		}
	}
}

// TestCLIBinaryFormat reads --body as the AWS CLI v2 does under each
// --cli-binary-format: as it is with raw-in-base64-out (tollgate's
// default), decoded from base64 with base64, and the file's bytes with
// fileb:// under either.
func TestCLIBinaryFormat(t *testing.T) {
	tg := newTollgate(t, "TOLLGATE_ENDPOINT_URL="+localStackURL(t))
	csv := func(name string) string { return "Name,Key\n" + name + "," + name + "-0123456789abcdefghij\n" }
	for i, tc := range []struct {
		name string
		args []string
	}{
		{"bf-default", []string{"--body", csv("bf-default")}},
		{"bf-raw-file", []string{"--cli-binary-format", "raw-in-base64-out", "--body", "file://bf-raw-file.csv"}},
		{"bf-base64", []string{"--cli-binary-format", "base64", "--body", base64.StdEncoding.EncodeToString([]byte(csv("bf-base64")))}},
		{"bf-base64-file", []string{"--body", "file://bf-base64-file.csv", "--cli-binary-format", "base64"}},
		{"bf-base64-fileb", []string{"--cli-binary-format", "base64", "--body", "fileb://bf-base64-fileb.csv"}},
	} {
		tg.files[tc.name+".csv"] = csv(tc.name)
		if i == 3 {
			tg.files[tc.name+".csv"] = base64.StdEncoding.EncodeToString([]byte(csv(tc.name))) + "\n"
		}
		tg.ok(append([]string{"import-api-keys", "--format", "csv"}, tc.args...)...)
		if got := tg.text("get-api-keys", "--name-query", tc.name, "--query", "items[].name"); got != tc.name {
			t.Errorf("%v imported %q, want %s", tc.args, got, tc.name)
		}
	}
	r := tg.run("import-api-keys", "--format", "csv", "--cli-binary-format", "base64", "--body", csv("bf-plain"))
	if r.code != 252 || !strings.HasPrefix(r.stderr, "\nError parsing parameter '--body': Invalid base64: ") {
		t.Errorf("plain text under --cli-binary-format base64: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := tg.run("get-api-keys", "--cli-binary-format", "hex"); r.code != 252 || !strings.Contains(r.stderr, "argument --cli-binary-format: Invalid choice 'hex', valid choices are: base64, raw-in-base64-out") {
		t.Errorf("--cli-binary-format hex: exit %d, stderr %q", r.code, r.stderr)
	}
}
