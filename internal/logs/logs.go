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
func New(w io.Writer, getenv func(string) string) (*slog.Logger, error) {
	var level slog.Level
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
			return slog.New(slog.NewJSONHandler(w, nil)), fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})), nil
}
