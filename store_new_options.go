package vaultstore

import (
	"context"
	"database/sql"
	"log/slog"
	"reflect"
	"strings"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// NewStoreOptions configures NewStore. The zero value of every optional field
// selects the documented default.
type NewStoreOptions struct {
	// VaultTableName is the table of records. Required: letters, digits and
	// underscores, at most 40 characters, not starting with a digit.
	VaultTableName string

	// VaultMetaTableName is the table of settings and password identities.
	// Required, same rules as VaultTableName, and a different name. The
	// table is created when the store first writes to it, so a database
	// written by a release without a meta table keeps working.
	VaultMetaTableName string

	// DB is an open database, owned by the caller: the store never closes
	// it. SQLite through github.com/glebarez/sqlite (or another SQLite
	// driver), PostgreSQL through github.com/jackc/pgx/v5/stdlib, and
	// MySQL or MariaDB through github.com/go-sql-driver/mysql are supported.
	DB *sql.DB

	// DbDriverName names the database dialect: "sqlite", "postgres" or
	// "mysql" ("sqlite3", "postgresql", "pgx" and "mariadb" are accepted as
	// aliases). Empty means detect it from DB's driver.
	DbDriverName string

	// AutomigrateEnabled runs AutoMigrate inside NewStore.
	AutomigrateEnabled bool

	// DebugEnabled logs every SQL statement the store runs, with its
	// placeholders but never its bound values, so no token value, password
	// or ciphertext reaches the log. See also EnableDebug.
	DebugEnabled bool

	// Logger receives the store's structured log; nil keeps the store
	// silent. Info: migrations, rotations (start, end, counts, duration),
	// identity upgrades. Warn: values that fail to open during a rotation
	// (by record id and token), retried transactions, stored parameters the
	// store refuses, audit hooks that fail. Debug, with DebugEnabled or
	// EnableDebug: every statement with its placeholders, never its bound
	// values (to slog.Default() when Logger is nil, as before). Records use
	// the keys op, table, records, duration and err, and never hold a
	// password, a key or a value.
	Logger *slog.Logger

	// TracerProvider and MeterProvider receive a span per public call
	// (vaultstore.TokenRead, …) and the store's metrics: operations by
	// name and outcome, their duration, Argon2id derivations and their
	// duration, key-cache lookups, records a rotation processed. Nil means
	// the global providers (otel.GetTracerProvider, otel.GetMeterProvider),
	// which cost nothing until an application installs the OpenTelemetry
	// SDK. Spans and metrics carry the operation, the database system,
	// counts and the error's sentinel name, never a token, value or
	// password.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider

	// Audit, when set, is called after every call that creates, reads,
	// changes, deletes or rotates values, with the call's context (so the
	// application can add who asked) and an AuditEvent: the operation, the
	// tokens or record ids it named or made, its outcome, time and count.
	// Never a value or password. A failing hook is logged and ignored,
	// unless AuditFailClosed is set: then the call fails with
	// ErrAuditFailed, a read returns no value, and a write is rolled back:
	// with AuditFailClosed every write runs in a transaction of the
	// store's own with the hook called before it commits (each batch of a
	// rotation likewise), which costs a BEGIN and a COMMIT per write. On a
	// store bound with WithTx the caller's transaction decides. The hook
	// must be safe for concurrent use.
	Audit           func(ctx context.Context, e AuditEvent) error
	AuditFailClosed bool

	// CryptoConfig holds the Argon2id and AES-GCM parameters for values the
	// store writes. Nil means DefaultCryptoConfig(). NewStore copies it.
	CryptoConfig *CryptoConfig

	// EncryptionVersion is the format of values the store writes: "v3"
	// (the default when empty) or "v2", which the original VaultStore can
	// read, for fleets where old and new releases share a database during a
	// migration.
	EncryptionVersion string

	// MinReadVersion is the oldest value format the store reads: "" reads
	// v1, v2 and v3; "v2" refuses v1 values; "v3" refuses v1 and v2 values.
	// A refused value is ErrDecryptionFailed, and a rotation counts it as
	// skipped. v1 values have no salt and no integrity beyond a checksum, so
	// one planted v1 value lets whoever can write the vault table have the
	// application test password guesses at hash speed; v2 values are not
	// bound to their token and can be swapped between tokens. Raise it once
	// a same-password rotation reports no values changed from the older
	// formats (ChangePasswordProgress.FromV1, FromV2).
	MinReadVersion string

	// KeyCacheSize is how many derived keys the store keeps in memory, so
	// that a password costs one Argon2id derivation per vault salt (v3) or
	// per value (v2) instead of one per read. Zero means 1024; a negative
	// value turns the cache off. Keys are held under an HMAC of the
	// password, never the password itself, enter the cache only once a
	// value or identity has shown them right, and are cleared when they
	// leave it; see docs/encryption.md.
	KeyCacheSize int

	// MaxConcurrentKDF bounds how many Argon2id derivations run at once.
	// Zero means GOMAXPROCS. Callers beyond the bound wait, honouring their
	// context; identical concurrent derivations are done once.
	MaxConcurrentKDF int

	// KDFMemoryBudget bounds, in KiB, the Argon2 memory of all derivations
	// in flight together: each holds its memory parameter's worth of the
	// budget while it runs, and callers beyond it wait, honouring their
	// context. It is also the most one stored value or identity may ask
	// for: a value asking for more is ErrDecryptionFailed at once, before
	// anything is allocated. Zero means 4 × CryptoConfig.Memory; it may not
	// be less than CryptoConfig.Memory.
	KDFMemoryBudget int

	// MinArgon2Iterations and MinArgon2Memory (KiB) are the floor on the
	// Argon2id cost a stored value or identity may ask for. Anyone who can
	// write the database could otherwise plant a value sealed with t=1 and
	// 8 KiB and have the application test guesses of the password at
	// almost no cost; below the floor a value is ErrDecryptionFailed,
	// before anything is derived. Zero means the weaker of
	// LightweightCryptoConfig and CryptoConfig (t=2 and 32 MiB with the
	// default configuration); neither may exceed CryptoConfig, whose own
	// values must stay readable.
	MinArgon2Iterations int
	MinArgon2Memory     int

	// KeyWrapper, when set, roots the store's keys in a key-management
	// service: the vault gets a 32-byte random root key, stored only as
	// KeyWrapper.Encrypt wrapped it, and every v3 value written is bound to
	// both the password and the root, so that a copy of the database and
	// the password open nothing without the KMS. The root is unwrapped once
	// per process; no KMS call is made per value. Values written before a
	// wrapper was set keep opening; TokensChangePassword(pw, pw) binds them
	// to the root. Losing the KMS key loses every value bound to it. See
	// KeyWrapper, RewrapRoot, DestroyRoot and docs/encryption.md.
	KeyWrapper KeyWrapper

	// RootKeyRetired is the way back: the store reads values bound to the
	// root (with KeyWrapper) but writes new ones bound to the password
	// alone, and TokensChangePassword(pw, pw) unbinds the rest. Without it,
	// a store with no KeyWrapper refuses to write to a vault that has a
	// root (ErrKeyUnavailable), so a missing setting cannot silently
	// weaken new values. It looks for a root once per process: a root made
	// later by another process is noticed after a restart.
	RootKeyRetired bool

	// ParallelThreshold is the record count above which bulk work, such as
	// TokensChangePassword, spreads key derivations over a worker pool.
	// Zero means the library default.
	ParallelThreshold int

	// PasswordIdentityEnabled keeps a hash of each password in the meta
	// table and links records to it, so password rotation touches only the
	// records of that password. It reveals which records share a password.
	PasswordIdentityEnabled bool

	// FingerprintEnabled stores, with every value written, an HMAC of the
	// value under a key derived from the password's key, so that
	// Store.TokensFindByValue and TokenCreateOptions.Deduplicate find equal
	// values through an index. The database cannot test guesses of a value
	// with it, nor link values under different passwords; it does reveal
	// which tokens of one password hold equal values (docs/encryption.md).
	// Values written before it was on get theirs from
	// TokensChangePassword(ctx, pw, pw).
	FingerprintEnabled bool

	// PasswordAllowEmpty accepts "" as a password for writes.
	PasswordAllowEmpty bool

	// PasswordMinLength is the shortest password, in characters, accepted
	// for writes. Zero means 16.
	PasswordMinLength int

	// Character classes a password must contain for writes. Reads never
	// check the policy, so values written under an older policy stay
	// readable.
	PasswordRequireLowercase bool
	PasswordRequireUppercase bool
	PasswordRequireNumbers   bool
	PasswordRequireSymbols   bool
}

// defaultPasswordMinLength is the policy minimum when none is given.
const defaultPasswordMinLength = 16

// defaultParallelThreshold is the record count above which bulk work uses
// the worker pool when NewStoreOptions.ParallelThreshold is zero.
const defaultParallelThreshold = 64

// maxTableNameLength keeps derived index names ("idx_<table>_soft_deleted_at")
// within the 63-character identifier limit of PostgreSQL and MySQL.
const maxTableNameLength = 40

// Dialect names returned by GetDbDriverName.
const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"
	dialectMySQL    = "mysql"
)

