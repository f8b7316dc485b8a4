package admin_test

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/keys"
)

func TestKeyExpiry(t *testing.T) {
	f := setup(t)
	out := f.ok("keys", obj{"action": "CreateApiKey", "name": "trial", "expiresAt": "2026-12-01T00:00:00Z"})
	id := out["id"].(string)
	if out["expiresAt"] != "2026-12-01T00:00:00+00:00" {
		t.Fatalf("CreateApiKey expiresAt = %v", out["expiresAt"])
	}
	patch := func(value any) obj {
		return obj{"action": "UpdateApiKey", "apiKey": id, "patchOperations": []obj{{"op": "replace", "path": "/expiresAt", "value": value}}}
	}
	// Any zone, fractions of a second kept (to the µs, rounded up); a time
	// in the past is accepted: it expires the key at once.
	for value, want := range map[string]string{
		"2027-01-31T09:30:00+02:00":      "2027-01-31T07:30:00+00:00",
		"2026-11-21T12:00:00.25Z":        "2026-11-21T12:00:00.25+00:00",
		"2026-11-21T12:00:00.0000001Z":   "2026-11-21T12:00:00.000001+00:00",
		"2020-01-01T00:00:00Z":           "2020-01-01T00:00:00+00:00",
		"1969-07-20T20:17:40Z":           "1969-07-20T20:17:40+00:00",
		"2026-11-21T12:00:00.123456789Z": "2026-11-21T12:00:00.123457+00:00",
	} {
		if got := f.ok("keys", patch(value))["expiresAt"]; got != want {
			t.Errorf("expiresAt %s: shown as %v, want %s", value, got, want)
		}
		if got := f.ok("keys", obj{"action": "GetApiKey", "apiKey": id})["expiresAt"]; got != want {
			t.Errorf("expiresAt %s: GetApiKey shows %v, want %s", value, got, want)
		}
		items := f.ok("keys", obj{"action": "GetApiKeys", "nameQuery": "trial"})["items"].([]any)
		if len(items) != 1 || items[0].(obj)["expiresAt"] != want {
			t.Errorf("expiresAt %s: GetApiKeys shows %v, want %s", value, items, want)
		}
	}
	if got := f.ok("keys", patch("")); got["expiresAt"] != nil {
		t.Fatalf(`replace /expiresAt "" left %v`, got["expiresAt"])
	}
	f.fails("keys", patch("tomorrow"), admin.BadRequest, "RFC 3339")
	f.fails("keys", patch("2026-13-01T00:00:00Z"), admin.BadRequest, "RFC 3339")
	f.fails("keys", obj{"action": "CreateApiKey", "expiresAt": "2026-12-01"}, admin.BadRequest, "expiresAt", "RFC 3339")
}

