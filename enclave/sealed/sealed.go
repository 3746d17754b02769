package sealed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/replica"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// State is an open sealed state: the keystore, and the replica that makes
// each of its changes durable in S3 before the change commits.
type State struct {
	Store   *keystore.Store
	Replica *replica.Replica
}

// Close closes the store, then the replica (wiping their key copies).
func (s *State) Close() error {
	err := s.Store.Close()
	s.Replica.Close()
	return err
}

// Init starts a new cosigner; call it only when the operator asked for it
// explicitly (--init). Steps, each retried while S3 or KMS is unavailable:
//
//  1. refuse with ErrExists if the wrapped key or any replicated state is
//     stored under the prefix;
//  2. GenerateDataKey with KMS (Recipient, encryption context naming the
//     cosigner), then Decrypt the result once and check it gives the same
//     key: a key policy that allows the first but not the second would
//     make a cosigner that can never be reopened;
//  3. store the wrapped key object with If-None-Match: *, so that of two
//     initialisers exactly one goes on (the other gets ErrExists);
//  4. replica.Init: an empty keystore in Dir, published as generation 1.
//
// If step 4 fails for good, the wrapped key stays in S3 and the error says
// so: no change was ever acknowledged, and the operator removes the object
// before trying again (Init never removes anything).
func Init(ctx context.Context, cfg Config) (*State, error) {
	b, err := newBoot(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.refuseExisting(ctx); err != nil {
		return nil, err
	}
	key, blob, err := b.generate(ctx)
	if err != nil {
		return nil, err
	}
	defer key.Wipe()
	if err := b.storeWrapped(ctx, blob); err != nil {
		return nil, err
	}
	st, err := b.initState(ctx, key)
	if err != nil {
		return nil, err
	}
	b.log.Info("sealed: initialized a new cosigner", "cosigner_id", cfg.CosignerID, "location", cfg.location())
	return st, nil
}

// Open opens an existing cosigner's state; call it at every boot. Steps,
// each retried while S3 or KMS is unavailable:
//
//  1. fetch the wrapped key object and check that it names the configured
//     KMS key and cosigner;
//  2. Decrypt it with KMS (Recipient: only an enclave whose measurements the
//     key policy names gets the data key; ErrNotAllowed is not retried);
//  3. replica.Restore into Dir: manifest, snapshot, segments, each
//     verified; then take over the history, fencing any older instance.
//
// See the package documentation for the errors.
func Open(ctx context.Context, cfg Config) (*State, error) {
	b, err := newBoot(cfg)
	if err != nil {
		return nil, err
	}
	blob, err := b.fetchWrapped(ctx)
	if err != nil {
		return nil, err
	}
	key, err := b.unwrap(ctx, blob)
	if err != nil {
		return nil, err
	}
	defer key.Wipe()
	st, err := b.restore(ctx, key)
	if err != nil {
		return nil, err
	}
	b.log.Info("sealed: state restored", "cosigner_id", cfg.CosignerID, "generation", st.Replica.Generation())
	return st, nil
}

// boot carries one Init or Open.
type boot struct {
	cfg   Config
	kms   *kms.Client
	obj   objects
	retry retrier
	log   *slog.Logger
}

func newBoot(cfg Config) (*boot, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kc, err := kms.New(kms.Config{KMS: cfg.KMS, Attester: cfg.Attester, KeyID: cfg.KMSKeyID,
		CosignerID: cfg.CosignerID, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg.Retry = cfg.Retry.withDefaults()
	return &boot{
		cfg: cfg, kms: kc, log: log,
		obj:   objects{client: cfg.S3, bucket: cfg.Bucket, prefix: cfg.Prefix},
		retry: retrier{policy: cfg.Retry, log: log},
	}, nil
}

// small runs a step made of small calls (bounded by AttemptTimeout).
func (b *boot) small(ctx context.Context, step string, fn func(context.Context) error) error {
	return b.retry.do(ctx, step, b.cfg.Retry.AttemptTimeout, fn)
}

// refuseExisting fails with ErrExists if any part of sealed state exists.
func (b *boot) refuseExisting(ctx context.Context) error {
	var found string
	err := b.small(ctx, "checking for existing state", func(ctx context.Context) error {
		var err error
		found, err = b.existing(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("sealed: init: %w", err)
	}
	if found != "" {
		return fmt.Errorf("%w: %s holds %s; an existing cosigner is never started over: open it without --init",
			ErrExists, b.cfg.location(), found)
	}
	return nil
}

// existing names the first part of sealed state it finds, or "".
func (b *boot) existing(ctx context.Context) (string, error) {
	ok, err := b.obj.exists(ctx, wrappedKeyName)
	if err != nil || ok {
		return wrappedKeyName, err
	}
	ok, err = b.obj.anyUnder(ctx, stateDir)
	if err != nil || ok {
		return "replicated state under " + stateDir, err
	}
	return "", nil
}

// generate gets a new data key and checks that KMS will unwrap it again
// for this enclave.
func (b *boot) generate(ctx context.Context) (secret.Bytes, []byte, error) {
	var key secret.Bytes
	var blob []byte
	err := b.small(ctx, "generating the data key", func(ctx context.Context) error {
		var err error
		key, blob, err = b.kms.GenerateDataKey(ctx)
		return err
	})
	if err != nil {
		return secret.Bytes{}, nil, b.kmsError("generate a data key", err)
	}
	if err := b.checkUnwrap(ctx, key, blob); err != nil {
		key.Wipe()
		return secret.Bytes{}, nil, err
	}
	return key, blob, nil
}

func (b *boot) checkUnwrap(ctx context.Context, key secret.Bytes, blob []byte) error {
	got, err := b.unwrap(ctx, blob)
	if err != nil {
		return fmt.Errorf("sealed: init: KMS generated a data key it will not unwrap again, "+
			"so a cosigner initialized now could never be reopened: %w", err)
	}
	defer got.Wipe()
	if !got.Equal(key) {
		return errors.New("sealed: init: KMS unwrapped the new data key to another key; refusing it")
	}
	return nil
}

// storeWrapped writes the wrapped key object, If-None-Match.
func (b *boot) storeWrapped(ctx context.Context, blob []byte) error {
	body, err := wrappedKey{KeyID: b.cfg.KMSKeyID, CosignerID: b.cfg.CosignerID, Blob: blob}.encode()
	if err != nil {
		return err
	}
	err = b.small(ctx, "storing the wrapped key", func(ctx context.Context) error {
		return b.obj.create(ctx, wrappedKeyName, body)
	})
	if errors.Is(err, errPrecondition) {
		return fmt.Errorf("%w: another initialiser stored %s%s first", ErrExists, b.cfg.location(), wrappedKeyName)
	}
	if err != nil {
		return fmt.Errorf("sealed: init: %w", err)
	}
	return nil
}

// initState creates the replicated state. replica.Init refuses a prefix
// holding anything, so retrying it after a failure is safe: it either
// starts from nothing or refuses.
func (b *boot) initState(ctx context.Context, key secret.Bytes) (*State, error) {
	var st *State
	err := b.retry.do(ctx, "creating the replicated state", 0, func(ctx context.Context) error {
		if err := discardLocal(b.cfg.Dir, b.log); err != nil {
			return err
		}
		store, rep, err := replica.Init(ctx, b.replicaConfig(key), b.cfg.Dir, b.storeOptions())
		if err != nil {
			return err
		}
		st = &State{Store: store, Replica: rep}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sealed: init did not finish: the wrapped key is stored at %s%s but the replicated "+
			"state could not be created, and no change was ever acknowledged; remove that object (and anything "+
			"under %s%s) before running --init again: %w", b.cfg.location(), wrappedKeyName, b.cfg.location(), stateDir, err)
	}
	return st, nil
}

// fetchWrapped reads and checks the wrapped key object and returns the
// KMS ciphertext blob.
func (b *boot) fetchWrapped(ctx context.Context) ([]byte, error) {
	var raw []byte
	err := b.small(ctx, "fetching the wrapped key", func(ctx context.Context) error {
		var err error
		raw, err = b.obj.get(ctx, wrappedKeyName, maxWrappedObjectSize)
		return err
	})
	switch {
	case errors.Is(err, errNotFound):
		return nil, b.missingWrapped(ctx)
	case errors.Is(err, errMalformed):
		return nil, b.malformedWrapped()
	case err != nil:
		return nil, fmt.Errorf("sealed: open: %w", err)
	}
	w, err := decodeWrapped(raw)
	if err != nil {
		return nil, b.malformedWrapped()
	}
	if err := w.matches(b.cfg); err != nil {
		return nil, err
	}
	return w.Blob, nil
}

func (b *boot) malformedWrapped() error {
	return fmt.Errorf("%w: %s%s is not a wrapped key object", ErrCorrupt, b.cfg.location(), wrappedKeyName)
}

// missingWrapped tells "never initialized" from "key lost".
func (b *boot) missingWrapped(ctx context.Context) error {
	var state bool
	err := b.small(ctx, "checking for replicated state", func(ctx context.Context) error {
		var err error
		state, err = b.obj.anyUnder(ctx, stateDir)
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("sealed: open: %w", err)
	case state:
		return fmt.Errorf("%w: %s holds replicated state of cosigner %q but no wrapped data key (%s): it cannot "+
			"be opened; restore that object from a backup, never --init over it",
			ErrCorrupt, b.cfg.location(), b.cfg.CosignerID, wrappedKeyName)
	}
	return fmt.Errorf("%w for cosigner %q in %s; start with --init for a new cosigner",
		ErrNoState, b.cfg.CosignerID, b.cfg.location())
}

// unwrap asks KMS for the data key.
func (b *boot) unwrap(ctx context.Context, blob []byte) (secret.Bytes, error) {
	var key secret.Bytes
	err := b.small(ctx, "unwrapping the data key", func(ctx context.Context) error {
		var err error
		key, err = b.kms.Decrypt(ctx, blob)
		return err
	})
	if err != nil {
		return secret.Bytes{}, b.kmsError("unwrap the data key", err)
	}
	return key, nil
}

// kmsError adds what the operator can do about a KMS failure.
func (b *boot) kmsError(what string, err error) error {
	if errors.Is(err, kms.ErrNotAllowed) {
		return fmt.Errorf("sealed: the key policy of KMS key %q does not allow this enclave's measurements to %s "+
			"of cosigner %q; run an image whose PCRs the policy names, or change the policy: %w",
			b.cfg.KMSKeyID, what, b.cfg.CosignerID, err)
	}
	return fmt.Errorf("sealed: KMS could not %s: %w", what, err)
}

// restore rebuilds the store from S3. A failed attempt leaves Dir without
// a database, so it is simply retried.
func (b *boot) restore(ctx context.Context, key secret.Bytes) (*State, error) {
	var st *State
	err := b.retry.do(ctx, "restoring the replicated state", 0, func(ctx context.Context) error {
		if err := discardLocal(b.cfg.Dir, b.log); err != nil {
			return err
		}
		store, rep, err := replica.Restore(ctx, b.replicaConfig(key), b.cfg.Dir, b.storeOptions())
		if err != nil {
			return err
		}
		st = &State{Store: store, Replica: rep}
		return nil
	})
	switch {
	case errors.Is(err, replica.ErrNoState):
		return nil, fmt.Errorf("%w for cosigner %q in %s: the wrapped key exists but the replicated state does not, "+
			"so an earlier --init did not finish and no change was ever acknowledged; remove %s%s, then start with --init",
			ErrNoState, b.cfg.CosignerID, b.cfg.location(), b.cfg.location(), wrappedKeyName)
	case errors.Is(err, replica.ErrCorrupt):
		return nil, fmt.Errorf("%w: cosigner %q in %s: %w", ErrCorrupt, b.cfg.CosignerID, b.cfg.location(), err)
	case err != nil:
		return nil, fmt.Errorf("sealed: restoring cosigner %q from %s: %w", b.cfg.CosignerID, b.cfg.location(), err)
	}
	return st, nil
}

func (b *boot) replicaConfig(key secret.Bytes) replica.Config {
	c := b.cfg
	return replica.Config{
		Client: c.S3, Bucket: c.Bucket, Prefix: c.Prefix + stateDir, CosignerID: c.CosignerID, DataKey: key,
		SnapshotSegments: c.SnapshotSegments, SnapshotBytes: c.SnapshotBytes, MaxSnapshotSize: c.MaxSnapshotSize,
		Logger: b.log,
	}
}

func (b *boot) storeOptions() keystore.Options {
	opts := b.cfg.Keystore
	if opts.Logger == nil {
		opts.Logger = b.log
	}
	return opts
}

// discardLocal removes a database an earlier run left in dir (the enclave
// process restarted without the enclave): it is never trusted over S3.
func discardLocal(dir string, log *slog.Logger) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		path := filepath.Join(dir, keystore.FileName+suffix)
		err := os.Remove(path)
		if err == nil {
			log.Warn("sealed: discarded a local database file left by an earlier run", "file", path)
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sealed: clearing %s: %w", dir, err)
		}
	}
	return nil
}
