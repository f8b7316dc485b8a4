package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	readmedoc "github.com/tollgate-dev/tollgate/internal/readme"
)

func readme(t *testing.T) string { return page(t, "README.md") }

// page returns one of the repository's pages, such as "docs/jwt.md".
func page(t *testing.T, path string) string {
	b, err := os.ReadFile(filepath.Join("../..", path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns a page from a heading to the next heading of its level
// or above, outside code blocks.
func section(t *testing.T, doc, heading string) string {
	s, err := readmedoc.Section(doc, heading)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWalkthroughScript runs examples/walkthrough.sh, the README's steps,
// against the local stack, with the tollgate command line on the PATH.
func TestWalkthroughScript(t *testing.T) {
	s := start(t)
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "tollgate"), "../tollgate").CombinedOutput(); err != nil {
		t.Fatalf("build tollgate: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", filepath.Join(mustAbs(t, "../../examples"), "walkthrough.sh"))
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "URL="+s.base, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough.sh: %v\n%s", err, out)
	}
	// The outcomes the README shows, in order.
	want := []string{`"period": "DAY"`, "API key ", `: tgk_`, `"type": "API_KEY"`, "200 200 200 200 200 403",
		"|||  5 ", "|  0 ", "my-first-key ", "5         0  ......#", "\n5\t10\n200\n",
		"; the old one works until 20", "\n200 200 \n403 200 \n", "\nfalse\n403\n",
		"\nAPI_KEY\n200 200 200 \n", `"limitExceeded": "quota"`, `"shadow": "true"`, "{\n    \"tags\": {\n        \"tollgate:enforce\": \"enforce\"\n    }\n}\n403\n"}
	rest := string(out)
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("the walk-through's output lacks %q (in order):\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
	// The notifier's events for the walk-through's key, in make run's
	// output: 80 % and 100 %, once each.
	keyID := regexp.MustCompile(`API key ([0-9a-z]+): tgk_`).FindStringSubmatch(string(out))
	if keyID == nil {
		t.Fatalf("no key id in the walk-through's output:\n%s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, w := range []string{"reached 80% of its quota (4 of 5)", "reached 100% of its quota (5 of 5)"} {
		line := "Quota alert: key " + keyID[1] + " " + w
		for strings.Count(s.out.String(), line) != 1 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if n := strings.Count(s.out.String(), line); n != 1 {
			t.Errorf("make run printed %q %d times, want once:\n%s", line, n, s.out)
		}
	}
	if !strings.Contains(s.out.String(), `"detail-type": "Quota Threshold Reached"`) {
		t.Errorf("make run printed no event in EventBridge's JSON:\n%s", s.out)
	}
	s.stop()
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestREADMEWalkthroughIsTheScript keeps the README's commands and the
// script that a test runs the same.
func TestREADMEWalkthroughIsTheScript(t *testing.T) {
	script, err := os.ReadFile("../../examples/walkthrough.sh")
	if err != nil {
		t.Fatal(err)
	}
	walk := section(t, readme(t), "### Walk-through")
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(walk, -1)
	if len(blocks) < 6 {
		t.Fatalf("the walk-through has %d shell blocks", len(blocks))
	}
	for _, b := range blocks {
		for _, line := range strings.Split(strings.TrimSpace(b[1]), "\n") {
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "URL=") {
				continue
			}
			if !strings.Contains(string(script), line+"\n") {
				t.Errorf("README walk-through line not in examples/walkthrough.sh:\n%s", line)
			}
		}
	}
}

// TestDocsCheatSheetShowsEverySample checks that each sample in events/
// appears in the operations cheat-sheet of docs/admin.md, as it is.
func TestDocsCheatSheetShowsEverySample(t *testing.T) {
	canonical := func(b []byte) string {
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			return ""
		}
		out, _ := json.Marshal(v)
		return string(out)
	}
	shown := map[string]bool{}
	for _, line := range strings.Split(section(t, page(t, "docs/admin.md"), "## Operations cheat-sheet"), "\n") {
		if strings.HasPrefix(line, "{") {
			shown[canonical([]byte(line))] = true
		}
	}
	files, _ := filepath.Glob("../../events/*/*.json")
	for _, f := range files {
		if strings.Contains(f, "/authorizer/") || strings.Contains(f, "/notifier/") {
			continue // not admin payloads; see TestDocsShowTheAlertEvent
		}
		b, _ := os.ReadFile(f)
		if !shown[canonical(b)] {
			t.Errorf("the cheat-sheet does not show %s as it is", f)
		}
	}
}

// TestREADMEConfigurationListsEveryVariable finds the environment
// variables the code reads and checks that the configuration table has
// each.
func TestREADMEConfigurationListsEveryVariable(t *testing.T) {
	table := section(t, readme(t), "## Configuration")
	patterns := []*regexp.Regexp{
		regexp.MustCompile(`[gG]etenv\("([A-Z][A-Z0-9_]+)"\)`),
		regexp.MustCompile(`duration\(getenv, "([A-Z][A-Z0-9_]+)"`),
		regexp.MustCompile(`"([A-Z][A-Z0-9_]+)": +&c\.`),
		regexp.MustCompile(`EnvJarDir = "([A-Z_]+)"`),
	}
	found := map[string]bool{}
	filepath.Walk("../..", func(path string, info os.FileInfo, err error) error {
		if err != nil || strings.Contains(path, "node_modules") || strings.HasSuffix(path, "_test.go") || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, _ := os.ReadFile(path)
		for _, p := range patterns {
			for _, m := range p.FindAllStringSubmatch(string(b), -1) {
				found[m[1]] = true
			}
		}
		return nil
	})
	if len(found) < 15 {
		t.Fatalf("found only %d variables: %v", len(found), found)
	}
	for name := range found {
		if name == "PATH" || name == "HOME" {
			continue // passed through to processes the tests start
		}
		if !strings.Contains(table, "`"+name+"`") {
			t.Errorf("the configuration table does not list %s", name)
		}
	}
}

// TestJWTWalkthroughScript runs examples/jwt-walkthrough.sh, the steps of
// the README's JWT walk-through, against the local stack with AUTH_MODE=jwt
// and its local issuer, with the tollgate command line on the PATH, after
// the banner's own token recipe for the demo identity.
func TestJWTWalkthroughScript(t *testing.T) {
	s := start(t, "AUTH_MODE=jwt", "DYNAMODB_DEADLINE=10s")
	recipe := regexp.MustCompile(`(?m)^  (TOKEN=\$\(curl .*)$`).FindStringSubmatch(s.out.String())
	if recipe == nil {
		t.Fatalf("the banner shows no token recipe:\n%s", s.out)
	}
	demo := exec.Command("bash", "-c", strings.ReplaceAll(recipe[1], "localhost:", "127.0.0.1:")+
		`; curl -s -o /dev/null -w '%{http_code}' `+s.base+`/echo -H "Authorization: Bearer $TOKEN"`)
	if out, err := demo.CombinedOutput(); err != nil || string(out) != "200" {
		t.Fatalf("the banner's recipe for the demo identity: %v %s", err, out)
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "tollgate"), "../tollgate").CombinedOutput(); err != nil {
		t.Fatalf("build tollgate: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", filepath.Join(mustAbs(t, "../../examples"), "jwt-walkthrough.sh"))
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "URL="+s.base, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("jwt-walkthrough.sh: %v\n%s", err, out)
	}
	want := []string{`"rateLimit": 0.2`, `"type": "API_KEY"`, `"identities": [`, `"authMethod": "jwt"`, `"identity": "alice"`, `"scopes": "items:read"`,
		"\n200 403 \n", "\n403\n", "\n401\n"}
	rest := string(out)
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("the JWT walk-through's output lacks %q (in order):\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
	// The 403 after the removal is for the identity, unless DynamoDB was
	// too slow to answer in time on a busy machine (reason=error, denied
	// all the same): such a decision says nothing either way.
	if out := s.out.String(); !strings.Contains(out, "reason=unknown_identity") && !strings.Contains(out, "reason=error") {
		t.Errorf("no log line for the removed identity:\n%s", out)
	}
	s.stop()
}

// TestREADMEJWTWalkthroughIsTheScript keeps the commands of the README's
// JWT walk-through and the script that a test runs the same.
func TestREADMEJWTWalkthroughIsTheScript(t *testing.T) {
	script, err := os.ReadFile("../../examples/jwt-walkthrough.sh")
	if err != nil {
		t.Fatal(err)
	}
	walk := section(t, readme(t), "### Try it: a token allowed, throttled, then refused")
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(walk, -1)
	if len(blocks) < 5 {
		t.Fatalf("the JWT walk-through has %d shell blocks", len(blocks))
	}
	for _, b := range blocks {
		for _, line := range strings.Split(strings.TrimSpace(b[1]), "\n") {
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "URL=") || strings.HasPrefix(line, "export ") || strings.HasPrefix(line, "AUTH_MODE=") {
				continue
			}
			if !strings.Contains(string(script), line+"\n") {
				t.Errorf("README JWT walk-through line not in examples/jwt-walkthrough.sh:\n%s", line)
			}
		}
	}
}

// TestDocsShowTheAlertEvent checks that docs/alerts.md shows
// events/notifier/QuotaThresholdReached.json as it is (a test in
// internal/alerts checks that the notifier puts that very event).
func TestDocsShowTheAlertEvent(t *testing.T) {
	sample, err := os.ReadFile("../../events/notifier/QuotaThresholdReached.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(section(t, page(t, "docs/alerts.md"), "## The event"), "```json\n"+string(sample)+"```") {
		t.Error("docs/alerts.md's \"The event\" does not show events/notifier/QuotaThresholdReached.json as it is")
	}
}
