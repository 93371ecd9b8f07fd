package main

import (
	"github.com/spf13/cobra"
)

type getResult struct {
	Token string `json:"token"`
	Value string `json:"value"`
}

func (a *app) getCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get TOKEN",
		Short: "Print the value of one token (for debugging a single entry)",
		Long: `get prints the value stored under TOKEN, decrypted with the password, exactly
as stored: no newline is added. It is the only command that prints a value.
Soft-deleted and expired tokens are refused, as TokenRead refuses them.`,
		Example: `  VAULTSTORE_PASSWORD=... vaultstore get tk_0123456789abcdefghjk --db sqlite:vault.db
  vaultstore get tk_0123456789abcdefghjk --password-file pw.txt --json`,
		Args: exactArgs(1, "one TOKEN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, db, err := a.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			pw, err := a.password()
			if err != nil {
				return err
			}
			value, err := s.TokenRead(cmd.Context(), args[0], pw)
			if err != nil {
				return err
			}
			if a.json {
				a.printJSON(getResult{Token: args[0], Value: value})
			} else {
				a.printf("%s", value)
			}
			return nil
		},
	}
}
