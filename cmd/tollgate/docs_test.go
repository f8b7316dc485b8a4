package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/cli/standin"
	"github.com/tollgate-dev/tollgate/internal/dynamotest"
	"github.com/tollgate-dev/tollgate/internal/localstack"
	"github.com/tollgate-dev/tollgate/internal/readme"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func readmeSection(t *testing.T, heading string) string { return pageSection(t, "README.md", heading) }

// pageSection returns a section of one of the repository's pages, such as
// "docs/cli.md".
func pageSection(t *testing.T, path, heading string) string {
	b, err := os.ReadFile(filepath.Join("../..", path))
	if err != nil {
		t.Fatal(err)
	}
	s, err := readme.Section(string(b), heading)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// build compiles tollgate into a directory for PATH.
func build(t *testing.T) string {
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "tollgate"), ".").CombinedOutput(); err != nil {
		t.Fatalf("build tollgate: %v\n%s", err, out)
	}
	return dir
}

// TestREADMEDeployExamples runs the Deploy section's tollgate commands,
// as they are, against a deployed stack: stand-ins for Lambda Invoke (the
// real admin handlers on DynamoDB Local) and DescribeStacks, reached by the
// tollgate binary's real SDK clients.
func TestREADMEDeployExamples(t *testing.T) {
	blocks := readme.Blocks(readmeSection(t, "### Manage a deployed stack with tollgate"), "sh")
	if len(blocks) == 0 || !strings.Contains(blocks[0], "tollgate create-usage-plan") {
		t.Fatalf("the Deploy section shows no tollgate commands: %q", blocks)
	}
	db := dynamotest.Client(t)
	svc := &admin.Service{Store: &store.Table{DB: db, Name: dynamotest.NewTable(t, db), Now: time.Now}, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	functions := map[string]standin.Handler{}
	outputs := map[string]string{}
	for _, fn := range admin.Functions {
		h, err := admin.New(fn, svc)
		if err != nil {
			t.Fatal(err)
		}
		name := "Tollgate-" + strings.ToUpper(fn[:1]) + fn[1:] + "Function-X1"
		functions[name] = h
		outputs[strings.ToUpper(fn[:1])+fn[1:]+"FunctionName"] = name
	}
	lambda := standin.NewLambda(functions)
	defer lambda.Close()
	cfn := standin.NewCloudFormation(map[string]map[string]string{"Tollgate": outputs})
	defer cfn.Close()

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", blocks[0])
	cmd.Dir = t.TempDir()
	home := t.TempDir()
	cmd.Env = append([]string{"PATH=" + build(t) + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + home,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none")},
		standin.Env(lambda, cfn)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the Deploy section's commands: %v\n%s", err, out)
	}
	for _, want := range []string{`"type": "API_KEY"`, "\n0\t100000\n", "150000", "Usage plan Gold (", "\ntgk_"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if len(lambda.Calls()) < 7 || len(cfn.Calls()) < 7 {
		t.Errorf("%d Lambda calls, %d DescribeStacks calls", len(lambda.Calls()), len(cfn.Calls()))
	}
}

// TestCommandTable checks the README's table from aws apigateway to
// tollgate against the commands tollgate has.
func TestCommandTable(t *testing.T) {
	table := pageSection(t, "README.md", "## The `tollgate` command line")
	bin := build(t)
	help, err := exec.Command(filepath.Join(bin, "tollgate"), "help").Output()
	if err != nil {
		t.Fatal(err)
	}
	commands := regexp.MustCompile(`(?m)^  ([a-z][a-z-]*) `).FindAllStringSubmatch(string(help), -1)
	if len(commands) < 17 {
		t.Fatalf("tollgate help lists %d commands", len(commands))
	}
	for _, c := range commands {
		name := c[1]
		row := "| `" + name + "` | `" + name + "`"
		switch name { // Tollgate's own
		case "usage-report":
			row = "| the console's usage graph | `usage-report` |"
		case "rotate-api-key":
			row = "| none: Tollgate's own | `rotate-api-key`"
		}
		if !strings.Contains(table, row) {
			t.Errorf("the README's table has no row %s", row)
		}
	}
}

// TestREADMECommandLineExamples runs the examples of the README's section
// on tollgate, as they are, against the local stack of make run: its
// tables in DynamoDB Local, with the samples' plan and key (c7y23b,
// a1b2c3d4e5) that make run seeds, from a directory with events/ and a
// keys.csv.
func TestREADMECommandLineExamples(t *testing.T) {
	blocks := readme.Blocks(readmeSection(t, "## The `tollgate` command line"), "sh")
	if len(blocks) == 0 {
		t.Fatal("the README's section on tollgate has no examples")
	}
	for _, line := range strings.Split(strings.TrimSpace(strings.Join(blocks, "\n")), "\n") {
		if !strings.HasPrefix(line, "tollgate ") {
			t.Errorf("not a tollgate command: %s", line)
		}
	}
	db := dynamotest.Client(t)
	table := dynamotest.NewTable(t, db)
	if err := localstack.SeedSamples(context.Background(), &store.Table{DB: db, Name: table, Now: time.Now}); err != nil {
		t.Fatal(err)
	}
	em, err := localstack.NewEmulator(localstack.Config{Table: table, APIID: "local", Stage: "$default", Routes: []string{"$default"}},
		func(string) string { return "" }, db)
	if err != nil {
		t.Fatal(err)
	}
	em.Log = slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(em)
	defer srv.Close()

	dir := t.TempDir()
	events, err := filepath.Abs("../../events")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(events, filepath.Join(dir, "events")); err != nil {
		t.Fatal(err)
	}
	csv := "Name,Key,UsagePlanIds\nimported-one,importedone0123456789abcd,c7y23b\n"
	if err := os.WriteFile(filepath.Join(dir, "keys.csv"), []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := build(t)
	env := append(os.Environ(), "TOLLGATE_ENDPOINT_URL="+srv.URL, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	run := func(script string) string {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return string(out)
	}
	out := run(strings.Join(blocks, "\n"))
	for _, want := range []string{`"limit": 10000`, "\"apiId\": \"a1b2c3\",\n            \"stage\": \"dev\"", "|           GetApiKeys            |",
		"|  a1b2c3d4e5 |  acme-a1b2c3d4e5  |", `"tier": "basic"`, "\"ids\": [\n", "\ntgk_"} {
		if !strings.Contains(out, want) {
			t.Errorf("the examples' output lacks %q:\n%s", want, out)
		}
	}
	if got := run("tollgate get-tags --resource-arn arn:aws:apigateway:us-east-1::/usageplans/c7y23b --query 'tags.\"tollgate:enforce\"' --output text"); got != "shadow\n" {
		t.Errorf("after tag-resource, the plan's tollgate:enforce is %q", got)
	}
}
