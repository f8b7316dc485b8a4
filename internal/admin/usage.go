package admin

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

var usageOperations = map[string]operation{
	"GetUsage":    op(getUsage),
	"UpdateUsage": op(updateUsage),
}

// Usage is API Gateway's Usage: per key, one [used, remaining] pair for
// each UTC day from startDate to endDate. remaining is -1 for a plan
// without a quota.
type Usage struct {
	UsagePlanID string                `json:"usagePlanId"`
	StartDate   string                `json:"startDate"`
	EndDate     string                `json:"endDate"`
	Position    string                `json:"position,omitempty"`
	Items       map[string][][2]int64 `json:"items"`
}

// UsageExport is GetUsage's response with format "csv".
type UsageExport struct {
	UsagePlanID string `json:"usagePlanId"`
	StartDate   string `json:"startDate"`
	EndDate     string `json:"endDate"`
	Position    string `json:"position,omitempty"`
	Format      string `json:"format"`
	Body        string `json:"body"`
}

// maxUsageDays bounds one GetUsage call.
const maxUsageDays = 366

const dateLayout = "2006-01-02"

type getUsageInput struct {
	action
	paging
	UsagePlanID string `json:"usagePlanId"`
	KeyID       string `json:"keyId"`
	StartDate   string `json:"startDate"`
	EndDate     string `json:"endDate"`
	Format      string `json:"format"`
}

func getUsage(ctx context.Context, s *Service, in *getUsageInput) (any, error) {
	if in.UsagePlanID == "" {
		return nil, badRequest("usagePlanId is required: the id of the usage plan")
	}
	start, end, e := dateRange(in.StartDate, in.EndDate)
	if e != nil {
		return nil, e
	}
	if in.Format != "" && in.Format != "csv" {
		return nil, badRequest("format must be \"csv\" for a CSV export, or left out for JSON, not %q", in.Format)
	}
	limit, after, e := in.read()
	if e != nil {
		return nil, e
	}
	p, err := s.Store.Plan(ctx, in.UsagePlanID)
	if err != nil {
		return nil, err
	}
	var page store.Page
	if in.KeyID != "" {
		if err := s.member(ctx, in.UsagePlanID, in.KeyID); err != nil {
			return nil, err
		}
		page.IDs = []string{in.KeyID}
	} else if page, err = s.Store.MemberIDs(ctx, in.UsagePlanID, after, limit); err != nil {
		return nil, err
	}
	out := Usage{
		UsagePlanID: p.ID, StartDate: in.StartDate, EndDate: in.EndDate,
		Position: encodePosition(page.Next), Items: map[string][][2]int64{},
	}
	for _, keyID := range page.IDs {
		series, err := s.usage(ctx, p, keyID, start, end)
		if err != nil {
			return nil, err
		}
		out.Items[keyID] = series
	}
	if in.Format == "csv" {
		return UsageExport{UsagePlanID: out.UsagePlanID, StartDate: out.StartDate, EndDate: out.EndDate,
			Position: out.Position, Format: "csv", Body: usageCSV(page.IDs, start, out.Items)}, nil
	}
	return out, nil
}

func dateRange(from, to string) (start, end time.Time, e *Error) {
	start, err := time.Parse(dateLayout, from)
	if err != nil {
		return start, end, badRequest("startDate must be a date written YYYY-MM-DD, not %q", from)
	}
	end, err = time.Parse(dateLayout, to)
	if err != nil {
		return start, end, badRequest("endDate must be a date written YYYY-MM-DD, not %q", to)
	}
	if end.Before(start) {
		return start, end, badRequest("endDate %s is before startDate %s", to, from)
	}
	if days := int(end.Sub(start).Hours()/24) + 1; days > maxUsageDays {
		return start, end, badRequest("the range is %d days; ask for at most %d at a time", days, maxUsageDays)
	}
	return start, end, nil
}

