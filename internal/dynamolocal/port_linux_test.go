package dynamolocal

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// A server of someone else's that answers DynamoDB's ping on the port the
// JVM was given must not pass for the JVM: start reports the port taken,
// which StartOn answers with another port.
func TestSomeoneElseOnThePort(t *testing.T) {
	dir, err := FindJarDir()
	if err != nil {
		t.Skip(err)
	}
	impostor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"TableNames":[]}`))
	}))
	defer impostor.Close()
	port := impostor.Listener.Addr().(*net.TCPAddr).Port

	if mine, err := listens(os.Getpid(), port); err != nil || !mine {
		t.Fatalf("listens(own pid, %d) = %v, %v; want true", port, mine, err)
	}
	s, err := start(context.Background(), dir, port)
	if err == nil {
		s.Stop()
		t.Fatal("start on a port someone else answers on succeeded")
	}
	if !errors.Is(err, errPortTaken) {
		t.Fatalf("start: %v; want errPortTaken", err)
	}
}
