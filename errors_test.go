package vaultstore

import (
	"errors"
	"strings"
	"testing"
)

func TestOpenFailedMatchesBothSentinels(t *testing.T) {
	if !errors.Is(errOpenFailed, ErrInvalidPassword) || !errors.Is(errOpenFailed, ErrDecryptionFailed) {
		t.Error("errOpenFailed does not match both sentinels")
	}
	if errors.Is(errOpenFailed, ErrValidationFailed) {
		t.Error("errOpenFailed matches ErrValidationFailed")
	}
}

func TestErrorHelpersWrapAndPrefix(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
	}{
		{validationErrorf("x %d", 1), ErrValidationFailed},
		{decryptionErrorf("x"), ErrDecryptionFailed},
		{passwordErrorf("x"), ErrPasswordInvalid},
	} {
		if !errors.Is(c.err, c.want) || !strings.HasPrefix(c.err.Error(), "vaultstore: ") {
			t.Errorf("%v does not wrap %v with the prefix", c.err, c.want)
		}
	}
	for _, e := range []error{ErrRecordNotFound, ErrTokenAlreadyExists, ErrInvalidPassword, ErrDecryptionFailed, ErrValidationFailed, ErrTokenExpired, ErrPasswordInvalid} {
		if !strings.HasPrefix(e.Error(), "vaultstore: ") {
			t.Errorf("%q lacks the package prefix", e)
		}
	}
}
