package vaultstore

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the store returns for a condition a caller can
// act on matches one of these with errors.Is; the error text adds context
// (which option, which token) but never a password, a key or a plaintext.
var (
	// ErrRecordNotFound is returned when a token or record id names no row, or
	// names a soft-deleted one. RecordFindByID and RecordFindByToken are the
	// exception: they return (nil, nil) for an absent row, as existing callers
	// expect.
	ErrRecordNotFound = errors.New("vaultstore: record not found")

	// ErrTokenAlreadyExists is returned when TokenCreateCustom (or a record
	// insert) names a token that is already stored, including when a
	// concurrent insert of the same token won the race.
	ErrTokenAlreadyExists = errors.New("vaultstore: token already exists")

	// ErrInvalidPassword is returned when the password does not open the
	// stored value. Values in the v1 and v2 formats cannot tell a wrong
	// password from a damaged value; their failures match both
	// ErrInvalidPassword and ErrDecryptionFailed.
	ErrInvalidPassword = errors.New("vaultstore: invalid password")

	// ErrDecryptionFailed is returned when a stored value is malformed (bad
	// encoding, truncated, unknown format) or does not authenticate.
	ErrDecryptionFailed = errors.New("vaultstore: decryption failed")

	// ErrValidationFailed is returned for bad input of any kind: invalid
	// options, an empty or over-long token, a query naming an unknown column,
	// a nil record. Nothing is written and no SQL runs when it is returned.
	ErrValidationFailed = errors.New("vaultstore: validation failed")

	// ErrTokenExpired is returned when a token's expiry time has passed. The
	// value is not decrypted.
	ErrTokenExpired = errors.New("vaultstore: token expired")

	// ErrKeyUnavailable is returned when a value is bound to the vault's
	// KMS root key and the root cannot be had: the store has no KeyWrapper,
	// the KeyWrapper fails or cannot unwrap the stored root (another KMS
	// key), or the root was destroyed. The password may well be right.
	// Nothing is written when a write meets it.
	ErrKeyUnavailable = errors.New("vaultstore: key unavailable")

	// ErrAuditFailed is returned when NewStoreOptions.AuditFailClosed is set
	// and the audit hook fails: a read returns no value and a write is
	// rolled back (on a store bound with WithTx, roll the caller's
	// transaction back).
	ErrAuditFailed = errors.New("vaultstore: audit failed")

	// ErrPasswordInvalid is returned when a password given for a write breaks
	// the store's password policy (NewStoreOptions.PasswordMinLength and the
	// character-class options). Reads never apply the policy.
	ErrPasswordInvalid = errors.New("vaultstore: password does not meet the policy")
)

// errOpenFailed is the one opaque failure of the v1 and v2 formats: neither
// carries anything that tells a wrong password from a damaged value, so the
// error matches both sentinels and callers checking either one are right.
var errOpenFailed error = openFailedError{}

type openFailedError struct{}

func (openFailedError) Error() string {
	return "vaultstore: value does not open: wrong password or damaged value"
}

func (openFailedError) Is(target error) bool {
	return target == ErrInvalidPassword || target == ErrDecryptionFailed
}

// errPasswordMismatch is the v3 failure when the key commitment does not match:
// the password is wrong, and the value itself may well be intact.
var errPasswordMismatch = fmt.Errorf("%w: the password does not open this value", ErrInvalidPassword)

// validationErrorf wraps ErrValidationFailed with a description of what was
// wrong. Callers must not pass secrets as arguments.
func validationErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrValidationFailed}, args...)...)
}

// decryptionErrorf wraps ErrDecryptionFailed with a structural reason.
func decryptionErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrDecryptionFailed}, args...)...)
}

// passwordErrorf wraps ErrPasswordInvalid with the rule that was broken.
func passwordErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrPasswordInvalid}, args...)...)
}
