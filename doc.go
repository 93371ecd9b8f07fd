// Package vaultstore keeps an application's secrets (API keys, credentials,
// personal data) encrypted at rest in the application's own SQL database.
//
// The application stores a value with a password and gets back an opaque
// token ("tk_…"); later it reads, updates, renews, expires, soft-deletes or
// deletes the value by its token, or re-encrypts every value of one password
// under another. Values are encrypted with AES-256-GCM under keys derived
// from the password with Argon2id and HKDF; the database holds only
// ciphertext.
//
//	store, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
//		VaultTableName:     "vault",
//		VaultMetaTableName: "vault_meta",
//		DB:                 db, // an open *sql.DB
//		AutomigrateEnabled: true,
//	})
//	token, err := store.TokenCreate(ctx, "sk_live_…", password, 24)
//	value, err := store.TokenRead(ctx, token, password)
//
// The package is a drop-in replacement for the original VaultStore API: an
// application written against it compiles unchanged and reads the databases
// it wrote.
//
// # Databases
//
// SQLite (through the pure-Go github.com/glebarez/sqlite, so builds need no
// cgo), PostgreSQL (github.com/jackc/pgx/v5/stdlib) and MySQL or MariaDB
// (github.com/go-sql-driver/mysql). The caller opens the *sql.DB and owns
// it. AutoMigrate creates the two tables with column types suited to each
// database, and upgrades tables written by older releases in place.
//
// # Security model
//
// The database, its backups and anyone who can read them see ciphertext,
// tokens, timestamps and row counts, never a value or a password. Each value
// is sealed with AES-GCM, so a changed byte fails to open
// (ErrDecryptionFailed) rather than yielding a different value. Passwords
// are never stored; they, derived keys and plaintexts never appear in errors,
// in the String form of records or in the debug log, which shows statements
// with placeholders and never their bound values.
//
// What it does not protect against: a process that holds the password, and
// the metadata named above. Per-token metadata (TokenCreateOptions.Metadata,
// Store.TokenMetadataSet) is stored unencrypted, for labels the database
// may see, never for secrets. With NewStoreOptions.FingerprintEnabled, the
// database also shows which tokens of one password hold equal values; the
// fingerprints are keyed by the password's key, so they neither reveal
// values nor link values across passwords.
//
// # Errors
//
// Every failure a caller can act on matches a sentinel with errors.Is:
// ErrRecordNotFound, ErrTokenAlreadyExists, ErrInvalidPassword,
// ErrDecryptionFailed, ErrValidationFailed, ErrTokenExpired and
// ErrPasswordInvalid. Bad input, a nil record or query among it (even an
// interface holding a nil pointer), is rejected before any SQL runs; no
// input and no database content makes the package panic.
//
// # Concurrency
//
// A Store is safe for concurrent use by multiple goroutines, and several
// processes may share one database. Single-row changes are single
// statements; creation of a token is decided by the database's unique index,
// so concurrent creators of one custom token see exactly one success. The
// package starts no background goroutine (batch reads and rotation use
// workers that end with the call) and prints nothing unless debugging is
// enabled.
//
// A write that reads a row before it changes it repeats what it read in
// the WHERE clause of its UPDATE. TokenUpdate writes only a row that is
// still live and unexpired, and TokenRenew only a live one: a soft delete,
// a delete or an expiry that lands in between wins, and the call returns
// ErrRecordNotFound or ErrTokenExpired. A TokenUpdate that returns nil has
// stored its value. Rotation writes each value with a compare-and-set on the
// value it read (docs/rotation.md), so a concurrent update is never
// overwritten. Concurrent TokenUpdate calls on one token: the last write
// wins.
//
// # Expiry
//
// Timestamps are kept to the second, in UTC. An expiry passed to
// TokenCreate, TokenCreateCustom or TokenRenew is truncated to the second,
// and a token is expired from the start of that second: expires_at at or
// before the current second. TokenRead and TokenUpdate then return
// ErrTokenExpired, TokensRead leaves the token out, and both expiry sweeps
// (TokensExpiredSoftDelete, TokensExpiredDelete) take it. An expired token
// still exists (TokenExists), can be renewed, and is rotated by
// TokensChangePassword like any other. Soft deletion follows the same rule:
// a row whose soft_deleted_at is at or before now is deleted.
//
// # Formats and key derivation
//
// New values are written in the v3 format: the Argon2id key of a password is
// derived once per vault and cached in memory (see
// NewStoreOptions.KeyCacheSize), each value gets its own AES key through
// HKDF, carries its Argon2id parameters, is bound to its token, and tells a
// wrong password (ErrInvalidPassword) from damage (ErrDecryptionFailed).
// After the first derivation, reads and writes cost microseconds instead of
// a full Argon2id run each. docs/encryption.md specifies the format.
//
// # Compatibility
//
// Values written by the original VaultStore in its v1 and v2 formats are
// read as they are. A v2 value records no parameters, so it opens only with
// the CryptoConfig that wrote it. NewStoreOptions.EncryptionVersion "v2"
// keeps writing the original's format while old and new releases share a
// database.
package vaultstore
