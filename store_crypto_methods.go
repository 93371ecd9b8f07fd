package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// encrypt seals value for token in the store's write format.
func (s *Store) encrypt(ctx context.Context, value, password, token string) (string, error) {
	if s.writeVersion == ENCRYPTION_VERSION_V2 {
		if err := s.checkNoRoot(ctx); err != nil {
			return "", err
		}
		// Every v2 value has its own salt, so its key is derived afresh;
		// it goes through the deriver for its bounds only.
		return encryptV2With(value, password, &s.crypto, randReader, uncachedKeys{ctx, s.keys})
	}
	kek, salt, p, err := s.writeKEK(ctx, password)
	if err != nil {
		return "", err
	}
	defer clear(kek)
	return encryptV3(value, token, kek, p, salt, randReader)
}

// writeKEK returns the KEK that v3 values of password are written under,
// with its vault salt and parameters, making the salt and the root on first
// use. The caller clears the KEK.
func (s *Store) writeKEK(ctx context.Context, password string) (kek, salt []byte, p argon2Params, err error) {
	p = s.writeParams()
	var fresh bool
	if p.Root {
		var root []byte
		if salt, root, err = s.rootForWrite(ctx); err == nil {
			kek, fresh, err = s.keys.deriveRooted(ctx, password, salt, p, func() ([]byte, error) { return root, nil })
		}
	} else if err = s.checkNoRoot(ctx); err == nil {
		if salt, err = s.vaultSaltForWrite(ctx); err == nil {
			kek, fresh, err = s.keys.derive(ctx, password, salt, p)
		}
	}
	if err != nil {
		return nil, nil, p, err
	}
	if fresh {
		// A write makes the key right by definition: every value this
		// password writes will need it.
		s.keys.remember(password, salt, p, kek)
	}
	return kek, salt, p, nil
}

// decrypt opens a stored value of any supported format. Keys come from the
// store's cache, so a v3 value costs a derivation only for the first
// password and vault salt it meets.
func (s *Store) decrypt(ctx context.Context, stored, password, token string) (string, error) {
	keys := cachedKeys{ctx, s.keys, s}
	plain, err := decryptValue(stored, password, token, &s.crypto, s.read, keys, keys)
	s.warnRefused(ctx, err, token)
	return plain, err
}

// warnRefused logs a value whose format or stored parameters the read
// policy refused: in normal use none are, so one is a sign of tampering or
// of a policy raised too early.
func (s *Store) warnRefused(ctx context.Context, err error, token string) {
	if errors.Is(err, errRefused) {
		s.tel.warn(ctx, "vaultstore: stored value refused by the read policy", slog.String("token", token), slog.String(attrErr, errorClass(err)))
	}
}

// decryptOnce is decrypt for values read once, as in a rotation: v2 keys,
// one per value, bypass the cache so that they do not evict the v3 keys
// that serve the application.
func (s *Store) decryptOnce(ctx context.Context, stored, password, token string) (string, error) {
	plain, err := decryptValue(stored, password, token, &s.crypto, s.read, uncachedKeys{ctx, s.keys}, cachedKeys{ctx, s.keys, s})
	s.warnRefused(ctx, err, token)
	return plain, err
}

// writeParams are the parameters of the v3 values the store writes.
func (s *Store) writeParams() argon2Params {
	p := v3Params(&s.crypto)
	p.Root = s.bindsRoot()
	return p
}

// vaultSaltForWrite returns the vault's v3 salt, making it on first use.
// Several processes may make it at once: each inserts its candidate only if
// no salt exists (the meta table's unique index decides), then all read
// back the one that won. Reads never need it: every v3 value carries the
// salt it was written with.
func (s *Store) vaultSaltForWrite(ctx context.Context) ([]byte, error) {
	if p := s.shared.vaultSalt.Load(); p != nil {
		return *p, nil
	}
	unlock, err := s.lockShared(ctx, &s.shared.saltMu)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if p := s.shared.vaultSalt.Load(); p != nil {
		return *p, nil
	}
	salt, err := s.readVaultSalt(ctx)
	if errors.Is(err, ErrRecordNotFound) {
		salt, err = s.createVaultSalt(ctx)
	}
	if err != nil {
		return nil, err
	}
	if !s.bound {
		// A salt made in the caller's transaction may be rolled back.
		s.shared.vaultSalt.Store(&salt)
	}
	return salt, nil
}

func (s *Store) readVaultSalt(ctx context.Context) ([]byte, error) {
	text, err := s.GetVaultSetting(ctx, META_KEY_VAULT_SALT)
	if err != nil {
		return nil, err
	}
	salt, err := b64.DecodeString(text)
	if err != nil || len(salt) != v3SaltLen {
		// Writing under a salt other than the stored one would be harmless
		// to old values but would hide the damage; refuse instead.
		return nil, fmt.Errorf("vaultstore: vault setting %s is not %d bytes of base64url; repair or delete it", META_KEY_VAULT_SALT, v3SaltLen)
	}
	return salt, nil
}

func (s *Store) createVaultSalt(ctx context.Context) ([]byte, error) {
	if err := s.ensureMetaTable(ctx); err != nil {
		return nil, err
	}
	candidate := make([]byte, v3SaltLen)
	if _, err := io.ReadFull(randReader, candidate); err != nil {
		return nil, fmt.Errorf("vaultstore: failed to read random bytes: %w", err)
	}
	row := gormVaultMeta{ObjectType: OBJECT_TYPE_VAULT_SETTINGS, ObjectID: VAULT_SETTINGS_ID, Key: META_KEY_VAULT_SALT, Value: b64.EncodeToString(candidate)}
	err := s.meta(ctx).Clauses(metaOnConflict(false)).Create(&row).Error
	if err != nil {
		return nil, fmt.Errorf("vaultstore: failed to store the vault salt: %w", err)
	}
	return s.readVaultSalt(ctx)
}
