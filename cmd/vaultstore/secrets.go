package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/vaultstore/vaultstore"
)

// maxPasswordFile bounds what is read from a password file.
const maxPasswordFile = 64 << 10

// password returns the current password: from --password-file, else
// VAULTSTORE_PASSWORD, else a prompt without echo when stdin is a
// terminal.
func (a *app) password() (string, error) {
	pw, err := a.secret(a.passwordFile, "--password-file", envPassword, "Password: ", false)
	a.addSecret(pw)
	return pw, err
}

// newPassword returns the new password: from --new-password-file, else
// VAULTSTORE_NEW_PASSWORD, else a prompt asked twice.
func (a *app) newPassword() (string, error) {
	pw, err := a.secret(a.newPasswordFile, "--new-password-file", envNewPasswd, "New password: ", true)
	a.addSecret(pw)
	return pw, err
}

func (a *app) secret(file, flag, env, prompt string, twice bool) (string, error) {
	if file != "" {
		return a.readSecretFile(file, flag)
	}
	if v, ok := os.LookupEnv(env); ok {
		return v, nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("no password: set %s, give %s, or run on a terminal to be asked", env, flag)
	}
	if a.stdinUsed != "" {
		return "", usagef("stdin is already used for %s; give %s or set %s", a.stdinUsed, flag, env)
	}
	pw, err := a.prompt(f, prompt)
	if err != nil || !twice {
		return pw, err
	}
	again, err := a.prompt(f, "Repeat "+strings.ToLower(prompt[:1])+prompt[1:])
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", usagef("the two new passwords differ")
	}
	return pw, nil
}

func (a *app) prompt(f *os.File, prompt string) (string, error) {
	fmt.Fprint(a.stderr, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", fmt.Errorf("cannot read the password from the terminal: %w", err)
	}
	return string(b), nil
}

// readSecretFile reads a password from path, or stdin for "-", without its
// final line ending.
func (a *app) readSecretFile(path, flag string) (string, error) {
	var r io.Reader
	if path == "-" {
		if err := a.claimStdin(flag); err != nil {
			return "", err
		}
		r = a.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			// The path is not secret; its contents are.
			return "", usagef("%s: %v", flag, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPasswordFile+1))
	if err != nil {
		return "", fmt.Errorf("%s: cannot read: %w", flag, err)
	}
	if len(b) > maxPasswordFile {
		return "", usagef("%s: more than %d bytes", flag, maxPasswordFile)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return string(b), nil
}

// claimStdin records that what reads stdin; only one thing may.
func (a *app) claimStdin(what string) error {
	if a.stdinUsed != "" {
		return usagef("%s and %s cannot both read stdin", a.stdinUsed, what)
	}
	a.stdinUsed = what
	return nil
}

// readValue reads a value for put from stdin, exactly as given.
func (a *app) readValue() (string, error) {
	if err := a.claimStdin("the value"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(a.stdin, vaultstore.MaxValueSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read the value from stdin: %w", err)
	}
	if len(b) > vaultstore.MaxValueSize {
		return "", errors.New("the value on stdin is larger than the library's MaxValueSize")
	}
	return string(b), nil
}
