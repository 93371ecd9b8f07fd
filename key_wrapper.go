package vaultstore

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"

	"gorm.io/gorm"
)

// KeyWrapper encrypts and decrypts small secrets with a key that lives
// outside the database, in a key-management service. With
// NewStoreOptions.KeyWrapper set, every value the store writes needs both
// the password and the vault's root key, which is kept in the meta table
// only as KeyWrapper.Encrypt made it: a copy of the database and the
// password together open nothing without the KMS.
//
// *secrets.Keeper of gocloud.dev satisfies KeyWrapper as it is, so AWS KMS,
// Google Cloud KMS, Azure Key Vault, HashiCorp Vault Transit and local keys
// all work through it. The store calls Decrypt once per process (and per
// vault salt) and Encrypt when it makes or rewraps the root, never per
// value. Both must be safe for concurrent use.
type KeyWrapper interface {
	Encrypt(ctx context.Context, plaintext []byte) ([]byte, error)
	Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error)
}

// rootKeyLen is the size of a vault's root key.
const rootKeyLen = 32

// DestroyRootConfirmation is the argument DestroyRoot requires, so that no
// call destroys a root by accident.
const DestroyRootConfirmation = "destroy the root key: every value bound to it becomes unreadable"

// errNoKeyWrapper is the failure to open a value bound to a root without a
// KeyWrapper.
var errNoKeyWrapper = fmt.Errorf("%w: the value is bound to a KMS root key and the store has no KeyWrapper", ErrKeyUnavailable)

// vaultRoot is a vault's root key and the vault salt it serves.
type vaultRoot struct {
	salt, key []byte
}

// bindsRoot reports whether values the store writes are bound to the root.
func (s *Store) bindsRoot() bool { return s.wrapper != nil && !s.rootRetired }

// storedRoot is the root setting: the vault salt it serves and the
// wrapped key, "<base64url salt>:<base64url wrapped key>". Tying the root
// to a salt means a value written under a root that was destroyed (and so
// under the salt destroyed with it) is ErrKeyUnavailable, never tried
// against a later root.
type storedRoot struct {
	text          string
	salt, wrapped []byte
}

func parseStoredRoot(text string) (storedRoot, error) {
	a, b, ok := strings.Cut(text, ":")
	salt, err1 := b64.DecodeString(a)
	wrapped, err2 := b64.DecodeString(b)
	if !ok || err1 != nil || err2 != nil || len(salt) != v3SaltLen || len(wrapped) == 0 || len(wrapped) > maxWrappedRootLen {
		return storedRoot{}, fmt.Errorf("%w: vault setting %s is malformed", ErrKeyUnavailable, META_KEY_ROOT_KEY)
	}
	return storedRoot{text: text, salt: salt, wrapped: wrapped}, nil
}

func formatStoredRoot(salt, wrapped []byte) string {
	return b64.EncodeToString(salt) + ":" + b64.EncodeToString(wrapped)
}

// maxWrappedRootLen bounds what is handed to the KMS: a wrapped 32-byte key
// is a few hundred bytes with any real service.
const maxWrappedRootLen = 16 << 10

// readRoot reads the root setting; ErrRecordNotFound when there is none.
func (s *Store) readRoot(ctx context.Context) (storedRoot, error) {
	text, err := s.GetVaultSetting(ctx, META_KEY_ROOT_KEY)
	if err != nil {
		return storedRoot{}, err
	}
	return parseStoredRoot(text)
}

// unwrap opens a wrapped root. Whatever the KMS says is ErrKeyUnavailable:
// the password may be right, and nothing else can open the value.
func (s *Store) unwrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	key, err := s.wrapper.Decrypt(ctx, wrapped)
	if err != nil {
		return nil, fmt.Errorf("%w: the KeyWrapper cannot unwrap the vault's root key: %v", ErrKeyUnavailable, err)
	}
	if len(key) != rootKeyLen {
		clear(key)
		return nil, fmt.Errorf("%w: the vault's root key unwraps to %d bytes, not %d", ErrKeyUnavailable, len(key), rootKeyLen)
	}
	return key, nil
}

