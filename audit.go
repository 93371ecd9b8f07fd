package vaultstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"
)

// AuditEvent describes one call that created, read, changed, deleted or
// rotated values, as NewStoreOptions.Audit receives it. It never holds a
// value or a password: only which tokens and records the call named or
// made, and how it ended.
type AuditEvent struct {
	// Operation is the method's name, such as "TokenRead".
	Operation string
	// Tokens and RecordIDs are what the call named or created, when it
	// names them; bulk calls (TokensExpiredDelete, rotation) name none and
	// report Count.
	Tokens    []string
	RecordIDs []string
	// Outcome is "ok", or the name of the sentinel error the call returns
	// ("ErrRecordNotFound", "ErrInvalidPassword", …; "other" for errors
	// that match none, "canceled" when the context ended).
	Outcome string
	// Count is the number of records a bulk call handled.
	Count int64
	// Time is when the call started; Duration how long it took.
	Time     time.Time
	Duration time.Duration
}

// auditedOps are the operations that touch values and so reach the audit
// hook; the others (settings, TokenExists, set-up) are traced only.
// TokenUpsert is audited as the TokenCreate or TokenUpdate it makes.
var auditedOps = map[string]bool{
	opRecordCreate: true, opRecordDeleteByID: true, opRecordDeleteByToken: true, opRecordFindByID: true,
	opRecordFindByToken: true, opRecordList: true, opRecordSoftDelete: true, opRecordSoftDeleteByID: true,
	opRecordSoftDeleteByToken: true, opRecordUpdate: true,
	opTokenCreate: true, opTokenCreateCustom: true, opTokenRead: true, opTokenUpdate: true,
	opTokenDelete: true, opTokenSoftDelete: true, opTokenRenew: true, opTokensExpiredSoftDelete: true,
	opTokensExpiredDelete: true, opTokensRead: true, opTokensChangePassword: true, opVerifyValue: true,
	opTokenRestore: true, opRecordRestoreByID: true, opTokensFindByValue: true,
}

// Operation names, as spans, metrics and audit events give them.
const (
	opAutoMigrate             = "AutoMigrate"
	opRecordCount             = "RecordCount"
	opRecordCreate            = "RecordCreate"
	opRecordDeleteByID        = "RecordDeleteByID"
	opRecordDeleteByToken     = "RecordDeleteByToken"
	opRecordFindByID          = "RecordFindByID"
	opRecordFindByToken       = "RecordFindByToken"
	opRecordList              = "RecordList"
	opRecordSoftDelete        = "RecordSoftDelete"
	opRecordSoftDeleteByID    = "RecordSoftDeleteByID"
	opRecordSoftDeleteByToken = "RecordSoftDeleteByToken"
	opRecordUpdate            = "RecordUpdate"
	opTokenCreate             = "TokenCreate"
	opTokenCreateCustom       = "TokenCreateCustom"
	opTokenRead               = "TokenRead"
	opTokenUpdate             = "TokenUpdate"
	opTokenUpsert             = "TokenUpsert"
	opTokenDelete             = "TokenDelete"
	opTokenSoftDelete         = "TokenSoftDelete"
	opTokenExists             = "TokenExists"
	opTokenRenew              = "TokenRenew"
	opTokensExpiredSoftDelete = "TokensExpiredSoftDelete"
	opTokensExpiredDelete     = "TokensExpiredDelete"
	opTokensRead              = "TokensRead"
	opTokensChangePassword    = "TokensChangePassword"
	opGetVaultSetting         = "GetVaultSetting"
	opSetVaultSetting         = "SetVaultSetting"
	opRewrapRoot              = "RewrapRoot"
	opDestroyRoot             = "DestroyRoot"
	opVerifyValue             = "VerifyValue"
	opStats                   = "Stats"
	opSchemaCheck             = "SchemaCheck"
	opTokenRestore            = "TokenRestore"
	opRecordRestoreByID       = "RecordRestoreByID"
	opTokenMetadata           = "TokenMetadata"
	opTokenMetadataSet        = "TokenMetadataSet"
	opTokensFindByMetadata    = "TokensFindByMetadata"
	opTokensFindByValue       = "TokensFindByValue"
)

