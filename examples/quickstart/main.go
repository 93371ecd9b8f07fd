// Command quickstart shows vaultstore on an embedded SQLite file: it stores
// secrets, reads them one at a time and in a batch, lists the records, lets
// a token expire, and deletes what it stored. Run it with
//
//	go run ./examples/quickstart
//
// It writes to a fresh temporary directory unless -db names a file.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	_ "github.com/glebarez/sqlite" // pure-Go SQLite driver, registers "sqlite"

	"github.com/vaultstore/vaultstore"
)

func main() {
	dbPath := flag.String("db", "", "SQLite file to use (default: a new temporary file)")
	flag.Parse()
	if err := run(*dbPath); err != nil {
		log.Fatal(err)
	}
}

func run(dbPath string) error {
	if dbPath == "" {
		dir, err := os.MkdirTemp("", "vaultstore-quickstart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dbPath = filepath.Join(dir, "vault.db")
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()

	store, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
		VaultTableName:     "vault",
		VaultMetaTableName: "vault_meta",
		DB:                 db,
		AutomigrateEnabled: true,
	})
	if err != nil {
		return err
	}
	fmt.Printf("opened %s (%s)\n", dbPath, store.GetDbDriverName())

	ctx := context.Background()
	const password = "a long application password"

	apiKey, err := store.TokenCreate(ctx, "sk_live_51H8example", password, 24)
	if err != nil {
		return err
	}
	dbPassword, err := store.TokenCreate(ctx, "postgres://app:hunter2@db/app", password, 24)
	if err != nil {
		return err
	}
	fmt.Printf("stored the API key as %s\n", apiKey)
	fmt.Printf("stored the database URL as %s\n", dbPassword)

	value, err := store.TokenRead(ctx, apiKey, password)
	if err != nil {
		return err
	}
	fmt.Printf("read %s: %s\n", apiKey, value)

	if _, err := store.TokenRead(ctx, apiKey, "not the right password"); errors.Is(err, vaultstore.ErrInvalidPassword) {
		fmt.Println("a wrong password is refused: ErrInvalidPassword")
	}

	resolved, err := store.TokensReadToResolvedMap(ctx, map[string]string{"stripe": apiKey, "database": dbPassword}, password)
	if err != nil {
		return err
	}
	fmt.Printf("batch read of 2 tokens: stripe=%s database=%s\n", resolved["stripe"], resolved["database"])

	session, err := store.TokenCreate(ctx, "short-lived session secret", password, 20,
		vaultstore.TokenCreateOptions{ExpiresAt: time.Now().Add(-time.Second)})
	if err != nil {
		return err
	}
	if _, err := store.TokenRead(ctx, session, password); errors.Is(err, vaultstore.ErrTokenExpired) {
		fmt.Printf("%s has expired: ErrTokenExpired\n", session)
	}
	removed, err := store.TokensExpiredDelete(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("expired tokens deleted: %d\n", removed)

	records, err := store.RecordList(ctx, vaultstore.RecordQuery().SetColumns([]string{vaultstore.COLUMN_VAULT_TOKEN, vaultstore.COLUMN_CREATED_AT}))
	if err != nil {
		return err
	}
	fmt.Printf("records in the vault: %d\n", len(records))
	for _, r := range records {
		fmt.Printf("  %s created %s\n", r.GetToken(), r.GetCreatedAt())
	}

	// Rotate the password: every record under it is re-encrypted in
	// batches, each committed on its own, with a progress report per batch.
	const rotated = "the application's rotated password"
	result, err := store.TokensChangePasswordWithOptions(ctx, password, rotated, vaultstore.ChangePasswordOptions{
		Progress: func(p vaultstore.ChangePasswordProgress) {
			fmt.Printf("rotation: scanned %d/%d, changed %d, skipped %d\n", p.Scanned, p.Total, p.Changed, p.Skipped)
		},
	})
	if err != nil {
		return err
	}
	value, err = store.TokenRead(ctx, apiKey, rotated)
	if err != nil {
		return err
	}
	fmt.Printf("rotated %d records; %s under the new password: %s\n", result.Changed, apiKey, value)

	for _, token := range []string{apiKey, dbPassword} {
		if err := store.TokenDelete(ctx, token); err != nil {
			return err
		}
	}
	exists, err := store.TokenExists(ctx, apiKey)
	if err != nil {
		return err
	}
	fmt.Printf("deleted both tokens; %s exists: %v\n", apiKey, exists)
	return nil
}
