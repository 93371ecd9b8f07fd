package vaultstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/glebarez/sqlite" // the pure-Go SQLite driver, registered as "sqlite"

	"github.com/vaultstore/vaultstore"
	"gocloud.dev/secrets/localsecrets"
)

// The README's first example: open SQLite, create a store, store a secret
// and read it back.
func Example() {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:vault.db?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	store, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
		VaultTableName:     "vault",
		VaultMetaTableName: "vault_meta",
		DB:                 db,
		AutomigrateEnabled: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	token, err := store.TokenCreate(ctx, "sk_live_51H8example", "a long application password", 24)
	if err != nil {
		log.Fatal(err)
	}
	value, err := store.TokenRead(ctx, token, "a long application password")
	fmt.Println(value, err)
	// Output: sk_live_51H8example <nil>
}

// TestREADMEGoBlocksAreExamples keeps the README honest: every Go block in
// it is part of an Example function here, which the tests compile and run.
func TestREADMEGoBlocksAreExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	normalize := func(s string) string {
		var out []string
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, line)
			}
		}
		return strings.Join(out, "\n")
	}
	body := normalize(string(examples))
	blocks := strings.Split(string(readme), "```go\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("README has no Go block")
	}
	for i, b := range blocks {
		code, _, ok := strings.Cut(b, "```")
		if !ok {
			t.Fatalf("README Go block %d is not closed", i)
		}
		if !strings.Contains(body, normalize(code)) {
			t.Errorf("README Go block %d is not in example_test.go:\n%s", i, code)
		}
	}
}

// exampleStore is what ExampleNewStore builds, on a private in-memory
// database and with LightweightCryptoConfig so that the examples run
// quickly; applications keep the default (nil means DefaultCryptoConfig).
func exampleStore() *vaultstore.Store {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(1) // every connection to ":memory:" is its own database
	store, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
		VaultTableName:     "vault",
		VaultMetaTableName: "vault_meta",
		DB:                 db,
		AutomigrateEnabled: true,
		CryptoConfig:       vaultstore.LightweightCryptoConfig(),
	})
	if err != nil {
		log.Fatal(err)
	}
	return store
}

func ExampleNewStore() {
	db, err := sql.Open("sqlite", "file:app.db?mode=memory") // or pgx, or mysql
	if err != nil {
		log.Fatal(err)
	}
	store, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
		VaultTableName:     "vault",
		VaultMetaTableName: "vault_meta",
		DB:                 db,
		AutomigrateEnabled: true, // create or upgrade the tables now
		PasswordMinLength:  20,   // policy for passwords given to writes
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(store.GetDbDriverName(), store.GetVaultTableName())
	// Output: sqlite vault
}

func ExampleStore_TokenCreate() {
	ctx := context.Background()
	store := exampleStore()
	const password = "correct horse battery staple"

	token, err := store.TokenCreate(ctx, "postgres://app:s3cret@db/app", password, 20)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(vaultstore.IsToken(token), len(token))

	value, err := store.TokenRead(ctx, token, password)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(value)
	// Output:
	// true 20
	// postgres://app:s3cret@db/app
}

