package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// commandOptions are the options of every command that are not members of
// its input.
type commandOptions struct {
	cliInputJSON string // the raw value, file:// resolved
	hasInputJSON bool
	skeleton     string // "" unless --generate-cli-skeleton was given
	maxItems     int
	pageSize     int
	startToken   string
	pagingGiven  map[string]bool // which of pagingFlags were given
	fromFileb    map[string]bool // members given as fileb://
}

// pagingFlags are the AWS CLI's pagination options, on paginated commands.
var pagingFlags = []string{"max-items", "page-size", "starting-token"}

// buildInput turns a command's parameters into the operation's input,
// checked against its shape: --cli-input-json first, then each flag over
// it, as the AWS CLI merges them.
func buildInput(op *Operation, params []param, readFile fileReader) (map[string]any, commandOptions, error) {
	var opts commandOptions
	shape := op.shape()
	given := map[string]any{}
	for _, p := range params {
		switch p.name {
		case "cli-input-json":
			v, err := oneValue(p)
			if err != nil {
				return nil, opts, err
			}
			if opts.cliInputJSON, err = resolveFile("--cli-input-json", v, readFile); err != nil {
				return nil, opts, err
			}
			opts.hasInputJSON = true
			continue
		case "generate-cli-skeleton":
			opts.skeleton = "input"
			if len(p.values) > 0 {
				opts.skeleton = p.values[0]
			}
			if len(p.values) > 1 || opts.skeleton != "input" {
				return nil, opts, usagef("argument --generate-cli-skeleton: Invalid choice '%s', valid choices are: input", strings.Join(p.values, " "))
			}
			continue
		case "max-items", "page-size", "starting-token":
			if !op.Paginated {
				break
			}
			v, err := oneValue(p)
			if err != nil {
				return nil, opts, err
			}
			if opts.pagingGiven == nil {
				opts.pagingGiven = map[string]bool{}
			}
			opts.pagingGiven[p.name] = true
			if p.name == "starting-token" {
				opts.startToken = v
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, opts, usagef("argument --%s: expected a whole number, 1 or more, not '%s'", p.name, v)
			}
			if p.name == "max-items" {
				opts.maxItems = n
			} else {
				opts.pageSize = n
			}
			continue
		}
		m, negated, ok := flagMember(shape, p.name)
		if !ok {
			return nil, opts, unknownFlag(op, p.name)
		}
		v, err := flagValue(m, negated, p, readFile)
		if err != nil {
			return nil, opts, err
		}
		given[m.Name] = v
		if m.Shape.Kind == Blob && len(p.values) == 1 && strings.HasPrefix(p.values[0], "fileb://") {
			if opts.fromFileb == nil {
				opts.fromFileb = map[string]bool{}
			}
			opts.fromFileb[m.Name] = true
		}
	}
	if opts.skeleton != "" {
		return nil, opts, nil
	}

	input := map[string]any{}
	if opts.hasInputJSON {
		var err error
		if input, err = decodeInputJSON(op, opts.cliInputJSON); err != nil {
			return nil, opts, err
		}
	} else {
		var missing []string
		for _, m := range op.Input {
			if _, ok := given[m.Name]; m.Required && !ok {
				missing = append(missing, "--"+kebab(m.Name))
			}
		}
		if len(missing) > 0 {
			return nil, opts, usagef("the following arguments are required: %s", strings.Join(missing, ", "))
		}
	}
	for k, v := range given {
		input[k] = v
	}
	var problems []string
	validate(shape, input, "", &problems)
	if len(problems) > 0 {
		return nil, opts, validationError(problems)
	}
	return input, opts, nil
}

