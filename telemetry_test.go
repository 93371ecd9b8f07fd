package vaultstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/vaultstore/vaultstore"
)

// recordingHandler keeps every slog record, rendered with its attributes.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordingHandler) text() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
		out = append(out, b.String())
	}
	return out
}

// observed is a store wired to an in-memory span recorder, a manual metric
// reader, a recording logger and an audit hook that keeps every event.
type observed struct {
	store   *vaultstore.Store
	spans   *tracetest.SpanRecorder
	metrics *sdkmetric.ManualReader
	log     *recordingHandler
	mu      sync.Mutex
	events  []vaultstore.AuditEvent
}

func newObserved(t *testing.T, modify ...func(*vaultstore.NewStoreOptions)) *observed {
	t.Helper()
	o := &observed{spans: tracetest.NewSpanRecorder(), metrics: sdkmetric.NewManualReader(), log: &recordingHandler{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(o.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(o.metrics))
	t.Cleanup(func() { tp.Shutdown(context.Background()); mp.Shutdown(context.Background()) })
	o.store = newTestStore(t, append([]func(*vaultstore.NewStoreOptions){func(opts *vaultstore.NewStoreOptions) {
		opts.TracerProvider, opts.MeterProvider = tp, mp
		opts.Logger = slog.New(o.log)
		opts.DebugEnabled = true
		opts.Audit = func(_ context.Context, e vaultstore.AuditEvent) error {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.events = append(o.events, e)
			return nil
		}
	}}, modify...)...)
	return o
}

// everything renders all that left the store: log records, spans, metric
// attributes and audit events.
func (o *observed) everything(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, l := range o.log.text() {
		fmt.Fprintln(&b, l)
	}
	for _, s := range o.spans.Ended() {
		fmt.Fprintln(&b, s.Name(), s.Attributes(), s.Status(), s.Events(), s.Links())
	}
	var rm metricdata.ResourceMetrics
	if err := o.metrics.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%+v\n", rm)
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.events {
		fmt.Fprintf(&b, "%+v\n", e)
	}
	return b.String()
}

// TestTelemetryHoldsNoSecret drives every public method with a known
// password and value and finds neither in any log record, span, metric or
// audit event; the spans, metrics and events are there.
func TestTelemetryHoldsNoSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newObserved(t, identities)
	s := o.store
	const password, value = "telemetry password 7f3a9c", "telemetry plaintext 51e2d8"
	const newPassword = "telemetry new password 0b6e"

	tok, err := s.TokenCreate(ctx, value, password, 20)
	if err != nil {
		t.Fatal(err)
	}
	mustCustom(t, s, "tk_telemetry_custom", value, password, vaultstore.TokenCreateOptions{ExpiresAt: time.Now().Add(-time.Hour)})
	calls := []error{
		func() error { _, err := s.TokenRead(ctx, tok, password); return err }(),
		func() error { _, err := s.TokenRead(ctx, tok, "a wrong "+password); return err }(),
		s.TokenUpdate(ctx, tok, value+" v2", password),
		func() error { _, err := s.TokenUpsert(ctx, tok, value, password); return err }(),
		func() error { _, err := s.TokenUpsert(ctx, "", value, password); return err }(),
		func() error { _, err := s.TokensRead(ctx, []string{tok}, password); return err }(),
		func() error {
			_, err := s.TokensReadToResolvedMap(ctx, map[string]string{"k": tok}, password)
			return err
		}(),
		func() error { _, err := s.TokenExists(ctx, tok); return err }(),
		s.TokenRenew(ctx, tok, time.Now().Add(time.Hour)),
		func() error { _, err := s.RecordFindByToken(ctx, tok); return err }(),
		func() error { _, err := s.RecordList(ctx, vaultstore.RecordQuery()); return err }(),
		func() error { _, err := s.RecordCount(ctx, vaultstore.RecordQuery()); return err }(),
		s.SetVaultSetting(ctx, "telemetry.setting", "not secret"),
		func() error { _, err := s.GetVaultSetting(ctx, "telemetry.setting"); return err }(),
		func() error { _, err := s.TokensChangePassword(ctx, password, newPassword); return err }(),
		func() error { _, err := s.TokensExpiredSoftDelete(ctx); return err }(),
		func() error { _, err := s.TokensExpiredDelete(ctx); return err }(),
		s.TokenSoftDelete(ctx, tok),
		s.TokenDelete(ctx, tok),
		s.AutoMigrate(),
	}
	for i, err := range calls {
		if err != nil && !errors.Is(err, vaultstore.ErrInvalidPassword) {
			t.Errorf("call %d: %v", i, err)
		}
	}
	rec := mustCreateRecord(t, s, "tk_telemetry_record", "raw "+value)
	for _, err := range []error{
		s.RecordUpdate(ctx, rec.SetValue("raw2 "+value)),
		func() error { _, err := s.RecordFindByID(ctx, rec.GetID()); return err }(),
		s.RecordSoftDelete(ctx, rec),
		s.RecordSoftDeleteByID(ctx, rec.GetID()),
		s.RecordSoftDeleteByToken(ctx, "tk_telemetry_record"),
		s.RecordDeleteByToken(ctx, "tk_telemetry_record"),
		s.RecordDeleteByID(ctx, rec.GetID()),
	} {
		// The record is gone for the later calls; they are traced anyway.
		if err != nil && !errors.Is(err, vaultstore.ErrRecordNotFound) {
			t.Error(err)
		}
	}

	all := o.everything(t)
	for _, secret := range []string{password, newPassword, value, "raw " + value} {
		if strings.Contains(all, secret) {
			t.Fatalf("%q left the store through its telemetry:\n%s", secret, all)
		}
	}
	spans := map[string]int{}
	for _, sp := range o.spans.Ended() {
		spans[sp.Name()]++
	}
	for _, name := range []string{"TokenCreate", "TokenRead", "TokenUpdate", "TokenUpsert", "TokensRead", "TokenExists", "TokenRenew",
		"TokensChangePassword", "TokensExpiredSoftDelete", "TokensExpiredDelete", "TokenSoftDelete", "TokenDelete", "AutoMigrate",
		"RecordCreate", "RecordUpdate", "RecordFindByID", "RecordFindByToken", "RecordList", "RecordCount", "RecordSoftDelete",
		"RecordSoftDeleteByID", "RecordSoftDeleteByToken", "RecordDeleteByToken", "RecordDeleteByID", "GetVaultSetting", "SetVaultSetting"} {
		if spans["vaultstore."+name] == 0 {
			t.Errorf("no span vaultstore.%s", name)
		}
	}
	for _, want := range []string{"vaultstore.operations", "vaultstore.operation.duration", "vaultstore.kdf.derivations",
		"vaultstore.kdf.duration", "vaultstore.key_cache.lookups", "vaultstore.rotation.records", "ErrInvalidPassword"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in the metrics", want)
		}
	}
	for _, want := range []string{"rotation ended", "tables migrated", "vaultstore: sql"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in the log", want)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var read *vaultstore.AuditEvent
	for i, e := range o.events {
		if e.Operation == "TokenExists" || e.Operation == "GetVaultSetting" {
			t.Errorf("%s reached the audit hook; it touches no value", e.Operation)
		}
		if e.Operation == "TokenRead" && e.Outcome == "ok" {
			read = &o.events[i]
		}
	}
	if read == nil || len(read.Tokens) != 1 || read.Tokens[0] != tok || read.Time.IsZero() {
		t.Fatalf("audit event of the read = %+v", read)
	}
}

// TestAuditFailure: a failing hook is logged and ignored by default; with
// AuditFailClosed the call fails with ErrAuditFailed and a read returns no
// value.
func TestAuditFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	failing := func(context.Context, vaultstore.AuditEvent) error { return errors.New("audit sink down") }
	open := newObserved(t, func(o *vaultstore.NewStoreOptions) { o.Audit = failing })
	tok, err := open.store.TokenCreate(ctx, "v", testPassword, 20)
	if err != nil {
		t.Fatalf("fail-open TokenCreate = %v", err)
	}
	if v, err := open.store.TokenRead(ctx, tok, testPassword); err != nil || v != "v" {
		t.Fatalf("fail-open TokenRead = %q, %v", v, err)
	}
	if !strings.Contains(strings.Join(open.log.text(), "\n"), "audit hook failed") {
		t.Fatal("a failing audit hook was not logged")
	}

	// Fail closed: a write whose audit fails is rolled back with the
	// store's own transaction, and a read returns no value.
	var refuse atomic.Bool
	var mu sync.Mutex
	var seen []string
	hook := func(_ context.Context, e vaultstore.AuditEvent) error {
		mu.Lock()
		seen = append(seen, e.Operation)
		mu.Unlock()
		if refuse.Load() {
			return errors.New("audit sink down")
		}
		return nil
	}
	db := openMemorySQLite(t)
	closed := newStore(t, db, identities, func(o *vaultstore.NewStoreOptions) { o.Audit = hook; o.AuditFailClosed = true })
	mustCustom(t, closed, "tk_audit_closed0", "kept", testPassword)
	mustCustom(t, closed, "tk_audit_closed9", "kept", testPassword)
	if fmt.Sprint(seen) != "[TokenCreateCustom TokenCreateCustom]" {
		t.Fatalf("audit events %v, want one per call", seen)
	}
	refuse.Store(true)
	rows := func() int64 { return countRows(t, db, "SELECT COUNT(*) FROM "+closed.GetVaultTableName()) }
	links := func() int64 {
		return countRows(t, db, "SELECT COUNT(*) FROM "+closed.GetMetaTableName()+" WHERE object_type = 'record'")
	}
	for name, call := range map[string]func() error{
		"RecordCreate": func() error {
			return closed.RecordCreate(ctx, vaultstore.NewRecord().SetToken("tk_audit_closed1").SetValue("x"))
		},
		"TokenCreateCustom": func() error { return closed.TokenCreateCustom(ctx, "tk_audit_closed2", "secret", testPassword) },
		"TokenCreate":       func() error { _, err := closed.TokenCreate(ctx, "secret", testPassword, 20); return err },
		"TokenUpdate":       func() error { return closed.TokenUpdate(ctx, "tk_audit_closed0", "changed", testPassword) },
		"TokenDelete":       func() error { return closed.TokenDelete(ctx, "tk_audit_closed0") },
		"TokenSoftDelete":   func() error { return closed.TokenSoftDelete(ctx, "tk_audit_closed0") },
		"RotationBatch": func() error {
			_, err := closed.TokensChangePassword(ctx, testPassword, "another long password")
			return err
		},
	} {
		before, beforeLinks := rows(), links()
		if err := call(); !errors.Is(err, vaultstore.ErrAuditFailed) {
			t.Errorf("fail-closed %s = %v, want ErrAuditFailed", name, err)
		}
		if rows() != before || links() != beforeLinks {
			t.Errorf("fail-closed %s left a write behind", name)
		}
	}
	refuse.Store(false)
	for _, tok := range []string{"tk_audit_closed0", "tk_audit_closed9"} {
		if v, err := closed.TokenRead(ctx, tok, testPassword); err != nil || v != "kept" {
			t.Fatalf("after refused writes %s = %q, %v, want it untouched", tok, v, err)
		}
	}
	refuse.Store(true)
	if v, err := closed.TokenRead(ctx, "tk_audit_closed0", testPassword); !errors.Is(err, vaultstore.ErrAuditFailed) || v != "" {
		t.Fatalf("fail-closed TokenRead = %q, %v, want no value and ErrAuditFailed", v, err)
	}
	if got, err := closed.TokensRead(ctx, []string{"tk_audit_closed0"}, testPassword); !errors.Is(err, vaultstore.ErrAuditFailed) || got != nil {
		t.Fatalf("fail-closed TokensRead = %v, %v", got, err)
	}
	// Through a bound store the caller's transaction decides.
	db = openMemorySQLite(t)
	s := newStore(t, db, func(o *vaultstore.NewStoreOptions) { o.Audit = failing; o.AuditFailClosed = true })
	tx := mustBegin(t, db)
	if _, err := s.WithTx(tx).TokenCreate(ctx, "v", testPassword, 20); !errors.Is(err, vaultstore.ErrAuditFailed) {
		t.Fatalf("bound fail-closed TokenCreate = %v", err)
	}
	tx.Rollback()
	if n := countRows(t, db, "SELECT COUNT(*) FROM "+s.GetVaultTableName()); n != 0 {
		t.Fatalf("%d rows after rolling back an unaudited write", n)
	}
}
