// Package conformance runs the behaviour suites written once for an
// interface against the real adapters that must meet them, where neither
// side may import the other: the keyring's store suite (keyring/keyringtest)
// against the SQL store on SQLite and PostgreSQL, which must never import
// the keyring. It holds tests only.
package conformance
