package vaultstore

// Column names of the vault table.
const (
	COLUMN_ID              = "id"
	COLUMN_VAULT_TOKEN     = "vault_token"
	COLUMN_VAULT_VALUE     = "vault_value"
	COLUMN_CREATED_AT      = "created_at"
	COLUMN_UPDATED_AT      = "updated_at"
	COLUMN_EXPIRES_AT      = "expires_at"
	COLUMN_SOFT_DELETED_AT = "soft_deleted_at"
)

// Column names of the meta table.
const (
	COLUMN_OBJECT_TYPE = "object_type"
	COLUMN_OBJECT_ID   = "object_id"
	COLUMN_META_KEY    = "meta_key"
	COLUMN_META_VALUE  = "meta_value"
)

// MAX_DATETIME is the timestamp that means "never": a record whose
// expires_at is MAX_DATETIME does not expire, and one whose soft_deleted_at is
// MAX_DATETIME is not soft-deleted.
const MAX_DATETIME = "9999-12-31 23:59:59"

// Sort orders accepted by RecordQueryInterface.SetSortOrder (compared
// case-insensitively).
const (
	ASC  = "asc"
	DESC = "desc"
)

// TOKEN_PREFIX starts every token the store generates. IsToken checks it.
const TOKEN_PREFIX = "tk_"

// Token length bounds. TokenCreate takes the total length, prefix included;
// custom tokens may be up to TOKEN_MAX_TOTAL_LENGTH long, the width of the
// vault_token column.
const (
	TOKEN_MIN_PAYLOAD_LENGTH = 12
	TOKEN_MAX_PAYLOAD_LENGTH = 37
	TOKEN_MIN_TOTAL_LENGTH   = len(TOKEN_PREFIX) + TOKEN_MIN_PAYLOAD_LENGTH // 15
	TOKEN_MAX_TOTAL_LENGTH   = len(TOKEN_PREFIX) + TOKEN_MAX_PAYLOAD_LENGTH // 40
)

// Object types of rows in the meta table.
const (
	OBJECT_TYPE_PASSWORD_IDENTITY = "password_identity"
	OBJECT_TYPE_RECORD            = "record"
	OBJECT_TYPE_VAULT_SETTINGS    = "vault"
)

// Meta keys used by the store in the meta table.
const (
	META_KEY_HASH        = "hash"
	META_KEY_PASSWORD_ID = "password_id"
	META_KEY_VERSION     = "version"
)

// Prefixes of object ids in the meta table: password identities are
// "p_<id>", per-record links are "r_<record id>".
const (
	PASSWORD_ID_PREFIX    = "p_"
	RECORD_META_ID_PREFIX = "r_"
)

// VAULT_SETTINGS_ID is the object id under which vault settings are kept in
// the meta table (object type OBJECT_TYPE_VAULT_SETTINGS).
const VAULT_SETTINGS_ID = "settings"

// Stored value format versions. A stored value starts with its version and a
// colon; values without a known prefix are the legacy v1 format.
const (
	ENCRYPTION_VERSION_V1 = "v1"
	ENCRYPTION_VERSION_V2 = "v2"
	ENCRYPTION_VERSION_V3 = "v3"
	ENCRYPTION_PREFIX_V1  = ENCRYPTION_VERSION_V1 + ":"
	ENCRYPTION_PREFIX_V2  = ENCRYPTION_VERSION_V2 + ":"
	ENCRYPTION_PREFIX_V3  = ENCRYPTION_VERSION_V3 + ":"
)

// META_KEY_VAULT_SALT is the vault setting that holds the v3 vault salt,
// 16 random bytes in base64url, made when the first v3 value is written.
// Changing or deleting it does not affect stored values, which carry their
// salt; new values would then be written under a second salt and cost a
// second key derivation per password.
const META_KEY_VAULT_SALT = "v3_vault_salt"

// META_KEY_ROOT_KEY is the vault setting that holds the vault's KMS root
// key, wrapped by NewStoreOptions.KeyWrapper, with the vault salt it serves.
const META_KEY_ROOT_KEY = "v3_root_key"

