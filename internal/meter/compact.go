package meter

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// compact keeps the meter item small, so that every write costs 1 WCU: it
// copies the day counters from before yesterday into the month's usage
// history item, then removes them, and drops the counters (caps, arm marks) of
// quota periods that ended by the start of yesterday. Nobody writes those any more, barring a
// clock a day wrong. It runs on an instance's first admission of a UTC day
// for the item, with the item as ALL_NEW returned it, and returns the calls
// it made. If it fails half-way the copy is simply made again next time.
func (m *Meter) compact(ctx context.Context, st *item, now int64, item map[string]types.AttributeValue) int {
	yesterday := time.UnixMicro(now).UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	cutoff := yesterday.Format("20060102")
	months := map[string][]string{}
	var dropped []string
	for name := range item {
		switch {
		case store.IsDay(name, store.PrefixDay) || store.IsDay(name, store.PrefixRemaining):
			if name[1:] < cutoff {
				months[name[1:7]] = append(months[name[1:7]], name)
			}
		case strings.HasPrefix(name, store.PrefixQuota) || strings.HasPrefix(name, store.PrefixCap) || strings.HasPrefix(name, store.PrefixArm):
			if end, ok := plans.PeriodEnd(name[1:]); ok && !end.After(yesterday) {
				dropped = append(dropped, name)
			}
		}
	}
	if len(months) == 0 && len(dropped) == 0 {
		return 0
	}
	calls := 0
	var moved []string
	for month, names := range months {
		calls++
		if err := m.saveHistory(ctx, st, month, names, item); err != nil {
			m.report(err)
			return calls
		}
		moved = append(moved, names...)
	}
	calls++
	if err := m.removeOld(ctx, st, moved, dropped, item); err != nil {
		m.report(err)
	}
	return calls
}

func (m *Meter) saveHistory(ctx context.Context, st *item, month string, names []string, item map[string]types.AttributeValue) error {
	var set strings.Builder
	attrNames := map[string]string{}
	values := map[string]types.AttributeValue{}
	set.WriteString("SET ")
	for i, name := range names {
		if i > 0 {
			set.WriteString(", ")
		}
		n, v := "#a"+strconv.Itoa(i), ":v"+strconv.Itoa(i)
		fmt.Fprintf(&set, "%s = %s", n, v)
		attrNames[n], values[v] = name, item[name]
	}
	if m.Retention > 0 {
		start, _ := time.Parse("200601", month)
		set.WriteString(", #exp = :exp")
		attrNames["#exp"] = store.AttrExpires
		values[":exp"] = store.N(start.AddDate(0, 1, 0).Add(m.Retention).Unix())
	}
	_, err := m.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &m.Table,
		Key: map[string]types.AttributeValue{
			store.AttrPK: store.S(st.pk), store.AttrSK: store.S(store.HistorySK(st.planID, month)),
		},
		UpdateExpression:          aws.String(set.String()),
		ExpressionAttributeNames:  attrNames,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return fmt.Errorf("save usage history %s %s %s: %w", st.pk, st.planID, month, err)
	}
	return nil
}

// removeOld removes the moved day counters if they still hold the values
// that were copied, and the dropped quota counters.
func (m *Meter) removeOld(ctx context.Context, st *item, moved, dropped []string, item map[string]types.AttributeValue) error {
	attrNames := map[string]string{}
	values := map[string]types.AttributeValue{}
	var remove, cond []string
	for i, name := range moved {
		n, v := "#m"+strconv.Itoa(i), ":m"+strconv.Itoa(i)
		attrNames[n], values[v] = name, item[name]
		remove = append(remove, n)
		cond = append(cond, n+" = "+v)
	}
	for i, name := range dropped {
		n := "#q" + strconv.Itoa(i)
		attrNames[n] = name
		remove = append(remove, n)
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                &m.Table,
		Key:                      st.key,
		UpdateExpression:         aws.String("REMOVE " + strings.Join(remove, ", ")),
		ExpressionAttributeNames: attrNames,
	}
	if len(cond) > 0 {
		in.ConditionExpression = aws.String(strings.Join(cond, " AND "))
		in.ExpressionAttributeValues = values
	}
	if _, err := m.DB.UpdateItem(ctx, in); err != nil {
		return fmt.Errorf("remove old counters %s %s: %w", st.pk, st.planID, err)
	}
	return nil
}

func (m *Meter) report(err error) {
	if m.OnCompactError != nil {
		m.OnCompactError(err)
	}
}
