package cli

import (
	"reflect"
	"strings"
	"testing"
)

func TestShorthandParses(t *testing.T) {
	type m = map[string]any
	type l = []any
	for _, tc := range []struct {
		in   string
		want map[string]any
	}{
		{"burstLimit=2,rateLimit=1", m{"burstLimit": "2", "rateLimit": "1"}},
		{"limit=5,period=DAY", m{"limit": "5", "period": "DAY"}},
		{"a=b,c=d,e=f", m{"a": "b", "c": "d", "e": "f"}},
		// Empty values.
		{"foo=", m{"foo": ""}},
		{"foo=,bar=", m{"foo": "", "bar": ""}},
		// A comma-separated value is a list, until the next key.
		{"foo=a,b", m{"foo": l{"a", "b"}}},
		{"foo=a,b,c", m{"foo": l{"a", "b", "c"}}},
		{"foo=a,b,bar=c,d", m{"foo": l{"a", "b"}, "bar": l{"c", "d"}}},
		{"foo=a,b,c,bar=d,e,f", m{"foo": l{"a", "b", "c"}, "bar": l{"d", "e", "f"}}},
		// Spaces: inside values kept, trailing ones dropped, around , and = skipped.
		{"foo=a,b=with space", m{"foo": "a", "b": "with space"}},
		{"foo=trailing space  ", m{"foo": "trailing space"}},
		{"foo = bar , baz = qux", m{"foo": "bar", "baz": "qux"}},
		// Quoting keeps commas, spaces and = in a value.
		{`value="a,b"`, m{"value": "a,b"}},
		{`value='a,b',op=add`, m{"value": "a,b", "op": "add"}},
		{`value="with \"escaped\" quotes"`, m{"value": `with "escaped" quotes`}},
		{`value='it\'s'`, m{"value": "it's"}},
		{`value="back\\slash"`, m{"value": `back\slash`}},
		{`foo="a",'b'`, m{"foo": l{"a", "b"}}},
		// An escaped comma.
		{`foo=a\,b`, m{"foo": "a,b"}},
		{`foo=a\,b,c`, m{"foo": l{"a,b", "c"}}},
		// = and other punctuation after the first character of a first value.
		{"path=/apiStages/a1b2c3:prod/throttle//items/GET/rateLimit", m{"path": "/apiStages/a1b2c3:prod/throttle//items/GET/rateLimit"}},
		{"value=a=b", m{"value": "a=b"}},
		{"value=$default", m{"value": "$default"}},
		{"value=a1b2c3:dev", m{"value": "a1b2c3:dev"}},
		// Keys may hold - _ . # / :.
		{"team-name=x,a.b=y,c#d=z,aws:tag=w", m{"team-name": "x", "a.b": "y", "c#d": "z", "aws:tag": "w"}},
		// Explicit lists and hashes.
		{"foo=[a,b]", m{"foo": l{"a", "b"}}},
		{"foo=[]", m{"foo": l{}}},
		{"foo=[a, b ]", m{"foo": l{"a", "b"}}},
		{"foo=[a,[b,c]]", m{"foo": l{"a", l{"b", "c"}}}},
		{"foo={a=b,c=d}", m{"foo": m{"a": "b", "c": "d"}}},
		{"foo={a=[b,c]},bar=x", m{"foo": m{"a": l{"b", "c"}}, "bar": "x"}},
		{"throttle={rateLimit=1,burstLimit=2}", m{"throttle": m{"rateLimit": "1", "burstLimit": "2"}}},
		// Unicode.
		{"foo=\u2713", m{"foo": "\u2713"}},
	} {
		got, err := parseShorthand(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got  %#v\n want %#v", tc.in, got, tc.want)
		}
	}
}

func TestShorthandRejects(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"burstLimit", "Expected: '=', received: 'EOF' for input:\nburstLimit\n          ^"},
		{"foo", "Expected: '='"},
		{"foo=bar,", "received: 'EOF'"},
		{"foo=a,b,", "received: 'EOF'"},
		{`foo="unterminated`, "Expected: '<double quoted>'"},
		{`foo='unterminated`, "Expected: '<singled quoted>'"},
		{"foo=[a,b", "Expected: ','"},
		{"foo={a=b", "Expected: ','"},
		{`foo="a"b`, "Expected: ','"},
		// A } ends an unquoted value, so route paths with {id} need quotes.
		{"path=/items/{id}/GET", "Expected: ','"},
		{"a=b,a=c", `Second instance of key "a" encountered`},
	} {
		_, err := parseShorthand(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.in, err, tc.want)
		}
	}
	// With quotes, the same path parses.
	got, err := parseShorthand(`op=replace,path="/apiStages/a:prod/throttle//items/{id}/GET/rateLimit",value=2`)
	if err != nil || got["path"] != "/apiStages/a:prod/throttle//items/{id}/GET/rateLimit" {
		t.Errorf("a quoted path with braces: %v %v", got, err)
	}
}
