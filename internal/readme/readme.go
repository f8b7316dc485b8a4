// Package readme reads the sections and code blocks of the README and the
// pages in docs/, for the tests that run what they show.
package readme

import (
	"fmt"
	"regexp"
	"strings"
)

// Section returns doc from a heading ("### Walk-through") to the next
// heading of its level or above, outside code blocks.
func Section(doc, heading string) (string, error) {
	i := strings.Index(doc, heading+"\n")
	if i < 0 {
		return "", fmt.Errorf("the page has no heading %q", heading)
	}
	depth := strings.IndexByte(heading, ' ')
	var out []string
	fenced := false
	for _, line := range strings.Split(doc[i+len(heading)+1:], "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if !fenced {
			if n := len(line) - len(strings.TrimLeft(line, "#")); n > 0 && n <= depth && strings.HasPrefix(line[n:], " ") {
				break
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n"), nil
}

// Blocks returns the contents of the code blocks fenced as lang ("sh").
func Blocks(s, lang string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?s)```"+regexp.QuoteMeta(lang)+"\n(.*?)```").FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}
