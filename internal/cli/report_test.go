package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUsageReport draws the chart from real usage: requests through the
// local stack's authorizer, and a quota extension that lets a key go over
// its daily share.
func TestUsageReport(t *testing.T) {
	start := time.Now().UTC()
	url := localStackURL(t)
	tg := newTollgate(t, "TOLLGATE_ENDPOINT_URL="+url)
	plan := tg.text("create-usage-plan", "--name", "Two a day", "--api-stages", "apiId=local,stage=$default",
		"--quota", "limit=2,period=DAY", "--query", "id")
	keys := map[string]string{}
	for _, name := range []string{"busy", "quiet", "idle"} {
		idValue := strings.Fields(tg.text("create-api-key", "--name", name, "--query", "[id, value]"))
		tg.ok("create-usage-plan-key", "--usage-plan-id", plan, "--key-id", idValue[0], "--key-type", "API_KEY")
		keys[name] = idValue[0]
		keys[name+"-value"] = idValue[1]
	}
	tg.ok("update-usage", "--usage-plan-id", plan, "--key-id", keys["busy"], "--patch-operations", "op=replace,path=/remaining,value=10")
	call := func(value string, n int) {
		for range n {
			req, _ := http.NewRequest("GET", url+"/echo", nil)
			req.Header.Set("x-api-key", value)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("a call with %s's key: %v %v", value, resp, err)
			}
			resp.Body.Close()
		}
	}
	call(keys["busy-value"], 3)
	call(keys["quiet-value"], 1)

	now := time.Now().UTC()
	if now.Format(time.DateOnly) != start.Format(time.DateOnly) {
		t.Skip("the test crossed midnight UTC: the requests and the chart are on different days")
	}
	tg.now = now
	day := func(back int) string { return now.AddDate(0, 0, -back).Format(time.DateOnly) }
	chart := tg.ok("usage-report", "--usage-plan-id", plan, "--days", "3")
	want := "Usage plan Two a day (" + plan + "), " + day(2) + " to " + day(0) + ` (UTC)
Quota 2 requests a DAY. Each bar is a day: full height is the quota's share of it.
. no requests  _ - = # up to the full height  ! above it

KEY                  ID               TOTAL REMAINING  ` + now.AddDate(0, 0, -2).Format("Jan 2") + " .. " + now.Format("Jan 2") + `
busy                 ` + keys["busy"] + `           3         7  ..!
idle                 ` + keys["idle"] + `           0         2  ...
quiet                ` + keys["quiet"] + `           1         1  ..-
`
	if chart != want {
		t.Errorf("chart:\n%s\nwant:\n%s", chart, want)
	}

	csv := tg.ok("usage-report", "--usage-plan-id", plan, "--days", "2", "--key-id", keys["busy"], "--output", "csv")
	if want := "keyId,name,date,used,remaining,dailyShare\n" + keys["busy"] + ",busy," + day(1) + ",0,2,2\n" + keys["busy"] + ",busy," + day(0) + ",3,7,2\n"; csv != want {
		t.Errorf("csv:\n%s\nwant:\n%s", csv, want)
	}

	// On a terminal: block characters, and colour unless NO_COLOR or --color off.
	tg.tty = true
	if out := tg.ok("usage-report", "--usage-plan-id", plan, "--days", "3"); !strings.Contains(out, "\x1b[31m▲\x1b[0m") || !strings.Contains(out, "\x1b[32m▄\x1b[0m") {
		t.Errorf("on a terminal:\n%q", out)
	}
	tg.env["NO_COLOR"] = "1"
	if out := tg.ok("usage-report", "--usage-plan-id", plan, "--days", "3"); strings.Contains(out, "\x1b[") || !strings.Contains(out, "··▲") {
		t.Errorf("NO_COLOR on a terminal:\n%q", out)
	}
	delete(tg.env, "NO_COLOR")
	tg.env["TERM"] = "dumb"
	if out := tg.ok("usage-report", "--usage-plan-id", plan, "--days", "3"); out != chart {
		t.Errorf("TERM=dumb on a terminal:\n%s\nwant the ASCII chart:\n%s", out, chart)
	}
	tg.tty = false
	delete(tg.env, "TERM")
	if out := tg.ok("usage-report", "--usage-plan-id", plan, "--days", "3", "--color", "on"); !strings.Contains(out, "\x1b[31m!\x1b[0m") {
		t.Errorf("--color on in a pipe:\n%q", out)
	}

	// A year does not fit in 80 columns: each bar is several days.
	year := tg.ok("usage-report", "--usage-plan-id", plan, "--days", "366")
	// The last bar's 6 days share 12 requests: busy's 3 are a quarter.
	lines := strings.Split(year, "\n")
	if !strings.Contains(year, "Each bar is 15 days") || !strings.HasSuffix(lines[4], now.AddDate(0, 0, -365).Format("Jan 2 2006")+" .. "+now.Format("Jan 2 2006")) ||
		!strings.HasSuffix(lines[5], " "+strings.Repeat(".", 24)+"_") {
		t.Errorf("366 days:\n%s", year)
	}
}
