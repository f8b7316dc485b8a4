// Package logs builds the JSON logger every Tollgate function writes with:
// one JSON object per line on stdout, which CloudWatch Logs indexes.
package logs

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON logger at the level named by LOG_LEVEL (debug, info,
// warn or error; default info).
//
// Lines carry "level" (DEBUG, INFO, WARN, ERROR) and an RFC 3339
// "timestamp", the keys Lambda's log-level filtering reads from a custom
// runtime's JSON lines: a line whose timestamp it does not find, it counts
// as INFO, which an application log level of WARN or ERROR would drop,
// errors included.
func New(w io.Writer, getenv func(string) string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{ReplaceAttr: lambdaKeys}
	if v := getenv("LOG_LEVEL"); v != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
			return slog.New(slog.NewJSONHandler(w, opts)), fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
		opts.Level = level
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// lambdaKeys names the time "timestamp", as Lambda's documentation does.
func lambdaKeys(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		a.Key = "timestamp"
	}
	return a
}
