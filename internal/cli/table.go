package cli

import (
	"bytes"
	"math"
	"strings"
	"unicode/utf8"
)

// The AWS CLI's --output table: sections titled with the operation name
// and the names of nested objects and lists, each with a header row of
// sorted scalar keys and rows of values, nested sections indented by a
// border each. Laid out to the terminal's width (80 when not a terminal),
// and turned vertical (one key and value a row) when too wide, as
// awscli/table.py does.

type section struct {
	title     string
	headers   []string
	rows      [][]string
	indent    int
	maxWidths []int
}

func (s *section) update(row []string) {
	if s.maxWidths == nil {
		for _, e := range row {
			s.maxWidths = append(s.maxWidths, width(e))
		}
		return
	}
	for i, e := range row {
		if i < len(s.maxWidths) {
			s.maxWidths[i] = max(s.maxWidths[i], width(e))
		}
	}
}

func (s *section) addHeader(h []string) {
	s.update(h)
	s.headers = h
}

func (s *section) addRow(values []any) {
	row := make([]string, len(values))
	for i, v := range values {
		row[i] = scalarText(v)
	}
	s.rows = append(s.rows, row)
	s.update(row)
}

// columnWidths scales the columns, padded, to fill maxWidth exactly.
func (s *section) columnWidths(padding, maxWidth int) []int {
	var widths []int
	total := 0
	for _, w := range s.maxWidths {
		widths = append(widths, w+padding)
		total += w + padding
	}
	if maxWidth < 0 || len(widths) == 0 {
		return widths
	}
	scale := float64(maxWidth) / float64(total)
	sum := 0
	for i, w := range widths {
		widths[i] = int(math.RoundToEven(scale * float64(w)))
		sum += widths[i]
	}
	for off := sum - maxWidth; off != 0; {
		for j := range widths {
			i := j
			if off < 0 {
				i = len(widths) - 1 - j
			}
			if off > 0 {
				widths[i]--
				off--
			} else {
				widths[i]++
				off++
			}
			if off == 0 {
				break
			}
		}
	}
	return widths
}

func (s *section) totalWidth() int {
	total := 0
	for _, w := range s.maxWidths {
		total += w + 4
	}
	total += 2 + 2*s.indent
	return max(width(s.title)+2+2*s.indent, total)
}

type table struct {
	sections []*section
	cur      *section
}

func (t *table) newSection(title string, indent int) {
	t.cur = &section{title: title, indent: indent}
	t.sections = append(t.sections, t.cur)
}

func (t *table) build(title string, v any, indent int) bool {
	switch v := v.(type) {
	case nil:
		return false
	case map[string]any:
		if len(v) == 0 {
			return false
		}
		if title != "" {
			t.newSection(title, indent)
		}
		t.fromMap(v, indent)
	case []any:
		if len(v) == 0 {
			return false
		}
		if title != "" {
			t.newSection(title, indent)
		}
		if _, ok := v[0].(map[string]any); ok {
			t.fromList(v, indent, title)
			return true
		}
		for _, e := range v {
			switch e := e.(type) {
			case []any:
				if allScalar(e) {
					t.cur.addRow(e)
				} else {
					t.build("", e, 0)
				}
			case map[string]any:
				t.build("", e, 0)
			default:
				t.cur.addRow([]any{e})
			}
		}
	default:
		if title != "" {
			t.newSection(title, indent)
		}
		if t.cur == nil {
			t.newSection("", indent)
		}
		t.cur.addRow([]any{v})
	}
	return true
}

func allScalar(list []any) bool {
	for _, e := range list {
		if !isScalar(e) {
			return false
		}
	}
	return true
}

func groupKeys(m map[string]any) (headers, more []string) {
	for _, k := range sortedKeys(m) {
		if isScalar(m[k]) {
			headers = append(headers, k)
		} else {
			more = append(more, k)
		}
	}
	return headers, more
}

func (t *table) fromMap(m map[string]any, indent int) {
	headers, more := groupKeys(m)
	switch {
	case len(headers) == 1:
		t.cur.addRow([]any{headers[0], m[headers[0]]})
	case len(headers) > 1:
		t.cur.addHeader(headers)
		row := make([]any, len(headers))
		for i, h := range headers {
			row[i] = m[h]
		}
		t.cur.addRow(row)
	}
	for _, k := range more {
		t.build(k, m[k], indent+1)
	}
}