// flagMember finds the member a flag names: --usage-plan-id, or for a
// boolean --enabled and --no-enabled. The paging members --limit and
// --position have flags too, undocumented, as in the AWS CLI: a script
// that pages by hand keeps working.
func flagMember(shape *Shape, flag string) (m Member, negated, ok bool) {
	for _, m := range shape.Members {
		name := kebab(m.Name)
		switch {
		case flag == name:
			return m, false, true
		case m.Shape.Kind == Boolean && flag == "no-"+name:
			return m, true, true
		}
	}
	return Member{}, false, false
}

// flags lists a command's flags, for messages and help.
func (op *Operation) flags() []string {
	var out []string
	for _, m := range op.Input {
		out = append(out, "--"+kebab(m.Name))
		if m.Shape.Kind == Boolean {
			out = append(out, "--no-"+kebab(m.Name))
		}
	}
	out = append(out, "--cli-input-json", "--generate-cli-skeleton")
	if op.Paginated {
		for _, f := range pagingFlags {
			out = append(out, "--"+f)
		}
	}
	return out
}

func unknownFlag(op *Operation, flag string) error {
	msg := fmt.Sprintf("Unknown options: --%s", flag)
	if s := suggest("--"+flag, op.flags()); s != "" {
		msg += fmt.Sprintf(", did you mean %s?", s)
	}
	return usagef("%s\n%s takes %s (tollgate %s help)", msg, op.Command(), strings.Join(op.flags(), ", "), op.Command())
}

func oneValue(p param) (string, error) {
	switch len(p.values) {
	case 0:
		return "", usagef("argument --%s: expected one argument", p.name)
	case 1:
		return p.values[0], nil
	}
	return "", usagef("Unknown options: %s", strings.Join(p.values[1:], ", "))
}

// flagValue reads a flag's arguments as its member's shape says: a scalar,
// a structure or map in shorthand or JSON, a list as separate arguments or
// one JSON list. Any argument may be file:// or fileb://.
func flagValue(m Member, negated bool, p param, readFile fileReader) (any, error) {
	flag := "--" + p.name
	s := m.Shape
	if s.Kind == Boolean {
		if len(p.values) > 0 {
			return nil, usagef("Unknown options: %s (%s takes no value: use --%s or --no-%s)", strings.Join(p.values, ", "), flag, kebab(m.Name), kebab(m.Name))
		}
		return !negated, nil
	}
	if len(p.values) == 0 {
		return nil, usagef("argument %s: expected %s", flag, expects(s))
	}
	if s.Kind != List && len(p.values) > 1 {
		return nil, usagef("Unknown options: %s (%s takes one value: quote it if it has spaces)", strings.Join(p.values[1:], ", "), flag)
	}
	values := make([]string, len(p.values))
	for i, v := range p.values {
		var err error
		if values[i], err = resolveFile(flag, v, readFile); err != nil {
			return nil, err
		}
	}
	switch s.Kind {
	case List:
		if len(values) == 1 && isJSON(values[0], '[') {
			return decodeJSONValue(flag, values[0])
		}
		list := []any{}
		for _, v := range values {
			e, err := complexValue(flag, expects(s), s.Elem, v)
			if err != nil {
				return nil, err
			}
			list = append(list, e)
		}
		return list, nil
	case Structure, Map:
		return complexValue(flag, expects(s), s, values[0])
	}
	return coerce(flag, m.Name, s, values[0])
}

// complexValue reads one structure, map or scalar from JSON or shorthand.
// A shorthand that does not parse is reported as the AWS CLI reports it,
// then with what the flag takes (its shorthand, from expects).
func complexValue(flag, takes string, s *Shape, v string) (any, error) {
	if s.Kind != Structure && s.Kind != Map {
		return coerce(flag, "", s, v)
	}
	if isJSON(v, '{') {
		return decodeJSONValue(flag, v)
	}
	parsed, err := parseShorthand(v)
	if err != nil {
		return nil, parsingError(flag, fmt.Errorf("%w\n%s takes %s (or JSON)", err, flag, takes))
	}
	return coerce(flag, "", s, parsed)
}

