package vaultstore

import (
	"context"
	"time"
)

// RecordInterface is one row of the vault table as strings keyed by column
// name. Timestamps use the layout "2006-01-02 15:04:05" in UTC; MAX_DATETIME
// means never. The value is the stored form: for rows written by the token
// methods that is ciphertext, never the plaintext.
//
// Setters return the record so calls can be chained, and mark the column as
// changed so that StoreInterface.RecordUpdate writes only what was set.
type RecordInterface interface {
	// Data returns a copy of every column the record holds.
	Data() map[string]string
	// DataChanged returns a copy of the columns set since the record was
	// created, loaded or last written by the store.
	DataChanged() map[string]string

	GetCreatedAt() string
	GetExpiresAt() string
	GetSoftDeletedAt() string
	GetID() string
	GetToken() string
	GetUpdatedAt() string
	GetValue() string

	SetCreatedAt(createdAt string) RecordInterface
	SetExpiresAt(expiresAt string) RecordInterface
	SetSoftDeletedAt(softDeletedAt string) RecordInterface
	SetID(id string) RecordInterface
	SetToken(token string) RecordInterface
	SetUpdatedAt(updatedAt string) RecordInterface
	SetValue(value string) RecordInterface
}

// MetaInterface is one row of the meta table: a key and value attached to
// an object (the vault's settings, a password identity, a record).
type MetaInterface interface {
	Data() map[string]string
	DataChanged() map[string]string

	GetID() uint
	GetObjectType() string
	GetObjectID() string
	GetKey() string
	GetValue() string

	SetID(id uint) MetaInterface
	SetObjectType(objectType string) MetaInterface
	SetObjectID(objectID string) MetaInterface
	SetKey(key string) MetaInterface
	SetValue(value string) MetaInterface
}

// RecordQueryInterface selects vault rows for RecordList and RecordCount.
// Each Set method records that the parameter was given; Is…Set reports it.
// Soft-deleted rows are left out unless SetSoftDeletedInclude(true).
//
// The store validates every query before any SQL runs, whatever type
// implements this interface: unknown column names, a sort order other than
// asc or desc, negative limits, CountOnly combined with Limit or Offset, and
// empty ids, tokens or lists are ErrValidationFailed.
type RecordQueryInterface interface {
	// Validate reports the first problem with the query, matching
	// ErrValidationFailed, or nil.
	Validate() error

	GetColumns() []string
	SetColumns(columns []string) RecordQueryInterface
	IsColumnsSet() bool

	IsIDSet() bool
	GetID() string
	SetID(id string) RecordQueryInterface

	IsIDInSet() bool
	GetIDIn() []string
	SetIDIn(idIn []string) RecordQueryInterface

	IsTokenSet() bool
	GetToken() string
	SetToken(token string) RecordQueryInterface

	IsTokenInSet() bool
	GetTokenIn() []string
	SetTokenIn(tokenIn []string) RecordQueryInterface

	IsOffsetSet() bool
	GetOffset() int
	SetOffset(offset int) RecordQueryInterface

	IsOrderBySet() bool
	GetOrderBy() string
	SetOrderBy(orderBy string) RecordQueryInterface

	IsLimitSet() bool
	GetLimit() int
	SetLimit(limit int) RecordQueryInterface

	IsCountOnlySet() bool
	GetCountOnly() bool
	SetCountOnly(countOnly bool) RecordQueryInterface

	IsSortOrderSet() bool
	GetSortOrder() string
	SetSortOrder(sortOrder string) RecordQueryInterface

	IsSoftDeletedIncludeSet() bool
	GetSoftDeletedInclude() bool
	SetSoftDeletedInclude(softDeletedInclude bool) RecordQueryInterface
}

// StoreInterface is the whole API of a vault store. *Store implements it;
// applications written against the original VaultStore keep a
// StoreInterface, and new code may use *Store directly. See the methods of
// Store for their contracts.
type StoreInterface interface {
	AutoMigrate() error
	EnableDebug(debug bool)
	GetDbDriverName() string
	GetVaultTableName() string
	GetMetaTableName() string

	RecordCount(ctx context.Context, query RecordQueryInterface) (int64, error)
	RecordCreate(ctx context.Context, record RecordInterface) error
	RecordDeleteByID(ctx context.Context, recordID string) error
	RecordDeleteByToken(ctx context.Context, token string) error
	RecordFindByID(ctx context.Context, recordID string) (RecordInterface, error)
	RecordFindByToken(ctx context.Context, token string) (RecordInterface, error)
	RecordList(ctx context.Context, query RecordQueryInterface) ([]RecordInterface, error)
	RecordSoftDelete(ctx context.Context, record RecordInterface) error
	RecordSoftDeleteByID(ctx context.Context, recordID string) error
	RecordSoftDeleteByToken(ctx context.Context, token string) error
	RecordUpdate(ctx context.Context, record RecordInterface) error

	TokenCreate(ctx context.Context, value string, password string, tokenLength int, options ...TokenCreateOptions) (token string, err error)
	TokenCreateCustom(ctx context.Context, token string, value string, password string, options ...TokenCreateOptions) (err error)
	TokenDelete(ctx context.Context, token string) error
	TokenExists(ctx context.Context, token string) (bool, error)
	TokenRead(ctx context.Context, token string, password string) (string, error)
	TokenRenew(ctx context.Context, token string, expiresAt time.Time) error
	TokensExpiredSoftDelete(ctx context.Context) (count int64, err error)
	TokensExpiredDelete(ctx context.Context) (count int64, err error)
	TokenSoftDelete(ctx context.Context, token string) error
	TokenUpdate(ctx context.Context, token string, value string, password string) error
	TokenUpsert(ctx context.Context, existingToken string, value string, password string) (newToken string, err error)
	TokensRead(ctx context.Context, tokens []string, password string) (map[string]string, error)
	TokensChangePassword(ctx context.Context, oldPassword, newPassword string) (int, error)
	TokensReadToResolvedMap(ctx context.Context, keyTokenMap map[string]string, password string) (map[string]string, error)

	GetVaultSetting(ctx context.Context, key string) (string, error)
	SetVaultSetting(ctx context.Context, key, value string) error
}

// TokenCreateOptions are the optional settings of a new token.
type TokenCreateOptions struct {
	// ExpiresAt is when the token stops being readable. The zero time means
	// it never expires.
	ExpiresAt time.Time

	// Metadata labels the new token (see Store.TokenMetadataSet for the
	// rules); it is stored with the token in one transaction. Metadata is
	// not encrypted. Empty values are ignored.
	Metadata map[string]string

	// Deduplicate makes TokenCreate return the existing token when a
	// readable one under the same password already holds an equal value,
	// instead of storing a second copy; that token is returned as it is
	// (this call's ExpiresAt and Metadata are not applied to it). Creates
	// of one value racing each other, in one process or many, end with
	// one token. It needs NewStoreOptions.FingerprintEnabled, and applies
	// to TokenCreate only (ErrValidationFailed otherwise).
	Deduplicate bool
}
