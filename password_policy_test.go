package vaultstore

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordPolicy(t *testing.T) {
	cases := []struct {
		policy   passwordPolicy
		password string
		ok       bool
	}{
		{passwordPolicy{minLength: 16}, "", false},
		{passwordPolicy{minLength: 16, allowEmpty: true}, "", true},
		{passwordPolicy{minLength: 16}, "fifteen chars!!", false},
		{passwordPolicy{minLength: 16}, "sixteen chars!!!", true},
		{passwordPolicy{minLength: 4}, "äöüß", true}, // characters, not bytes
		{passwordPolicy{minLength: 1, requireLowercase: true}, "ABC", false},
		{passwordPolicy{minLength: 1, requireLowercase: true}, "ABc", true},
		{passwordPolicy{minLength: 1, requireUppercase: true}, "abc", false},
		{passwordPolicy{minLength: 1, requireUppercase: true}, "Abc", true},
		{passwordPolicy{minLength: 1, requireNumbers: true}, "abc", false},
		{passwordPolicy{minLength: 1, requireNumbers: true}, "ab1", true},
		{passwordPolicy{minLength: 1, requireSymbols: true}, "abc1", false},
		{passwordPolicy{minLength: 1, requireSymbols: true}, "abc!", true},
	}
	for _, c := range cases {
		err := c.policy.check(c.password)
		if (err == nil) != c.ok {
			t.Errorf("%+v check(%q) = %v", c.policy, c.password, err)
		}
		if err != nil {
			if !errors.Is(err, ErrPasswordInvalid) {
				t.Errorf("error %v does not match ErrPasswordInvalid", err)
			}
			if c.password != "" && strings.Contains(err.Error(), c.password) {
				t.Errorf("error %q contains the password", err)
			}
		}
	}
}
