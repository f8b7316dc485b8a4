// Package decisionlog writes the authorizer's decisions to its log at a
// small cost per decision. CloudWatch Logs charges by the byte, and one line
// per decision costs about as much as the decision's DynamoDB write, so:
//
//   - metrics are counted in memory and written as CloudWatch Embedded
//     Metric Format (EMF) records, one per interval (and per usage plan and
//     reason seen in it), when a decision finds the interval over, and by
//     Flush when the instance shuts down;
//   - repeated denials (a flooded key, garbage keys) become one line per key
//     and reason per interval, with a count;
//   - errors get a line each, at once, carrying their own metrics, so that
//     alarms on them do not wait for the interval; unusual denials get a
//     line at once for the first of each key and reason in an interval;
//   - with All (LOG_DECISIONS=all), every decision gets a line of its own.
//
// What an instance that stops without Flush loses is its current interval's
// counts: metrics only. Metering and usage live in DynamoDB, never here.
package decisionlog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Kind says how a decision is logged.
type Kind int

const (
	// Counted decisions (an allow under the limits) only add to the metrics.
	Counted Kind = iota
	// Repeated decisions (a throttle, a spent quota, a missing or bad key)
	// are expected in floods: one line per key and reason per interval.
	Repeated
	// Unusual decisions (a disabled key, no plan) log their first occurrence
	// per key and reason in an interval at once, then are Repeated.
	Unusual
	// Alone decisions (errors, malformed events) log a line each, at once,
	// with their metrics in it.
	Alone
)

// Decision is what the log needs of one decision. It never holds a key's
// value.
type Decision struct {
	// At is when the decision was made, by the clock that sets intervals.
	At        time.Time
	Kind      Kind
	Allow     bool
	Reason    string
	PlanID    string // "" before a plan is known
	KeyID     string // "" before the key is known
	APIID     string
	Stage     string
	RouteKey  string
	RequestID string
	// Counts are this decision's counts by outcome and reason and by usage
	// plan, beside Decisions (always 1): Throttled, QuotaExceeded, and any
	// a caller declared in Config.Counts.
	Counts []Count
	// DynamoDBCalls and the latencies are metrics without dimensions.
	DynamoDBCalls   int
	DynamoDBLatency time.Duration
	Latency         time.Duration
	// Attrs are more fields for the decision's own line, when it has one.
	Attrs []slog.Attr
	// Level is the level of the decision's own line. Default: info.
	Level slog.Level
	// Shadow marks a request over a limit that a plan in shadow let
	// through: its lines, its own and its key's repeated one, say shadow.
	Shadow bool
}

// Count is one named count of a decision.
type Count struct {
	Name string
	N    int64
}

// Config configures a Logger.
type Config struct {
	// Namespace is the metrics' CloudWatch namespace.
	Namespace string
	// Interval is how long counts are gathered before they are written,
	// aligned to the clock (an interval of 1m writes each minute's counts
	// once). Default: one minute, CloudWatch's standard resolution.
	Interval time.Duration
	// All logs a line for every decision (LOG_DECISIONS=all), for
	// debugging. Metrics are aggregated all the same.
	All bool
	// Counts names the counts by outcome and reason and by usage plan,
	// beside Decisions, that metrics records carry: each record only those
	// that are not 0 for its outcome, reason and plan, since CloudWatch
	// bills a month for each metric name and dimension values it sees.
	Counts []string
	// Totals names counts among Counts that are also written without
	// dimensions: each interval's sum over every outcome, reason and plan,
	// in a record of its own, and a line written alone's own value. An
	// alarm can read a metric without dimensions, but cannot add up
	// dimension values it does not know. As the other counts, a total is
	// written only when it is not 0.
	Totals []string
	// MaxGroups bounds the repeated-decision lines per interval; beyond it,
	// decisions are counted under their reason and stage alone. Default 1000.
	MaxGroups int
}

// Logger aggregates decisions. It is safe for concurrent use.
type Logger struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	window time.Time // the start of the interval being gathered
	agg    aggregate
}

// New returns a Logger writing to log.
func New(cfg Config, log *slog.Logger) *Logger {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = 1000
	}
	return &Logger{cfg: cfg, log: log, agg: newAggregate()}
}

// Record logs one decision. If the decision is past the interval being
// gathered, it first writes that interval's records.
func (l *Logger) Record(ctx context.Context, d *Decision) {
	now := d.At
	l.mu.Lock()
	// A clock that steps back keeps adding to the current interval.
	if start := now.Truncate(l.cfg.Interval); start.After(l.window) {
		l.flushLocked(ctx)
		l.window = start
	}
	if d.Kind == Alone {
		// Its own line carries its metrics, so alarms see it at once.
		l.mu.Unlock()
		l.writeAlone(ctx, d, now)
		return
	}
	first := l.agg.add(d, l.cfg.MaxGroups, !l.cfg.All)
	l.mu.Unlock()
	if l.cfg.All || (first && d.Kind == Unusual) {
		l.writeDecision(ctx, d)
	}
}

// Flush writes the counts gathered so far. Call it when the instance shuts
// down.
func (l *Logger) Flush(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked(ctx)
}

func (l *Logger) flushLocked(ctx context.Context) {
	if l.agg.empty() {
		return
	}
	l.writeMetrics(ctx, l.window)
	l.writeRepeats(ctx)
	l.agg = newAggregate()
}
