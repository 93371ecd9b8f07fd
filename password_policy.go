package vaultstore

import (
	"unicode"
	"unicode/utf8"
)

// passwordPolicy is the rule set of NewStoreOptions that passwords given for
// writes must follow. Errors name the rule, never the password.
type passwordPolicy struct {
	allowEmpty       bool
	minLength        int
	requireLowercase bool
	requireUppercase bool
	requireNumbers   bool
	requireSymbols   bool
}

func (p passwordPolicy) check(password string) error {
	if password == "" {
		if p.allowEmpty {
			return nil
		}
		return passwordErrorf("the password is empty")
	}
	if utf8.RuneCountInString(password) < p.minLength {
		// The length stays out of the message: it narrows a guess.
		return passwordErrorf("the password is shorter than %d characters", p.minLength)
	}
	var lower, upper, number, symbol bool
	for _, r := range password {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			number = true
		case unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r):
			symbol = true
		}
	}
	switch {
	case p.requireLowercase && !lower:
		return passwordErrorf("the password has no lowercase letter")
	case p.requireUppercase && !upper:
		return passwordErrorf("the password has no uppercase letter")
	case p.requireNumbers && !number:
		return passwordErrorf("the password has no digit")
	case p.requireSymbols && !symbol:
		return passwordErrorf("the password has no symbol")
	}
	return nil
}
