// Package workspace keeps this cosigner's copy of the workspace document
// (pkg/workspace) and carries its changes: it stores each verified version
// in the keystore, sends new versions to the other members through the
// parent's link, verifies pairing requests from cosigners that want to
// join, collects the admins' approvals of a proposed version, and runs the
// joining side of pairing for a cosigner started with a token.
//
// Every version this cosigner stores was verified against the one it held
// (pkg/workspace.Next: successor, chained, approved by the admin quorum of
// the held version) and audited before it was stored. Older versions and
// forks are refused, audited and logged; a member that missed versions
// asks for them (Hello) and gets them from any member that holds them.
//
// What a change does to the running cosigner (roster of the wire layer,
// API users, policy admins) is the OnChange hook's business.
package workspace
