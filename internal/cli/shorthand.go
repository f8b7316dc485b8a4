package cli

import (
	"fmt"
	"strings"
	"unicode"
)

// parseShorthand parses the AWS CLI's shorthand syntax:
//
//	parameter     = keyval *("," keyval)
//	keyval        = key "=" [values]
//	values        = csv-list / explicit-list / hash-literal
//	csv-list      = value *("," value)          a=b,c gives a: [b, c]
//	explicit-list = "[" [value *("," value)] "]"
//	hash-literal  = "{" keyval *("," keyval) "}"
//
// Values are strings, lists of values and maps: it is the model (coerce)
// that makes numbers and booleans of them, as in the AWS CLI. A value may
// be quoted ('a,b' or "a,b", with \' or \" and \\ inside), and a comma in
// an unquoted value may be escaped (a\,b). Unquoted values lose trailing
// spaces. The grammar, character classes and backtracking follow
// awscli/shorthand.py, so that what parses there parses here.
func parseShorthand(s string) (map[string]any, error) {
	p := &shorthand{in: []rune(s)}
	return p.parameter()
}

// shorthandError is a syntax error, reported as the AWS CLI reports it.
type shorthandError struct {
	msg string
}

func (e *shorthandError) Error() string { return e.msg }

type shorthand struct {
	in []rune
	i  int
}

const eof = -1

func (p *shorthand) cur() rune {
	if p.i < len(p.in) {
		return p.in[p.i]
	}
	return eof
}

func (p *shorthand) atEOF() bool { return p.i >= len(p.in) }

func (p *shorthand) location(at int) string {
	col := at
	for j := at - 1; j >= 0; j-- {
		if p.in[j] == '\n' {
			col = at - j - 1
			break
		}
	}
	return string(p.in) + "\n" + strings.Repeat(" ", col) + "^"
}

func (p *shorthand) errorf(expected string) error {
	actual := "EOF"
	if !p.atEOF() {
		actual = string(p.in[p.i])
	}
	return &shorthandError{fmt.Sprintf("Expected: '%s', received: '%s' for input:\n%s", expected, actual, p.location(p.i))}
}

func (p *shorthand) parameter() (map[string]any, error) {
	params := map[string]any{}
	key, val, err := p.keyval()
	if err != nil {
		return nil, err
	}
	params[key] = val
	last := p.i
	for !p.atEOF() {
		if err := p.expect(',', true); err != nil {
			return nil, err
		}
		key, val, err := p.keyval()
		if err != nil {
			return nil, err
		}
		if _, dup := params[key]; dup {
			return nil, &shorthandError{fmt.Sprintf("Second instance of key %q encountered for input:\n%s\n"+
				"This is often because there is a preceding \",\" instead of a space.", key, p.location(last+1))}
		}
		params[key] = val
		last = p.i
	}
	return params, nil
}

func (p *shorthand) keyval() (string, any, error) {
	key := p.key()
	if err := p.expect('=', true); err != nil {
		return "", nil, err
	}
	val, err := p.values()
	return key, val, err
}

func (p *shorthand) key() string {
	start := p.i
	for !p.atEOF() {
		r := p.cur()
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_.#/:", r))) {
			break
		}
		p.i++
	}
	return string(p.in[start:p.i])
}

func (p *shorthand) values() (any, error) {
	switch {
	case p.atEOF():
		return "", nil
	case p.cur() == '[':
		return p.explicitList()
	case p.cur() == '{':
		return p.hashLiteral()
	}
	return p.csvValue()
}

// csvValue reads foo=bar as "bar" and foo=bar,baz as [bar baz]. When what
// follows a comma turns out to be the next key (a=b,c=d), it backs up to
// the comma.
func (p *shorthand) csvValue() (any, error) {
	first, err := p.firstValue()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.atEOF() || p.cur() != ',' {
		return first, nil
	}
	if err := p.expect(',', true); err != nil {
		return nil, err
	}
	list := []any{first}
	for {
		v, err := p.secondValue()
		if err == nil {
			p.skipSpace()
			if p.atEOF() {
				list = append(list, v)
				break
			}
			err = p.expect(',', true)
		}
		if err != nil {
			if p.atEOF() {
				return nil, err
			}
			for p.i >= 0 && p.in[p.i] != ',' {
				p.i--
			}
			break
		}
		list = append(list, v)
	}
	if len(list) == 1 {
		return first, nil
	}
	return list, nil
}

