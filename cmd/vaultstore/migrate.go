package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

type migrateResult struct {
	Changed []string `json:"changed"`
	Pending []string `json:"still_pending"`
}

func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the vault and meta tables (AutoMigrate) and say what changed",
		Long: `migrate creates the vault and meta tables, or upgrades tables written by older
releases in place (AutoMigrate): missing columns and indexes, NULL timestamps,
MySQL columns without exact comparison. It compares the schema before and
after and lists what changed; on current tables it changes nothing. An SQLite
file that does not exist is created. No password is needed.`,
		Example: `  vaultstore migrate --db sqlite:vault.db
  vaultstore migrate --db postgres://app:secret@db:5432/app --table secrets --meta-table secrets_meta --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, db, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer db.Close()
			before, err := s.SchemaCheck(ctx)
			if err != nil {
				return err
			}
			if err := s.AutoMigrate(); err != nil {
				return err
			}
			after, err := s.SchemaCheck(ctx)
			if err != nil {
				return err
			}
			r := migrateResult{Changed: []string{}, Pending: append([]string{}, after.Pending...)}
			for _, p := range before.Pending {
				if !slices.Contains(after.Pending, p) {
					r.Changed = append(r.Changed, p)
				}
			}
			if a.json {
				a.printJSON(r)
			} else if len(r.Changed) == 0 {
				a.printf("migrate: tables %s and %s are current; nothing changed\n", s.GetVaultTableName(), s.GetMetaTableName())
			} else {
				a.printf("migrate: changed:\n")
				for _, c := range r.Changed {
					a.printf("  %s\n", c)
				}
			}
			if len(r.Pending) > 0 {
				return failure{"migrate: still pending after AutoMigrate: " + strings.Join(r.Pending, "; ")}
			}
			return nil
		},
	}
}
