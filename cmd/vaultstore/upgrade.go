package main

import (
	"github.com/spf13/cobra"
)

func (a *app) upgradeCommand() *cobra.Command {
	var f rotationFlags
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Rewrite the password's v1, v2 and out-of-date v3 values as current v3",
		Long: `upgrade rewrites every value under the password that is in the v1 or v2 format,
or in v3 with other Argon2id parameters (--crypto) or another vault salt, as a
v3 value with the current parameters: a rotation from the password to itself.
Values already current are left alone, so running it again changes nothing.
The counts say how many values came from each format; once v1 (or v1 and v2)
are zero, --min-read-version can be raised in the application.

v2 values record no Argon2 parameters: give the --crypto they were written
with (often lightweight). Progress and interruption work as for rotate.`,
		Example: `  VAULTSTORE_PASSWORD=... vaultstore upgrade --db sqlite:vault.db --crypto lightweight
  vaultstore upgrade --password-file pw.txt --dry-run --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, db, err := a.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			pw, err := a.password()
			if err != nil {
				return err
			}
			return a.runRotation(cmd.Context(), s, "upgrade", pw, pw, f)
		},
	}
	f.add(cmd)
	return cmd
}
