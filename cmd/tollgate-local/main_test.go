package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// localStack is a running `tollgate-local run`.
type localStack struct {
	t        *testing.T
	cmd      *exec.Cmd
	out      *lockedBuffer
	base     string
	ddbPort  int
	demoKey  string
	exited   chan error
	stopOnce sync.Once
}

// start runs the binary as `make run` does, with its own DynamoDB Local on a
// free port, and waits until it says it is running.
func start(t *testing.T, env ...string) *localStack {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the local stack")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tollgate-local-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "tollgate-local")
		if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	port, ddbPort := freePort(t), freePort(t)
	s := &localStack{t: t, out: &lockedBuffer{}, base: fmt.Sprintf("http://127.0.0.1:%d", port), ddbPort: ddbPort, exited: make(chan error, 1)}
	s.cmd = exec.Command(binary, "run")
	s.cmd.Dir = "../.." // the repository, where node_modules holds DynamoDB Local
	// A long deadline: these tests expect every request decided, and a
	// machine busy with other work starves a freshly started DynamoDB Local.
	s.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(),
		"PORT=" + strconv.Itoa(port), "DYNAMODB_PORT=" + strconv.Itoa(ddbPort), "DYNAMODB_DEADLINE=5s"}, env...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(s.stop)
	// DynamoDB Local may take up to 3 minutes to start on a busy machine.
	deadline := time.Now().Add(4 * time.Minute)
	for !strings.Contains(s.out.String(), "Tollgate is running.") {
		select {
		case err := <-s.exited:
			t.Fatalf("tollgate-local exited (%v):\n%s", err, s.out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("tollgate-local did not start:\n%s", s.out)
		}
	}
	s.demoKey = regexp.MustCompile(`tgk_[0-9A-Za-z]+`).FindString(s.out.String())
	// The check stop makes must be able to see DynamoDB Local at all.
	if pids := processesWith(fmt.Sprintf("-port\x00%d\x00", ddbPort)); len(pids) != 1 {
		t.Fatalf("found %d DynamoDB Local processes on port %d, want the one just started", len(pids), ddbPort)
	}
	return s
}

// stop sends Ctrl-C's signal and checks that nothing is left running.
func (s *localStack) stop() {
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-s.exited:
			if err != nil {
				s.t.Errorf("tollgate-local exited with %v:\n%s", err, s.out)
			}
		case <-time.After(20 * time.Second):
			s.cmd.Process.Kill()
			s.t.Errorf("tollgate-local did not stop on SIGINT:\n%s", s.out)
		}
		if pids := processesWith(fmt.Sprintf("-port\x00%d\x00", s.ddbPort)); len(pids) > 0 {
			s.t.Errorf("DynamoDB Local is still running after shutdown: pids %v", pids)
		}
		if pids := processesWith(binary + "\x00run"); len(pids) > 0 {
			s.t.Errorf("tollgate-local is still running after shutdown: pids %v", pids)
		}
	})
}

// processesWith lists the processes whose command line contains s.
func processesWith(s string) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && bytes.Contains(append(cmdline, 0), []byte(s)) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			pids = append(pids, pid)
		}
	}
	return pids
}

func (s *localStack) admin(fn string, payload any) map[string]any {
	s.t.Helper()
	b, _ := json.Marshal(payload)
	resp, err := http.Post(s.base+"/_admin/"+fn, "application/json", bytes.NewReader(b))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		s.t.Fatalf("%s %s: %d %v", fn, b, resp.StatusCode, out)
	}
	return out
}

type response struct {
	status int
	header http.Header
	body   string
}

func (s *localStack) get(path, key string) response {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.base+path, nil)
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	// A client trying to forge the authorizer's decision.
	req.Header.Set("X-Tollgate-Api-Key-Id", "forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(body)}
}

