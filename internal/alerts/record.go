package alerts

import (
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tollgate-dev/tollgate/internal/plans"
	"github.com/tollgate-dev/tollgate/internal/store"
)

// change is what one stream record, or a run of records of one meter item,
// says about a key's quota: which periods to look at, and what the item
// holds now.
type change struct {
	index   int    // of the (first) record in the batch
	owner   string // its eventID: whose the alerts it finds are
	attempt string // this attempt at it
	keyID   string
	shard   int
	planID  string
	pv      int64
	image   map[string]events.DynamoDBAttributeValue // the item after the (last) record
	at      time.Time
	// windows are the quota periods whose count, arm mark or plan moved.
	windows map[string]bool
	// armed are the periods an extension re-armed, with its mark.
	armed map[string]store.Arm
}

// meterChange reads a stream record of a meter item. ok is false for
// records that cannot matter to an alert: other items, deletions, items of
// keys no longer in the plan, and writes that moved no quota count, arm
// mark or plan version.
func meterChange(index int, r *events.DynamoDBEventRecord) (c *change, ok bool) {
	if r.EventName == string(events.DynamoDBOperationTypeRemove) {
		return nil, false
	}
	d := &r.Change
	pk, sk := str(d.Keys, store.AttrPK), str(d.Keys, store.AttrSK)
	if !strings.HasPrefix(pk, store.PartitionMeter) || !strings.HasPrefix(sk, store.MeterSK("")) {
		return nil, false
	}
	if _, assigned := d.NewImage[store.AttrKeyVersion]; !assigned {
		return nil, false
	}
	keyID, shard := strings.TrimPrefix(pk, store.PartitionMeter), 0
	if i := strings.LastIndexByte(keyID, '#'); i >= 0 {
		n, err := strconv.Atoi(keyID[i+1:])
		if err != nil || n < 1 {
			return nil, false
		}
		keyID, shard = keyID[:i], n
	}
	c = &change{
		index: index, owner: r.EventID, keyID: keyID, shard: shard, planID: strings.TrimPrefix(sk, store.MeterSK("")),
		image: d.NewImage, at: d.ApproximateCreationDateTime.UTC(),
		windows: map[string]bool{}, armed: map[string]store.Arm{},
	}
	c.pv, _ = num(d.NewImage, store.AttrPlanVersion)
	oldPV, _ := num(d.OldImage, store.AttrPlanVersion)
	for _, img := range []map[string]events.DynamoDBAttributeValue{d.NewImage, d.OldImage} {
		for name := range img {
			window := ""
			switch {
			case strings.HasPrefix(name, store.PrefixQuota):
				window = name[len(store.PrefixQuota):]
			case strings.HasPrefix(name, store.PrefixArm):
				window = name[len(store.PrefixArm):]
			default:
				continue
			}
			if _, _, ok := plans.ParseWindow(window); !ok {
				continue
			}
			q := store.PrefixQuota + window
			if _, present := d.NewImage[q]; !present {
				continue // a period cleaned up, or not yet counted
			}
			newArm, oldArm := arm(d.NewImage, window), arm(d.OldImage, window)
			if newArm != oldArm {
				c.armed[window] = newArm
			}
			n, _ := num(d.NewImage, q)
			o, _ := num(d.OldImage, q)
			if n != o || newArm != oldArm || c.pv != oldPV {
				c.windows[window] = true
			}
		}
	}
	return c, len(c.windows) > 0
}

// merge folds a later record of the same meter item into c: its periods,
// and the item as it is after it.
func (c *change) merge(later *change) {
	for w := range later.windows {
		c.windows[w] = true
	}
	c.image, c.at, c.pv = later.image, later.at, max(c.pv, later.pv)
}

// rearms reports whether later re-arms a period c covers: an extension
// that must be taken in its turn, not merged.
func (c *change) rearms(later *change) bool { return len(later.armed) > 0 }

func str(item map[string]events.DynamoDBAttributeValue, name string) string {
	v, ok := item[name]
	if !ok || v.DataType() != events.DataTypeString {
		return ""
	}
	return v.String()
}

func num(item map[string]events.DynamoDBAttributeValue, name string) (int64, bool) {
	v, ok := item[name]
	if !ok || v.DataType() != events.DataTypeNumber {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Number(), 10, 64)
	return n, err == nil
}

// arm reads an arm mark (see store.ReadArm) from a stream image.
func arm(item map[string]events.DynamoDBAttributeValue, window string) store.Arm {
	v, ok := item[store.PrefixArm+window]
	if !ok || v.DataType() != events.DataTypeMap {
		return store.Arm{}
	}
	m := v.Map()
	at, _ := num(m, "t")
	used, _ := num(m, "u")
	return store.Arm{At: at, Used: used}
}