// spanNames are the span names of the operations, made once.
var spanNames = func() map[string]string {
	m := map[string]string{}
	for _, op := range []string{opAutoMigrate, opRecordCount, opRecordCreate, opRecordDeleteByID, opRecordDeleteByToken,
		opRecordFindByID, opRecordFindByToken, opRecordList, opRecordSoftDelete, opRecordSoftDeleteByID,
		opRecordSoftDeleteByToken, opRecordUpdate, opTokenCreate, opTokenCreateCustom, opTokenRead, opTokenUpdate,
		opTokenUpsert, opTokenDelete, opTokenSoftDelete, opTokenExists, opTokenRenew, opTokensExpiredSoftDelete,
		opTokensExpiredDelete, opTokensRead, opTokensChangePassword, opGetVaultSetting, opSetVaultSetting,
		opRewrapRoot, opDestroyRoot, opVerifyValue, opStats, opSchemaCheck, opTokenRestore, opRecordRestoreByID,
		opTokenMetadata, opTokenMetadataSet, opTokensFindByMetadata, opTokensFindByValue} {
		m[op] = "vaultstore." + op
	}
	return m
}()

// auditConfig is a store's audit hook and what a failing one does.
type auditConfig struct {
	hook       func(ctx context.Context, e AuditEvent) error
	failClosed bool
}

// record calls the hook for o, which ended with err. A failing hook is
// logged; with failClosed it is also the call's error.
func (a auditConfig) record(ctx context.Context, o *operation, err error) error {
	e := AuditEvent{
		Operation: o.name,
		Tokens:    o.tokenList(),
		RecordIDs: o.records,
		Outcome:   errorClass(err),
		Count:     o.count,
		Time:      o.start,
		Duration:  time.Since(o.start),
	}
	herr := a.hook(ctx, e)
	if herr == nil {
		return nil
	}
	// The hook's error is the application's own text, which it may log;
	// the store's log gets only that it failed.
	o.s.tel.warn(ctx, "vaultstore: audit hook failed", slog.String(attrOp, o.name), slog.Bool("fail_closed", a.failClosed))
	if !a.failClosed {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrAuditFailed, o.name, herr)
}

// auditTx reports whether writes run in a transaction of the store's own
// with the audit hook called inside it: with AuditFailClosed, so that a
// failing hook rolls the write back. A bound store is already inside the
// caller's transaction.
func (s *Store) auditTx() bool {
	return s.audit.hook != nil && s.audit.failClosed && !s.bound
}

// auditedWrite runs f on a store bound to a new transaction of the store's
// own: f's call reports itself, its audit hook included, inside the
// transaction, and a failing hook (ErrAuditFailed) rolls everything back.
// op, the outer call, then reports nothing. What a bound store may not
// make (the meta table, the KMS root) is made first, outside, when
// encrypts says the write needs it.
func (s *Store) auditedWrite(ctx context.Context, op *operation, encrypts bool, f func(b *Store) error) error {
	op.delegated = true
	if err := s.ensureMetaTable(ctx); err != nil {
		return err
	}
	if encrypts && s.writeVersion == ENCRYPTION_VERSION_V3 && s.bindsRoot() {
		if _, _, err := s.rootForWrite(ctx); err != nil {
			return err
		}
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return f(s.bindTo(tx.Statement.ConnPool))
	})
}

// auditBatch is the audit of one rotation batch with AuditFailClosed,
// called inside the batch's transaction so that a failing hook rolls the
// batch back and stops the rotation.
func (s *Store) auditBatch(ctx context.Context, ids []string) error {
	e := AuditEvent{Operation: opTokensChangePassword, RecordIDs: ids, Outcome: "ok", Count: int64(len(ids)), Time: time.Now()}
	if err := s.audit.hook(ctx, e); err != nil {
		s.tel.warn(ctx, "vaultstore: audit hook failed", slog.String(attrOp, opTokensChangePassword), slog.Bool("fail_closed", true))
		return fmt.Errorf("%w: %s: %w", ErrAuditFailed, opTokensChangePassword, err)
	}
	return nil
}
