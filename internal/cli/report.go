package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	reportCommand = "usage-report"
	reportDoc     = "Chart each key's daily usage against its quota's daily share (or --output csv)."
	maxReportDays = 366 // GetUsage's longest range
)

// reportKey is one key's row of the report.
type reportKey struct {
	id, name string
	used     []int64 // per day
	left     []int64 // remaining quota per day; -1 without a quota
}

func (k reportKey) total() int64 {
	var t int64
	for _, u := range k.used {
		t += u
	}
	return t
}

type report struct {
	planID, planName string
	start            time.Time
	days             int
	quotaLimit       int64 // 0 without a quota
	period           string
	keys             []reportKey
}

// share is the day's share of the quota: the limit spread over the days of
// the day's period. 0 without a quota.
func (r *report) share(day int) float64 {
	if r.period == "" {
		return 0
	}
	d := r.start.AddDate(0, 0, day)
	days := 1.0
	switch r.period {
	case "WEEK":
		days = 7
	case "MONTH":
		days = float64(time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day())
	}
	return float64(r.quotaLimit) / days
}

func (c *CLI) printReportHelp() {
	fmt.Fprint(c.Stdout, `tollgate usage-report: `+reportDoc+`

usage: tollgate usage-report --usage-plan-id <string> [--key-id <string>] [--days <n>] [--output csv]

Draws one row of daily bars per key in the plan: each bar is a day's requests against
the day's share of the quota (the limit spread over the days of its period), with each
key's name, its total for the days shown and the quota it has left. On a terminal the
bars are coloured; elsewhere (a pipe, a file, TERM=dumb) they are ASCII.

Options:
`)
	option(c.Stdout, "--usage-plan-id <string>", "The usage plan's id. Required.")
	option(c.Stdout, "--key-id <string>", "Only this API key.")
	option(c.Stdout, "--days <n>", "The days up to today (UTC) to show: 1 to 366, default 30.")
	option(c.Stdout, "--output csv", "The same data as CSV: keyId,name,date,used,remaining,dailyShare.")
	option(c.Stdout, "--color on|off|auto", "Colour (auto: on a terminal, unless NO_COLOR or TERM=dumb).")
}

// usageReport draws the chart that API Gateway's console shows for usage
// plans, in the terminal.
func (c *CLI) usageReport(ctx context.Context, inv *invocation) error {
	var planID, keyID string
	days := 30
	for _, p := range inv.params {
		v, err := oneValue(p)
		if err != nil {
			return err
		}
		switch p.name {
		case "usage-plan-id":
			planID = v
		case "key-id":
			keyID = v
		case "days":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxReportDays {
				return usagef("argument --days: expected a whole number of days from 1 to %d, not '%s'", maxReportDays, v)
			}
			days = n
		default:
			return usagef("Unknown options: --%s\n%s takes --usage-plan-id, --key-id, --days (tollgate %s help)", p.name, reportCommand, reportCommand)
		}
	}
	if planID == "" {
		return usagef("the following arguments are required: --usage-plan-id")
	}
	format := inv.globals["output"]
	if format != "" && format != "csv" {
		return usagef("argument --output: %s prints a chart, or CSV with --output csv, not %s", reportCommand, format)
	}
	invoker, err := c.invoker(inv)
	if err != nil {
		return err
	}
	r, err := c.collect(ctx, invoker, planID, keyID, days)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if format == "csv" {
		r.writeCSV(&b)
	} else {
		tty, cols := c.terminal()
		dumb := c.Getenv("TERM") == "dumb"
		color := tty && !dumb && c.Getenv("NO_COLOR") == ""
		switch inv.globals["color"] {
		case "on":
			color = true
		case "off":
			color = false
		}
		if cols <= 0 || !tty {
			cols = 80
		}
		r.writeChart(&b, chartStyle{unicode: tty && !dumb, color: color, width: cols})
	}
	_, err = c.Stdout.Write(b.Bytes())
	return err
}

