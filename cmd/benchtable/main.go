// Command benchtable turns `go test -bench` output on stdin into Markdown
// tables on stdout, one per benchmark, one row per sub-benchmark and one
// column per unit. `make bench` uses it; other lines pass through to
// stderr, so failures stay visible.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// A result line: name, iterations, then value-unit pairs.
var line = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)((?:\s+[-+0-9.eE]+ \S+)+)\s*$`)

type table struct {
	name  string
	units []string
	rows  []row
}

type row struct {
	name   string            // the sub-benchmark's, "" for none
	values map[string]string // by unit
}

func main() {
	tables, err := read(os.Stdin, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	for _, t := range tables {
		write(os.Stdout, t)
	}
}

func read(r io.Reader, rest io.Writer) ([]*table, error) {
	var tables []*table
	byName := map[string]*table{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			fmt.Fprintln(rest, sc.Text())
			continue
		}
		top, sub, _ := strings.Cut(strings.TrimPrefix(m[1], "Benchmark"), "/")
		t := byName[top]
		if t == nil {
			t = &table{name: top}
			byName[top] = t
			tables = append(tables, t)
		}
		values := map[string]string{}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			values[f[i+1]] = f[i]
			if !slices.Contains(t.units, f[i+1]) {
				t.units = append(t.units, f[i+1])
			}
		}
		t.rows = append(t.rows, row{sub, values})
	}
	return tables, sc.Err()
}

func write(w io.Writer, t *table) {
	fmt.Fprintf(w, "\n%s\n\n| case | %s |\n|---|%s\n", t.name, strings.Join(t.units, " | "), strings.Repeat("---:|", len(t.units)))
	for _, r := range t.rows {
		name := r.name
		if name == "" {
			name = t.name
		}
		cells := make([]string, len(t.units))
		for i, u := range t.units {
			cells[i] = r.values[u]
		}
		fmt.Fprintf(w, "| %s | %s |\n", name, strings.Join(cells, " | "))
	}
}
