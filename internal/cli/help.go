package cli

import (
	"fmt"
	"io"
)

const about = `tollgate manages Tollgate's API keys, usage plans and usage with the commands,
flags, shorthand, output and exit codes of "aws apigateway": change
"aws apigateway" to "tollgate" and a script keeps working.

Calls go to the local stack (make run) with --endpoint-url or
TOLLGATE_ENDPOINT_URL; otherwise to the deployed stack's admin functions,
through the Lambda Invoke API with your AWS configuration.`

func (c *CLI) printHelp() {
	w := c.Stdout
	fmt.Fprintf(w, "usage: tollgate [options] <command> [parameters]\n\n%s\n\nCommands:\n", about)
	for _, op := range operations {
		fmt.Fprintf(w, "  %-24s %s\n", op.Command(), op.Doc)
	}
	fmt.Fprintf(w, "  %-24s %s\n", reportCommand, reportDoc)
	fmt.Fprintln(w, "\nGlobal options:")
	printGlobals(w)
	fmt.Fprintln(w, "\nExit codes: 0 success, 252 bad command line or parameter, 253 bad configuration,\n254 the service answered with an error, 255 anything else, 130 interrupted.")
}

func printGlobals(w io.Writer) {
	for _, g := range globalOptions {
		spec := "--" + g.name
		if g.value != "" {
			spec += " " + g.value
		}
		option(w, spec, g.doc)
	}
}

// option prints one flag and its help on one line.
func option(w io.Writer, spec, doc string) {
	if len(spec) > 38 {
		fmt.Fprintf(w, "  %s  %s\n", spec, doc)
		return
	}
	fmt.Fprintf(w, "  %-38s  %s\n", spec, doc)
}

func (c *CLI) printCommandHelp(op *Operation) {
	w := c.Stdout
	served := "the " + op.Function + " function"
	if op.Route != nil {
		served = op.Route.served()
	}
	fmt.Fprintf(w, "tollgate %s: %s\n(%s, served by %s)\n\nusage: tollgate %s", op.Command(), op.Doc, op.Name, served, op.Command())
	for _, m := range op.Input {
		s := flagSpec(m)
		if !m.Required {
			s = "[" + s + "]"
		}
		fmt.Fprintf(w, " %s", s)
	}
	fmt.Fprint(w, " [--cli-input-json <json>] [--generate-cli-skeleton]")
	if op.Paginated {
		fmt.Fprint(w, " [--max-items <n>] [--page-size <n>] [--starting-token <token>]")
	}
	fmt.Fprintln(w, "\n\nOptions:")
	for _, m := range op.Input {
		doc := m.Doc
		if m.Required {
			doc += " Required."
		}
		option(w, flagSpec(m), doc)
	}
	option(w, "--cli-input-json <json>", "The whole input as JSON (file://x.json); flags override its members.")
	option(w, "--generate-cli-skeleton", "Print an empty input for --cli-input-json, and call nothing.")
	if op.Paginated {
		option(w, "--max-items <n>", "Print at most n items; if more remain, a NextToken.")
		option(w, "--page-size <n>", "Items per call (the service's limit); the output is the same.")
		option(w, "--starting-token <token>", "Resume from a NextToken that a --max-items run printed.")
	}
	fmt.Fprintln(w, "\nGlobal options (tollgate help): --output, --query, --endpoint-url, --profile, --region, --stack,\n--keys-function, --plans-function, --usage-function, --no-paginate.")
}

// flagSpec is a member's flag and what it takes: --name <string>,
// --enabled | --no-enabled, --throttle burstLimit=integer,rateLimit=double.
func flagSpec(m Member) string {
	name := "--" + kebab(m.Name)
	switch m.Shape.Kind {
	case Boolean:
		return name + " | --no-" + kebab(m.Name)
	case Structure, Map, List:
		return name + " " + expects(m.Shape)
	}
	return name + " <" + placeholder(m.Shape) + ">"
}