func ExampleStore_TokenCreate_expiry() {
	ctx := context.Background()
	store := exampleStore()
	const password = "correct horse battery staple"

	token, err := store.TokenCreate(ctx, "one-time code 314159", password, 20, vaultstore.TokenCreateOptions{
		ExpiresAt: time.Now().Add(-time.Minute), // already past, to show the error
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.TokenRead(ctx, token, password)
	fmt.Println(errors.Is(err, vaultstore.ErrTokenExpired))

	// Renewing makes it readable again; the zero time means never expire.
	if err := store.TokenRenew(ctx, token, time.Now().Add(time.Hour)); err != nil {
		log.Fatal(err)
	}
	value, err := store.TokenRead(ctx, token, password)
	fmt.Println(value, err)

	// Expired tokens can be cleaned up in one statement.
	n, err := store.TokensExpiredDelete(ctx)
	fmt.Println(n, err)
	// Output:
	// true
	// one-time code 314159 <nil>
	// 0 <nil>
}

func ExampleStore_TokensRead() {
	ctx := context.Background()
	store := exampleStore()
	const password = "correct horse battery staple"

	stripe, _ := store.TokenCreate(ctx, "sk_live_stripe", password, 20)
	github, _ := store.TokenCreate(ctx, "ghp_github", password, 20)

	// One query for all tokens; with v3 values one key derivation at most.
	values, err := store.TokensRead(ctx, []string{stripe, github}, password)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(values[stripe], values[github])

	// Or resolve a map of names to tokens into names to values.
	resolved, err := store.TokensReadToResolvedMap(ctx, map[string]string{"STRIPE_KEY": stripe, "GITHUB_TOKEN": github}, password)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resolved["STRIPE_KEY"], resolved["GITHUB_TOKEN"])
	// Output:
	// sk_live_stripe ghp_github
	// sk_live_stripe ghp_github
}

func ExampleStore_RecordList() {
	ctx := context.Background()
	store := exampleStore()
	const password = "correct horse battery staple"
	for _, token := range []string{"tk_app_b", "tk_app_a", "tk_app_c"} {
		if err := store.TokenCreateCustom(ctx, token, "value of "+token, password); err != nil {
			log.Fatal(err)
		}
	}

	// Column names and the sort order are validated: a query parameter
	// can never become SQL.
	records, err := store.RecordList(ctx, vaultstore.RecordQuery().
		SetColumns([]string{vaultstore.COLUMN_VAULT_TOKEN, vaultstore.COLUMN_EXPIRES_AT}).
		SetOrderBy(vaultstore.COLUMN_VAULT_TOKEN).
		SetSortOrder(vaultstore.ASC).
		SetLimit(2))
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range records {
		fmt.Println(r.GetToken(), r.GetExpiresAt())
	}

	_, err = store.RecordList(ctx, vaultstore.RecordQuery().SetOrderBy("id; DROP TABLE vault"))
	fmt.Println(errors.Is(err, vaultstore.ErrValidationFailed))
	// Output:
	// tk_app_a 9999-12-31 23:59:59
	// tk_app_b 9999-12-31 23:59:59
	// true
}

func ExampleStore_TokensChangePasswordWithOptions() {
	ctx := context.Background()
	store := exampleStore()
	const oldPassword, newPassword = "the password of last year", "the password of this year"
	for i := range 5 {
		if _, err := store.TokenCreate(ctx, fmt.Sprint("secret ", i), oldPassword, 20); err != nil {
			log.Fatal(err)
		}
	}

	result, err := store.TokensChangePasswordWithOptions(ctx, oldPassword, newPassword, vaultstore.ChangePasswordOptions{
		BatchSize: 2,
		Progress: func(p vaultstore.ChangePasswordProgress) {
			fmt.Printf("scanned %d of %d, changed %d\n", p.Scanned, p.Total, p.Changed)
		},
	})
	fmt.Println(result.Changed, result.FromV3, err)
	// Output:
	// scanned 2 of 5, changed 2
	// scanned 4 of 5, changed 4
	// scanned 5 of 5, changed 5
	// 5 5 <nil>
}

// Every failure a caller can act on matches a sentinel error.
func Example_errors() {
	ctx := context.Background()
	store := exampleStore()
	const password = "correct horse battery staple"
	token, _ := store.TokenCreate(ctx, "value", password, 20)

	_, err := store.TokenRead(ctx, token, "not the right password")
	fmt.Println("wrong password:", errors.Is(err, vaultstore.ErrInvalidPassword))

	_, err = store.TokenRead(ctx, "tk_does_not_exist", password)
	fmt.Println("absent token:", errors.Is(err, vaultstore.ErrRecordNotFound))

	err = store.TokenCreateCustom(ctx, token, "again", password)
	fmt.Println("taken token:", errors.Is(err, vaultstore.ErrTokenAlreadyExists))

	_, err = store.TokenCreate(ctx, "value", "short", 20)
	fmt.Println("weak password:", errors.Is(err, vaultstore.ErrPasswordInvalid))

	_, err = store.TokenRead(ctx, "", password)
	fmt.Println("bad input:", errors.Is(err, vaultstore.ErrValidationFailed))
	// Output:
	// wrong password: true
	// absent token: true
	// taken token: true
	// weak password: true
	// bad input: true
}

// Keys rooted in a key-management service: values need the password and
// the vault's root key, which only the KMS can unwrap. In production the
// Keeper comes from a URL, for AWS KMS
// secrets.OpenKeeper(ctx, "awskms://alias/vaultstore?region=eu-west-1")
// with a blank import of gocloud.dev/secrets/awskms; here a local key
// stands in.
func Example_keyWrapper() {
	ctx := context.Background()
	key, err := localsecrets.NewRandomKey()
	if err != nil {
		log.Fatal(err)
	}
	keeper := localsecrets.NewKeeper(key)
	defer keeper.Close()

	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	store, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
		VaultTableName:     "vault",
		VaultMetaTableName: "vault_meta",
		DB:                 db,
		AutomigrateEnabled: true,
		CryptoConfig:       vaultstore.LightweightCryptoConfig(),
		KeyWrapper:         keeper,
	})
	if err != nil {
		log.Fatal(err)
	}
	const password = "correct horse battery staple"
	token, err := store.TokenCreate(ctx, "sk_live_123", password, 20)
	if err != nil {
		log.Fatal(err)
	}
	value, err := store.TokenRead(ctx, token, password)
	fmt.Println(value, err)

	// After the KMS key is rotated, one call re-encrypts the root; no value
	// is touched.
	fmt.Println(store.RewrapRoot(ctx))

	// The same database and password without the KMS open nothing.
	without, err := vaultstore.NewStore(vaultstore.NewStoreOptions{VaultTableName: "vault", VaultMetaTableName: "vault_meta", DB: db})
	if err != nil {
		log.Fatal(err)
	}
	_, err = without.TokenRead(ctx, token, password)
	fmt.Println(errors.Is(err, vaultstore.ErrKeyUnavailable))
	// Output:
	// sk_live_123 <nil>
	// <nil>
	// true
}

