package vaultstore

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names the tracer and meter, as OpenTelemetry's
// guidance for instrumented libraries asks: the module path.
const instrumentationName = "github.com/vaultstore/vaultstore"

// Attribute keys of log records and spans. They are stable, so that a
// handler or a collector can filter on them.
const (
	attrOp       = "op"
	attrTable    = "table"
	attrRecords  = "records"
	attrDuration = "duration"
	attrErr      = "err"
)

// telemetry holds what a store reports through: its logger and the
// OpenTelemetry instruments, made once in NewStore. With no SDK installed
// the global providers are no-ops, and a call costs a few interface calls.
type telemetry struct {
	log    *slog.Logger // nil: silent
	system string       // db.system.name: sqlite, postgresql, mysql

	tracer      trace.Tracer
	ops         metric.Int64Counter
	opDuration  metric.Float64Histogram
	kdfRuns     metric.Int64Counter
	kdfDuration metric.Float64Histogram
	cacheLookup metric.Int64Counter
	rotated     metric.Int64Counter

	// outcomes caches the attribute set of each operation and outcome,
	// so that recording a call allocates nothing.
	mu       sync.RWMutex
	outcomes map[[2]string]*outcomeOptions
}

// outcomeOptions are the measurement options of one operation and outcome,
// as the slices Add and Record take, so that no call builds them.
type outcomeOptions struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

// outcome is the metric attributes of op ending in class.
func (t *telemetry) outcome(op, class string) *outcomeOptions {
	key := [2]string{op, class}
	t.mu.RLock()
	o, ok := t.outcomes[key]
	t.mu.RUnlock()
	if ok {
		return o
	}
	set := metric.WithAttributeSet(attribute.NewSet(attribute.String("vaultstore.operation", op), attribute.String("vaultstore.outcome", class)))
	o = &outcomeOptions{add: []metric.AddOption{set}, record: []metric.RecordOption{set}}
	t.mu.Lock()
	t.outcomes[key] = o
	t.mu.Unlock()
	return o
}

func newTelemetry(log *slog.Logger, dialect string, tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	t := &telemetry{log: log, system: dialect, tracer: tp.Tracer(instrumentationName), outcomes: map[[2]string]*outcomeOptions{}}
	if dialect == dialectPostgres {
		t.system = "postgresql"
	}
	m := mp.Meter(instrumentationName)
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	t.ops, err = m.Int64Counter("vaultstore.operations", metric.WithDescription("Store operations by name and outcome."), metric.WithUnit("{operation}"))
	add(err)
	t.opDuration, err = m.Float64Histogram("vaultstore.operation.duration", metric.WithDescription("Duration of store operations."), metric.WithUnit("s"))
	add(err)
	t.kdfRuns, err = m.Int64Counter("vaultstore.kdf.derivations", metric.WithDescription("Argon2id derivations run."), metric.WithUnit("{derivation}"))
	add(err)
	t.kdfDuration, err = m.Float64Histogram("vaultstore.kdf.duration", metric.WithDescription("Duration of Argon2id derivations."), metric.WithUnit("s"))
	add(err)
	t.cacheLookup, err = m.Int64Counter("vaultstore.key_cache.lookups", metric.WithDescription("Key cache lookups by result (hit, miss)."), metric.WithUnit("{lookup}"))
	add(err)
	t.rotated, err = m.Int64Counter("vaultstore.rotation.records", metric.WithDescription("Records a password rotation processed, by result (changed, skipped, other)."), metric.WithUnit("{record}"))
	add(err)
	if err := errors.Join(errs...); err != nil {
		return nil, validationErrorf("MeterProvider refused an instrument: %v", err)
	}
	return t, nil
}

// info and warn log when a Logger was given.
func (t *telemetry) info(ctx context.Context, msg string, attrs ...slog.Attr) {
	if t.log != nil {
		t.log.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
	}
}

func (t *telemetry) warn(ctx context.Context, msg string, attrs ...slog.Attr) {
	if t.log != nil {
		t.log.LogAttrs(ctx, slog.LevelWarn, msg, attrs...)
	}
}

// errorClass names an error by the sentinel it matches, the only form in
// which an error leaves the store through telemetry or audit: error texts
// may name tokens.
func errorClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	case errors.Is(err, ErrAuditFailed):
		return "ErrAuditFailed"
	case errors.Is(err, ErrKeyUnavailable):
		return "ErrKeyUnavailable"
	case errors.Is(err, ErrInvalidPassword):
		return "ErrInvalidPassword"
	case errors.Is(err, ErrDecryptionFailed):
		return "ErrDecryptionFailed"
	case errors.Is(err, ErrRecordNotFound):
		return "ErrRecordNotFound"
	case errors.Is(err, ErrTokenExpired):
		return "ErrTokenExpired"
	case errors.Is(err, ErrTokenAlreadyExists):
		return "ErrTokenAlreadyExists"
	case errors.Is(err, ErrPasswordInvalid):
		return "ErrPasswordInvalid"
	case errors.Is(err, ErrValidationFailed):
		return "ErrValidationFailed"
	default:
		return "other"
	}
}

