// Command tollgate manages Tollgate's API keys, usage plans and usage with
// the subcommands, flags, output and exit codes of `aws apigateway`:
//
//	tollgate create-usage-plan --name Basic --throttle burstLimit=2,rateLimit=1 --quota limit=5,period=DAY
//	tollgate get-usage --usage-plan-id c7y23b --start-date 2026-11-01 --end-date 2026-11-21 --output table
//	tollgate usage-report --usage-plan-id c7y23b
//
// With --endpoint-url (or TOLLGATE_ENDPOINT_URL) it talks to the local
// stack of `make run`; otherwise to a deployed stack's admin functions.
// `tollgate help` lists the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/tollgate-dev/tollgate/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	c := &cli.CLI{
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Getenv:   os.Getenv,
		Now:      time.Now,
		Terminal: cli.StdoutTerminal,
		ReadFile: os.ReadFile,
		Version:  version(),
	}
	code := c.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// version is the module version `go install ...@version` built, or the
// VCS revision of a local build.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
