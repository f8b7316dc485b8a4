// Package resourcearn reads the ARNs of the resources Tollgate tags, as
// API Gateway names them: arn:aws:apigateway:<region>::/usageplans/<id>
// and arn:aws:apigateway:<region>::/apikeys/<id>. The admin functions and
// the tollgate command line read them with it, so that both accept the
// same ARNs and explain a bad one in the same words.
package resourcearn

import (
	"errors"
	"fmt"
	"strings"
)

// Resource kinds, as an ARN's path names them.
const (
	APIKeys    = "apikeys"
	UsagePlans = "usageplans"
)

// Forms says what an ARN looks like, for messages.
const Forms = "arn:aws:apigateway:<region>::/usageplans/<id> or arn:aws:apigateway:<region>::/apikeys/<id>"

// ARN is a parsed resource ARN: the kind of resource and its id.
type ARN struct{ Kind, ID string }

var kinds = map[string]bool{APIKeys: true, UsagePlans: true}

// Parse reads a resourceArn. The region and the partition are not
// checked: Tollgate has one table per deployment. Its errors say what an
// ARN looks like.
func Parse(arn string) (ARN, error) {
	if arn == "" {
		return ARN{}, errors.New("resourceArn is required: " + Forms)
	}
	bad := fmt.Errorf("resourceArn must be %s, not %q", Forms, arn)
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "apigateway" || parts[4] != "" {
		return ARN{}, bad
	}
	kind, id, ok := strings.Cut(strings.TrimPrefix(parts[5], "/"), "/")
	if !ok || !strings.HasPrefix(parts[5], "/") || id == "" || strings.Contains(id, "/") {
		return ARN{}, bad
	}
	if !kinds[kind] {
		return ARN{}, fmt.Errorf("resourceArn %q: Tollgate tags usage plans (::/usageplans/<id>) and API keys (::/apikeys/<id>), not %s", arn, kind)
	}
	return ARN{Kind: kind, ID: id}, nil
}
