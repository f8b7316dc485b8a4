// Command tollgate-local runs Tollgate on your machine.
//
//	tollgate-local run                          the local stack (make run)
//	tollgate-local invoke <function> <event>    one handler on one event (make invoke)
//
// Settings come from the environment; see the README's configuration table.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tollgate-dev/tollgate/internal/localstack"
)

const usage = `usage:
  tollgate-local run
  tollgate-local invoke <authorizer|keys|plans|usage|notifier> <event.json>`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(os.Args) == 2 && os.Args[1] == "run":
		err = localstack.Run(ctx, os.Getenv, os.Stdout)
	case len(os.Args) == 4 && os.Args[1] == "invoke":
		var event []byte
		if event, err = os.ReadFile(os.Args[3]); err == nil {
			err = localstack.Invoke(ctx, os.Getenv, os.Args[2], event, os.Stdout)
		}
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tollgate-local:", err)
		os.Exit(1)
	}
}
