package logs

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		env       string
		debugSeen bool
		wantErr   bool
	}{{"", false, false}, {"debug", true, false}, {"WARN", false, false}, {"loud", false, true}} {
		var buf bytes.Buffer
		log, err := New(&buf, func(string) string { return tt.env })
		if (err != nil) != tt.wantErr {
			t.Fatalf("LOG_LEVEL=%q: err = %v", tt.env, err)
		}
		log.Debug("d")
		if got := buf.Len() > 0; got != tt.debugSeen {
			t.Errorf("LOG_LEVEL=%q: debug logged = %v", tt.env, got)
		}
		buf.Reset()
		log.Error("e", "k", 1)
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "e" {
			t.Errorf("LOG_LEVEL=%q: not a JSON line: %q", tt.env, buf.String())
		}
		// What Lambda's log-level filtering reads: "level", and an RFC
		// 3339 "timestamp" (without which it counts the line as INFO).
		ts, _ := line["timestamp"].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || line["level"] != "ERROR" || line["time"] != nil {
			t.Errorf("LOG_LEVEL=%q: level %v, timestamp %v, time %v: want ERROR and an RFC 3339 timestamp", tt.env, line["level"], line["timestamp"], line["time"])
		}
	}
}
