// Package lambdatest runs function binaries as Lambda would: each process
// is one execution environment that polls a Runtime API for invocations.
// The Runtime here is a stand-in for the real one, serving one process.
package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// FunctionError is what a handler returned as its error.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

type invocation struct {
	id      string
	payload []byte
	result  chan result
}

type result struct {
	payload []byte
	err     *FunctionError
}

// Runtime serves the Lambda Runtime API (2018-06-01) to one process.
type Runtime struct {
	// Addr is the value for AWS_LAMBDA_RUNTIME_API.
	Addr string

	srv     *http.Server
	queue   chan *invocation
	mu      sync.Mutex
	pending map[string]*invocation
	seq     atomic.Int64
	initErr chan *FunctionError
}

// NewRuntime starts a Runtime on a loopback port.
func NewRuntime() (*Runtime, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Runtime{
		Addr:    l.Addr().String(),
		queue:   make(chan *invocation),
		pending: map[string]*invocation{},
		initErr: make(chan *FunctionError, 1),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", r.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", r.respond)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", r.respond)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, req *http.Request) {
		var fe FunctionError
		json.NewDecoder(req.Body).Decode(&fe)
		select {
		case r.initErr <- &fe:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	// The Extensions API, as far as aws-lambda-go's WithEnableSIGTERM uses
	// it: registering is what makes Lambda send SIGTERM before SIGKILL.
	mux.HandleFunc("POST /2020-01-01/extension/register", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Lambda-Extension-Identifier", fmt.Sprintf("ext-%d", r.seq.Add(1)))
		w.Write([]byte(`{}`))
	})
	mux.HandleFunc("GET /2020-01-01/extension/event/next", func(w http.ResponseWriter, req *http.Request) {
		<-req.Context().Done() // no events: an extension registered for none waits
	})
	r.srv = &http.Server{Handler: mux}
	go r.srv.Serve(l)
	return r, nil
}

func (r *Runtime) next(w http.ResponseWriter, req *http.Request) {
	select {
	case inv := <-r.queue:
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(10*time.Second).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:test")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
		w.Write(inv.payload)
	case <-req.Context().Done():
	}
}

func (r *Runtime) respond(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	r.mu.Lock()
	inv := r.pending[id]
	delete(r.pending, id)
	r.mu.Unlock()
	body, _ := io.ReadAll(req.Body)
	if inv == nil {
		http.Error(w, "unknown invocation", http.StatusBadRequest)
		return
	}
	res := result{payload: body}
	if strings.HasSuffix(req.URL.Path, "/error") {
		res.err = &FunctionError{}
		json.Unmarshal(body, res.err)
	}
	inv.result <- res
	w.WriteHeader(http.StatusAccepted)
}

// Invoke hands payload to the process and waits for its answer. A
// handler's error comes back as a *FunctionError.
func (r *Runtime) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	inv := &invocation{id: fmt.Sprintf("inv-%d", r.seq.Add(1)), payload: payload, result: make(chan result, 1)}
	r.mu.Lock()
	r.pending[inv.id] = inv
	r.mu.Unlock()
	select {
	case r.queue <- inv:
	case fe := <-r.initErr:
		return nil, fmt.Errorf("function failed to start: %w", fe)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case res := <-inv.result:
		if res.err != nil {
			return res.payload, res.err
		}
		return res.payload, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops the Runtime.
func (r *Runtime) Close() { r.srv.Close() }

// Process is a function binary running in its own execution environment.
type Process struct {
	*Runtime
	cmd    *exec.Cmd
	output *bytes.Buffer
	mu     sync.Mutex
	done   chan struct{}
	// Started is when the process was started, for cold-start timing.
	Started time.Time
}

// Start runs binary with env (KEY=value) added to a minimal Lambda-like
// environment.
func Start(binary string, env ...string) (*Process, error) {
	rt, err := NewRuntime()
	if err != nil {
		return nil, err
	}
	p := &Process{Runtime: rt, output: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary)
	p.cmd.Env = append([]string{
		"AWS_LAMBDA_RUNTIME_API=" + rt.Addr,
		"AWS_LAMBDA_FUNCTION_NAME=" + filepath.Base(filepath.Dir(binary)),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.TempDir(),
	}, env...)
	w := &lockedWriter{p: p}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	p.Started = time.Now()
	if err := p.cmd.Start(); err != nil {
		rt.Close()
		return nil, err
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// Output is what the process has written to stdout and stderr.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// Stop kills the process and the Runtime.
func (p *Process) Stop() {
	p.cmd.Process.Kill()
	<-p.done
	p.Runtime.Close()
}

// CPUTime is the CPU time the process has used, user and system, from
// /proc (Linux only), in clock ticks of 10 ms.
func (p *Process) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command's name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %q", b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: %q", b)
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * tick, nil
}

// PeakMemory is the process's peak resident memory (VmHWM), from /proc.
func (p *Process) PeakMemory() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc status")
}

// Shutdown stops the process as Lambda shuts an execution environment
// down when an extension is registered: SIGTERM, then SIGKILL after grace
// (Lambda waits about 500 ms) unless it has exited.
func (p *Process) Shutdown(grace time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	p.Stop()
}

type lockedWriter struct{ p *Process }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.output.Write(b)
}

// Build compiles a function package as `make build` does for Lambda
// (-tags lambda.norpc, trimmed, no cgo), for this machine's platform, into
// dir, and returns the binary's path.
func Build(pkg, dir string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", errors.New("go build " + pkg + ": " + string(msg))
	}
	return out, nil
}
