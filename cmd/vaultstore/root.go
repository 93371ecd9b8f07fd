package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vaultstore/vaultstore"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailed   = 1 // the operation ran and failed, or found damage
	exitUsage    = 2 // the command line or environment is wrong
	envDB        = "VAULTSTORE_DB"
	envPassword  = "VAULTSTORE_PASSWORD"
	envNewPasswd = "VAULTSTORE_NEW_PASSWORD"
)

// app holds the global flags and the streams of one run.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	db, table, metaTable string
	crypto               string
	minReadVersion       string
	identities           bool
	minArgon2Iterations  int
	minArgon2Memory      int
	kdfMemoryBudget      int
	passwordMinLength    int
	passwordFile         string
	newPasswordFile      string
	json                 bool

	// secrets are scrubbed from every error message printed.
	secrets []string
	// stdinUsed names what already reads stdin, so that two things do not.
	stdinUsed string
}

// usageError is a mistake in the command line or environment: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// failure is an operation whose result was already printed and that must
// exit 1 (verify finding damage, an interrupted rotation).
type failure struct{ msg string }

func (f failure) Error() string { return f.msg }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "vaultstore",
		Short: "Operate a vaultstore vault: stats, verify, rotate, upgrade, purge, migrate, get, put",
		Long: `vaultstore operates a vault kept by the github.com/vaultstore/vaultstore library
in an SQLite, PostgreSQL or MySQL/MariaDB database.

The database comes from --db or VAULTSTORE_DB:
  sqlite:PATH or PATH                          an SQLite file
  postgres://user:pass@host:port/db?params     PostgreSQL (also postgresql://)
  mysql://user:pass@host:port/db?params        MySQL or MariaDB

Passwords are never taken from the command line: they come from
VAULTSTORE_PASSWORD and VAULTSTORE_NEW_PASSWORD, from --password-file and
--new-password-file (a path, or - for stdin), or from a prompt without echo
when stdin is a terminal.

Exit codes: 0 success, 1 the operation failed, 2 usage error.`,
		Example: `  export VAULTSTORE_DB=sqlite:/var/lib/app/vault.db
  vaultstore migrate
  vaultstore stats --json
  VAULTSTORE_PASSWORD=... vaultstore verify`,
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command (the commands are stats, verify, rotate, upgrade, purge, migrate, get, put and version)")
			}
			return cmd.Help()
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true

	f := root.PersistentFlags()
	f.StringVar(&a.db, "db", "", "database: sqlite:PATH, PATH, postgres://..., postgresql://... or mysql://...; default $"+envDB)
	f.StringVar(&a.table, "table", "vault", "vault table name")
	f.StringVar(&a.metaTable, "meta-table", "vault_meta", "meta table name")
	f.StringVar(&a.crypto, "crypto", "default", "CryptoConfig: default, lightweight, high, or custom t=N,m=KiB,p=N")
	f.StringVar(&a.minReadVersion, "min-read-version", "", `oldest value format read: "" (all), v2 or v3`)
	f.BoolVar(&a.identities, "identities", false, "use password identities (PasswordIdentityEnabled)")
	f.IntVar(&a.minArgon2Iterations, "min-argon2-iterations", 0, "least Argon2id iterations a stored value may ask for (0: library default)")
	f.IntVar(&a.minArgon2Memory, "min-argon2-memory", 0, "least Argon2id memory in KiB a stored value may ask for (0: library default)")
	f.IntVar(&a.kdfMemoryBudget, "kdf-memory-budget", 0, "Argon2id memory budget in KiB (0: 4 x the --crypto memory)")
	f.IntVar(&a.passwordMinLength, "password-min-length", 0, "shortest password accepted for writes (0: 16)")
	f.StringVar(&a.passwordFile, "password-file", "", "read the password from this file (- for stdin); default $"+envPassword+" or a prompt")
	f.StringVar(&a.newPasswordFile, "new-password-file", "", "read the new password from this file (- for stdin); default $"+envNewPasswd+" or a prompt")
	f.BoolVar(&a.json, "json", false, "print one JSON object on stdout")
	return root
}

