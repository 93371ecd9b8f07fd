package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/vaultstore/vaultstore"
)

// verifyPageSize is how many tokens one page of verify lists.
const verifyPageSize = 1000

type verifyResult struct {
	Checked       int      `json:"checked"`
	Opened        int      `json:"opened"`
	OtherPassword int      `json:"other_password"`
	Damaged       int      `json:"damaged"`
	DamagedTokens []string `json:"damaged_tokens"`
	Vanished      int      `json:"vanished"`
	Strict        bool     `json:"strict"`
	OK            bool     `json:"ok"`
}

func (a *app) verifyCommand() *cobra.Command {
	var strict bool
	var workers int
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that every value, live or soft-deleted, opens with the password",
		Long: `verify opens every value of the vault, live, expired and soft-deleted, with the
password, in pages of ` + fmt.Sprint(verifyPageSize) + ` tokens ordered by id, several at a time, and reports
how many opened, how many are under another password and how many are damaged
(their tokens are listed, never their values). Values in the v1 and v2 formats
cannot tell another password from damage and count as another password.

Exit status: 0 when nothing is damaged, 1 otherwise; with --strict also 1 when
any value is under another password.`,
		Example: `  VAULTSTORE_PASSWORD=... vaultstore verify --db sqlite:vault.db
  vaultstore verify --db sqlite:vault.db --password-file /run/secrets/vault --strict --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if workers < 0 {
				return usagef("--workers must not be negative")
			}
			if workers == 0 {
				workers = runtime.GOMAXPROCS(0)
			}
			ctx := cmd.Context()
			s, db, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			defer db.Close()
			pw, err := a.password()
			if err != nil {
				return err
			}
			r, err := verifyAll(ctx, s, pw, workers)
			if err != nil {
				return err
			}
			r.Strict = strict
			r.OK = r.Damaged == 0 && (!strict || r.OtherPassword == 0)
			if a.json {
				a.printJSON(r)
			} else {
				a.printf("checked:        %d\n", r.Checked)
				a.printf("opened:         %d\n", r.Opened)
				a.printf("other password: %d\n", r.OtherPassword)
				a.printf("damaged:        %d\n", r.Damaged)
				for _, t := range r.DamagedTokens {
					a.printf("  damaged token %s\n", t)
				}
				if r.Vanished > 0 {
					a.printf("deleted while verifying: %d\n", r.Vanished)
				}
			}
			switch {
			case r.Damaged > 0:
				return failure{fmt.Sprintf("verify: %d damaged values", r.Damaged)}
			case !r.OK:
				return failure{fmt.Sprintf("verify: %d values under another password (--strict)", r.OtherPassword)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "also fail when any value is under another password")
	cmd.Flags().IntVar(&workers, "workers", 0, "values checked at once (0: one per CPU)")
	return cmd
}

// verifyAll lists every token, soft-deleted ones included, in pages and
// checks each value with VerifyValue on at most workers goroutines.
func verifyAll(ctx context.Context, s *vaultstore.Store, password string, workers int) (verifyResult, error) {
	r := verifyResult{DamagedTokens: []string{}}
	var mu sync.Mutex
	for offset := 0; ; offset += verifyPageSize {
		q := vaultstore.RecordQuery().
			SetColumns([]string{vaultstore.COLUMN_VAULT_TOKEN}).
			SetSoftDeletedInclude(true).
			SetOrderBy(vaultstore.COLUMN_ID).SetSortOrder(vaultstore.ASC).
			SetOffset(offset).SetLimit(verifyPageSize)
		page, err := s.RecordList(ctx, q)
		if err != nil {
			return r, err
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(workers)
		for _, rec := range page {
			token := rec.GetToken()
			g.Go(func() error {
				err := s.VerifyValue(gctx, token, password)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					r.Opened++
				case errors.Is(err, vaultstore.ErrInvalidPassword):
					r.OtherPassword++
				case errors.Is(err, vaultstore.ErrRecordNotFound):
					r.Vanished++
					return nil
				case errors.Is(err, vaultstore.ErrDecryptionFailed):
					r.Damaged++
					r.DamagedTokens = append(r.DamagedTokens, token)
				default:
					return err
				}
				r.Checked++
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return r, err
		}
		if len(page) < verifyPageSize {
			break
		}
	}
	slices.Sort(r.DamagedTokens)
	return r, nil
}
