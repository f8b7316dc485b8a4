package cli

import (
	"bytes"
	"strings"
	"testing"
)

const planJSON = `{"id":"c7y23b","name":"Basic","apiStages":[{"apiId":"x1","stage":"prod"}],"throttle":{"burstLimit":2,"rateLimit":1},"quota":{"limit":5,"offset":0,"period":"DAY"},"tags":{"tier":"gold"}}`

const usageJSON = `{"usagePlanId":"c7y23b","startDate":"2026-11-20","endDate":"2026-11-21","items":{"a1b2c3d4e5":[[5,0],[2,3]]}}`

func decoded(t *testing.T, s string) (any, keyOrder) {
	t.Helper()
	order := keyOrder{}
	v, err := decodeOrdered([]byte(s), order)
	if err != nil {
		t.Fatal(err)
	}
	return v, order
}

// The expected outputs follow awscli's text.py and table.py: sorted keys,
// upper-cased identifiers, sections titled and indented by a border each.
func TestTextOutput(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{planJSON, "c7y23b\tBasic\nAPISTAGES\tx1\tprod\nQUOTA\t5\t0\tDAY\nTAGS\tgold\nTHROTTLE\t2\t1\n"},
		{usageJSON, "2026-11-21\t2026-11-20\tc7y23b\nA1B2C3D4E5\t5\nA1B2C3D4E5\t0\nA1B2C3D4E5\t2\nA1B2C3D4E5\t3\n"},
		// A list of objects: one line each, under the union of their scalar keys.
		{`{"items":[{"id":"a","enabled":true},{"id":"b","name":"n"}]}`, "ITEMS\tTrue\ta\t\nITEMS\t\tb\tn\n"},
		{`["a","b"]`, "a\tb\n"},
		{`[[1,2],[3,4]]`, "1\t2\n3\t4\n"},
		{`"just a string"`, "just a string\n"},
		{`null`, "None\n"},
		{`{}`, ""},
	} {
		v, _ := decoded(t, tc.in)
		var b bytes.Buffer
		writeText(&b, v, "", nil)
		if b.String() != tc.want {
			t.Errorf("%s:\n got  %q\n want %q", tc.in, b.String(), tc.want)
		}
	}
}

func TestTableOutput(t *testing.T) {
	v, _ := decoded(t, usageJSON)
	var b bytes.Buffer
	writeTable(&b, "GetUsage", v, 80)
	want := `---------------------------------------------
|                 GetUsage                  |
+------------+--------------+---------------+
|   endDate  |  startDate   |  usagePlanId  |
+------------+--------------+---------------+
|  2026-11-21|  2026-11-20  |  c7y23b       |
+------------+--------------+---------------+
||                  items                  ||
|+-----------------------------------------+|
|||              a1b2c3d4e5               |||
||+------------------+--------------------+||
|||  5               |  0                 |||
|||  2               |  3                 |||
||+------------------+--------------------+||
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	// Too wide for the terminal: one-row sections turn vertical.
	v, _ = decoded(t, `{"id":"a1b2c3d4e5","name":"a rather long name for a key","customerId":"acme-corporation","enabled":true,"createdDate":"2026-11-21T10:28:30+00:00"}`)
	b.Reset()
	writeTable(&b, "GetApiKey", v, 80)
	want = `-------------------------------------------------
|                   GetApiKey                   |
+--------------+--------------------------------+
|  createdDate |  2026-11-21T10:28:30+00:00     |
|  customerId  |  acme-corporation              |
|  enabled     |  True                          |
|  id          |  a1b2c3d4e5                    |
|  name        |  a rather long name for a key  |
+--------------+--------------------------------+
`
	if b.String() != want {
		t.Errorf("vertical table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestJSONOutput(t *testing.T) {
	v, order := decoded(t, `{"b":"tab\tquote\" back\\ é <&>","a":[],"c":{},"d":0.5,"e":100000000,"f":null,"g":false,"h":1e-7}`)
	var b bytes.Buffer
	writeJSON(&b, v, order, 0)
	want := `{
    "b": "tab\tquote\" back\\ é <&>",
    "a": [],
    "c": {},
    "d": 0.5,
    "e": 100000000,
    "f": null,
    "g": false,
    "h": 1e-07
}`
	if b.String() != want {
		t.Errorf("json:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestQueryOutput checks --query with each format: the service's key
// order, and a multi-select hash's keys in the order written.
func TestQueryOutput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--query", "{Stage: apiStages[0].stage, Name: name, \"Quota Limit\": quota.limit}"},
			"{\n    \"Stage\": \"prod\",\n    \"Name\": \"Basic\",\n    \"Quota Limit\": 5\n}\n"},
		{[]string{"--query", "quota"}, "{\n    \"limit\": 5,\n    \"offset\": 0,\n    \"period\": \"DAY\"\n}\n"},
		{[]string{"--query", "[name, throttle.rateLimit]", "--output", "text"}, "Basic\t1\n"},
		{[]string{"--query", "apiStages[?stage=='prod'].apiId | [0]", "--output", "text"}, "x1\n"},
		{[]string{"--query", "tags", "--output", "table"}, "------------------\n|  GetUsagePlan  |\n+-------+--------+\n|  tier |  gold  |\n+-------+--------+\n"},
		{[]string{"--query", "missing"}, "null\n"},
		{[]string{"--query", "missing", "--output", "text"}, "None\n"},
	} {
		inv, err := parseArgs(append([]string{"get-usage-plan"}, tc.args...))
		if err != nil {
			t.Fatal(err)
		}
		q, err := compileQuery(inv)
		if err != nil {
			t.Fatal(err)
		}
		v, order := decoded(t, planJSON)
		var out strings.Builder
		c := &CLI{Stdout: &out, Getenv: func(string) string { return "" }}
		format, _ := c.outputFormat(inv)
		if err := c.print("GetUsagePlan", format, q, inv.globals["query"], v.(map[string]any), order, false); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("%v:\n got  %q\n want %q", tc.args, out.String(), tc.want)
		}
	}
}

func TestDefaultOutputFromTheEnvironment(t *testing.T) {
	c := &CLI{Getenv: func(k string) string { return map[string]string{"AWS_DEFAULT_OUTPUT": "text"}[k] }}
	inv, _ := parseArgs([]string{"get-api-keys"})
	if f, _ := c.outputFormat(inv); f != "text" {
		t.Errorf("AWS_DEFAULT_OUTPUT=text gave %s", f)
	}
	inv, _ = parseArgs([]string{"get-api-keys", "--output", "json"})
	if f, _ := c.outputFormat(inv); f != "json" {
		t.Errorf("--output json under AWS_DEFAULT_OUTPUT=text gave %s", f)
	}
}
