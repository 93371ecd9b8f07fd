// Command seed fills an SQLite file for the vaultstore command's tests and
// benchmark: N values under the password in $SEED_PASSWORD, written through
// the library with the cheapest Argon2id parameters (t=1, m=8 KiB, p=1),
// with tokens tk_rotate_00000000 onwards and values "value I". It is built
// without the race detector, so that a race-enabled test run does not
// spend minutes on the seed. SEED_CRYPTO=default writes them with
// DefaultCryptoConfig instead.
//
//	SEED_PASSWORD=... [SEED_CRYPTO=default] seed PATH N
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	_ "github.com/glebarez/sqlite"

	"github.com/vaultstore/vaultstore"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: SEED_PASSWORD=... seed PATH N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := seed(os.Args[1], n, os.Getenv("SEED_PASSWORD")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// seed writes the file in WAL mode with synchronous=NORMAL, which makes its
// single-row commits quick; WAL stays set in the file.
func seed(path string, n int, password string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	crypto := &vaultstore.CryptoConfig{Iterations: 1, Memory: 8, Parallelism: 1, KeyLength: 32, SaltSize: 16, NonceSize: 12, TagSize: 16}
	if os.Getenv("SEED_CRYPTO") == "default" {
		crypto = vaultstore.DefaultCryptoConfig()
	}
	s, err := vaultstore.NewStore(vaultstore.NewStoreOptions{
		VaultTableName: "vault", VaultMetaTableName: "vault_meta", DB: db, AutomigrateEnabled: true,
		CryptoConfig: crypto,
	})
	if err != nil {
		return err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := s.TokenCreateCustom(context.Background(), fmt.Sprintf("tk_rotate_%08d", i), fmt.Sprint("value ", i), password); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