func validateTableName(option, name string) error {
	if name == "" {
		return validationErrorf("%s is required", option)
	}
	if len(name) > maxTableNameLength {
		return validationErrorf("%s %q is longer than %d characters", option, name, maxTableNameLength)
	}
	for i, r := range name {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return validationErrorf("%s %q may hold only letters, digits and underscores, and not start with a digit", option, name)
		}
	}
	return nil
}

// normalizeDialect maps a driver name given by the caller to a dialect.
func normalizeDialect(name string) (string, error) {
	switch strings.ToLower(name) {
	case "sqlite", "sqlite3":
		return dialectSQLite, nil
	case "postgres", "postgresql", "pgx":
		return dialectPostgres, nil
	case "mysql", "mariadb":
		return dialectMySQL, nil
	}
	return "", validationErrorf("unknown database driver %q (want sqlite, postgres or mysql)", name)
}

// detectDialect names the dialect of db from the package of its driver, so
// that any SQLite, PostgreSQL or MySQL driver is recognised without this
// package importing them all.
func detectDialect(db *sql.DB) (string, error) {
	t := reflect.TypeOf(db.Driver())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	path := strings.ToLower(t.PkgPath() + "." + t.Name())
	switch {
	case strings.Contains(path, "sqlite"):
		return dialectSQLite, nil
	case strings.Contains(path, "pgx"), strings.Contains(path, "lib/pq"), strings.Contains(path, "postgres"):
		return dialectPostgres, nil
	case strings.Contains(path, "mysql"):
		return dialectMySQL, nil
	}
	return "", validationErrorf("cannot tell the database of driver %s; set DbDriverName", path)
}

