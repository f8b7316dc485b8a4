package admin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/admin"
	"github.com/tollgate-dev/tollgate/internal/keys"
)

const (
	valueA = "importvalueaaaaaaaaaaaaaaa1"
	valueB = "importvaluebbbbbbbbbbbbbbbb2"
	valueC = "importvaluecccccccccccccccc3"
)

func importCSV(body string, failOnWarnings bool) obj {
	return obj{"action": "ImportApiKeys", "format": "csv", "body": body, "failOnWarnings": failOnWarnings}
}

// keyByValue finds a key's record through the store, as the authorizer does.
func (f *fixture) keyByValue(value string) obj {
	f.t.Helper()
	k, err := f.tbl.KeyByHash(context.Background(), keys.Hash(value))
	if err != nil {
		return nil
	}
	return f.ok("keys", obj{"action": "GetApiKey", "apiKey": k.ID})
}

func (f *fixture) plansOf(keyID string) []string {
	out := f.ok("plans", obj{"action": "GetUsagePlans", "keyId": keyID})
	var ids []string
	for _, it := range out["items"].([]any) {
		ids = append(ids, it.(obj)["id"].(string))
	}
	return ids
}

func TestImportApiKeys(t *testing.T) {
	f := setup(t)
	p1 := f.createPlan(obj{"apiStages": stages("prod")})
	p2 := f.createPlan(obj{"apiStages": stages("beta")})
	overlap := f.createPlan(obj{"apiStages": stages("prod")})

	// Odd header case and order, an unknown column, both quote styles, a
	// name with an apostrophe, blank fields and padding.
	body := "enabled, KEY ,Notes,name,UsagePlanIDs,description\n" +
		"tRuE," + valueA + ",ignored,Bob's key,\"" + p1 + "," + p2 + "\",first\n" +
		"false ," + valueB + ",x, second ,'" + p1 + "',\n" +
		"\n" +
		"," + valueC + ",,third,,\n"
	out := f.ok("keys", importCSV(body, false))
	if ids := out["ids"].([]any); len(ids) != 3 || len(out["warnings"].([]any)) != 0 {
		t.Fatalf("ImportApiKeys = %v", out)
	}
	a, b, c := f.keyByValue(valueA), f.keyByValue(valueB), f.keyByValue(valueC)
	if a["name"] != "Bob's key" || a["description"] != "first" || a["enabled"] != true {
		t.Errorf("first key = %v", a)
	}
	if b["name"] != "second" || b["enabled"] != false {
		t.Errorf("second key = %v", b)
	}
	if c["name"] != "third" || c["enabled"] != true {
		t.Errorf("third key (Enabled left blank defaults to true) = %v", c)
	}
	if got := f.plansOf(a["id"].(string)); len(got) != 2 {
		t.Errorf("first key's plans = %v, want %s and %s", got, p1, p2)
	}
	if got := f.plansOf(b["id"].(string)); len(got) != 1 || got[0] != p1 {
		t.Errorf("second key's plans = %v, want %s", got, p1)
	}

	// Importing a value again overwrites that key, keeping its id.
	again := f.ok("keys", importCSV("Name,Key,Enabled\nrenamed,"+valueB+",true\n", false))
	if again["ids"].([]any)[0] != b["id"] {
		t.Fatalf("re-import made a new key: %v, want id %v", again, b["id"])
	}
	if got := f.keyByValue(valueB); got["name"] != "renamed" || got["enabled"] != true {
		t.Fatalf("re-imported key = %v", got)
	}

	// Bad rows are skipped with warnings naming their lines.
	bad := "Name,Key,Enabled,UsagePlanIds\n" +
		"short,tooshort,true,\n" + // line 2
		"dup-one,importvalueddddddddddddddd4,true,\n" +
		"dup-two,importvalueddddddddddddddd4,true,\n" + // line 4
		"flag,importvalueeeeeeeeeeeeeeee5,maybe,\n" + // line 5
		"ghost,importvalueffffffffffffffff6,true,nosuchplan\n" + // line 6
		"clash,importvaluegggggggggggggggg7,true,\"" + p1 + "," + overlap + "\"\n" + // line 7
		"good,importvaluehhhhhhhhhhhhhhhh8,true," + p2 + "\n"
	out = f.ok("keys", importCSV(bad, false))
	warnings := out["warnings"].([]any)
	for _, want := range []string{"line 2: Key", "line 4: the same Key as line 3", "line 5: Enabled", "line 6: usage plan nosuchplan", "line 7: usage plans"} {
		found := false
		for _, w := range warnings {
			found = found || strings.HasPrefix(w.(string), want)
		}
		if !found {
			t.Errorf("no warning starting %q in %v", want, warnings)
		}
	}
	if ids := out["ids"].([]any); len(ids) != 2 {
		t.Errorf("imported %v, want dup-one and good", ids)
	}
}

func TestImportFailOnWarningsWritesNothing(t *testing.T) {
	f := setup(t)
	p1 := f.createPlan(obj{"apiStages": stages("prod")})
	body := "Name,Key,UsagePlanIds\nfine," + valueA + "," + p1 + "\nbroken,short,\n"
	f.fails("keys", importCSV(body, true), admin.BadRequest, "nothing was imported", "line 3")
	if f.keyByValue(valueA) != nil {
		t.Fatal("failOnWarnings wrote a key")
	}
	// A conflict only the table knows: the existing key already has a plan
	// for the stage.
	holder := f.createPlan(obj{"apiStages": stages("prod")})
	id := f.ok("keys", obj{"action": "CreateApiKey", "value": valueB})["id"].(string)
	f.ok("plans", obj{"action": "CreateUsagePlanKey", "usagePlanId": holder, "keyId": id, "keyType": "API_KEY"})
	f.fails("keys", importCSV("Name,Key,UsagePlanIds\nnew,"+valueA+",\nexisting,"+valueB+","+p1+"\n", true), admin.BadRequest, holder)
	if f.keyByValue(valueA) != nil || f.keyByValue(valueB)["name"] == "existing" {
		t.Fatal("failOnWarnings changed the table")
	}
}

func TestImportRejectsUnreadableCSV(t *testing.T) {
	f := setup(t)
	tests := []struct {
		name, body string
		words      []string
	}{
		{"empty", "", []string{"empty"}},
		{"no Key column", "Name,Value\na,b\n", []string{`"key"`, "Name and Key"}},
		{"no Name column", "Key\n" + valueA + "\n", []string{`"name"`}},
		{"unclosed quote", "Name,Key\n\"open," + valueA + "\n", []string{"never closed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.fails("keys", importCSV(tt.body, false), admin.BadRequest, tt.words...)
		})
	}
	f.fails("keys", obj{"action": "ImportApiKeys", "body": "Name,Key\n"}, admin.BadRequest, `"csv"`)
}
