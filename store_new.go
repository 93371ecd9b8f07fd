package vaultstore

import (
	"fmt"
	"log/slog"
	"runtime"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// NewStore returns a store over opts.DB. It validates the options and
// returns an error matching ErrValidationFailed for a missing or malformed
// table name, a nil DB, an unknown driver or an unusable CryptoConfig. With
// AutomigrateEnabled it creates or upgrades the tables; otherwise it reads or
// writes no table, so it works on a database that has only the vault table
// (the SQLite dialect asks the server for its version).
func NewStore(opts NewStoreOptions) (*Store, error) {
	if err := validateTableName("VaultTableName", opts.VaultTableName); err != nil {
		return nil, err
	}
	if err := validateTableName("VaultMetaTableName", opts.VaultMetaTableName); err != nil {
		return nil, err
	}
	if opts.VaultTableName == opts.VaultMetaTableName {
		return nil, validationErrorf("VaultTableName and VaultMetaTableName are both %q", opts.VaultTableName)
	}
	if opts.DB == nil {
		return nil, validationErrorf("DB is required")
	}

	var dialect string
	var err error
	if opts.DbDriverName != "" {
		dialect, err = normalizeDialect(opts.DbDriverName)
	} else {
		dialect, err = detectDialect(opts.DB)
	}
	if err != nil {
		return nil, err
	}

	crypto := DefaultCryptoConfig()
	if opts.CryptoConfig != nil {
		c := *opts.CryptoConfig
		crypto = &c
	}
	if err := validateCryptoConfig(crypto); err != nil {
		return nil, err
	}

	writeVersion := opts.EncryptionVersion
	switch writeVersion {
	case "":
		writeVersion = ENCRYPTION_VERSION_V3
	case ENCRYPTION_VERSION_V2, ENCRYPTION_VERSION_V3:
	default:
		return nil, validationErrorf("EncryptionVersion %q is not %q or %q", opts.EncryptionVersion, ENCRYPTION_VERSION_V3, ENCRYPTION_VERSION_V2)
	}
	if opts.KeyWrapper != nil && writeVersion == ENCRYPTION_VERSION_V2 && !opts.RootKeyRetired {
		return nil, validationErrorf("KeyWrapper binds v3 values only; EncryptionVersion %q would write values without the root", writeVersion)
	}
	read, err := newReadPolicy(opts, crypto, writeVersion)
	if err != nil {
		return nil, err
	}
	cacheSize := opts.KeyCacheSize
	switch {
	case cacheSize == 0:
		cacheSize = defaultKeyCacheSize
	case cacheSize < 0:
		cacheSize = 0
	}
	kdfSlots := opts.MaxConcurrentKDF
	switch {
	case kdfSlots == 0:
		kdfSlots = runtime.GOMAXPROCS(0)
	case kdfSlots < 0:
		return nil, validationErrorf("MaxConcurrentKDF %d is negative", opts.MaxConcurrentKDF)
	}
	keys, err := newKeyDeriver(cacheSize, kdfSlots, int64(read.maxMemoryKiB), randReader)
	if err != nil {
		return nil, err
	}

	if opts.ParallelThreshold < 0 {
		return nil, validationErrorf("ParallelThreshold %d is negative", opts.ParallelThreshold)
	}
	if opts.PasswordMinLength < 0 {
		return nil, validationErrorf("PasswordMinLength %d is negative", opts.PasswordMinLength)
	}

	tel, err := newTelemetry(opts.Logger, dialect, opts.TracerProvider, opts.MeterProvider)
	if err != nil {
		return nil, err
	}
	keys.tel = tel
	out := opts.Logger
	if out == nil {
		out = slog.Default()
	}
	log := &sqlLogger{out: out}
	log.enabled.Store(opts.DebugEnabled)

	var dialector gorm.Dialector
	switch dialect {
	case dialectSQLite:
		dialector = &sqlite.Dialector{Conn: opts.DB}
	case dialectPostgres:
		dialector = postgres.New(postgres.Config{Conn: opts.DB})
	case dialectMySQL:
		// Skipping the version query keeps NewStore free of I/O; the store
		// uses no feature that depends on the server version.
		dialector = mysql.New(mysql.Config{Conn: opts.DB, SkipInitializeWithVersion: true})
	}
	gdb, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 log,
		SkipDefaultTransaction: true,
		DisableAutomaticPing:   true,
	})
	if err != nil {
		return nil, fmt.Errorf("vaultstore: failed to open the database: %w", err)
	}

	minLength := opts.PasswordMinLength
	if minLength == 0 {
		minLength = defaultPasswordMinLength
	}
	threshold := opts.ParallelThreshold
	if threshold == 0 {
		threshold = defaultParallelThreshold
	}

	s := &Store{
		vaultTable:              opts.VaultTableName,
		metaTable:               opts.VaultMetaTableName,
		dialect:                 dialect,
		db:                      gdb,
		log:                     log,
		crypto:                  *crypto,
		writeVersion:            writeVersion,
		read:                    read,
		keys:                    keys,
		shared:                  &sharedState{identityIDs: newLRU[[32]byte, string](maxRememberedIdentities, nil)},
		parallelThreshold:       threshold,
		passwordIdentityEnabled: opts.PasswordIdentityEnabled,
		tel:                     tel,
		audit:                   auditConfig{hook: opts.Audit, failClosed: opts.AuditFailClosed},
		fingerprintEnabled:      opts.FingerprintEnabled,
		wrapper:                 opts.KeyWrapper,
		rootRetired:             opts.RootKeyRetired,
		policy: passwordPolicy{
			allowEmpty:       opts.PasswordAllowEmpty,
			minLength:        minLength,
			requireLowercase: opts.PasswordRequireLowercase,
			requireUppercase: opts.PasswordRequireUppercase,
			requireNumbers:   opts.PasswordRequireNumbers,
			requireSymbols:   opts.PasswordRequireSymbols,
		},
	}
	s.stmts = s.newHeldStatements(opts.DB)
	if opts.AutomigrateEnabled {
		if err := s.AutoMigrate(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newReadPolicy applies the defaults of MinReadVersion, KDFMemoryBudget and
// the Argon2 floor, and refuses settings under which the store could not
// read what it writes.
func newReadPolicy(opts NewStoreOptions, crypto *CryptoConfig, writeVersion string) (readPolicy, error) {
	switch opts.MinReadVersion {
	case "", ENCRYPTION_VERSION_V2, ENCRYPTION_VERSION_V3:
	default:
		return readPolicy{}, validationErrorf("MinReadVersion %q is not \"\", %q or %q", opts.MinReadVersion, ENCRYPTION_VERSION_V2, ENCRYPTION_VERSION_V3)
	}
	if opts.MinReadVersion > writeVersion {
		return readPolicy{}, validationErrorf("MinReadVersion %s would refuse the %s values the store writes", opts.MinReadVersion, writeVersion)
	}
	budget := opts.KDFMemoryBudget
	switch {
	case budget == 0:
		budget = 4 * crypto.Memory
	case budget < crypto.Memory || budget > maxKDFMemoryBudget:
		return readPolicy{}, validationErrorf("KDFMemoryBudget %d KiB is outside CryptoConfig.Memory..%d (%d..%d)", opts.KDFMemoryBudget, maxKDFMemoryBudget, crypto.Memory, maxKDFMemoryBudget)
	}
	light := LightweightCryptoConfig()
	floorT, floorM := opts.MinArgon2Iterations, opts.MinArgon2Memory
	if floorT == 0 {
		floorT = min(light.Iterations, crypto.Iterations)
	}
	if floorM == 0 {
		floorM = min(light.Memory, crypto.Memory)
	}
	switch {
	case floorT < 0 || floorT > crypto.Iterations:
		return readPolicy{}, validationErrorf("MinArgon2Iterations %d is outside 1..CryptoConfig.Iterations (%d)", opts.MinArgon2Iterations, crypto.Iterations)
	case floorM < 0 || floorM > crypto.Memory:
		return readPolicy{}, validationErrorf("MinArgon2Memory %d KiB is outside 8..CryptoConfig.Memory (%d)", opts.MinArgon2Memory, crypto.Memory)
	}
	return readPolicy{
		minVersion:   opts.MinReadVersion,
		floor:        argon2Params{Iterations: uint32(floorT), MemoryKiB: uint32(floorM)},
		maxMemoryKiB: uint32(budget),
	}, nil
}