// collect reads the plan, its keys' names and their usage.
func (c *CLI) collect(ctx context.Context, invoker Invoker, planID, keyID string, days int) (*report, error) {
	today := c.Now().UTC().Truncate(24 * time.Hour)
	r := &report{planID: planID, start: today.AddDate(0, 0, 1-days), days: days}
	order := keyOrder{}
	call := func(name string, in map[string]any) (map[string]any, error) {
		return c.call(ctx, invoker, operation(kebab(name)), in, order)
	}
	plan, err := call("GetUsagePlan", map[string]any{"usagePlanId": planID})
	if err != nil {
		return nil, err
	}
	r.planName, _ = plan["name"].(string)
	if q, ok := plan["quota"].(map[string]any); ok {
		limit, _ := q["limit"].(float64)
		r.quotaLimit = int64(limit)
		r.period, _ = q["period"].(string)
	}

	names := map[string]string{}
	if keyID != "" {
		k, err := call("GetUsagePlanKey", map[string]any{"usagePlanId": planID, "keyId": keyID})
		if err != nil {
			return nil, err
		}
		names[keyID], _ = k["name"].(string)
	} else {
		all := func(in map[string]any) (map[string]any, error) { return call("GetUsagePlanKeys", in) }
		list, err := paginate(all, map[string]any{"usagePlanId": planID}, commandOptions{pageSize: 500})
		if err != nil {
			return nil, err
		}
		for _, e := range list["items"].([]any) {
			if m, ok := e.(map[string]any); ok {
				id, _ := m["id"].(string)
				names[id], _ = m["name"].(string)
			}
		}
	}

	in := map[string]any{"usagePlanId": planID, "startDate": r.start.Format(time.DateOnly), "endDate": today.Format(time.DateOnly)}
	if keyID != "" {
		in["keyId"] = keyID
	}
	usage, err := paginate(func(in map[string]any) (map[string]any, error) { return call("GetUsage", in) }, in, commandOptions{pageSize: 100})
	if err != nil {
		return nil, err
	}
	items, _ := usage["items"].(map[string]any)
	for id := range names {
		if _, ok := items[id]; !ok {
			items[id] = []any{} // a key in the plan with no usage reported
		}
	}
	for _, id := range sortedKeys(items) {
		k := reportKey{id: id, name: names[id]}
		series, _ := items[id].([]any)
		for d := range days {
			used, left := int64(0), int64(-1)
			if r.period != "" {
				left = r.quotaLimit
			}
			if d < len(series) {
				if pair, ok := series[d].([]any); ok && len(pair) == 2 {
					u, _ := pair[0].(float64)
					l, _ := pair[1].(float64)
					used, left = int64(u), int64(l)
				}
			}
			k.used = append(k.used, used)
			k.left = append(k.left, left)
		}
		r.keys = append(r.keys, k)
	}
	slices.SortStableFunc(r.keys, func(a, b reportKey) int { return strings.Compare(a.name, b.name) })
	return r, nil
}

func (r *report) writeCSV(b *bytes.Buffer) {
	w := csv.NewWriter(b)
	w.Write([]string{"keyId", "name", "date", "used", "remaining", "dailyShare"})
	for _, k := range r.keys {
		for d := range r.days {
			share := ""
			if r.period != "" {
				share = strconv.FormatFloat(math.Round(r.share(d)*100)/100, 'f', -1, 64)
			}
			w.Write([]string{k.id, k.name, r.start.AddDate(0, 0, d).Format(time.DateOnly),
				strconv.FormatInt(k.used[d], 10), strconv.FormatInt(k.left[d], 10), share})
		}
	}
	w.Flush()
}

type chartStyle struct {
	unicode, color bool
	width          int
}

const (
	ansiReset = "\x1b[0m"
	ansiDim   = "\x1b[2m"
	ansiGreen = "\x1b[32m"
	ansiRed   = "\x1b[31m"
	ansiBold  = "\x1b[1m"
)

// glyphs: zero, the levels up to the share, and over it.
func (s chartStyle) glyphs() (zero string, levels []string, over string) {
	if s.unicode {
		return "·", strings.Split("▁▂▃▄▅▆▇█", ""), "▲"
	}
	return ".", []string{"_", "-", "=", "#"}, "!"
}

