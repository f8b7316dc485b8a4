package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tollgate-dev/tollgate/internal/resourcearn"
)

// Route picks the function that serves a call from one member of its
// input, for an operation that several functions serve, each for its own
// kind of resource: API Gateway's tag operations take any resource's ARN,
// and Tollgate's keys function serves API keys' tags, the plans function
// usage plans'.
type Route struct {
	Member string // the input member that names the resource
	// Kind reads the kind of resource a member's value names, or says
	// what the value should look like.
	Kind func(value string) (string, error)
	// Functions maps each kind to the function that serves it.
	Functions map[string]string
}

// byResourceArn routes on API Gateway's resourceArn.
var byResourceArn = &Route{
	Member: "resourceArn",
	Kind: func(v string) (string, error) {
		arn, err := resourcearn.Parse(v)
		return arn.Kind, err
	},
	Functions: map[string]string{resourcearn.APIKeys: "keys", resourcearn.UsagePlans: "plans"},
}

// function picks the function for a validated input. A value that names
// no kind it routes is a parameter error, found before any call.
func (r *Route) function(input map[string]any) (string, error) {
	v, _ := input[r.Member].(string)
	kind, err := r.Kind(v)
	if err != nil {
		return "", parsingError("--"+kebab(r.Member), err)
	}
	fn, ok := r.Functions[kind]
	if !ok {
		return "", parsingError("--"+kebab(r.Member), fmt.Errorf("tollgate sends no call for %s %q: it knows %s", kind, v, strings.Join(sortedKeys(r.Functions), ", ")))
	}
	return fn, nil
}

// served says which functions serve the operation, for help: "the
// function its resourceArn names: keys for apikeys, plans for usageplans".
func (r *Route) served() string {
	var parts []string
	for _, kind := range sortedKeys(r.Functions) {
		parts = append(parts, r.Functions[kind]+" for "+kind)
	}
	return fmt.Sprintf("the function its %s names: %s", r.Member, strings.Join(parts, ", "))
}

// function is the function that serves a call of op with input.
func (op *Operation) function(input map[string]any) (string, error) {
	if op.Route == nil {
		return op.Function, nil
	}
	return op.Route.function(input)
}

// functions lists every function that may serve op.
func (op *Operation) functions() []string {
	if op.Route == nil {
		return []string{op.Function}
	}
	var fns []string
	for _, fn := range op.Route.Functions {
		if !slices.Contains(fns, fn) {
			fns = append(fns, fn)
		}
	}
	slices.Sort(fns)
	return fns
}
