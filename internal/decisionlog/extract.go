package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// A Datum is one metric value that CloudWatch extracts from an EMF record.
type Datum struct {
	Namespace  string
	Name       string
	Unit       string
	Dimensions map[string]string // dimension name → value
	Samples    int64             // 1 for a plain value; a histogram's Count
	Sum        float64
}

// DimensionNames is d's dimension names, sorted and comma-separated, as the
// dashboard's SEARCH expressions name them ("" for none).
func (d Datum) DimensionNames() string {
	names := make([]string, 0, len(d.Dimensions))
	for n := range d.Dimensions {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// Extract reads a log of JSON lines and returns what CloudWatch would
// extract from its EMF records, one Datum per metric and dimension set. It
// checks what CloudWatch checks, failing where CloudWatch would drop a
// record: every dimension and metric a directive names is a member of the
// record, dimension values are strings, and a histogram has as many Values
// as Counts, at most 100. Lines without "_aws" are skipped. Tests and
// benchmarks use it.
func Extract(log []byte) ([]Datum, error) {
	var out []Datum
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"_aws"`)) {
			continue
		}
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		var meta struct {
			Timestamp         *int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		}
		if err := json.Unmarshal(rec["_aws"], &meta); err != nil || meta.Timestamp == nil {
			return nil, fmt.Errorf("line %d: _aws needs a Timestamp and CloudWatchMetrics: %s", n, rec["_aws"])
		}
		for _, dir := range meta.CloudWatchMetrics {
			for _, m := range dir.Metrics {
				samples, sum, err := metricValue(rec[m.Name])
				if err != nil {
					return nil, fmt.Errorf("line %d: metric %s: %v", n, m.Name, err)
				}
				for _, set := range dir.Dimensions {
					dims := map[string]string{}
					for _, name := range set {
						var v string
						if err := json.Unmarshal(rec[name], &v); err != nil {
							return nil, fmt.Errorf("line %d: dimension %s is not a string member of the record", n, name)
						}
						dims[name] = v
					}
					out = append(out, Datum{Namespace: dir.Namespace, Name: m.Name, Unit: m.Unit, Dimensions: dims, Samples: samples, Sum: sum})
				}
			}
		}
	}
	return out, sc.Err()
}

func metricValue(raw json.RawMessage) (samples int64, sum float64, err error) {
	if raw == nil {
		return 0, 0, fmt.Errorf("not a member of the record")
	}
	var v float64
	if json.Unmarshal(raw, &v) == nil {
		return 1, v, nil
	}
	var h struct {
		Values        []float64
		Counts        []int64
		Max, Min, Sum float64
		Count         int64
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return 0, 0, fmt.Errorf("neither a number nor a histogram: %s", raw)
	}
	var total int64
	for _, c := range h.Counts {
		total += c
	}
	if len(h.Values) != len(h.Counts) || len(h.Values) > 100 || total != h.Count || h.Min > h.Max {
		return 0, 0, fmt.Errorf("a histogram CloudWatch would drop: %s", raw)
	}
	return h.Count, h.Sum, nil
}
