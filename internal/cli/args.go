package cli

import (
	"slices"
	"strings"
)

// globalOption is an option every command takes, before or after it.
type globalOption struct {
	name    string
	value   string // what it takes, for help; "" for a switch
	choices []string
	doc     string
}

var globalOptions = []globalOption{
	{name: "output", value: "json|text|table", doc: "The output format (default json, or AWS_DEFAULT_OUTPUT)."},
	{name: "query", value: "<jmespath>", doc: "A JMESPath expression applied to the result of all pages."},
	{name: "endpoint-url", value: "<url>", doc: "The local stack (make run), e.g. http://localhost:8080; or TOLLGATE_ENDPOINT_URL."},
	{name: "profile", value: "<name>", doc: "The AWS profile to use (or AWS_PROFILE)."},
	{name: "region", value: "<region>", doc: "The AWS region (or AWS_REGION)."},
	{name: "stack", value: "<name>", doc: "The CloudFormation stack whose outputs name the functions (default Tollgate)."},
	{name: "keys-function", value: "<name>", doc: "The keys function's name or ARN (or TOLLGATE_KEYS_FUNCTION)."},
	{name: "plans-function", value: "<name>", doc: "The plans function's name or ARN (or TOLLGATE_PLANS_FUNCTION)."},
	{name: "usage-function", value: "<name>", doc: "The usage function's name or ARN (or TOLLGATE_USAGE_FUNCTION)."},
	{name: "cli-binary-format", value: "base64|raw-in-base64-out", choices: []string{binaryBase64, binaryRaw}, doc: "How --body is read inline or with file://: raw-in-base64-out (tollgate's default) or base64."},
	{name: "color", value: "on|off|auto", choices: []string{"on", "off", "auto"}, doc: "Colour in usage-report (auto: only on a terminal)."},
	{name: "no-paginate", doc: "Make one call and print its page as it came."},
	{name: "no-cli-pager", doc: "Accepted for the AWS CLI's sake; tollgate never pages output."},
	{name: "version", doc: "Print tollgate's version."},
	{name: "help", doc: "Print help (also: tollgate <command> help)."},
}

func global(name string) *globalOption {
	for i := range globalOptions {
		if globalOptions[i].name == name {
			return &globalOptions[i]
		}
	}
	return nil
}

// param is one command flag as given: its name (without --) and the
// arguments that followed it up to the next flag.
type param struct {
	name   string
	values []string
}

// invocation is a command line, split into global options, the command
// and its parameters.
type invocation struct {
	globals map[string]string // set global options; switches map to ""
	command string
	params  []param
	help    bool
}

func (inv *invocation) has(name string) bool {
	_, ok := inv.globals[name]
	return ok
}

// parseArgs splits the command line as the AWS CLI does: global options
// anywhere, the command first among the rest, and each command flag
// taking the arguments up to the next one.
func parseArgs(args []string) (*invocation, error) {
	inv := &invocation{globals: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" {
			inv.help = true
			continue
		}
		if !strings.HasPrefix(a, "--") {
			switch {
			case inv.command == "":
				inv.command = a
			case inv.command == "help" && !inv.help: // tollgate help <command>
				inv.command, inv.help = a, true
			case a == "help" && len(inv.params) == 0:
				inv.help = true
			default:
				return nil, usagef("Unknown options: %s", a)
			}
			continue
		}
		name, inline, hasInline := strings.Cut(a[2:], "=")
		if g := global(name); g != nil {
			if name == "help" {
				inv.help = true
				continue
			}
			if g.value == "" {
				if hasInline {
					return nil, usagef("argument --%s: takes no value", name)
				}
				inv.globals[name] = ""
				continue
			}
			v := inline
			if !hasInline {
				if i+1 >= len(args) || strings.HasPrefix(args[i+1], "--") {
					return nil, usagef("argument --%s: expected one argument", name)
				}
				i++
				v = args[i]
			}
			if g.choices != nil && !slices.Contains(g.choices, v) {
				return nil, usagef("argument --%s: Invalid choice '%s', valid choices are: %s", name, v, strings.Join(g.choices, ", "))
			}
			inv.globals[name] = v
			continue
		}
		if inv.command == "" {
			return nil, usagef("Unknown options: %s (options that are not global go after the command)", a)
		}
		p := param{name: name}
		if hasInline {
			p.values = append(p.values, inline)
		}
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") && !(hasInline && len(p.values) > 0) {
			i++
			p.values = append(p.values, args[i])
		}
		inv.params = append(inv.params, p)
	}
	return inv, nil
}

// suggest picks the candidate closest to name, if any is close.
func suggest(name string, candidates []string) string {
	best, bestDist := "", len(name)/2+2
	for _, c := range candidates {
		if d := distance(name, c); d < bestDist || (strings.HasPrefix(c, name) && best == "") {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
