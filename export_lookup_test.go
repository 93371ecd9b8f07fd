package vaultstore

import "time"

// Hooks for the black-box tests of metadata and fingerprints.

// FindByMetadataSQL is the statement TokensFindByMetadata runs, for tests
// that ask the database for its plan.
func (s *Store) FindByMetadataSQL(limit int) string { return s.findByMetadataSQL(limit) }

// FingerprintWith is the fingerprint of value under kek taken as the
// password's KEK, as someone holding a candidate key would compute it.
func FingerprintWith(kek []byte, value string) string {
	fp, err := fingerprintWith(kek, value)
	if err != nil {
		panic(err)
	}
	return fp
}

// SetDedupPause holds every deduplicating create for d between its search
// and its insert, until the returned function restores the default.
func SetDedupPause(d time.Duration) (restore func()) {
	dedupPause.Store(int64(d))
	return func() { dedupPause.Store(0) }
}

// FingerprintCandidatesSQL is the statement TokensFindByValue runs.
func (s *Store) FingerprintCandidatesSQL() string { return s.fingerprintCandidatesSQL() }