// usage builds a key's [used, remaining] pair for each day from start to
// end. remaining is the quota left after the day's last admission or
// extension; a day without either carries the previous day's within its
// period, and a new period starts from its limit. Today's is what is left
// now. Days whose snapshot is missing use the plan's current quota. A
// sharded plan's shards are read apart, each with its share of the limit,
// and added up.
func (s *Service) usage(ctx context.Context, p *store.Plan, keyID string, start, end time.Time) ([][2]int64, error) {
	q := p.Quota
	from := start
	if q != nil {
		from = q.Window(start).Start // remaining carries from the period's start
	}
	shards, err := s.Store.Usage(ctx, keyID, p.ID, p.ShardCount(), from.Format("200601"), end.Format("200601"))
	if err != nil {
		return nil, err
	}
	today := s.Now().UTC().Format("20060102")
	var out [][2]int64
	for i, u := range shards {
		var remaining int64
		window := ""
		day := 0
		for d := from; !d.After(end); d = d.AddDate(0, 0, 1) {
			date := d.Format("20060102")
			if q != nil {
				w := q.Window(d)
				limit := plans.Share(p.QuotaLimitIn(w), i, len(shards))
				if w.ID != window {
					window, remaining = w.ID, limit
				}
				if r, ok := u.Remaining[date]; ok {
					remaining = r
				}
				if date == today {
					remaining = limit - u.Periods[w.ID]
				}
			}
			if d.Before(start) {
				continue
			}
			if i == 0 {
				out = append(out, [2]int64{0, -1})
				if q != nil {
					out[day][1] = 0
				}
			}
			out[day][0] += u.Used[date]
			if q != nil {
				out[day][1] += max(remaining, 0)
			}
			day++
		}
	}
	return out, nil
}

// usageCSV writes one row per key per day.
func usageCSV(keys []string, start time.Time, items map[string][][2]int64) string {
	var b strings.Builder
	b.WriteString("keyId,date,used,remaining\n")
	for _, k := range keys {
		for i, pair := range items[k] {
			fmt.Fprintf(&b, "%s,%s,%d,%d\n", k, start.AddDate(0, 0, i).Format(dateLayout), pair[0], pair[1])
		}
	}
	return b.String()
}

type updateUsageInput struct {
	action
	UsagePlanID     string           `json:"usagePlanId"`
	KeyID           string           `json:"keyId"`
	PatchOperations []PatchOperation `json:"patchOperations"`
}

// updateUsage sets the quota remaining for the current period, as API
// Gateway's "extension": replace /remaining with the new number (not a
// delta). It may exceed the limit. It answers with today's usage.
func updateUsage(ctx context.Context, s *Service, in *updateUsageInput) (any, error) {
	switch {
	case in.UsagePlanID == "":
		return nil, badRequest("usagePlanId is required: the id of the usage plan")
	case in.KeyID == "":
		return nil, badRequest("keyId is required: the id of the API key")
	case len(in.PatchOperations) != 1 || in.PatchOperations[0].Op != "replace" || in.PatchOperations[0].Path != "/remaining":
		return nil, badRequest(`patchOperations must be one operation, {"op":"replace","path":"/remaining","value":"<requests>"}`)
	}
	v, e := in.PatchOperations[0].value(0)
	if e != nil {
		return nil, e
	}
	remaining, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || remaining < 0 {
		return nil, badRequest("patchOperations[0].value must be a whole number of requests, 0 or more, not %q", v)
	}
	p, err := s.Store.Plan(ctx, in.UsagePlanID)
	if err != nil {
		return nil, err
	}
	if p.Quota == nil {
		return nil, badRequest("usage plan %s has no quota, so there is no remaining quota to set: add one with UpdateUsagePlan", p.ID)
	}
	now := s.Now().UTC()
	w := p.Quota.Window(now)
	if err := s.Store.SetRemaining(ctx, in.KeyID, p.ID, p.ShardCount(), w.ID, now.Format("20060102"), p.QuotaLimitIn(w), remaining); err != nil {
		return nil, err
	}
	today := now.Truncate(24 * time.Hour)
	series, err := s.usage(ctx, p, in.KeyID, today, today)
	if err != nil {
		return nil, err
	}
	date := today.Format(dateLayout)
	return Usage{UsagePlanID: p.ID, StartDate: date, EndDate: date, Items: map[string][][2]int64{in.KeyID: series}}, nil
}