// validateCryptoConfig rejects parameters that would fail or misbehave at
// the first write instead of at construction.
func validateCryptoConfig(c *CryptoConfig) error {
	switch {
	case c.Iterations < 1 || c.Iterations > MaxArgon2Iterations:
		return validationErrorf("CryptoConfig.Iterations %d is outside 1..%d", c.Iterations, MaxArgon2Iterations)
	case c.Parallelism < 1 || c.Parallelism > MaxArgon2Parallelism:
		return validationErrorf("CryptoConfig.Parallelism %d is outside 1..%d", c.Parallelism, MaxArgon2Parallelism)
	case c.Memory < 8*c.Parallelism || c.Memory > MaxArgon2Memory:
		// Argon2 needs at least 8 KiB per lane.
		return validationErrorf("CryptoConfig.Memory %d KiB is outside %d..%d", c.Memory, 8*c.Parallelism, MaxArgon2Memory)
	case c.KeyLength != 16 && c.KeyLength != 24 && c.KeyLength != 32:
		return validationErrorf("CryptoConfig.KeyLength %d is not 16, 24 or 32", c.KeyLength)
	case c.NonceSize != 12:
		return validationErrorf("CryptoConfig.NonceSize %d is not 12", c.NonceSize)
	case c.TagSize != 16:
		return validationErrorf("CryptoConfig.TagSize %d is not 16", c.TagSize)
	case c.SaltSize < 16 || c.SaltSize > 64:
		return validationErrorf("CryptoConfig.SaltSize %d is outside 16..64", c.SaltSize)
	}
	return nil
}
