package vaultstore

// Hooks for the black-box tests of metadata.

// FindByMetadataSQL is the statement TokensFindByMetadata runs, for tests
// that ask the database for its plan.
func (s *Store) FindByMetadataSQL(limit int) string { return s.findByMetadataSQL(limit) }