// A token created for a new customer commits or rolls back with the
// customer's row: the store bound to the application's transaction runs
// every call inside it.
func ExampleStore_WithTx() {
	ctx := context.Background()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	store, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
		VaultTableName:     "vault",
		VaultMetaTableName: "vault_meta",
		DB:                 db,
		AutomigrateEnabled: true,
		CryptoConfig:       vaultstore.LightweightCryptoConfig(),
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE customers (name text, card_token text)"); err != nil {
		log.Fatal(err)
	}
	const password = "correct horse battery staple"

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	token, err := store.WithTx(tx).TokenCreate(ctx, "4111 1111 1111 1111", password, 20)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO customers VALUES (?, ?)", "Ada", token); err != nil {
		log.Fatal(err)
	}
	if err := tx.Rollback(); err != nil { // say the customer's signup failed
		log.Fatal(err)
	}
	exists, err := store.TokenExists(ctx, token)
	fmt.Println(exists, err)
	// Output:
	// false <nil>
}

// The store logs through the application's slog.Logger: migrations and
// rotations at Info, values a rotation cannot examine at Warn, never a
// password, key or value. A handler can filter on the stable keys op,
// table, records, duration and err.
func ExampleNewStoreOptions_logger() {
	ctx := context.Background()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		// Drop the time so that the output below is stable.
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{}
			}
			return a
		},
	}))
	store, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
		VaultTableName:     "vault",
		VaultMetaTableName: "vault_meta",
		DB:                 db,
		CryptoConfig:       vaultstore.LightweightCryptoConfig(),
		Logger:             logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.AutoMigrate(); err != nil {
		log.Fatal(err)
	}
	const password = "correct horse battery staple"
	if _, err := store.TokenCreate(ctx, "sk_live_123", password, 20); err != nil {
		log.Fatal(err)
	}
	if _, err := store.TokensChangePassword(ctx, password, "the password of this year"); err != nil {
		log.Fatal(err)
	}
	// Output:
	// level=INFO msg="vaultstore: tables migrated" op=AutoMigrate table=vault,vault_meta
	// level=INFO msg="vaultstore: rotation started" op=TokensChangePassword table=vault dry_run=false identities=false
	// level=INFO msg="vaultstore: rotation ended" op=TokensChangePassword dry_run=false records=1 changed=1 skipped=0 total=1 from_v1=0 from_v2=0 from_v3=1 err=ok
}

func ExampleStore_TokenRestore() {
	ctx := context.Background()
	store := exampleStore()
	const password = "correct horse battery staple"

	token, err := store.TokenCreate(ctx, "api key 271828", password, 20)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.TokenSoftDelete(ctx, token); err != nil {
		log.Fatal(err)
	}
	_, err = store.TokenRead(ctx, token, password)
	fmt.Println(errors.Is(err, vaultstore.ErrRecordNotFound))

	// Undo the soft delete: value, expiry and metadata come back.
	if err := store.TokenRestore(ctx, token); err != nil {
		log.Fatal(err)
	}
	value, err := store.TokenRead(ctx, token, password)
	fmt.Println(value, err)

	// A live token has nothing to restore.
	err = store.TokenRestore(ctx, token)
	fmt.Println(errors.Is(err, vaultstore.ErrRecordNotFound))
	// Output:
	// true
	// api key 271828 <nil>
	// true
}

func ExampleStore_RecordRestoreByID() {
	ctx := context.Background()
	store := exampleStore()

	record := vaultstore.NewRecord().SetToken("tk_rawrecord0001").SetValue("raw")
	if err := store.RecordCreate(ctx, record); err != nil {
		log.Fatal(err)
	}
	if err := store.RecordSoftDeleteByID(ctx, record.GetID()); err != nil {
		log.Fatal(err)
	}
	if err := store.RecordRestoreByID(ctx, record.GetID()); err != nil {
		log.Fatal(err)
	}
	found, err := store.RecordFindByID(ctx, record.GetID())
	fmt.Println(found.GetToken(), found.GetValue(), err)
	// Output: tk_rawrecord0001 raw <nil>
}