// rootFor returns the root key for values under vaultSalt: from memory, or
// read and unwrapped once per process. The store keeps the root for as
// long as it lives, as it keeps derived keys.
func (s *Store) rootFor(ctx context.Context, vaultSalt []byte) ([]byte, error) {
	if s.wrapper == nil {
		return nil, errNoKeyWrapper
	}
	if r := s.shared.root.Load(); r != nil && bytes.Equal(r.salt, vaultSalt) {
		return r.key, nil
	}
	if err := s.shared.rootMu.lock(ctx); err != nil {
		return nil, err
	}
	defer s.shared.rootMu.unlock()
	if r := s.shared.root.Load(); r != nil && bytes.Equal(r.salt, vaultSalt) {
		return r.key, nil
	}
	stored, err := s.readRoot(ctx)
	if errors.Is(err, ErrRecordNotFound) {
		return nil, fmt.Errorf("%w: the vault has no root key (was it destroyed?)", ErrKeyUnavailable)
	}
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(stored.salt, vaultSalt) {
		return nil, fmt.Errorf("%w: the root key this value was bound to is gone (destroyed with its vault salt)", ErrKeyUnavailable)
	}
	key, err := s.unwrap(ctx, stored.wrapped)
	if err != nil {
		return nil, err
	}
	// A bound store never makes a root (rootForWrite), so the root it reads
	// was committed by an unbound one and is safe to share.
	s.shared.root.Store(&vaultRoot{salt: stored.salt, key: key})
	return key, nil
}

// rootForWrite returns the vault salt values are written under and the
// root that serves it, making both on first use. The KMS is asked to wrap a
// new root before anything is written, so a KeyWrapper that fails never
// causes a write. Several processes may make the root at once: each inserts
// its candidate only if no root exists (the meta table's unique index
// decides), then all use the one that won.
func (s *Store) rootForWrite(ctx context.Context) (salt, root []byte, err error) {
	if r, vs := s.shared.root.Load(), s.shared.vaultSalt.Load(); r != nil && vs != nil && bytes.Equal(r.salt, *vs) {
		return r.salt, r.key, nil
	}
	_, err = s.readRoot(ctx)
	switch {
	case err == nil:
		if salt, err = s.vaultSaltForWrite(ctx); err != nil {
			return nil, nil, err
		}
		root, err = s.rootFor(ctx, salt)
		return salt, root, err
	case !errors.Is(err, ErrRecordNotFound):
		return nil, nil, err
	}
	if s.bound {
		// A root made in a transaction that is then rolled back would live
		// on in the shared state and bind values no one can open.
		return nil, nil, validationErrorf("the vault has no KMS root key yet; make its first write on the store WithTx was called on, outside the transaction")
	}
	if err := s.shared.rootMu.lock(ctx); err != nil {
		return nil, nil, err
	}
	candidate := make([]byte, rootKeyLen)
	if _, err := io.ReadFull(randReader, candidate); err != nil {
		s.shared.rootMu.unlock()
		return nil, nil, fmt.Errorf("vaultstore: failed to read random bytes: %w", err)
	}
	wrapped, err := s.wrapper.Encrypt(ctx, candidate)
	if err == nil {
		salt, err = s.vaultSaltForWrite(ctx)
	} else {
		err = fmt.Errorf("%w: the KeyWrapper cannot wrap a new root key: %v", ErrKeyUnavailable, err)
	}
	if err == nil {
		mine := formatStoredRoot(salt, wrapped)
		row := gormVaultMeta{ObjectType: OBJECT_TYPE_VAULT_SETTINGS, ObjectID: VAULT_SETTINGS_ID, Key: META_KEY_ROOT_KEY, Value: mine}
		if err = s.meta(ctx).Clauses(metaOnConflict(false)).Create(&row).Error; err != nil {
			err = fmt.Errorf("vaultstore: failed to store the root key: %w", err)
		} else if stored, rerr := s.readRoot(ctx); rerr == nil && stored.text == mine {
			// Ours won: no need to ask the KMS for what we already hold.
			s.shared.root.Store(&vaultRoot{salt: salt, key: candidate})
			s.shared.rootMu.unlock()
			return salt, candidate, nil
		}
	}
	clear(candidate)
	s.shared.rootMu.unlock()
	if err != nil {
		return nil, nil, err
	}
	root, err = s.rootFor(ctx, salt)
	return salt, root, err
}

// checkNoRoot refuses writes without a KeyWrapper to a vault that has a
// root: they would be bound to the password alone, weaker than what the
// vault promises. RootKeyRetired allows them. The answer is kept once the
// vault is seen without a root.
func (s *Store) checkNoRoot(ctx context.Context) error {
	if s.wrapper != nil || s.rootRetired || s.shared.noRoot.Load() {
		return nil
	}
	_, err := s.readRoot(ctx)
	switch {
	case errors.Is(err, ErrRecordNotFound):
		if !s.bound {
			s.shared.noRoot.Store(true)
		}
		return nil
	case err == nil || errors.Is(err, ErrKeyUnavailable):
		return fmt.Errorf("%w: the vault has a KMS root key; set NewStoreOptions.KeyWrapper (or RootKeyRetired to write without it)", ErrKeyUnavailable)
	default:
		return err
	}
}