// operation is one public call in progress: its span, its start, and what
// its audit event will say.
type operation struct {
	s        *Store
	ctx      context.Context
	name     string
	start    time.Time
	span     trace.Span
	token    string   // the one token the call names, or
	tokens   []string // the tokens of a call that names several
	tokenOut *string  // a token the call makes, known when it ends
	records  []string
	// delegated is set when another operation, run inside this one,
	// reports the call (auditedWrite): this one only ends its span.
	delegated bool
	count     int64
	counted   bool
}

// observe starts op: a span, and, for calls that touch values, the audit
// event's subject. Methods call it first and defer end.
func (s *Store) observe(ctx context.Context, name string, tokens ...string) (context.Context, *operation) {
	spanName, ok := spanNames[name]
	if !ok {
		spanName = "vaultstore." + name
	}
	ctx, span := s.tel.tracer.Start(ctx, spanName)
	if span.IsRecording() {
		// Without an SDK nothing records, and nothing is built.
		span.SetAttributes(attribute.String("vaultstore.operation", name), attribute.String("db.system.name", s.tel.system))
	}
	op := operationPool.Get().(*operation)
	*op = operation{s: s, ctx: ctx, name: name, start: time.Now(), span: span}
	switch len(tokens) {
	case 0:
	case 1:
		op.token = tokens[0] // tokens itself does not escape
	default:
		// Only an audit event names them; a TokensRead of thousands of
		// tokens should not copy its list for nothing.
		if s.audit.hook != nil {
			op.tokens = slices.Clone(tokens)
		}
	}
	return ctx, op
}

// operationPool recycles operations: every call makes one.
var operationPool = sync.Pool{New: func() any { return new(operation) }}

// tokenList is what the audit event names.
func (o *operation) tokenList() []string {
	switch {
	case o.tokenOut != nil && *o.tokenOut != "":
		return []string{*o.tokenOut}
	case o.token != "":
		return []string{o.token}
	}
	return o.tokens
}

// setCount records how many records a bulk call handled.
func (o *operation) setCount(n int64) { o.count, o.counted = n, true }

// end finishes the operation with the error it returns: it calls the audit
// hook (which may turn a success into ErrAuditFailed when AuditFailClosed
// is set), ends the span and records the metrics.
func (o *operation) end(err *error) {
	s := o.s
	defer o.release()
	if o.delegated {
		o.span.End()
		return
	}
	if s.audit.hook != nil && auditedOps[o.name] {
		if aerr := s.audit.record(o.ctx, o, *err); aerr != nil && *err == nil {
			*err = aerr
		}
	}
	class := errorClass(*err)
	elapsed := time.Since(o.start)
	if o.span.IsRecording() {
		if o.counted {
			o.span.SetAttributes(attribute.Int64("vaultstore.records", o.count))
		}
		if *err != nil {
			o.span.SetAttributes(attribute.String("error.type", class))
			o.span.SetStatus(codes.Error, class)
		}
	}
	o.span.End()
	set := s.tel.outcome(o.name, class)
	s.tel.ops.Add(o.ctx, 1, set.add...)
	s.tel.opDuration.Record(o.ctx, elapsed.Seconds(), set.record...)
}

// release returns o to the pool; nothing may use it afterwards.
func (o *operation) release() {
	*o = operation{}
	operationPool.Put(o)
}

// endRead is end for calls that return a value: a failed audit withholds
// it.
func endRead[T any](o *operation, value *T, err *error) {
	switch v := any(*value).(type) {
	case []RecordInterface:
		o.setCount(int64(len(v)))
	case map[string]string:
		o.setCount(int64(len(v)))
	}
	o.end(err)
	if *err != nil {
		var zero T
		*value = zero
	}
}

// observeRecords is observe for calls that take a record.
func (s *Store) observeRecords(ctx context.Context, name string, record RecordInterface) (context.Context, *operation) {
	ctx, op := s.observe(ctx, name)
	if !isNil(record) {
		op.records = []string{record.GetID()}
	}
	return ctx, op
}

// endCount is end for bulk calls that return how many records they
// handled.
func endCount[N int | int64](o *operation, n *N, err *error) {
	o.setCount(int64(*n))
	o.end(err)
}
