package vaultstore

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Store keeps encrypted values in a SQL database. Create it with NewStore;
// it implements StoreInterface.
//
// Values are addressed by token (the Token* methods, which encrypt and
// decrypt) or handled as raw rows (the Record* methods, which never touch
// plaintext). Every method takes a context that bounds its database work and
// any wait for a key derivation slot. Failures a caller can act on match the
// package's sentinel errors with errors.Is.
//
// A Store keeps derived keys in memory (NewStoreOptions.KeyCacheSize) and
// holds no other resource: there is nothing to close, and the caller owns
// and closes the *sql.DB.
//
// A Store is safe for concurrent use by multiple goroutines, and several
// processes may share one database: writes that must hold together (a
// rotation batch, a record and its password identity link) run in one
// transaction, and bulk changes are single statements. It starts no background goroutine
// and prints nothing unless debugging is enabled.
type Store struct {
	vaultTable string
	metaTable  string
	dialect    string
	db         *gorm.DB
	log        *sqlLogger
	stmts      *heldStatements // the hot statements, store_statements.go

	crypto                  CryptoConfig
	writeVersion            string
	read                    readPolicy
	keys                    *keyDeriver
	parallelThreshold       int
	passwordIdentityEnabled bool
	fingerprintEnabled      bool
	policy                  passwordPolicy

	// tel and audit report what the store does (telemetry.go, audit.go).
	tel   *telemetry
	audit auditConfig

	// wrapper, when set, roots v3 keys in a KMS (key_wrapper.go).
	wrapper     KeyWrapper
	rootRetired bool

	// shared is what a store learns about its vault once and keeps, shared
	// with the stores WithTx binds to transactions.
	shared *sharedState

	// testHook is nil except in tests (hooks.go).
	testHook func(p hookPoint, attempt int) error

	// bound is set on stores that WithTx bound to a caller's transaction:
	// they read what shared holds but never add to it, since what they see
	// may yet be rolled back.
	bound bool
}

// sharedState is what a store learns about its vault and keeps for its
// life. Each ctxMutex serialises making the thing it precedes within the
// process.
type sharedState struct {
	// metaReady is set once the meta table is known to exist with its
	// unique index.
	metaMu    ctxMutex
	metaReady atomic.Bool

	// vaultSalt caches the v3 vault salt once read or made.
	saltMu    ctxMutex
	vaultSalt atomic.Pointer[[]byte]

	// root holds the unwrapped KMS root once read or made; noRoot records
	// that a store without a wrapper found no root to refuse writes for.
	rootMu ctxMutex
	root   atomic.Pointer[vaultRoot]
	noRoot atomic.Bool

	// identityIDs maps password fingerprints to identity ids once found
	// or made.
	identityMu  ctxMutex
	identityIDs *lru[[32]byte, string]
}

var _ StoreInterface = (*Store)(nil)

// lockShared takes m, which keeps one process from making one thing twice.
// A bound store takes none: it publishes nothing, the database's unique
// indexes decide races anyway, and holding a process-wide lock while the
// caller's transaction waits on another's row lock would deadlock two
// transactions that each need the other to go on.
func (s *Store) lockShared(ctx context.Context, m *ctxMutex) (unlock func(), err error) {
	if s.bound {
		return func() {}, nil
	}
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	return m.unlock, nil
}

// AutoMigrate creates the vault and meta tables and their indexes, or
// upgrades tables written by older releases in place: it adds missing
// columns, fills NULL timestamps left by them (each column on its own, so
// a soft delete or an expiry survives), widens MySQL value columns and makes
// MySQL token comparison case-sensitive. Running it again changes nothing,
// and it never rebuilds a table that is already current.
func (s *Store) AutoMigrate() (err error) {
	ctx, op := s.observe(context.Background(), opAutoMigrate)
	defer op.end(&err)
	if err := s.refuseBound("AutoMigrate"); err != nil {
		return err
	}
	if err := s.migrateVaultTable(ctx); err != nil {
		return err
	}
	if err := s.ensureMetaTable(ctx); err != nil {
		return err
	}
	s.tel.info(ctx, "vaultstore: tables migrated", slog.String(attrOp, opAutoMigrate),
		slog.String(attrTable, s.vaultTable+","+s.metaTable), slog.Duration(attrDuration, time.Since(op.start)))
	return nil
}

// EnableDebug turns the SQL log on or off. It is safe to call while other
// goroutines use the store.
func (s *Store) EnableDebug(debug bool) { s.log.enabled.Store(debug) }

// GetDbDriverName returns the dialect in use: "sqlite", "postgres" or
// "mysql".
func (s *Store) GetDbDriverName() string { return s.dialect }

// GetVaultTableName returns the name of the table of records.
func (s *Store) GetVaultTableName() string { return s.vaultTable }

// GetMetaTableName returns the name of the meta table.
func (s *Store) GetMetaTableName() string { return s.metaTable }

// vault starts a statement on the vault table.
func (s *Store) vault(ctx context.Context) *gorm.DB {
	return s.db.WithContext(ctx).Table(s.vaultTable)
}

// meta starts a statement on the meta table.
func (s *Store) meta(ctx context.Context) *gorm.DB {
	return s.db.WithContext(ctx).Table(s.metaTable)
}

// sqlLogger is the GORM logger of a store. It logs statements only while
// enabled and only with placeholders: ParamsFilter drops the bound values
// before GORM renders the statement, so values, tokens' ciphertexts and
// anything else passed as a parameter never reach the log.
type sqlLogger struct {
	enabled atomic.Bool
	out     *slog.Logger
}

var (
	_ logger.Interface  = (*sqlLogger)(nil)
	_ gorm.ParamsFilter = (*sqlLogger)(nil)
)

func (l *sqlLogger) LogMode(logger.LogLevel) logger.Interface { return l }

// Info, Warn and Error drop GORM's message arguments, which are not
// guaranteed to be free of values.
func (l *sqlLogger) Info(ctx context.Context, msg string, _ ...any) {
	if l.enabled.Load() {
		l.out.InfoContext(ctx, "vaultstore: gorm: "+msg)
	}
}

func (l *sqlLogger) Warn(ctx context.Context, msg string, _ ...any) {
	if l.enabled.Load() {
		l.out.WarnContext(ctx, "vaultstore: gorm: "+msg)
	}
}

func (l *sqlLogger) Error(ctx context.Context, msg string, _ ...any) {
	if l.enabled.Load() {
		l.out.ErrorContext(ctx, "vaultstore: gorm: "+msg)
	}
}

func (l *sqlLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if !l.enabled.Load() {
		return
	}
	stmt, rows := fc()
	attrs := []any{slog.String("sql", stmt), slog.Int64("rows", rows), slog.Duration("elapsed", time.Since(begin))}
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		l.out.InfoContext(ctx, "vaultstore: sql", append(attrs, slog.String("error", err.Error()))...)
		return
	}
	l.out.InfoContext(ctx, "vaultstore: sql", attrs...)
}

func (l *sqlLogger) ParamsFilter(_ context.Context, stmt string, _ ...any) (string, []any) {
	return stmt, nil
}