func (s chartStyle) paint(code, text string) string {
	if !s.color {
		return text
	}
	return code + text + ansiReset
}

// writeChart draws a row of bars per key. Each bar is a day, or a few
// days when there are more days than columns, measured against the
// quota's share of those days (or the busiest bar, without a quota).
func (r *report) writeChart(b *bytes.Buffer, s chartStyle) {
	end := r.start.AddDate(0, 0, r.days-1)
	title := fmt.Sprintf("Usage plan %s (%s), %s to %s (UTC)", r.planName, r.planID, r.start.Format(time.DateOnly), end.Format(time.DateOnly))
	b.WriteString(s.paint(ansiBold, title) + "\n")

	const nameWidth, idWidth, numWidth = 20, 12, 9
	avail := max(s.width-(nameWidth+idWidth+2*numWidth+4), 10)
	per := (r.days + avail - 1) / avail // days per bar
	bars := (r.days + per - 1) / per
	span := "a day"
	if per > 1 {
		span = fmt.Sprintf("%d days", per)
	}
	zero, levels, over := s.glyphs()
	var scale func(bar int) float64
	if r.period != "" {
		fmt.Fprintf(b, "Quota %d requests a %s. Each bar is %s: full height is the quota's share of it.\n", r.quotaLimit, r.period, span)
		scale = func(bar int) float64 {
			t := 0.0
			for d := bar * per; d < min((bar+1)*per, r.days); d++ {
				t += r.share(d)
			}
			return t
		}
	} else {
		busiest := int64(1)
		for _, k := range r.keys {
			for bar := range bars {
				busiest = max(busiest, k.barUsed(bar, per))
			}
		}
		fmt.Fprintf(b, "No quota. Each bar is %s: full height is the busiest, %d requests.\n", span, busiest)
		scale = func(int) float64 { return float64(busiest) }
	}
	fmt.Fprintf(b, "%s no requests  %s up to the full height  %s above it\n\n", zero, strings.Join(levels, " "), over)

	dates := r.start.Format("Jan 2") + " .. " + end.Format("Jan 2")
	if r.start.Year() != end.Year() {
		dates = r.start.Format("Jan 2 2006") + " .. " + end.Format("Jan 2 2006")
	}
	fmt.Fprintf(b, "%-*s %-*s %*s %*s  %s\n", nameWidth, "KEY", idWidth, "ID", numWidth, "TOTAL", numWidth, "REMAINING", dates)
	if len(r.keys) == 0 {
		b.WriteString("(no keys in this plan)\n")
		return
	}
	for _, k := range r.keys {
		remaining := fmt.Sprintf("%*s", numWidth, "-")
		if left := k.left[len(k.left)-1]; left >= 0 {
			remaining = fmt.Sprintf("%*d", numWidth, left)
			if left == 0 {
				remaining = s.paint(ansiRed, remaining)
			}
		}
		name := k.name
		if name == "" {
			name = "(no name)"
		}
		fmt.Fprintf(b, "%s %-*s %*d %s  ", s.pad(name, nameWidth), idWidth, k.id, numWidth, k.total(), remaining)
		for bar := range bars {
			used, full := float64(k.barUsed(bar, per)), scale(bar)
			switch {
			case used == 0:
				b.WriteString(s.paint(ansiDim, zero))
			case used > full:
				b.WriteString(s.paint(ansiRed, over))
			default:
				i := int(math.Ceil(used/full*float64(len(levels)))) - 1
				b.WriteString(s.paint(ansiGreen, levels[max(0, min(i, len(levels)-1))]))
			}
		}
		b.WriteString("\n")
	}
}

func (k reportKey) barUsed(bar, per int) int64 {
	var t int64
	for d := bar * per; d < min((bar+1)*per, len(k.used)); d++ {
		t += k.used[d]
	}
	return t
}

// pad cuts or pads a name to n columns.
func (s chartStyle) pad(name string, n int) string {
	if utf8.RuneCountInString(name) > n {
		cut := "~"
		if s.unicode {
			cut = "…"
		}
		return string([]rune(name)[:n-1]) + cut
	}
	return name + strings.Repeat(" ", n-utf8.RuneCountInString(name))
}