func (p *shorthand) explicitList() (any, error) {
	if err := p.expect('[', true); err != nil {
		return nil, err
	}
	list := []any{}
	for p.cur() != ']' {
		v, err := p.explicitValue()
		if err != nil {
			return nil, err
		}
		list = append(list, v)
		p.skipSpace()
		if p.cur() != ']' {
			if err := p.expect(',', false); err != nil {
				return nil, err
			}
			p.skipSpace()
		}
	}
	return list, p.expect(']', false)
}

func (p *shorthand) explicitValue() (any, error) {
	switch p.cur() {
	case '[':
		return p.explicitList()
	case '{':
		return p.hashLiteral()
	}
	return p.firstValue()
}

func (p *shorthand) hashLiteral() (any, error) {
	if err := p.expect('{', true); err != nil {
		return nil, err
	}
	m := map[string]any{}
	for p.cur() != '}' {
		key := p.key()
		if err := p.expect('=', true); err != nil {
			return nil, err
		}
		v, err := p.explicitValue()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.cur() != '}' {
			if err := p.expect(',', false); err != nil {
				return nil, err
			}
			p.skipSpace()
		}
		m[key] = v
	}
	return m, p.expect('}', false)
}

func (p *shorthand) firstValue() (any, error) {
	switch p.cur() {
	case '\'', '"':
		return p.quoted(p.cur())
	}
	v, _ := p.word(firstFollow)
	return v, nil
}

func (p *shorthand) secondValue() (any, error) {
	switch p.cur() {
	case '\'', '"':
		return p.quoted(p.cur())
	}
	v, ok := p.word(secondFollow)
	if !ok {
		return nil, p.errorf("<second>")
	}
	return v, nil
}

// word reads an unquoted value: a start character, then characters that
// follow allows, with \, standing for a comma. It reports whether it read
// anything.
func (p *shorthand) word(follow func(rune) bool) (string, bool) {
	var b strings.Builder
	start := p.i
	for !p.atEOF() {
		r := p.cur()
		if r == '\\' && p.i+1 < len(p.in) && p.in[p.i+1] == ',' {
			b.WriteByte(',')
			p.i += 2
			continue
		}
		if (p.i == start && !startChar(r)) || (p.i > start && !follow(r)) {
			break
		}
		b.WriteRune(r)
		p.i++
	}
	if p.i == start {
		return "", false
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace), true
}

// quoted reads a value in single or double quotes.
func (p *shorthand) quoted(q rune) (any, error) {
	start := p.i
	var b strings.Builder
	for p.i++; p.i < len(p.in); p.i++ {
		r := p.in[p.i]
		switch {
		case r == '\\' && p.i+1 < len(p.in) && (p.in[p.i+1] == '\\' || p.in[p.i+1] == q):
			p.i++
			b.WriteRune(p.in[p.i])
		case r == q:
			p.i++
			return b.String(), nil
		default:
			b.WriteRune(r)
		}
	}
	p.i = start
	name := "double quoted"
	if q == '\'' {
		name = "singled quoted" // sic, as the AWS CLI says it
	}
	return nil, p.errorf("<" + name + ">")
}

func startChar(r rune) bool {
	return r > ' ' && !strings.ContainsRune(`"',=[{`, r)
}

func firstFollow(r rune) bool {
	return unicode.IsSpace(r) || (r > ' ' && !strings.ContainsRune(`"',]}`, r))
}

func secondFollow(r rune) bool {
	return unicode.IsSpace(r) || (r > ' ' && !strings.ContainsRune(`"',=`, r))
}

func (p *shorthand) skipSpace() {
	for !p.atEOF() && unicode.IsSpace(p.cur()) {
		p.i++
	}
}

func (p *shorthand) expect(r rune, space bool) error {
	if space {
		p.skipSpace()
	}
	if p.atEOF() || p.cur() != r {
		return p.errorf(string(r))
	}
	p.i++
	if space {
		p.skipSpace()
	}
	return nil
}
