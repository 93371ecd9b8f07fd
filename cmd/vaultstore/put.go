package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/vaultstore/vaultstore"
)

type putResult struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

func (a *app) putCommand() *cobra.Command {
	var token string
	var length int
	var expiresIn time.Duration
	cmd := &cobra.Command{
		Use:   "put",
		Short: "Store the value read from stdin and print its new token",
		Long: `put reads a value from stdin, exactly as given (a final newline is kept), encrypts
it with the password and prints the new token. The value never comes from the
command line. --token stores it under a token of your choosing instead of a
generated one; --expires-in sets an expiry.`,
		Example: `  printf '%s' "$API_KEY" | VAULTSTORE_PASSWORD=... vaultstore put --db sqlite:vault.db
  vaultstore put --password-file pw.txt --token tk_billing_api_key --expires-in 24h --json < key.txt`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if expiresIn < 0 {
				return usagef("--expires-in must not be negative")
			}
			if length < vaultstore.TOKEN_MIN_TOTAL_LENGTH || length > vaultstore.TOKEN_MAX_TOTAL_LENGTH {
				return usagef("--length must be %d..%d", vaultstore.TOKEN_MIN_TOTAL_LENGTH, vaultstore.TOKEN_MAX_TOTAL_LENGTH)
			}
			s, db, err := a.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			pw, err := a.password()
			if err != nil {
				return err
			}
			value, err := a.readValue()
			if err != nil {
				return err
			}
			a.addSecret(value)
			var opts vaultstore.TokenCreateOptions
			r := putResult{ExpiresAt: "never"}
			if expiresIn > 0 {
				opts.ExpiresAt = time.Now().Add(expiresIn).UTC()
				r.ExpiresAt = opts.ExpiresAt.Format(time.RFC3339)
			}
			if token != "" {
				err = s.TokenCreateCustom(cmd.Context(), token, value, pw, opts)
				r.Token = token
			} else {
				r.Token, err = s.TokenCreate(cmd.Context(), value, pw, length, opts)
			}
			if err != nil {
				return err
			}
			if a.json {
				a.printJSON(r)
			} else {
				a.printf("%s\n", r.Token)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&token, "token", "", "store under this token instead of a generated one")
	cmd.Flags().IntVar(&length, "length", 24, "length of a generated token, prefix included")
	cmd.Flags().DurationVar(&expiresIn, "expires-in", 0, "expire the token after this long (e.g. 24h; 0: never)")
	return cmd
}