// Sizes of the v2 format and the default Argon2id parameters, as published
// by the original VaultStore.
const (
	V2_SALT_SIZE       = 16
	V2_NONCE_SIZE      = 12
	V2_TAG_SIZE        = 16
	ARGON2_ITERATIONS  = 3
	ARGON2_MEMORY      = 64 * 1024 // KiB, 64 MiB
	ARGON2_PARALLELISM = 4
	ARGON2_KEY_LENGTH  = 32
)

// Ceilings on CryptoConfig and on parameters read from stored values. They
// keep a misconfiguration, or a crafted row, from making one derivation
// allocate gigabytes or run for minutes.
const (
	MaxArgon2Memory      = 1 << 20 // KiB, 1 GiB
	MaxArgon2Iterations  = 32
	MaxArgon2Parallelism = 64
)

// maxKDFMemoryBudget caps NewStoreOptions.KDFMemoryBudget (KiB) at 64 GiB,
// far above any real need, so that it fits the uint32 of Argon2 memory.
const maxKDFMemoryBudget = 64 << 20

// MaxValueSize is the largest plaintext, in bytes, that the token methods
// accept. It keeps a stored value well inside what every supported database
// column and driver handles (MySQL's default max_allowed_packet is 16 MiB, and
// an encrypted value is base64, a third larger than its plaintext).
const MaxValueSize = 8 << 20

// CryptoConfig holds the Argon2id and AES-GCM parameters used to write
// values. Memory is in KiB, exactly as passed to Argon2id (65536 = 64 MiB);
// sizes are in bytes. Use one of the presets (DefaultCryptoConfig,
// HighSecurityCryptoConfig, LightweightCryptoConfig) or a modified copy.
//
// The Argon2id parameters set the cost of every key derivation: memory and
// time per derivation, and so the cost of each password guess to an
// attacker holding a copy of the database. At most
// NewStoreOptions.MaxConcurrentKDF derivations run at once, so peak memory
// is about MaxConcurrentKDF × Memory.
//
// v3 values (the default) record the Argon2id parameters in every value and
// always use a 32-byte key and fixed salt, nonce and tag sizes, so changing
// the configuration affects only values written afterwards. The v2 format
// records nothing, so a v2 value opens only with the configuration that
// wrote it, KeyLength and SaltSize included.
//
// NewStore rejects, with ErrValidationFailed, a configuration that cannot
// work: Argon2 parameters outside 1..MaxArgon2Iterations iterations,
// 1..MaxArgon2Parallelism lanes or 8×Parallelism..MaxArgon2Memory KiB, a key
// length other than 16, 24 or 32, a nonce size other than 12, a tag size
// other than 16, or a salt size outside 16..64.
type CryptoConfig struct {
	// Argon2id parameters.
	Iterations  int
	Memory      int // KiB
	Parallelism int
	KeyLength   int

	// AES-GCM parameters.
	SaltSize  int
	NonceSize int
	TagSize   int
}

// DefaultCryptoConfig returns the parameters used when NewStoreOptions has no
// CryptoConfig: Argon2id t=3, m=64 MiB, p=4, a 32-byte key (AES-256), 16-byte
// salt, 12-byte nonce, 16-byte tag. These follow the second recommended
// option of RFC 9106 section 4 with a higher time cost.
func DefaultCryptoConfig() *CryptoConfig {
	return &CryptoConfig{
		Iterations:  ARGON2_ITERATIONS,
		Memory:      ARGON2_MEMORY,
		Parallelism: ARGON2_PARALLELISM,
		KeyLength:   ARGON2_KEY_LENGTH,
		SaltSize:    V2_SALT_SIZE,
		NonceSize:   V2_NONCE_SIZE,
		TagSize:     V2_TAG_SIZE,
	}
}

// HighSecurityCryptoConfig returns stronger Argon2id parameters (t=4,
// m=128 MiB, p=4) for deployments that can afford about twice the cost per
// derivation.
func HighSecurityCryptoConfig() *CryptoConfig {
	c := DefaultCryptoConfig()
	c.Iterations = 4
	c.Memory = 128 * 1024
	return c
}

// LightweightCryptoConfig returns cheaper Argon2id parameters (t=2, m=32 MiB,
// p=2) for small machines. Values the original VaultStore wrote with its
// lightweight preset open only with this configuration.
func LightweightCryptoConfig() *CryptoConfig {
	c := DefaultCryptoConfig()
	c.Iterations = 2
	c.Memory = 32 * 1024
	c.Parallelism = 2
	return c
}
