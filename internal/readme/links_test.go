package readme_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// TestRelativeLinksResolve checks every relative link in the README, in
// BENCHMARKS.md and in docs/: the file or folder it names exists, and an
// anchor names a heading of the page, as GitHub renders it.
func TestRelativeLinksResolve(t *testing.T) {
	root := filepath.Join("..", "..")
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages := append([]string{filepath.Join(root, "README.md"), filepath.Join(root, "BENCHMARKS.md")}, docs...)
	if len(docs) == 0 {
		t.Fatal("no pages in docs/")
	}
	anchors := map[string]map[string]bool{} // by cleaned path
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		anchors[path] = headingAnchors(string(b))
		return anchors[path], nil
	}
	checked := 0
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links(string(b)) {
			if regexp.MustCompile(`^[a-z]+:`).MatchString(l.target) {
				continue // https:, mailto:
			}
			checked++
			path, anchor, _ := strings.Cut(l.target, "#")
			target := filepath.Clean(page)
			if path != "" {
				target = filepath.Join(filepath.Dir(page), filepath.FromSlash(path))
			}
			name, _ := filepath.Rel(root, page)
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s:%d: %s: no such file or folder", name, l.line, l.target)
				continue
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s:%d: %s: an anchor in a file that is not Markdown", name, l.line, l.target)
				continue
			}
			a, err := anchorsOf(target)
			if err != nil {
				t.Fatal(err)
			}
			if !a[anchor] {
				t.Errorf("%s:%d: %s: no heading has the anchor #%s", name, l.line, l.target, anchor)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d relative links", checked)
	}
}

type link struct {
	target string
	line   int
}

var (
	inlineLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
	heading    = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
)

// links returns the targets of a page's inline links, outside code blocks
// and code spans, where GitHub does not render them. (A link whose text is
// a code span, [`x`](y), keeps its "](y)".)
func links(doc string) []link {
	var out []link
	eachLine(doc, func(n int, line string) {
		for _, m := range inlineLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			out = append(out, link{target: m[1], line: n})
		}
	})
	return out
}

// headingAnchors returns the anchors GitHub gives a page's headings:
// lowercased, punctuation dropped, spaces as hyphens, and -1, -2, ... for
// repeats.
func headingAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	eachLine(doc, func(_ int, line string) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			return
		}
		var b strings.Builder
		for _, r := range strings.ToLower(m[2]) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	})
	return out
}

// eachLine calls f with each line outside fenced code blocks, numbered
// from 1.
func eachLine(doc string, f func(n int, line string)) {
	fenced := false
	for i, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			f(i+1, line)
		}
	}
}