func ExampleStore_TokenMetadata() {
	ctx := context.Background()
	store := exampleStore()
	const password = "correct horse battery staple"

	// Metadata is stored unencrypted, with the token, in one transaction.
	token, err := store.TokenCreate(ctx, "4111 1111 1111 1111", password, 24, vaultstore.TokenCreateOptions{
		Metadata: map[string]string{"tenant": "acme", "kind": "card"},
	})
	if err != nil {
		log.Fatal(err)
	}
	metadata, err := store.TokenMetadata(ctx, token)
	fmt.Println(metadata, err)
	// Output: map[kind:card tenant:acme] <nil>
}

func ExampleStore_TokenMetadataSet() {
	ctx := context.Background()
	store := exampleStore()
	const password = "correct horse battery staple"

	token, err := store.TokenCreate(ctx, "4111 1111 1111 1111", password, 24, vaultstore.TokenCreateOptions{
		Metadata: map[string]string{"tenant": "acme", "kind": "card"},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Set one key, add one, and remove one with an empty value.
	err = store.TokenMetadataSet(ctx, token, map[string]string{"tenant": "globex", "region": "eu", "kind": ""})
	if err != nil {
		log.Fatal(err)
	}
	metadata, err := store.TokenMetadata(ctx, token)
	fmt.Println(metadata, err)

	// Keys are [a-z0-9_.-], at most 64 characters.
	err = store.TokenMetadataSet(ctx, token, map[string]string{"Tenant": "x"})
	fmt.Println(errors.Is(err, vaultstore.ErrValidationFailed))
	// Output:
	// map[region:eu tenant:globex] <nil>
	// true
}

func ExampleStore_TokensFindByMetadata() {
	ctx := context.Background()
	store := exampleStore()
	const password = "correct horse battery staple"

	for i, tenant := range []string{"acme", "globex", "acme", "acme"} {
		token := fmt.Sprintf("tk_customer%04d", i)
		err := store.TokenCreateCustom(ctx, token, "secret", password, vaultstore.TokenCreateOptions{
			Metadata: map[string]string{"tenant": tenant},
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	// Pages of two, in token order; After is the last token of a page.
	page, err := store.TokensFindByMetadata(ctx, "tenant", "acme", vaultstore.FindOptions{Limit: 2})
	fmt.Println(page, err)
	page, err = store.TokensFindByMetadata(ctx, "tenant", "acme", vaultstore.FindOptions{Limit: 2, After: page[len(page)-1]})
	fmt.Println(page, err)
	// Output:
	// [tk_customer0000 tk_customer0002] <nil>
	// [tk_customer0003] <nil>
}

// exampleFingerprintStore is exampleStore with fingerprints on.
func exampleFingerprintStore() *vaultstore.Store {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	store, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
		VaultTableName:     "vault",
		VaultMetaTableName: "vault_meta",
		DB:                 db,
		AutomigrateEnabled: true,
		CryptoConfig:       vaultstore.LightweightCryptoConfig(),
		FingerprintEnabled: true, // needed by TokensFindByValue and Deduplicate
	})
	if err != nil {
		log.Fatal(err)
	}
	return store
}

func ExampleStore_TokensFindByValue() {
	ctx := context.Background()
	store := exampleFingerprintStore()
	const password = "correct horse battery staple"

	for _, token := range []string{"tk_ssn_customer_b", "tk_ssn_customer_a"} {
		if err := store.TokenCreateCustom(ctx, token, "123-45-6789", password); err != nil {
			log.Fatal(err)
		}
	}
	// Which tokens hold this value? An index lookup, not a decryption of
	// the vault; the database alone cannot answer it.
	tokens, err := store.TokensFindByValue(ctx, "123-45-6789", password)
	fmt.Println(tokens, err)

	// Under another password, nothing matches.
	tokens, err = store.TokensFindByValue(ctx, "123-45-6789", "another long password")
	fmt.Println(tokens, err)
	// Output:
	// [tk_ssn_customer_a tk_ssn_customer_b] <nil>
	// [] <nil>
}

func ExampleStore_TokenCreate_deduplicate() {
	ctx := context.Background()
	store := exampleFingerprintStore()
	const password = "correct horse battery staple"

	first, err := store.TokenCreate(ctx, "4111 1111 1111 1111", password, 24, vaultstore.TokenCreateOptions{Deduplicate: true})
	if err != nil {
		log.Fatal(err)
	}
	// The same value again: the existing token comes back.
	second, err := store.TokenCreate(ctx, "4111 1111 1111 1111", password, 24, vaultstore.TokenCreateOptions{Deduplicate: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first == second)
	// Output: true
}