func (t *table) fromList(list []any, indent int, title string) {
	hs, ms := map[string]bool{}, map[string]bool{}
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			h, more := groupKeys(m)
			for _, k := range h {
				hs[k] = true
			}
			for _, k := range more {
				ms[k] = true
			}
		}
	}
	headers, more := sortedKeys(hs), sortedKeys(ms)
	t.cur.addHeader(headers)
	for i, e := range list {
		m, _ := e.(map[string]any)
		if i > 0 && len(more) > 0 {
			t.newSection(title, indent)
			t.cur.addHeader(headers)
		}
		row := make([]any, len(headers))
		for j, h := range headers {
			if v, ok := m[h]; ok {
				row[j] = v
			} else {
				row[j] = ""
			}
		}
		t.cur.addRow(row)
		for _, k := range more {
			if v, ok := m[k]; ok {
				t.build(k, v, indent+1)
			}
		}
	}
}

func (t *table) maxWidth() int {
	w := 0
	for _, s := range t.sections {
		w = max(w, s.totalWidth())
	}
	return w
}

// verticalize turns each single-row section with headers into rows of
// key and value, for tables wider than the terminal.
func (t *table) verticalize() {
	for i, s := range t.sections {
		if len(s.rows) == 1 && len(s.headers) > 0 {
			n := &section{title: s.title, indent: s.indent}
			for j, h := range s.headers {
				n.addRow([]any{h, s.rows[0][j]})
			}
			t.sections[i] = n
		}
	}
}

func (t *table) render(w *bytes.Buffer, termWidth int) {
	if t.maxWidth() > termWidth {
		t.verticalize()
	}
	total := t.maxWidth()
	w.WriteString(strings.Repeat("-", total) + "\n")
	for _, s := range t.sections {
		t.renderSection(w, s, total)
	}
}

func (t *table) renderSection(w *bytes.Buffer, s *section, total int) {
	edge := strings.Repeat("|", s.indent)
	line := func(text string) { w.WriteString(edge + text + edge + "\n") }
	maxWidth := total - 2*s.indent
	if s.title != "" {
		line(center(s.title, maxWidth, "|", "|"))
		if len(s.headers) == 0 && len(s.rows) == 0 {
			line("+" + strings.Repeat("-", maxWidth-2) + "+")
		}
	}
	if len(s.headers) > 0 {
		widths := s.columnWidths(4, maxWidth)
		var b strings.Builder
		for i, h := range s.headers {
			left := ""
			if i == 0 {
				left = "|"
			}
			b.WriteString(center(h, widths[i], left, "|"))
		}
		line(lineBreak(widths))
		line(b.String())
	}
	if len(s.rows) > 0 {
		widths := s.columnWidths(4, maxWidth)
		line(lineBreak(widths))
		for _, row := range s.rows {
			var b strings.Builder
			for i, e := range row {
				if i >= len(widths) {
					break
				}
				left := ""
				if i == 0 {
					left = "|"
				}
				b.WriteString(alignLeft(e, widths[i], left, "|"))
			}
			line(b.String())
		}
		line(lineBreak(widths))
	}
}

func lineBreak(widths []int) string {
	var b strings.Builder
	for i, wd := range widths {
		if i == 0 {
			b.WriteString("+" + strings.Repeat("-", max(wd-2, 0)) + "+")
		} else {
			b.WriteString(strings.Repeat("-", max(wd-1, 0)) + "+")
		}
	}
	return b.String()
}

func center(text string, length int, left, right string) string {
	start := max(length/2-width(text)/2-1, 0)
	out := left + strings.Repeat(" ", start) + text
	return out + strings.Repeat(" ", max(length-len(right)-width(out), 0)) + right
}

func alignLeft(text string, length int, left, right string) string {
	padding := 2
	if length-(width(text)+padding+len(left)+len(right)) < 0 {
		padding = 0
	}
	out := left + strings.Repeat(" ", padding) + text
	return out + strings.Repeat(" ", max(length-width(out)-len(right), 0)) + right
}

func width(s string) int { return utf8.RuneCountInString(s) }

// writeTable renders v titled with the operation's name.
func writeTable(w *bytes.Buffer, title string, v any, termWidth int) {
	t := &table{}
	if t.build(title, v, 0) {
		t.render(w, termWidth)
	}
}
