package main

import (
	"github.com/spf13/cobra"
)

type purgeResult struct {
	Soft    bool  `json:"soft"`
	Deleted int64 `json:"deleted"`
}

func (a *app) purgeCommand() *cobra.Command {
	var soft bool
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete expired tokens (--soft: soft-delete them)",
		Long: `purge deletes every token whose expiry has passed, in one statement
(TokensExpiredDelete), and prints how many. With --soft the rows are
soft-deleted instead (TokensExpiredSoftDelete) and stay in the table. No
password is needed.`,
		Example: `  vaultstore purge --db sqlite:vault.db
  vaultstore purge --db mysql://app:secret@db:3306/app --soft --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, db, err := a.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			var n int64
			if soft {
				n, err = s.TokensExpiredSoftDelete(cmd.Context())
			} else {
				n, err = s.TokensExpiredDelete(cmd.Context())
			}
			if err != nil {
				return err
			}
			if a.json {
				a.printJSON(purgeResult{Soft: soft, Deleted: n})
			} else if soft {
				a.printf("soft-deleted %d expired tokens\n", n)
			} else {
				a.printf("deleted %d expired tokens\n", n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&soft, "soft", false, "soft-delete expired tokens instead of deleting them")
	return cmd
}
