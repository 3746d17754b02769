// Package audit is the enclave's audit log: an append-only chain of entries
// in the keystore, each hashed onto the previous one and signed by the
// enclave identity key. The entry and export formats are pkg/audit's; this
// package assigns sequence numbers and times, signs, persists, reads back,
// streams and exports.
//
// # The invariant: the entry is written before the action
//
// Every key event, sign decision, policy change and administrative action
// is recorded by calling Log.Append before the action takes effect, and
// the action happens only if Append returned nil. Append returns nil only
// once the entry is committed in the keystore (and, with a Replicator,
// durable outside the enclave); any error means the entry may not exist,
// so the caller must not act. With pkg/audit imported as auditfmt:
//
//	if _, err := log.Append(ctx, auditfmt.Event{
//		Type: auditfmt.SignDecided, Actor: caller, KeyID: keyID, RequestID: idem,
//		Decision: auditfmt.Allow, Reason: "policy rule 3",
//	}); err != nil {
//		return status.Error(codes.Unavailable, "audit log unavailable") // nothing signed
//	}
//	sig, err := session.Sign(ctx, digest)
//	if err != nil {
//		log.Append(ctx, failed) // best effort: the signature does not exist
//		return err
//	}
//	if _, err := log.Append(ctx, signed); err != nil {
//		return err // the signature does not leave the enclave
//	}
//	return sig, nil
//
// An action that can fail after its entry was written (a signing session,
// a key generation) is followed by an outcome entry (signed, sign_failed,
// key_created) written before the result leaves the enclave. A failure that
// cannot be recorded is reported to the caller, never hidden. So the log
// may hold an intent whose action did not complete, but never an action
// without its entry.
//
// One Log owns the chain of one keystore: it serializes appends, and
// entries appended to the store by anything else (a replica applying
// records) are not announced to Stream until the next Append.
package audit
