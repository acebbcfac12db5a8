package keyringtest_test

import (
	"testing"

	"haven/keyring"
	"haven/keyring/keyringtest"
	"haven/keyring/memstore"
)

func TestMemstoreConformsToTheKeyStoreSuite(t *testing.T) {
	keyringtest.RunStoreSuite(t, func(*testing.T) keyring.Store { return memstore.New() })
}
