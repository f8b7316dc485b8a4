package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// keyOrder ranks object keys by where they first appeared, so that output
// keeps the service's order (the AWS CLI prints members in the model's
// order) although results are plain maps, as JMESPath needs them.
type keyOrder map[string]int

func (o keyOrder) add(k string) {
	if _, ok := o[k]; !ok {
		o[k] = len(o)
	}
}

// sorted orders keys by rank; keys never seen follow, alphabetically.
func (o keyOrder) sorted(m map[string]any) []string {
	keys := sortedKeys(m)
	slices.SortStableFunc(keys, func(a, b string) int {
		ra, oka := o[a]
		rb, okb := o[b]
		switch {
		case oka && okb:
			return ra - rb
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
	return keys
}

// decodeOrdered decodes JSON into maps, lists, strings, float64s, bools
// and nils, and records the order of the keys it meets.
func decodeOrdered(b []byte, order keyOrder) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	v, err := readValue(dec, order)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return v, nil
}

func readValue(dec *json.Decoder, order keyOrder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		m := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			order.add(k)
			if m[k], err = readValue(dec, order); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token()
		return m, err
	case '[':
		list := []any{}
		for dec.More() {
			v, err := readValue(dec, order)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := dec.Token()
		return list, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// queryKeys ranks the keys of a query's multi-select hashes
// ({name: name, id: id}) in the order written, as the AWS CLI prints them.
// It only orders output, so a rough scan suffices: an identifier or quoted
// identifier followed by ':' outside literals.
func queryKeys(query string, order keyOrder) {
	var last string
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '`' || c == '\'':
			j := i + 1
			for j < len(query) && query[j] != c {
				if query[j] == '\\' {
					j++
				}
				j++
			}
			i, last = j, ""
		case c == '"':
			j := i + 1
			for j < len(query) && query[j] != '"' {
				if query[j] == '\\' {
					j++
				}
				j++
			}
			if j < len(query) {
				var s string
				if json.Unmarshal([]byte(query[i:j+1]), &s) == nil {
					last = s
				}
			}
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(query) && (query[j] == '_' || query[j] >= 'a' && query[j] <= 'z' || query[j] >= 'A' && query[j] <= 'Z' || query[j] >= '0' && query[j] <= '9') {
				j++
			}
			last, i = query[i:j], j-1
		case c == ' ' || c == '\t' || c == '\n':
		case c == ':':
			if last != "" {
				order.add(last)
			}
			last = ""
		default:
			last = ""
		}
	}
}

// writeJSON prints v as the AWS CLI does (Python's json.dumps with an
// indent of 4 and no ASCII escaping).
func writeJSON(w *bytes.Buffer, v any, order keyOrder, indent int) {
	pad := func(n int) { w.WriteString(strings.Repeat(" ", 4*n)) }
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			w.WriteString("{}")
			return
		}
		w.WriteString("{\n")
		for i, k := range order.sorted(v) {
			if i > 0 {
				w.WriteString(",\n")
			}
			pad(indent + 1)
			writeString(w, k)
			w.WriteString(": ")
			writeJSON(w, v[k], order, indent+1)
		}
		w.WriteString("\n")
		pad(indent)
		w.WriteString("}")
	case []any:
		if len(v) == 0 {
			w.WriteString("[]")
			return
		}
		w.WriteString("[\n")
		for i, e := range v {
			if i > 0 {
				w.WriteString(",\n")
			}
			pad(indent + 1)
			writeJSON(w, e, order, indent+1)
		}
		w.WriteString("\n")
		pad(indent)
		w.WriteString("]")
	case string:
		writeString(w, v)
	case float64:
		w.WriteString(formatNumber(v))
	case bool:
		w.WriteString(strconv.FormatBool(v))
	case nil:
		w.WriteString("null")
	default:
		b, _ := json.Marshal(v)
		w.Write(b)
	}
}

// writeString escapes what JSON must: quotes, backslashes and control
// characters.
func writeString(w *bytes.Buffer, s string) {
	w.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			w.WriteString(`\"`)
		case '\\':
			w.WriteString(`\\`)
		case '\n':
			w.WriteString(`\n`)
		case '\r':
			w.WriteString(`\r`)
		case '\t':
			w.WriteString(`\t`)
		case '\b':
			w.WriteString(`\b`)
		case '\f':
			w.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(w, `\u%04x`, r)
			} else {
				w.WriteRune(r)
			}
		}
	}
	w.WriteByte('"')
}

// formatNumber writes a number as Python prints what JSON gave it: whole
// numbers as integers, others in their shortest form.
func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e16 {
		return strconv.FormatInt(int64(f), 10)
	}
	if a := math.Abs(f); a >= 1e16 || a < 1e-4 {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// scalarText is a scalar as the AWS CLI's text and table output show it
// (Python's str()).
func scalarText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return formatNumber(v)
	case bool:
		if v {
			return "True"
		}
		return "False"
	case nil:
		return "None"
	}
	return fmt.Sprint(v)
}

func isScalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

// writeText prints v as the AWS CLI's --output text: each object's scalars
// on one tab-separated line (keys sorted), prefixed by the name of the
// list or object they sit in, upper-cased; lists one record a line.
func writeText(w *bytes.Buffer, v any, identifier string, scalarKeys []string) {
	switch v := v.(type) {
	case map[string]any:
		var scalars []string
		var nested []string
		if scalarKeys == nil {
			for _, k := range sortedKeys(v) {
				if isScalar(v[k]) {
					scalars = append(scalars, scalarText(v[k]))
				} else {
					nested = append(nested, k)
				}
			}
		} else {
			for _, k := range scalarKeys {
				e, ok := v[k]
				if !ok {
					e = ""
				}
				scalars = append(scalars, scalarText(e))
			}
			for _, k := range sortedKeys(v) {
				if !slices.Contains(scalarKeys, k) {
					nested = append(nested, k)
				}
			}
		}
		if len(scalars) > 0 {
			if identifier != "" {
				scalars = append([]string{strings.ToUpper(identifier)}, scalars...)
			}
			w.WriteString(strings.Join(scalars, "\t") + "\n")
		}
		for _, k := range nested {
			writeText(w, v[k], k, nil)
		}
	case []any:
		if len(v) == 0 {
			return
		}
		hasMap, hasList := false, false
		for _, e := range v {
			switch e.(type) {
			case map[string]any:
				hasMap = true
			case []any:
				hasList = true
			}
		}
		switch {
		case hasMap:
			keys := map[string]bool{}
			for _, e := range v {
				if m, ok := e.(map[string]any); ok {
					for k, x := range m {
						if isScalar(x) {
							keys[k] = true
						}
					}
				}
			}
			all := sortedKeys(keys)
			for _, e := range v {
				writeText(w, e, identifier, all)
			}
		case hasList:
			var scalars []any
			for _, e := range v {
				if isScalar(e) {
					scalars = append(scalars, e)
				}
			}
			if len(scalars) > 0 {
				writeScalarList(w, scalars, identifier)
			}
			for _, e := range v {
				if !isScalar(e) {
					writeText(w, e, identifier, nil)
				}
			}
		default:
			writeScalarList(w, v, identifier)
		}
	default:
		w.WriteString(scalarText(v) + "\n")
	}
}

func writeScalarList(w *bytes.Buffer, list []any, identifier string) {
	if identifier != "" {
		for _, e := range list {
			w.WriteString(strings.ToUpper(identifier) + "\t" + scalarText(e) + "\n")
		}
		return
	}
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = scalarText(e)
	}
	w.WriteString(strings.Join(parts, "\t") + "\n")
}