// newKey makes a plan with a daily quota of 3 on the local API and a key in it.
func (s *localStack) newKey() (keyID, value string) {
	plan := s.admin("plans", map[string]any{"action": "CreateUsagePlan", "name": "three a day",
		"apiStages": []map[string]any{{"apiId": "local", "stage": "$default"}}, "quota": map[string]any{"limit": 3, "period": "DAY"}})
	key := s.admin("keys", map[string]any{"action": "CreateApiKey", "name": "e2e"})
	s.admin("plans", map[string]any{"action": "CreateUsagePlanKey", "usagePlanId": plan["id"], "keyId": key["id"], "keyType": "API_KEY"})
	return key["id"].(string), key["value"].(string)
}

func TestLocalStack(t *testing.T) {
	s := start(t)
	if s.demoKey == "" {
		t.Fatalf("the banner shows no demo key:\n%s", s.out)
	}
	if r := s.get("/echo", s.demoKey); r.status != 200 || !strings.Contains(r.body, `"usagePlanId": "demo"`) {
		t.Fatalf("the demo key: %d %s", r.status, r.body)
	}
	keyID, value := s.newKey()
	for i := 1; i <= 3; i++ {
		r := s.get("/echo", value)
		if r.status != 200 || !strings.Contains(r.body, `"apiKeyId": "`+keyID+`"`) {
			t.Fatalf("request %d: %d %s (the forged X-Tollgate-Api-Key-Id must not get through)", i, r.status, r.body)
		}
	}
	if r := s.get("/echo", value); r.status != 403 || strings.TrimSpace(r.body) != `{"message":"Forbidden"}` {
		t.Fatalf("after the quota: %d %s", r.status, r.body)
	}
	if r := s.get("/echo", ""); r.status != 403 {
		t.Fatalf("without a key: %d", r.status)
	}
	// One log line per request: status, key id, reason, latency.
	if !regexp.MustCompile(`GET /echo 403" status=403 apiKeyId=` + keyID + ` reason=quota_exceeded latencyMs=`).MatchString(s.out.String()) {
		t.Errorf("no log line for the denied request:\n%s", s.out)
	}

	// The README's boto3-style walk-through, with only the client swapped.
	if _, err := exec.LookPath("python3"); err == nil {
		cmd := exec.Command("python3", "examples/python/walkthrough.py")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "TOLLGATE_URL="+s.base)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("walkthrough.py: %v\n%s", err, out)
		}
		for _, want := range []string{"statuses [200, 200, 200, 200, 200, 403]", "usage [[5, 0]]", "after extension 200", "rotated True", "tags {'tollgate:enforce': 'shadow'}", "error NotFoundException"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("walkthrough.py does not print %q:\n%s", want, out)
			}
		}
	} else {
		t.Log("python3 not found: the walk-through was not run")
	}
	s.stop()
}

func TestLocalStackAnswers429WithOnLimitPass(t *testing.T) {
	s := start(t, "ON_LIMIT=pass")
	_, value := s.newKey()
	for i, left := range []int{2, 1, 0} {
		r := s.get("/echo", value)
		want := fmt.Sprintf(`"quota";r=%d;t=`, left)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("RateLimit"), want) || r.header.Get("RateLimit-Policy") != `"quota";q=3;w=86400` {
			t.Fatalf("request %d: %d RateLimit %q, policy %q; want 200 and %s...", i+1, r.status, r.header.Get("RateLimit"), r.header.Get("RateLimit-Policy"), want)
		}
	}
	r := s.get("/echo", value)
	retry, _ := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != 429 || retry < 1 || strings.TrimSpace(r.body) != `{"message":"Limit Exceeded"}` || !strings.HasPrefix(r.header.Get("RateLimit"), `"quota";r=0;t=`) {
		t.Fatalf("over quota: %d Retry-After %q RateLimit %q %s", r.status, r.header.Get("Retry-After"), r.header.Get("RateLimit"), r.body)
	}
	s.stop()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
