// Package cli is the tollgate command line: Tollgate's admin operations
// with the subcommands, flags, shorthand, output formats, paging, errors
// and exit codes of `aws apigateway`, so that a script written for API
// Gateway's usage plans runs with `aws apigateway` changed to `tollgate`.
//
// Calls go to the local stack's /_admin routes (--endpoint-url or
// TOLLGATE_ENDPOINT_URL), or to a deployed stack's admin functions through
// the Lambda Invoke API, with the AWS SDK's standard configuration.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jmespath/go-jmespath"
)

// CLI is one run of the command line, with what it needs injected.
type CLI struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
	// Terminal reports whether stdout is a terminal, and its width.
	Terminal   func() (tty bool, columns int)
	ReadFile   func(path string) ([]byte, error)
	HTTPClient *http.Client
	// Tokens makes the idempotency tokens that users leave out; nil makes
	// random UUIDs, as the AWS SDKs and botocore do.
	Tokens  TokenProvider
	Version string
}

// Run runs the command line args (without the program's name) and
// returns the exit code.
func (c *CLI) Run(ctx context.Context, args []string) int {
	err := c.run(ctx, args)
	return c.exit(ctx, err)
}

const usageText = `usage: tollgate [options] <command> [parameters]
To see help text, you can run:

  tollgate help
  tollgate <command> help
`

// exit prints err as the AWS CLI prints its kind and returns its code.
func (c *CLI) exit(ctx context.Context, err error) int {
	var (
		usage   *usageError
		param   *paramError
		config  *configError
		call    *callError
		service *ServiceError
	)
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		fmt.Fprintln(c.Stdout)
		return exitInterrupted
	case errors.As(err, &usage):
		fmt.Fprintf(c.Stderr, "%s\ntollgate: error: %s\n", usageText, usage.msg)
		return exitUsage
	case errors.As(err, &param):
		fmt.Fprintf(c.Stderr, "\n%s\n", param.msg)
		return exitUsage
	case errors.As(err, &config):
		fmt.Fprintf(c.Stderr, "%s\n", config.msg)
		return exitConfig
	case errors.As(err, &call):
		fmt.Fprintf(c.Stderr, "\n%s\n", call.Error())
		return exitService
	case errors.As(err, &service):
		fmt.Fprintf(c.Stderr, "\n%s\n", (&callError{op: "Unknown", err: service}).Error())
		return exitService
	}
	fmt.Fprintf(c.Stderr, "\n%s\n", err)
	return exitOther
}

func (c *CLI) run(ctx context.Context, args []string) error {
	inv, err := parseArgs(args)
	if err != nil {
		return err
	}
	switch {
	case inv.has("version"):
		fmt.Fprintf(c.Stdout, "tollgate/%s\n", c.Version)
		return nil
	case inv.command == "" && inv.help, inv.command == "help":
		c.printHelp()
		return nil
	case inv.command == "":
		return usagef("the following arguments are required: command")
	case inv.command == reportCommand:
		if inv.help {
			c.printReportHelp()
			return nil
		}
		return c.usageReport(ctx, inv)
	}
	op := operation(inv.command)
	if op == nil {
		return unknownCommand(inv.command)
	}
	if inv.help {
		c.printCommandHelp(op)
		return nil
	}
	input, opts, err := buildInput(op, inv.params, c.ReadFile)
	if err != nil {
		return err
	}
	if opts.skeleton != "" {
		order := keyOrder{}
		v := skeleton(op.shape(), order)
		var b bytes.Buffer
		writeJSON(&b, v, order, 0)
		b.WriteString("\n")
		_, err := c.Stdout.Write(b.Bytes())
		return err
	}
	if err := decodeBlobs(op, inv.globals["cli-binary-format"], input, opts); err != nil {
		return err
	}
	tokens, err := c.fillTokens(op, input)
	if err != nil {
		return err
	}
	format, err := c.outputFormat(inv)
	if err != nil {
		return err
	}
	query, err := compileQuery(inv)
	if err != nil {
		return err
	}
	invoker, err := c.invoker(inv)
	if err != nil {
		return err
	}
	order := keyOrder{}
	call := func(in map[string]any) (map[string]any, error) { return c.call(ctx, invoker, op, in, order) }
	var result map[string]any
	paginated, err := paging(op, inv, input, opts)
	if err != nil {
		return err
	}
	if paginated {
		if result, err = paginate(call, input, opts); err != nil {
			return err
		}
	} else {
		if result, err = call(input); err != nil {
			return tokenAdvice(ctx, op, tokens, err)
		}
	}
	return c.print(op.Name, format, query, inv.globals["query"], result, order, paginated)
}

func unknownCommand(name string) error {
	var names []string
	for _, op := range operations {
		names = append(names, op.Command())
	}
	names = append(names, reportCommand)
	msg := fmt.Sprintf("argument command: Invalid choice '%s'", name)
	if s := suggest(name, names); s != "" {
		msg += fmt.Sprintf(", did you mean %s?", s)
	}
	return usagef("%s Valid choices are:\n\n  %s", msg, strings.Join(names, "\n  "))
}

