package cli

import (
	"strings"
	"unicode"
)

// Kind is a shape's type, as API Gateway's service model names them.
type Kind int

const (
	String Kind = iota
	Integer
	Double
	Boolean
	Blob // text or bytes; file:// and fileb:// read it from a file
	Structure
	List
	Map
)

func (k Kind) String() string {
	return [...]string{"string", "integer", "double", "boolean", "blob", "structure", "list", "map"}[k]
}

// Shape describes a value of an operation's input: the CLI's small copy of
// the service model, from which flags, shorthand, validation, skeletons and
// help all follow.
type Shape struct {
	Kind    Kind
	Members []Member // of a Structure
	Elem    *Shape   // of a List, or a Map's values (keys are strings)
	Enum    []string // the values a String takes, for help
}

// Member is a named field of a structure, or of an operation's input.
type Member struct {
	Name     string // camelCase, as in the payload
	Shape    *Shape
	Required bool
	Doc      string // one line, for --help
	// IdempotencyToken members are filled with a fresh UUID when the user
	// leaves them out, as botocore does for its idempotencyToken trait, so
	// that the SDK's retries of one invocation are safe.
	IdempotencyToken bool
	// paging members (limit and position) are what the paginator sets.
	// Their flags, --limit and --position, are left out of help, as the
	// AWS CLI leaves them out, and giving them turns paging off.
	paging bool
}

func (s *Shape) member(name string) (Member, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

func (s *Shape) memberNames() string {
	var names []string
	for _, m := range s.Members {
		names = append(names, m.Name)
	}
	return strings.Join(names, ", ")
}

// Operation is one entry of the command table: an admin action, the
// function that serves it, and its input shape. The subcommand's name and
// flags follow from them.
type Operation struct {
	Name     string // the action, e.g. CreateApiKey
	Function string // keys, plans or usage, unless Route picks one
	Route    *Route // for an operation that several functions serve
	Doc      string
	Input    []Member
	// Paginated operations take limit and position and answer with items
	// and a position; the CLI pages through them as the AWS CLI does.
	Paginated bool
}

// Command is the subcommand: CreateApiKey becomes create-api-key.
func (op *Operation) Command() string { return kebab(op.Name) }

// shape is the operation's input as a structure, paging members included.
func (op *Operation) shape() *Shape {
	members := op.Input
	if op.Paginated {
		members = append(append([]Member{}, members...),
			Member{Name: "position", Shape: str, paging: true, Doc: "The page to start at: one page from here, unpaged (use --starting-token)."},
			Member{Name: "limit", Shape: integer, paging: true, Doc: "Items in the one page, unpaged (use --page-size)."})
	}
	return &Shape{Kind: Structure, Members: members}
}

// kebab turns a camelCase name into a flag name: usagePlanId becomes
// usage-plan-id, and CreateApiKey create-api-key.
func kebab(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// The shapes of API Gateway's model that Tollgate's operations use.
var (
	str      = &Shape{Kind: String}
	integer  = &Shape{Kind: Integer}
	double   = &Shape{Kind: Double}
	boolean  = &Shape{Kind: Boolean}
	blob     = &Shape{Kind: Blob}
	tagMap   = &Shape{Kind: Map, Elem: str}
	throttle = &Shape{Kind: Structure, Members: []Member{
		{Name: "burstLimit", Shape: integer, Doc: "The bucket's size: the most requests at once."},
		{Name: "rateLimit", Shape: double, Doc: "Requests a second that refill the bucket."},
	}}
	quota = &Shape{Kind: Structure, Members: []Member{
		{Name: "limit", Shape: integer, Doc: "Requests a period."},
		{Name: "offset", Shape: integer, Doc: "Requests taken from the limit in the first period."},
		{Name: "period", Shape: &Shape{Kind: String, Enum: []string{"DAY", "WEEK", "MONTH"}}, Doc: "DAY, WEEK or MONTH (UTC)."},
	}}
	apiStage = &Shape{Kind: Structure, Members: []Member{
		{Name: "apiId", Shape: str, Doc: "The HTTP API's id."},
		{Name: "stage", Shape: str, Doc: "The stage's name, such as prod or $default."},
		{Name: "throttle", Shape: &Shape{Kind: Map, Elem: throttle}, Doc: "Route throttles: {\"/path/METHOD\": {rateLimit, burstLimit}}."},
	}}
	patchOperation = &Shape{Kind: Structure, Members: []Member{
		{Name: "op", Shape: &Shape{Kind: String, Enum: []string{"add", "remove", "replace", "move", "copy", "test"}}, Doc: "add, remove or replace."},
		{Name: "path", Shape: str, Doc: "What to change, such as /enabled or /throttle/rateLimit."},
		{Name: "value", Shape: str, Doc: "The new value, always a string."},
		{Name: "from", Shape: str, Doc: "For move and copy."},
	}}
	stageKey = &Shape{Kind: Structure, Members: []Member{
		{Name: "restApiId", Shape: str},
		{Name: "stageName", Shape: str},
	}}
)

func listOf(elem *Shape) *Shape { return &Shape{Kind: List, Elem: elem} }

func enum(values ...string) *Shape { return &Shape{Kind: String, Enum: values} }
