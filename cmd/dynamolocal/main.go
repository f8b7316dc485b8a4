// Command dynamolocal runs a command with DynamoDB Local behind it.
//
//	dynamolocal [--] command [args...]
//
// If AWS_ENDPOINT_URL_DYNAMODB is set, the command runs against that endpoint
// and nothing is started. Otherwise DynamoDB Local starts in memory, the
// command runs with AWS_ENDPOINT_URL_DYNAMODB pointing at it (and dummy
// credentials and a region where none are set), and DynamoDB Local stops when
// the command ends, whatever its outcome. The exit status is the command's.
//
// Without a command it prints the endpoint and serves until interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/tollgate-dev/tollgate/internal/dynamolocal"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env := os.Environ()
	if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" {
		srv, err := dynamolocal.Start(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer srv.Stop()
		fmt.Fprintf(os.Stderr, "dynamolocal: DynamoDB Local at %s\n", srv.Endpoint)
		env = append(env, "AWS_ENDPOINT_URL_DYNAMODB="+srv.Endpoint)
		for _, kv := range [][2]string{{"AWS_REGION", "us-east-1"}, {"AWS_ACCESS_KEY_ID", "local"}, {"AWS_SECRET_ACCESS_KEY", "local"}} {
			if os.Getenv(kv[0]) == "" {
				env = append(env, kv[0]+"="+kv[1])
			}
		}
		if len(args) == 0 {
			fmt.Printf("export AWS_ENDPOINT_URL_DYNAMODB=%s\n", srv.Endpoint)
			select {
			case <-ctx.Done():
			case <-srv.Done():
				fmt.Fprintln(os.Stderr, "dynamolocal: DynamoDB Local exited")
				return 1
			}
			return 0
		}
	} else if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "dynamolocal: AWS_ENDPOINT_URL_DYNAMODB is set; nothing to start")
		return 0
	}

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "dynamolocal:", err)
		return 127
	}
	// The child gets Ctrl-C from the terminal itself; wait for it so that
	// DynamoDB Local stops after the command, not under it.
	err := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if exit.ExitCode() >= 0 {
			return exit.ExitCode()
		}
		return 1
	default:
		fmt.Fprintln(os.Stderr, "dynamolocal:", err)
		return 1
	}
}