// outputFormat is --output, else AWS_DEFAULT_OUTPUT, else json.
func (c *CLI) outputFormat(inv *invocation) (string, error) {
	if v, ok := inv.globals["output"]; ok {
		if !slices.Contains([]string{"json", "text", "table"}, v) {
			return "", usagef("argument --output: Invalid choice '%s', valid choices are: json, text, table (and csv for %s)", v, reportCommand)
		}
		return v, nil
	}
	if v := c.Getenv("AWS_DEFAULT_OUTPUT"); v != "" {
		if !slices.Contains([]string{"json", "text", "table"}, v) {
			return "", &configError{fmt.Sprintf("AWS_DEFAULT_OUTPUT=%q: tollgate prints json, text or table", v)}
		}
		return v, nil
	}
	return "json", nil
}

func compileQuery(inv *invocation) (*jmespath.JMESPath, error) {
	q, ok := inv.globals["query"]
	if !ok {
		return nil, nil
	}
	compiled, err := jmespath.Compile(q)
	if err != nil {
		return nil, usagef("argument --query: Bad value for --query %s: %v", q, err)
	}
	return compiled, nil
}

// invoker is the local stack when an endpoint is given, else the
// deployed stack's functions.
func (c *CLI) invoker(inv *invocation) (Invoker, error) {
	endpoint, from := inv.globals["endpoint-url"], "--endpoint-url"
	if endpoint == "" {
		endpoint, from = c.Getenv("TOLLGATE_ENDPOINT_URL"), "TOLLGATE_ENDPOINT_URL"
	}
	if endpoint != "" {
		client := c.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 60 * time.Second}
		}
		return newLocalStack(endpoint, from, client)
	}
	pick := func(flag, env string) string {
		if v := inv.globals[flag]; v != "" {
			return v
		}
		return env
	}
	stack := pick("stack", c.Getenv("TOLLGATE_STACK"))
	if stack == "" {
		stack = DefaultStack
	}
	return &deployed{
		profile: inv.globals["profile"], region: inv.globals["region"], stack: stack,
		names: map[string]string{
			"keys":  pick("keys-function", c.Getenv("TOLLGATE_KEYS_FUNCTION")),
			"plans": pick("plans-function", c.Getenv("TOLLGATE_PLANS_FUNCTION")),
			"usage": pick("usage-function", c.Getenv("TOLLGATE_USAGE_FUNCTION")),
		},
	}, nil
}

// call runs one operation and decodes its answer, noting its key order.
func (c *CLI) call(ctx context.Context, invoker Invoker, op *Operation, input map[string]any, order keyOrder) (map[string]any, error) {
	fn, err := op.function(input)
	if err != nil {
		return nil, err
	}
	payload := map[string]any{"action": op.Name}
	for k, v := range input {
		payload[k] = v
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	resp, err := invoker.Invoke(ctx, fn, b)
	if err != nil {
		if se, ok := asServiceError(err); ok {
			return nil, &callError{op: op.Name, err: se}
		}
		return nil, err
	}
	v, err := decodeOrdered(resp, order)
	if err != nil {
		return nil, fmt.Errorf("the %s function answered %s with something other than JSON: %v", fn, op.Name, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the %s function answered %s with a JSON %s, not an object", fn, op.Name, typeOf(v))
	}
	return m, nil
}

// print writes the result in the chosen format, after the query.
func (c *CLI) print(title, format string, query *jmespath.JMESPath, queryText string, result map[string]any, order keyOrder, paginated bool) error {
	var v any = result
	var nextToken any
	if format == "text" && paginated && query == nil {
		// As the AWS CLI does, text prints the resume token last, apart.
		if t, ok := result[nextTokenKey]; ok {
			nextToken = t
			delete(result, nextTokenKey)
		}
	}
	if query != nil {
		out, err := query.Search(v)
		if err != nil {
			return fmt.Errorf("--query %s: %v", queryText, err)
		}
		v = out
		q := keyOrder{}
		queryKeys(queryText, q)
		for _, k := range order.sorted(rankedKeys(order)) {
			q.add(k)
		}
		order = q
	}
	var b bytes.Buffer
	switch format {
	case "text":
		writeText(&b, v, "", nil)
		if nextToken != nil {
			writeText(&b, map[string]any{nextTokenKey: map[string]any{nextTokenKey: nextToken}}, "", nil)
		}
	case "table":
		width := 80
		if tty, cols := c.terminal(); tty && cols > 0 {
			width = cols
		}
		writeTable(&b, title, v, width)
	default:
		if m, ok := v.(map[string]any); ok && len(m) == 0 {
			return nil // a delete's empty answer prints nothing
		}
		writeJSON(&b, v, order, 0)
		b.WriteString("\n")
	}
	_, err := c.Stdout.Write(b.Bytes())
	return err
}

func rankedKeys(o keyOrder) map[string]any {
	m := make(map[string]any, len(o))
	for k := range o {
		m[k] = nil
	}
	return m
}

func (c *CLI) terminal() (bool, int) {
	if c.Terminal == nil {
		return false, 0
	}
	return c.Terminal()
}