// execute runs root with args and returns the exit code. Errors are printed
// with every known secret scrubbed; with --json also as {"error": ...} on
// stdout unless the command printed its result already.
func (a *app) execute(root *cobra.Command, args []string) int {
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	code := exitFailed
	var ue usageError
	var fe failure
	switch {
	case errors.As(err, &ue),
		// Input the library refused: a malformed token, a new password
		// against the policy.
		errors.Is(err, vaultstore.ErrValidationFailed), errors.Is(err, vaultstore.ErrPasswordInvalid):
		code = exitUsage
	case errors.As(err, &fe):
		fmt.Fprintln(a.stderr, "vaultstore: "+a.scrub(fe.msg))
		return exitFailed
	}
	msg := a.scrub(strings.TrimPrefix(err.Error(), "vaultstore: "))
	fmt.Fprintln(a.stderr, "vaultstore: error: "+msg)
	if code == exitUsage && !a.json {
		fmt.Fprintln(a.stderr, "Run 'vaultstore --help' for usage.")
	}
	if a.json {
		a.printJSON(map[string]any{"error": msg, "exit_code": code})
	}
	return code
}

// minScrubbed is the shortest secret scrub replaces: neither the library
// nor the drivers put passwords or values into errors, so scrubbing is a
// second line of defence, and replacing a two-letter legacy password or a
// one-letter value everywhere would make every message unreadable.
const minScrubbed = 6

// scrub replaces every known secret in msg.
func (a *app) scrub(msg string) string {
	return scrubAll(msg, a.secrets...)
}

func scrubAll(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= minScrubbed {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	return msg
}

// addSecret records s so that no error message shows it.
func (a *app) addSecret(s string) {
	a.secrets = append(a.secrets, s)
}

// printJSON writes v as one JSON object and a newline on stdout.
func (a *app) printJSON(v any) {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// printf writes human-readable output on stdout.
func (a *app) printf(format string, args ...any) {
	fmt.Fprintf(a.stdout, format, args...)
}

// storeOptions are the store options the global flags give.
func (a *app) storeOptions() (vaultstore.NewStoreOptions, error) {
	crypto, err := parseCrypto(a.crypto)
	if err != nil {
		return vaultstore.NewStoreOptions{}, err
	}
	switch a.minReadVersion {
	case "", vaultstore.ENCRYPTION_VERSION_V2, vaultstore.ENCRYPTION_VERSION_V3:
	default:
		return vaultstore.NewStoreOptions{}, usagef("--min-read-version %q: want \"\", v2 or v3", a.minReadVersion)
	}
	return vaultstore.NewStoreOptions{
		VaultTableName:          a.table,
		VaultMetaTableName:      a.metaTable,
		CryptoConfig:            crypto,
		MinReadVersion:          a.minReadVersion,
		PasswordIdentityEnabled: a.identities,
		MinArgon2Iterations:     a.minArgon2Iterations,
		MinArgon2Memory:         a.minArgon2Memory,
		KDFMemoryBudget:         a.kdfMemoryBudget,
		PasswordMinLength:       a.passwordMinLength,
	}, nil
}

// openStore connects to the database and opens the store; create allows
// an SQLite file that does not exist yet (migrate). The caller closes db.
func (a *app) openStore(ctx context.Context, create bool) (*vaultstore.Store, *sql.DB, error) {
	opts, err := a.storeOptions()
	if err != nil {
		return nil, nil, err
	}
	dsn := a.db
	if dsn == "" {
		dsn = os.Getenv(envDB)
	}
	target, err := parseDSN(dsn)
	if err != nil {
		return nil, nil, err
	}
	db, err := target.open(create)
	if err != nil {
		return nil, nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		// Drivers do not quote the password; scrub it all the same, here
		// only, where a short or common database password cannot garble
		// the library's messages.
		return nil, nil, errors.New(scrubAll(fmt.Sprintf("cannot connect to the %s database: %v", target.dialect, err), target.password))
	}
	opts.DB = db
	opts.DbDriverName = target.dialect
	s, err := vaultstore.NewStore(opts)
	if err != nil {
		db.Close()
		if errors.Is(err, vaultstore.ErrValidationFailed) {
			return nil, nil, usageError{err}
		}
		return nil, nil, err
	}
	return s, db, nil
}
