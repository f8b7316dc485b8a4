package authorizer_test

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/authorizer"
)

// TestFromEnvNamesWhatIsWrong sets each variable the authorizer reads to a
// value it refuses: the error names the variable, and says what it takes.
// (The JWT_* variables but JWT_SOURCE are jwtauth's, tested there.)
func TestFromEnvNamesWhatIsWrong(t *testing.T) {
	jwt := map[string]string{"AUTH_MODE": "jwt", "JWT_ISSUER": "https://issuer.example.com", "JWT_AUDIENCE": "api"}
	tests := []struct {
		name, value string
		with        map[string]string // the other variables set
		says        string            // what the error says it takes
	}{
		{"TABLE_NAME", "", nil, "table's name"},
		{"API_KEY_SOURCE", "cookie:key", nil, "header:<name> or query:<name>"},
		{"ON_LIMIT", "allow", nil, "deny"},
		{"ENFORCE", "watch", nil, "shadow"},
		{"FAIL_MODE", "ajar", nil, "closed"},
		{"DYNAMODB_DEADLINE", "0s", nil, "at least 1ms"},
		{"CLOCK_SKEW_GUARD", "soon", nil, "duration"},
		{"DENY_CACHE_TTL", "-1s", nil, "duration"},
		{"CACHE_SIZE", "0", nil, "at least 1"},
		{"USAGE_RETENTION_DAYS", "a year", nil, "whole number of days"},
		{"METRICS_NAMESPACE", "AWS/Lambda", nil, "CloudWatch namespace"},
		{"METRICS_NAMESPACE", "Tollgate\n", nil, "printable ASCII"},
		{"METRICS_INTERVAL", "10ms", nil, "at least 1s"},
		{"LOG_DECISIONS", "some", nil, "summary"},
		{"AUTH_MODE", "oauth", nil, "jwt-or-key"},
		{"JWT_SOURCE", "body", jwt, "header:<name> or query:<name>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"TABLE_NAME": "tollgate"}
			for k, v := range tt.with {
				env[k] = v
			}
			env[tt.name] = tt.value
			_, err := authorizer.FromEnv(func(k string) string { return env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.name) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("%s=%q: error %v; want one naming it and saying %q", tt.name, tt.value, err, tt.says)
			}
		})
	}
	if _, err := authorizer.FromEnv(func(k string) string {
		return map[string]string{"TABLE_NAME": "t", "METRICS_NAMESPACE": "MyCompany/Tollgate"}[k]
	}); err != nil {
		t.Errorf("a namespace with a slash: %v", err)
	}
}
