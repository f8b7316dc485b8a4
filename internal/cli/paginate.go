package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

const nextTokenKey = "NextToken"

// paging says whether a call of op pages, as the AWS CLI decides: a
// paginated operation does, unless --no-paginate is given or the input
// has the service's own paging members (--limit, --position, or either in
// --cli-input-json), which mean paging by hand. Without paging, the
// CLI's paging options are a parameter error, as they are in the AWS CLI.
func paging(op *Operation, inv *invocation, input map[string]any, opts commandOptions) (bool, error) {
	if !op.Paginated {
		return false, nil
	}
	_, limit := input["limit"]
	_, position := input["position"]
	if !inv.has("no-paginate") && !limit && !position {
		return true, nil
	}
	var given []string
	for _, f := range []string{"starting-token", "page-size", "max-items"} { // the AWS CLI's order
		if opts.pagingGiven[f] {
			given = append(given, "--"+f)
		}
	}
	if len(given) == 0 {
		return false, nil
	}
	msg := "Cannot specify --no-paginate along with pagination arguments: " + strings.Join(given, ", ")
	if !inv.has("no-paginate") {
		// The AWS CLI's words name a flag the caller did not give.
		msg += "\n--limit and --position page by hand, which turns paging off: drop them to page with " + strings.Join(given, ", ")
	}
	return false, paramErrorf("%s", msg)
}

// paginate pages through a listing as botocore's paginator does for the
// AWS CLI: it calls with each page's position until none is left, or until
// --max-items items, and merges the pages into one result without the
// service's position. When items remain, the result has a NextToken, which
// --starting-token resumes from, even in the middle of a page. --page-size
// sets each call's limit. Items are a list, or (GetUsage) a map by key.
func paginate(call func(map[string]any) (map[string]any, error), input map[string]any, opts commandOptions) (map[string]any, error) {
	if input["format"] == "csv" && opts.maxItems > 0 {
		return nil, usagef("argument --max-items: counts items, and --format csv answers with a body: page it by hand with --limit and --position instead")
	}
	var position any // the position the current page was asked for, or nil
	if p, ok := input["position"].(string); ok && p != "" {
		position = p
	}
	skip := 0
	if opts.startToken != "" {
		var err error
		if position, skip, err = decodeToken(opts.startToken); err != nil {
			return nil, err
		}
		delete(input, "position")
		if p, ok := position.(string); ok {
			input["position"] = p
		}
	}
	if opts.pageSize > 0 {
		input["limit"] = float64(opts.pageSize)
	}
	result := map[string]any{}
	var items any
	total := 0
	for first := true; ; first = false {
		page, err := call(input)
		if err != nil {
			return nil, err
		}
		if first {
			for k, v := range page {
				if k != "items" && k != "position" && k != "body" {
					result[k] = v
				}
			}
		}
		got := pageItems(page)
		truncated := 0
		if first && skip > 0 {
			got = dropItems(got, skip)
			truncated = skip
		}
		n := countItems(got)
		if opts.maxItems > 0 && total+n > opts.maxItems {
			keep := opts.maxItems - total
			items = mergeItems(items, takeItems(got, keep))
			result[nextTokenKey] = encodeToken(position, keep+truncated)
			break
		}
		items = mergeItems(items, got)
		total += n
		next, _ := page["position"].(string)
		if next == "" {
			break
		}
		if opts.maxItems > 0 && total == opts.maxItems {
			result[nextTokenKey] = encodeToken(next, 0)
			break
		}
		if next == position {
			return nil, fmt.Errorf("the service returned the same position twice (%s): paging stopped", next)
		}
		position = next
		input["position"] = next
	}
	switch v := items.(type) {
	case string:
		result["body"] = v
	case nil:
		result["items"] = []any{}
	default:
		result["items"] = v
	}
	return result, nil
}

// pageItems is a page's items: a list, a map, or a CSV body.
func pageItems(page map[string]any) any {
	if v, ok := page["items"]; ok {
		return v
	}
	if v, ok := page["body"]; ok {
		return v
	}
	return nil
}

func countItems(v any) int {
	switch v := v.(type) {
	case []any:
		return len(v)
	case map[string]any:
		return len(v)
	}
	return 0
}

// takeItems keeps the first n items; a map's in key order, which is the
// order the service returns them in.
func takeItems(v any, n int) any {
	switch v := v.(type) {
	case []any:
		return v[:n]
	case map[string]any:
		out := map[string]any{}
		for _, k := range sortedKeys(v)[:n] {
			out[k] = v[k]
		}
		return out
	}
	return v
}

func dropItems(v any, n int) any {
	switch v := v.(type) {
	case []any:
		return v[min(n, len(v)):]
	case map[string]any:
		keys := sortedKeys(v)
		out := map[string]any{}
		for _, k := range keys[min(n, len(keys)):] {
			out[k] = v[k]
		}
		return out
	}
	return v
}

// mergeItems appends a page's items to those so far. CSV bodies keep one
// header line.
func mergeItems(acc, page any) any {
	switch p := page.(type) {
	case []any:
		if a, ok := acc.([]any); ok {
			return append(a, p...)
		}
	case map[string]any:
		if a, ok := acc.(map[string]any); ok {
			for k, v := range p {
				a[k] = v
			}
			return a
		}
	case string:
		if a, ok := acc.(string); ok {
			if _, rows, found := strings.Cut(p, "\n"); found {
				return a + rows
			}
			return a
		}
	}
	if page == nil {
		return acc
	}
	return page
}

// encodeToken writes a resume token as botocore does: base64 of a JSON
// object with the service's position and how many of that page's items
// were already printed.
func encodeToken(position any, truncate int) string {
	var b strings.Builder
	b.WriteString(`{"position": `)
	if p, ok := position.(string); ok {
		q, _ := json.Marshal(p)
		b.Write(q)
	} else {
		b.WriteString("null")
	}
	if truncate > 0 {
		b.WriteString(`, "boto_truncate_amount": ` + strconv.Itoa(truncate))
	}
	b.WriteString("}")
	return base64.StdEncoding.EncodeToString([]byte(b.String()))
}

func decodeToken(token string) (position any, skip int, err error) {
	bad := usagef("argument --starting-token: %q is not a NextToken that tollgate printed: pass the NextToken of the previous page as it is", token)
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return nil, 0, bad
	}
	var t struct {
		Position *string `json:"position"`
		Truncate int     `json:"boto_truncate_amount"`
	}
	if json.Unmarshal(raw, &t) != nil || t.Truncate < 0 {
		return nil, 0, bad
	}
	if t.Position != nil {
		position = *t.Position
	}
	return position, t.Truncate, nil
}