func TestRotateApiKey(t *testing.T) {
	f := setup(t)
	id, old := f.createKey("k")
	rotate := func(extra obj) obj {
		in := obj{"action": "RotateApiKey", "apiKey": id}
		for k, v := range extra {
			in[k] = v
		}
		return in
	}
	out := f.ok("keys", rotate(obj{"gracePeriod": 3600}))
	value, _ := out["value"].(string)
	if keys.Check(value) != nil || value == old || out["id"] != id || out["previousValueExpiresAt"] != "2026-11-21T13:00:00+00:00" || out["name"] != "k" {
		t.Fatalf("RotateApiKey = %v", out)
	}
	got := f.ok("keys", obj{"action": "GetApiKey", "apiKey": id})
	if _, leaked := got["value"]; leaked || got["previousValueExpiresAt"] != "2026-11-21T13:00:00+00:00" {
		t.Fatalf("GetApiKey after a rotation = %v", got)
	}
	if f.keyByValue(old)["id"] != id || f.keyByValue(value)["id"] != id {
		t.Fatal("the old and new values are not both the key")
	}

	// An own value; the same call again changes nothing.
	own := "rotatedvalue0123456789abcdef"
	out = f.ok("keys", rotate(obj{"gracePeriod": 0, "value": own}))
	again := f.ok("keys", rotate(obj{"gracePeriod": 0, "value": own}))
	if out["value"] != own || again["value"] != own || again["previousValueExpiresAt"] != out["previousValueExpiresAt"] || f.keyByValue(value)["id"] != id {
		t.Fatalf("own value: %v, then %v", out, again)
	}
	// The first value was two rotations ago: it is gone.
	if f.keyByValue(old) != nil {
		t.Fatal("the value replaced two rotations ago still points at the key")
	}

	// With a clientToken, a repeat replaces the value the first call made.
	first := f.ok("keys", rotate(obj{"gracePeriod": 60, "clientToken": "deploy-42"}))
	second := f.ok("keys", rotate(obj{"gracePeriod": 60, "clientToken": "deploy-42"}))
	if first["value"] == second["value"] || f.keyByValue(first["value"].(string)) != nil || f.keyByValue(own)["id"] != id ||
		second["previousValueExpiresAt"] != first["previousValueExpiresAt"] {
		t.Fatalf("repeated with a clientToken: %v, then %v", first, second)
	}

	f.fails("keys", rotate(nil), admin.BadRequest, "gracePeriod is required")
	f.fails("keys", rotate(obj{"gracePeriod": -1}), admin.BadRequest, "gracePeriod", "2592000")
	f.fails("keys", rotate(obj{"gracePeriod": 2592001}), admin.BadRequest, "gracePeriod", "30 days")
	f.fails("keys", rotate(obj{"gracePeriod": 1.5}), admin.BadRequest, "gracePeriod", "whole number")
	f.fails("keys", rotate(obj{"gracePeriod": 0, "value": "short"}), admin.BadRequest, "value", "20 to 128")
	f.fails("keys", rotate(obj{"gracePeriod": 0, "clientToken": strings.Repeat("t", 129)}), admin.BadRequest, "clientToken")
	_, taken := f.createKey("other")
	f.fails("keys", rotate(obj{"gracePeriod": 0, "value": taken}), admin.Conflict, "already exists")
	f.fails("keys", rotate(obj{"gracePeriod": 0, "value": own}), admin.Conflict, "previous value")
	f.fails("keys", obj{"action": "RotateApiKey", "apiKey": "nope", "gracePeriod": 0}, admin.NotFound, "nope")
	f.fails("keys", obj{"action": "RotateApiKey", "gracePeriod": 0}, admin.BadRequest, "apiKey")
	f.fails("plans", rotate(obj{"gracePeriod": 0}), admin.BadRequest, "keys function")

	// A replaced value cannot be imported again.
	res := f.ok("keys", importCSV("Name,Key\nrevived,"+own+"\n", false))
	if ids := res["ids"].([]any); len(ids) != 0 || !strings.Contains(res["warnings"].([]any)[0].(string), "RotateApiKey") {
		t.Fatalf("importing a replaced value: %v", res)
	}
}

// Imported values rotate as generated ones do, to a generated value or to
// another of the caller's own.
func TestRotateImportedKey(t *testing.T) {
	f := setup(t)
	out := f.ok("keys", importCSV("Name,Key,Enabled\nimported,"+valueA+",true\n", false))
	id := out["ids"].([]any)[0].(string)
	generated := f.ok("keys", obj{"action": "RotateApiKey", "apiKey": id, "gracePeriod": 60})
	value, _ := generated["value"].(string)
	if keys.Check(value) != nil || generated["previousValueExpiresAt"] != "2026-11-21T12:01:00+00:00" {
		t.Fatalf("rotating an imported key: %v", generated)
	}
	if f.keyByValue(valueA)["id"] != id || f.keyByValue(value)["id"] != id {
		t.Fatal("the imported and the generated value are not both the key")
	}
	own := f.ok("keys", obj{"action": "RotateApiKey", "apiKey": id, "gracePeriod": 0, "value": valueB})
	if own["value"] != valueB || f.keyByValue(valueB)["id"] != id || f.keyByValue(valueA) != nil {
		t.Fatalf("rotating to another own value: %v", own)
	}
}