func isJSON(v string, open byte) bool {
	t := strings.TrimSpace(v)
	return len(t) > 0 && t[0] == open
}

// coerce gives shorthand's strings their shape's types, as the AWS CLI's
// back-compat visitor does: numbers and booleans from their text, and a
// lone value where a list goes becomes a list of one. What does not fit
// is left for validate to report.
func coerce(flag, path string, s *Shape, v any) (any, error) {
	switch s.Kind {
	case Structure:
		m, ok := v.(map[string]any)
		if !ok {
			return v, nil
		}
		out := map[string]any{}
		for k, mv := range m {
			member, ok := s.member(k)
			if !ok {
				out[k] = mv // validate names it
				continue
			}
			c, err := coerce(flag, join(path, k), member.Shape, mv)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case Map:
		m, ok := v.(map[string]any)
		if !ok {
			return v, nil
		}
		out := map[string]any{}
		for k, mv := range m {
			c, err := coerce(flag, join(path, k), s.Elem, mv)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case List:
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		out := make([]any, len(list))
		for i, e := range list {
			c, err := coerce(flag, fmt.Sprintf("%s[%d]", path, i), s.Elem, e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	text, ok := v.(string)
	if !ok {
		return v, nil
	}
	name := path
	if name == "" {
		name = "the value"
	}
	switch s.Kind {
	case Integer:
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return nil, parsingError(flag, fmt.Errorf("%s must be a whole number, not '%s'", name, text))
		}
		return float64(n), nil
	case Double:
		f, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, parsingError(flag, fmt.Errorf("%s must be a number, not '%s'", name, text))
		}
		return f, nil
	case Boolean:
		switch strings.ToLower(text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, parsingError(flag, fmt.Errorf("%s must be true or false, not '%s'", name, text))
	}
	return text, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func decodeJSONValue(flag, v string) (any, error) {
	var out any
	dec := json.NewDecoder(strings.NewReader(v))
	if err := dec.Decode(&out); err != nil {
		return nil, parsingError(flag, fmt.Errorf("Invalid JSON: %v\nJSON received: %s", err, v))
	}
	if dec.More() {
		return nil, parsingError(flag, fmt.Errorf("Invalid JSON: extra data after the value\nJSON received: %s", v))
	}
	return out, nil
}

// decodeInputJSON reads --cli-input-json. Its "action", if any, must be
// the command's own: a file from events/ works as it is.
func decodeInputJSON(op *Operation, v string) (map[string]any, error) {
	raw, err := decodeJSONValue("--cli-input-json", v)
	if err != nil {
		return nil, err
	}
	in, ok := raw.(map[string]any)
	if !ok {
		return nil, paramErrorf("Error parsing parameter '--cli-input-json': the input must be a JSON object of %s's members, such as tollgate %s --generate-cli-skeleton prints", op.Name, op.Command())
	}
	if a, ok := in["action"]; ok {
		if a != op.Name {
			return nil, paramErrorf("Error parsing parameter '--cli-input-json': its action is %v, but this is %s (%s): run the command for that action, or drop \"action\"", jsonText(a), op.Command(), op.Name)
		}
		delete(in, "action")
	}
	return in, nil
}

// validate checks a value against its shape as botocore's validator does,
// collecting every problem.
func validate(s *Shape, v any, path string, problems *[]string) {
	where := path
	if where == "" {
		where = "input"
	}
	bad := func() {
		*problems = append(*problems, fmt.Sprintf("Invalid type for parameter %s, value: %s, type: %s, valid types: %s", where, jsonText(v), typeOf(v), s.Kind))
	}
	switch s.Kind {
	case Structure:
		m, ok := v.(map[string]any)
		if !ok {
			bad()
			return
		}
		for _, member := range s.Members {
			if _, ok := m[member.Name]; member.Required && !ok {
				*problems = append(*problems, fmt.Sprintf("Missing required parameter in %s: %q", where, member.Name))
			}
		}
		keys := sortedKeys(m)
		for _, k := range keys {
			member, ok := s.member(k)
			if !ok {
				*problems = append(*problems, fmt.Sprintf("Unknown parameter in %s: %q, must be one of: %s", where, k, s.memberNames()))
				continue
			}
			validate(member.Shape, m[k], join(path, k), problems)
		}
	case Map:
		m, ok := v.(map[string]any)
		if !ok {
			bad()
			return
		}
		for _, k := range sortedKeys(m) {
			validate(s.Elem, m[k], join(path, k), problems)
		}
	case List:
		list, ok := v.([]any)
		if !ok {
			bad()
			return
		}
		for i, e := range list {
			validate(s.Elem, e, fmt.Sprintf("%s[%d]", where, i), problems)
		}
	case String, Blob:
		if _, ok := v.(string); !ok {
			bad()
		}
	case Boolean:
		if _, ok := v.(bool); !ok {
			bad()
		}
	case Integer:
		if f, ok := v.(float64); !ok || f != math.Trunc(f) {
			bad()
		}
	case Double:
		if _, ok := v.(float64); !ok {
			bad()
		}
	}
}

func typeOf(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "double"
	case []any:
		return "list"
	case map[string]any:
		return "structure"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// jsonText shows a value in a message: strings as they are, the rest as
// compact JSON.
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// expects says what a shape's flag takes, for messages and help.
func expects(s *Shape) string {
	switch s.Kind {
	case Structure:
		var parts []string
		for _, m := range s.Members {
			parts = append(parts, m.Name+"="+placeholder(m.Shape))
		}
		return strings.Join(parts, ",")
	case Map:
		return "KeyName1=" + placeholder(s.Elem) + ",KeyName2=" + placeholder(s.Elem)
	case List:
		return expects(s.Elem) + " ..."
	}
	return placeholder(s)
}

func placeholder(s *Shape) string {
	switch {
	case len(s.Enum) > 0:
		return strings.Join(s.Enum, "|")
	case s.Kind == Structure || s.Kind == Map:
		return "{...}"
	case s.Kind == List:
		return "[...]"
	case s.Kind == Blob:
		return "fileb://<file>"
	}
	return s.Kind.String()
}

// fileReader reads a file:// or fileb:// parameter's file.
type fileReader func(path string) ([]byte, error)

// resolveFile replaces file://path with the file's text and fileb://path
// with its bytes, as the AWS CLI does for every parameter.
func resolveFile(flag, v string, readFile fileReader) (string, error) {
	var path string
	switch {
	case strings.HasPrefix(v, "file://"):
		path = v[len("file://"):]
	case strings.HasPrefix(v, "fileb://"):
		path = v[len("fileb://"):]
	default:
		return v, nil
	}
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, rest)
		}
	}
	b, err := readFile(path)
	if err != nil {
		return "", parsingError(flag, fmt.Errorf("Unable to load paramfile %s: %v", v, err))
	}
	if strings.HasPrefix(v, "file://") {
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a text file's byte order mark
	}
	return string(b), nil
}

// skeleton is an input with every member set to an empty value of its
// type, as --generate-cli-skeleton prints it, and the order of its keys.
func skeleton(s *Shape, order map[string]int) any {
	switch s.Kind {
	case Structure:
		m := map[string]any{}
		for _, member := range s.Members {
			if _, ok := order[member.Name]; !ok {
				order[member.Name] = len(order)
			}
			m[member.Name] = skeleton(member.Shape, order)
		}
		return m
	case Map:
		order["KeyName"] = len(order)
		return map[string]any{"KeyName": skeleton(s.Elem, order)}
	case List:
		return []any{skeleton(s.Elem, order)}
	case Integer, Double:
		return 0.0
	case Boolean:
		return true
	}
	if len(s.Enum) > 0 {
		return s.Enum[0]
	}
	return ""
}
