package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTables(t *testing.T) {
	in := `goos: linux
BenchmarkDecisionCPU-2   	  177198	     13125 ns/op	    1961 B/op	      28 allocs/op
BenchmarkDecisions/saturated/instances=1/tollgate-2 	 1406509	  0.0000014 calls/decision	    599589 decisions/s
BenchmarkDecisions/saturated/instances=1/baseline-2 	    4334	  1.000 calls/decision	      2125 decisions/s
PASS
`
	var rest, out bytes.Buffer
	tables, err := read(strings.NewReader(in), &rest)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		write(&out, tb)
	}
	want := `
DecisionCPU

| case | ns/op | B/op | allocs/op |
|---|---:|---:|---:|
| DecisionCPU | 13125 | 1961 | 28 |

Decisions

| case | calls/decision | decisions/s |
|---|---:|---:|
| saturated/instances=1/tollgate | 0.0000014 | 599589 |
| saturated/instances=1/baseline | 1.000 | 2125 |
`
	if out.String() != want {
		t.Errorf("tables:\n%s\nwant:\n%s", out.String(), want)
	}
	if rest.String() != "goos: linux\nPASS\n" {
		t.Errorf("other lines: %q", rest.String())
	}
}
