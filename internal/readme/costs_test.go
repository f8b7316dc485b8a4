package readme_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/readme"
)

// TestCostTable recomputes the README's "What it costs" table from the
// figures BENCHMARKS.md reports (what make bench measured) and the prices
// the README quotes: each row's figures and each dollar amount, at the
// precision the table prints. A new run of make bench that moves a figure
// fails this test until the table is computed again.
func TestCostTable(t *testing.T) {
	root := filepath.Join("..", "..")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	section, err := readme.Section(read("README.md"), "## What it costs")
	if err != nil {
		t.Fatal(err)
	}
	bench := read("BENCHMARKS.md")

	// AWS's prices, as the README quotes them.
	const (
		httpAPI       = 1.00 // per million requests
		restAPI       = 3.50
		lambdaRequest = 0.20
		gbSecond      = 0.0000133334 // arm64
		writeUnit     = 0.625        // per million, on demand
		logGB         = 0.50         // per GB ingested
		eventOverhead = 26           // bytes CloudWatch Logs adds to each event
	)
	prose := strings.Join(strings.Fields(section), " ")
	for _, quoted := range []string{
		"HTTP API $1.00 per million requests", "REST API $3.50 per million", "Lambda $0.20 per million requests",
		"$0.0000133334 per GB-second on arm64", "$0.625 per million write request units",
		"$0.50 per GB ingested (each event counted 26 bytes larger)", "10 decisions a second per instance",
	} {
		if !strings.Contains(prose, quoted) {
			t.Errorf("the README's cost section does not say %q, which the table is computed from", quoted)
		}
	}

	rows := tableRows(section)
	label := func(prefix string) string {
		for l := range rows {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("the cost table has no row %q...", prefix)
		return ""
	}

	// Lambda duration at the memory the row names.
	durationRow := label("Lambda duration: ")
	m := regexp.MustCompile(`^Lambda duration: (\d+) MB`).FindStringSubmatch(durationRow)
	if m == nil {
		t.Fatalf("%q names no memory size", durationRow)
	}
	mb, _ := strconv.Atoi(m[1])
	billedAllowed := figure(t, bench, fmt.Sprintf("allowed/memory=%dMB", mb), "billed-ms")
	billedDenied := figure(t, bench, fmt.Sprintf("denied-from-memory/memory=%dMB", mb), "billed-ms")
	// DynamoDB writes: distinct keys, one instance each; a flood's writes
	// per offered request.
	writesAllowed := figure(t, bench, "distinct-keys/instances=1/tollgate", "calls/decision")
	writesFlood := figure(t, bench, "Flood", "writes/s") / figure(t, bench, "Flood", "offered/s")
	// Log bytes at 10 decisions a second per instance, and in a flood.
	bytesAllowed := figure(t, bench, "allowed/rate=10/log=summary", "bytes/decision")
	linesAllowed := figure(t, bench, "allowed/rate=10/log=summary", "lines/decision")
	bytesFlood := figure(t, bench, "flooded-key/rate=100/log=summary", "bytes/decision")
	linesFlood := figure(t, bench, "flooded-key/rate=100/log=summary", "lines/decision")

	gbs := func(billedMS float64) float64 { return float64(mb) / 1024 * billedMS / 1000 * 1e6 * gbSecond }
	logs := func(bytes, lines float64) float64 { return (bytes + eventOverhead*lines) * 1e6 / 1e9 * logGB }
	want := map[string][2]float64{
		"API Gateway HTTP API": {httpAPI, httpAPI},
		"Lambda requests":      {lambdaRequest, lambdaRequest},
		fmt.Sprintf("Lambda duration: %d MB, %g ms billed (allowed) or %g ms (denied)", mb, billedAllowed, billedDenied): {
			gbs(billedAllowed), gbs(billedDenied)},
		fmt.Sprintf("DynamoDB writes: %.2f per allowed decision; %.3f per request in a flood", writesAllowed, writesFlood): {
			writesAllowed * writeUnit, writesFlood * writeUnit},
		fmt.Sprintf("CloudWatch Logs: %.1f bytes per allowed decision, %.1f per flooded denial", bytesAllowed, bytesFlood): {
			logs(bytesAllowed, linesAllowed), logs(bytesFlood, linesFlood)},
		"API Gateway REST API with usage plans":          {restAPI, restAPI},
		"HTTP API without Tollgate (no keys, no limits)": {httpAPI, httpAPI},
	}
	var total [2]float64
	for row, costs := range want {
		if !strings.HasPrefix(row, "API Gateway REST") && !strings.HasPrefix(row, "HTTP API without") {
			total[0] += costs[0]
			total[1] += costs[1]
		}
	}
	want["**Total with Tollgate**"] = total

	for row, costs := range want {
		cells, ok := rows[row]
		if !ok {
			t.Errorf("the cost table has no row %q (from BENCHMARKS.md's figures); its rows: %q", row, keys(rows))
			continue
		}
		for i, c := range cells {
			if got, computed := strings.Trim(c, "*"), dollars(costs[i], c); got != computed {
				t.Errorf("%s, column %d: the table says %s, the figures give %s", row, i+1, got, computed)
			}
		}
	}
	if len(rows) != len(want) {
		t.Errorf("the cost table has rows %q, want %d", keys(rows), len(want))
	}
}

// tableRows returns the first Markdown table in s, without its header, as
// its first cell → the others.
func tableRows(s string) map[string][]string {
	rows := map[string][]string{}
	header := true
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		cells := tableCells(line)
		if header || strings.HasPrefix(cells[0], "---") {
			header = false
			continue
		}
		rows[cells[0]] = cells[1:]
	}
	return rows
}

func tableCells(line string) []string {
	cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

// figure returns the value in column of the row for case name in a
// results table of BENCHMARKS.md (tables whose header starts "| case |").
func figure(t *testing.T, md, name, column string) float64 {
	t.Helper()
	var header []string
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			header = nil
			continue
		}
		cells := tableCells(line)
		if cells[0] == "case" {
			header = cells
			continue
		}
		if header == nil || cells[0] != name {
			continue
		}
		for i, h := range header {
			if h == column && i < len(cells) {
				v, err := strconv.ParseFloat(strings.ReplaceAll(cells[i], ",", ""), 64)
				if err != nil {
					t.Fatalf("BENCHMARKS.md, %s, %s: %v", name, column, err)
				}
				return v
			}
		}
	}
	t.Fatalf("BENCHMARKS.md has no figure %s for %s", column, name)
	return 0
}

// dollars formats v as the cell like does: "$" and as many decimals.
func dollars(v float64, like string) string {
	like = strings.Trim(like, "*")
	decimals := 0
	if i := strings.IndexByte(like, '.'); i >= 0 {
		decimals = len(like) - i - 1
	}
	scale := math.Pow(10, float64(decimals))
	return fmt.Sprintf("$%.*f", decimals, math.Round(v*scale)/scale)
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
