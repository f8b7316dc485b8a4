package tollgate_test

import (
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestExternalApp builds the README's app ("Put the authorizer on your own
// HTTP API") as a user would: a module of its own that requires Tollgate
// (with a replace to this checkout standing in for the go get), synthesised
// by the CDK CLI, which runs the app, which builds Tollgate's functions.
// Offline: GOPROXY=off, so every module comes from the cache that make
// deps filled; the build cache is the machine's, so a second run reuses
// the compiled SDK.
func TestExternalApp(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a CDK app and Tollgate's functions")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cdk := filepath.Join(root, "node_modules", ".bin", "cdk")
	if _, err := os.Stat(cdk); err != nil {
		t.Fatalf("no CDK CLI at %s: run make deps", cdk)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	if i := strings.Index(section, "## Put the authorizer on your own HTTP API\n"); i >= 0 {
		section = section[i:]
	} else {
		t.Fatal("README has no \"Put the authorizer on your own HTTP API\"")
	}
	mainGo := codeBlock(t, section, "go")
	cdkJSON := codeBlock(t, section, "json")
	// A release tag, or until there is one a commit.
	commands := codeBlock(t, section, "sh")
	if !regexp.MustCompile(`go get github.com/tollgate-dev/tollgate@(v\d+\.\d+\.\d+|COMMIT)\s`).MatchString(commands) {
		t.Error("the README's commands do not go get a pinned Tollgate version or commit")
	}
	// The CDK CLI the README runs is the one this test runs.
	var pkg struct{ DevDependencies map[string]string }
	if b, err := os.ReadFile(filepath.Join(root, "package.json")); err != nil || json.Unmarshal(b, &pkg) != nil {
		t.Fatalf("package.json: %v", err)
	}
	if want := "npx aws-cdk@" + pkg.DevDependencies["aws-cdk"] + " "; !strings.Contains(commands, want) {
		t.Errorf("the README's commands do not run %q, the CDK CLI in package.json, which this test runs", want)
	}

	app := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(app, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.go", mainGo)
	write("cdk.json", cdkJSON)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(sum)) // the checksums go get would fetch; tidy keeps what the app needs

	env := append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "GOWORK=off", "CDK_DISABLE_VERSION_CHECK=true")
	run := func(name string, args ...string) string {
		t.Helper()
		start := time.Now()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = app, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		t.Logf("%s %s: %s", filepath.Base(name), strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
		return string(out)
	}
	run("go", "mod", "init", "example.com/my-api")
	run("go", "mod", "edit", "-require=github.com/tollgate-dev/tollgate@v0.0.0", "-replace=github.com/tollgate-dev/tollgate="+root)
	run("go", "mod", "tidy")
	out := filepath.Join(app, "cdk.out")
	// The synth compiles the app and five functions: nice, so that tests of
	// other packages running beside it, some of them timing-sensitive, keep
	// their share of a small machine's cores.
	if _, err := exec.LookPath("nice"); err == nil {
		run("nice", "-n", "10", cdk, "synth", "--no-notices", "--quiet", "-o", out)
	} else {
		run(cdk, "synth", "--no-notices", "--quiet", "-o", out)
	}

	raw, err := os.ReadFile(filepath.Join(out, "MyApi.template.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(raw, &tpl); err != nil {
		t.Fatal(err)
	}

	// Each function's asset is its own binary, for arm64 Linux, built as
	// make build builds it.
	functions := 0
	for id, r := range tpl.Resources {
		if r.Type != "AWS::Lambda::Function" {
			continue
		}
		functions++
		p := r.Properties
		if fmt.Sprint(p["Architectures"]) != "[arm64]" || p["Runtime"] != "provided.al2023" {
			t.Errorf("%s: architectures %v, runtime %v", id, p["Architectures"], p["Runtime"])
		}
		key, _ := p["Code"].(map[string]any)["S3Key"].(string)
		bin := filepath.Join(out, "asset."+strings.TrimSuffix(key, ".zip"), "bootstrap")
		name := regexp.MustCompile(`^Tollgate([A-Z][a-z]+)`).FindStringSubmatch(id)
		if name == nil {
			t.Errorf("function %s is not Tollgate's", id)
			continue
		}
		checkBinary(t, bin, "github.com/tollgate-dev/tollgate/functions/"+strings.ToLower(name[1]))
	}
	if functions != 5 {
		t.Errorf("%d functions, want Tollgate's five (authorizer, keys, plans, usage, notifier)", functions)
	}

	// Tollgate's authorizer on both routes.
	var authorizers []string
	for id, r := range tpl.Resources {
		if r.Type == "AWS::ApiGatewayV2::Authorizer" {
			authorizers = append(authorizers, id)
			if uri, _ := json.Marshal(r.Properties["AuthorizerUri"]); !strings.Contains(string(uri), "TollgateAuthorizer") {
				t.Errorf("the authorizer calls %s, not Tollgate's function", uri)
			}
		}
	}
	if len(authorizers) != 1 {
		t.Fatalf("authorizers %v, want one", authorizers)
	}
	routes := map[string]bool{}
	for _, r := range tpl.Resources {
		if r.Type != "AWS::ApiGatewayV2::Route" {
			continue
		}
		ref, _ := r.Properties["AuthorizerId"].(map[string]any)
		if r.Properties["AuthorizationType"] == "CUSTOM" && ref["Ref"] == authorizers[0] {
			routes[r.Properties["RouteKey"].(string)] = true
		}
	}
	if !routes["GET /items"] || !routes["GET /orders/{id}"] {
		t.Errorf("routes behind Tollgate's authorizer: %v, want GET /items and GET /orders/{id}", routes)
	}
}

// checkBinary checks that bin is an arm64 Linux executable of pkg, built
// with make build's settings.
func checkBinary(t *testing.T, bin, pkg string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Errorf("%s: %v", bin, err)
		return
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("%s is for %v, want arm64", pkg, f.Machine)
	}
	// -ldflags='-s -w' (build info leaves ldflags out under -trimpath).
	if f.Section(".symtab") != nil || f.Section(".debug_info") != nil {
		t.Errorf("%s keeps its symbol table or DWARF: not built with -ldflags='-s -w'", pkg)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Errorf("%s: %v", bin, err)
		return
	}
	if info.Path != pkg {
		t.Errorf("the asset for %s holds %s", pkg, info.Path)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"GOOS": "linux", "GOARCH": "arm64", "CGO_ENABLED": "0", "-tags": "lambda.norpc", "-trimpath": "true"} {
		if settings[k] != v {
			t.Errorf("%s built with %s=%q, want %q", pkg, k, settings[k], v)
		}
	}
}

// codeBlock returns the first fenced block of a language in doc.
func codeBlock(t *testing.T, doc, lang string) string {
	t.Helper()
	start := strings.Index(doc, "```"+lang+"\n")
	if start < 0 {
		t.Fatalf("no ```%s block", lang)
	}
	body := doc[start+len(lang)+4:]
	return body[:strings.Index(body, "```")]
}
