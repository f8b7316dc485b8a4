package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/keys"
	"github.com/tollgate-dev/tollgate/internal/store"
)

func identitiesOf(k obj) string {
	var out []string
	ids, _ := k["identities"].([]any)
	for _, id := range ids {
		out = append(out, id.(string))
	}
	return strings.Join(out, ",")
}

func patch(keyID, op, value string) obj {
	return obj{"action": "UpdateApiKey", "apiKey": keyID, "patchOperations": []obj{{"op": op, "path": "/identities", "value": value}}}
}

func TestIdentitiesOnKeys(t *testing.T) {
	f := setup(t)
	// Identities and no value: a value is generated all the same.
	k := f.ok("keys", obj{"action": "CreateApiKey", "name": "app", "identities": []string{"auth0|5f7c", "3n4b5c6d7e8f9g0h1i2j3k4l5m"}})
	id := k["id"].(string)
	if identitiesOf(k) != "auth0|5f7c,3n4b5c6d7e8f9g0h1i2j3k4l5m" || keys.Check(k["value"].(string)) != nil {
		t.Fatalf("CreateApiKey = %v", k)
	}
	if got := f.ok("keys", obj{"action": "GetApiKey", "apiKey": id}); identitiesOf(got) != identitiesOf(k) {
		t.Fatalf("GetApiKey = %v", got)
	}
	list := f.ok("keys", obj{"action": "GetApiKeys"})["items"].([]any)
	if len(list) != 1 || identitiesOf(list[0].(obj)) != identitiesOf(k) {
		t.Fatalf("GetApiKeys = %v", list)
	}
	// A key without identities shows none.
	plainID, _ := f.createKey("plain")
	if got := f.ok("keys", obj{"action": "GetApiKey", "apiKey": plainID}); got["identities"] != nil {
		t.Fatalf("a key without identities: %v", got)
	}

	// add and remove, one at a time or several in one update.
	if got := f.ok("keys", patch(id, "add", "bob")); identitiesOf(got) != "auth0|5f7c,3n4b5c6d7e8f9g0h1i2j3k4l5m,bob" {
		t.Fatalf("add: %v", got)
	}
	if got := f.ok("keys", patch(id, "add", "bob")); identitiesOf(got) != "auth0|5f7c,3n4b5c6d7e8f9g0h1i2j3k4l5m,bob" {
		t.Fatalf("adding again changes nothing: %v", got)
	}
	got := f.ok("keys", obj{"action": "UpdateApiKey", "apiKey": id, "patchOperations": []obj{
		{"op": "remove", "path": "/identities", "value": "auth0|5f7c"},
		{"op": "replace", "path": "/name", "value": "renamed"},
		{"op": "remove", "path": "/identities", "value": "3n4b5c6d7e8f9g0h1i2j3k4l5m"},
	}})
	if identitiesOf(got) != "bob" || got["name"] != "renamed" {
		t.Fatalf("remove: %v", got)
	}
	f.fails("keys", patch(id, "remove", "bobb"), admin.NotFound, `"bobb"`, `"bob"`)

	// One key per identity: a second claim names the holder.
	f.fails("keys", patch(plainID, "add", "bob"), admin.Conflict, `"bob"`, id)
	f.fails("keys", obj{"action": "CreateApiKey", "name": "thief", "identities": []string{"bob"}}, admin.Conflict, id)

	// Bad identities and operations.
	for _, tt := range []struct {
		in    obj
		typ   string
		words []string
	}{
		{obj{"action": "CreateApiKey", "identities": []string{""}}, admin.BadRequest, []string{"identities[0]", "empty"}},
		{obj{"action": "CreateApiKey", "identities": []string{" alice"}}, admin.BadRequest, []string{"whitespace"}},
		{obj{"action": "CreateApiKey", "identities": []string{"a\x00b"}}, admin.BadRequest, []string{"control"}},
		{obj{"action": "CreateApiKey", "identities": []string{"a", "a"}}, admin.BadRequest, []string{"twice"}},
		{obj{"action": "CreateApiKey", "identities": []string{strings.Repeat("x", 1025)}}, admin.BadRequest, []string{"1024"}},
		{obj{"action": "CreateApiKey", "identities": "alice"}, admin.BadRequest, []string{"identities", "list"}},
		{patch(id, "replace", "carol"), admin.BadRequest, []string{"add or remove"}},
		{patch(id, "add", ""), admin.BadRequest, []string{"empty"}},
		{obj{"action": "UpdateApiKey", "apiKey": id, "patchOperations": []obj{{"op": "add", "path": "/name", "value": "x"}}}, admin.BadRequest, []string{"replace", "/identities"}},
	} {
		f.fails("keys", tt.in, tt.typ, tt.words...)
	}
	var many []string
	for i := range store.MaxIdentities + 1 {
		many = append(many, fmt.Sprint("user-", i))
	}
	f.fails("keys", obj{"action": "CreateApiKey", "identities": many}, admin.LimitExceeded, "25")

	// Deleting the key frees its identities.
	f.ok("keys", obj{"action": "DeleteApiKey", "apiKey": id})
	f.ok("keys", patch(plainID, "add", "bob"))
}

func TestImportIdentities(t *testing.T) {
	f := setup(t)
	taken := f.ok("keys", obj{"action": "CreateApiKey", "name": "holder", "identities": []string{"taken"}})["id"].(string)
	body := "Name,Key,Identities\n" +
		"one," + valueA + ", alice ; auth0|bob ;\n" +
		"two," + valueB + ",\n" +
		"three," + valueC + ",taken\n" +
		"four,importvaluedddddddddddddddd4,alice\n"
	out := f.ok("keys", importCSV(body, false))
	warnings := fmt.Sprint(out["warnings"])
	if len(out["ids"].([]any)) != 2 || !strings.Contains(warnings, "line 4: identity \"taken\" already belongs to API key "+taken) ||
		!strings.Contains(warnings, "line 5: identity \"alice\" is on line 2") {
		t.Fatalf("ImportApiKeys = %v", out)
	}
	if a := f.keyByValue(valueA); identitiesOf(a) != "alice,auth0|bob" {
		t.Fatalf("imported identities: %v", a)
	}
	if b := f.keyByValue(valueB); b["identities"] != nil {
		t.Fatalf("an empty cell: %v", b)
	}
	// Importing a value again overwrites its key's identities when the
	// cell lists some, and keeps them when it is empty.
	f.ok("keys", importCSV("Name,Key,Identities\none,"+valueA+",carol\ntwo,"+valueB+",\n", true))
	if a := f.keyByValue(valueA); identitiesOf(a) != "carol" {
		t.Fatalf("re-imported: %v", a)
	}
	if k, err := f.tbl.KeyByIdentity(context.Background(), "alice"); !store.IsKind(err, store.NotFound) {
		t.Fatalf("an identity the re-import dropped: %v, %v", k, err)
	}
}
