package dynamolocal

import (
	"context"
	"net/http"
	"syscall"
	"testing"
)

func TestStartStop(t *testing.T) {
	s, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(context.Background(), http.DefaultClient, s.Endpoint); err != nil {
		t.Fatalf("ping %s: %v", s.Endpoint, err)
	}
	pid := s.Pid()
	s.Stop()
	s.Stop() // idempotent
	<-s.Done()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("DynamoDB Local (pid %d) still running after Stop", pid)
	}
}

func TestFindJarDirFromEnv(t *testing.T) {
	t.Setenv(EnvJarDir, t.TempDir())
	if _, err := FindJarDir(); err == nil {
		t.Fatal("want an error for a folder without DynamoDBLocal.jar")
	}
}