// RewrapRoot re-encrypts the vault's root key with the KeyWrapper's
// current key, for after a rotation of the KMS key: the whole migration,
// one KMS call when this store already holds the root (two otherwise), no
// value touched. It is ErrKeyUnavailable without a KeyWrapper or when the
// vault has no root, and fails without writing when the setting changed
// meanwhile.
func (s *Store) RewrapRoot(ctx context.Context) (err error) {
	ctx, op := s.observe(ctx, opRewrapRoot)
	defer op.end(&err)
	if s.wrapper == nil {
		return errNoKeyWrapper
	}
	stored, err := s.readRoot(ctx)
	if errors.Is(err, ErrRecordNotFound) {
		return fmt.Errorf("%w: the vault has no root key to rewrap", ErrKeyUnavailable)
	}
	if err != nil {
		return err
	}
	key, err := s.rootFor(ctx, stored.salt)
	if err != nil {
		return err
	}
	wrapped, err := s.wrapper.Encrypt(ctx, key)
	if err != nil {
		return fmt.Errorf("%w: the KeyWrapper cannot wrap the root key: %v", ErrKeyUnavailable, err)
	}
	res := s.meta(ctx).
		Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_OBJECT_ID+" = ? AND "+COLUMN_META_KEY+" = ? AND "+COLUMN_META_VALUE+" = ?",
			OBJECT_TYPE_VAULT_SETTINGS, VAULT_SETTINGS_ID, META_KEY_ROOT_KEY, stored.text).
		Update(COLUMN_META_VALUE, formatStoredRoot(stored.salt, wrapped))
	if res.Error != nil {
		return fmt.Errorf("vaultstore: failed to store the rewrapped root key: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("vaultstore: the root key changed while it was being rewrapped; try again")
	}
	return nil
}

// DestroyRoot deletes the vault's wrapped root key, and with it the vault
// salt it serves, so that every value bound to it becomes unreadable
// (ErrKeyUnavailable) for every store, this one included: crypto-shredding.
// confirm must be DestroyRootConfirmation. The next write starts a new
// vault salt and, with a KeyWrapper, a new root.
//
// What it guarantees: the database no longer holds the wrapped root, and
// this process forgets the root and every key derived from it. What it does
// not: backups still hold the wrapped root, and anyone who can still use
// the KMS key can unwrap it from them, so destroy or disable the KMS key
// too; other processes keep the root they hold in memory until they
// restart, and may write values bound to it meanwhile. Values not bound to
// the root (written without a KeyWrapper) stay readable with their
// password.
func (s *Store) DestroyRoot(ctx context.Context, confirm string) (err error) {
	ctx, op := s.observe(ctx, opDestroyRoot)
	defer op.end(&err)
	if err := s.refuseBound("DestroyRoot"); err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(confirm), []byte(DestroyRootConfirmation)) != 1 {
		return validationErrorf("DestroyRoot needs the confirmation DestroyRootConfirmation")
	}
	if err := s.shared.rootMu.lock(ctx); err != nil {
		return err
	}
	defer s.shared.rootMu.unlock()
	if err := s.shared.saltMu.lock(ctx); err != nil {
		return err
	}
	defer s.shared.saltMu.unlock()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return tx.Table(s.metaTable).
			Where(COLUMN_OBJECT_TYPE+" = ? AND "+COLUMN_OBJECT_ID+" = ? AND "+COLUMN_META_KEY+" IN ?",
				OBJECT_TYPE_VAULT_SETTINGS, VAULT_SETTINGS_ID, []string{META_KEY_ROOT_KEY, META_KEY_VAULT_SALT}).
			Delete(&gormVaultMeta{}).Error
	})
	if err != nil {
		return fmt.Errorf("vaultstore: failed to destroy the root key: %w", err)
	}
	// Dropped, not cleared: a derivation running now may still read it.
	s.shared.root.Store(nil)
	s.shared.vaultSalt.Store(nil)
	s.keys.cache.purge()
	// Identities made under the destroyed root can no longer be checked;
	// new records must get identities under the next one.
	s.shared.identityIDs.purge()
	return nil
}
