// Package workspace defines the workspace document that every cosigner of
// a deployment holds, how its versions chain and are approved by an admin
// quorum, and the pairing token and request a new cosigner joins with.
// The enclave (enclave/workspace) and the admins' tool (cosignerctl)
// build and check the same bytes from these definitions.
//
// A workspace has an ID, a roster of member cosigners (ID, identity and
// encryption keys, expected PCRs, broker inbox), admin public keys with an
// M-of-N quorum, and API users (a public key, roles, and which other users
// may sign with the keys they own). Version 1 is made by bootstrap and
// approved by its own admins' quorum; every later version names the
// SHA-256 of the exact bytes of the one before it and must be approved by
// the quorum of that previous version's admins. A member holding version
// n accepts only n+1 that chains from its n: older versions are stale, a
// different n or an n+1 that names another predecessor is a fork, and
// both are refused.
//
// Documents are canonical JSON (the bytes encoding/json writes for the
// structs below, lists sorted): Parse refuses any other spelling, so the
// bytes admins sign are the bytes every member stores, and two admins who
// build the same change independently sign the same bytes.
package workspace
