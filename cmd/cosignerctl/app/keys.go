package app

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

const schemePrefix = "KEY_SCHEME_"

// Limits of CreateKey (keys.proto).
const (
	minParties = 2
	maxParties = 16
)

func runKeysCreate(ctx context.Context, args []string, io IO) int {
	var (
		scheme, display string
		threshold       uint
		parties         stringList
	)
	fs, a := newAPIFlags("keys create", "", io, defaultTimeout)
	a.withIdempotencyKey(fs)
	fs.StringVar(&scheme, "scheme", "", "signature scheme: cmp_ecdsa_secp256k1 or frost_taproot (required)")
	fs.UintVar(&threshold, "threshold", 0, "cosigners needed to sign, the t of t-of-n (required)")
	fs.Var(&parties, "party", "ID of a cosigner to hold a share, this one included (repeat for each: 2 to 16)")
	fs.StringVar(&display, "display-name", "", "label for operators")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	req, err := createKeyRequest(scheme, threshold, parties, display)
	if err != nil {
		return usageError(io, a.cmd, err)
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		a.printIdempotencyKey(io)
		req.IdempotencyKey = a.idempotencyKey
		stream, err := cosignerv1.NewKeyServiceClient(c).CreateKey(ctx, req)
		if err != nil {
			return err
		}
		return followProgress(io, a, "created", stream.Recv)
	})
}

func createKeyRequest(scheme string, threshold uint, parties []string, display string) (*cosignerv1.CreateKeyRequest, error) {
	s, err := parseEnum(scheme, schemePrefix, cosignerv1.KeyScheme_value)
	if err != nil {
		return nil, fmt.Errorf("--scheme: %w", err)
	}
	if len(parties) < minParties || len(parties) > maxParties {
		return nil, fmt.Errorf("--party: name %d to %d cosigners", minParties, maxParties)
	}
	if threshold < 2 || threshold > uint(len(parties)) {
		return nil, fmt.Errorf("--threshold must be 2 to the number of parties (%d)", len(parties))
	}
	return &cosignerv1.CreateKeyRequest{
		Scheme: cosignerv1.KeyScheme(s), Threshold: uint32(threshold), Parties: parties, DisplayName: display,
	}, nil
}

func runKeysRefresh(ctx context.Context, args []string, io IO) int {
	fs, a := newAPIFlags("keys refresh", "KEY", io, defaultTimeout)
	a.withIdempotencyKey(fs)
	if code, done := parse(fs, args, 1); done {
		return code
	}
	name, err := keyName(fs.Arg(0))
	if err != nil {
		return usageError(io, a.cmd, err)
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		a.printIdempotencyKey(io)
		stream, err := cosignerv1.NewKeyServiceClient(c).RefreshKey(ctx,
			&cosignerv1.RefreshKeyRequest{IdempotencyKey: a.idempotencyKey, Name: name})
		if err != nil {
			return err
		}
		return followProgress(io, a, "refreshed", stream.Recv)
	})
}

// progressEvent is a CreateKeyResponse or a RefreshKeyResponse.
type progressEvent interface {
	GetQueued() *cosignerv1.OperationQueued
	GetSessionStarted() *cosignerv1.SessionStarted
	GetRoundCompleted() *cosignerv1.RoundCompleted
	GetKey() *cosignerv1.Key
}

// followProgress prints each event of a key operation's stream until the
// key, which is the last.
func followProgress[T progressEvent](out IO, a *apiFlags, done string, recv func() (T, error)) error {
	for {
		ev, err := recv()
		if errors.Is(err, io.EOF) {
			return errors.New("the server ended the stream before sending the key")
		}
		if err != nil {
			return err
		}
		if err := printProgress(out, a, done, ev); err != nil || ev.GetKey() != nil {
			return err
		}
	}
}

// Progress events as --json prints them, one per line.
type (
	queuedJSON struct {
		Event     string `json:"event"` // "queued"
		QueueTime string `json:"queue_time"`
	}
	sessionJSON struct {
		Event     string   `json:"event"` // "session_started"
		Key       string   `json:"key"`
		SessionID string   `json:"session_id"`
		Parties   []string `json:"parties"`
		Deadline  string   `json:"deadline"`
	}
	roundJSON struct {
		Event       string `json:"event"` // "round_completed"
		Round       uint32 `json:"round"`
		TotalRounds uint32 `json:"total_rounds"`
	}
	doneJSON struct {
		Event          string  `json:"event"` // "key"
		Key            keyJSON `json:"key"`
		IdempotencyKey string  `json:"idempotency_key"`
	}
)

func printProgress(io IO, a *apiFlags, done string, ev progressEvent) error {
	var js any
	switch {
	case ev.GetQueued() != nil:
		q := ev.GetQueued()
		js = queuedJSON{"queued", timestamp(q.GetQueueTime())}
		a.human(io, "queued at %s\n", timestamp(q.GetQueueTime()))
	case ev.GetSessionStarted() != nil:
		s := ev.GetSessionStarted()
		js = sessionJSON{"session_started", s.GetKey(), s.GetSessionId(), s.GetParties(), timestamp(s.GetDeadline())}
		a.human(io, "session %s started for %s among %s (deadline %s)\n", s.GetSessionId(), s.GetKey(),
			strings.Join(s.GetParties(), ", "), timestamp(s.GetDeadline()))
	case ev.GetRoundCompleted() != nil:
		r := ev.GetRoundCompleted()
		js = roundJSON{"round_completed", r.GetRound(), r.GetTotalRounds()}
		a.human(io, "round %d of %d done\n", r.GetRound(), r.GetTotalRounds())
	case ev.GetKey() != nil:
		js = doneJSON{"key", keyOut(ev.GetKey()), a.idempotencyKey}
		a.human(io, "key %s:\n", done)
		if !a.asJSON {
			printKey(io.Out, ev.GetKey())
		}
	default:
		return nil // an event this version does not know
	}
	if a.asJSON {
		return writeJSONLine(io, js)
	}
	return nil
}

// human prints a line of the human output (not with --json).
func (a *apiFlags) human(io IO, format string, args ...any) {
	if !a.asJSON {
		fmt.Fprintf(io.Out, format, args...)
	}
}

// printIdempotencyKey starts a mutating command's human output.
func (a *apiFlags) printIdempotencyKey(io IO) {
	a.human(io, "idempotency key: %s\n", a.idempotencyKey)
}

func runKeysGet(ctx context.Context, args []string, io IO) int {
	fs, a := newAPIFlags("keys get", "KEY", io, defaultTimeout)
	if code, done := parse(fs, args, 1); done {
		return code
	}
	name, err := keyName(fs.Arg(0))
	if err != nil {
		return usageError(io, a.cmd, err)
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		resp, err := cosignerv1.NewKeyServiceClient(c).GetKey(ctx, &cosignerv1.GetKeyRequest{Name: name})
		if err != nil {
			return err
		}
		if a.asJSON {
			return jsonResult(io, keyOut(resp.GetKey()))
		}
		printKey(io.Out, resp.GetKey())
		return nil
	})
}

// listJSON is what keys list --json prints.
type listJSON struct {
	Keys          []keyJSON `json:"keys"`
	NextPageToken string    `json:"next_page_token"`
}

func runKeysList(ctx context.Context, args []string, io IO) int {
	var (
		pageSize  int
		pageToken string
		all       bool
	)
	fs, a := newAPIFlags("keys list", "", io, defaultTimeout)
	fs.IntVar(&pageSize, "page-size", 0, "keys per page, at most 1000 (default: the server's, 100)")
	fs.StringVar(&pageToken, "page-token", "", "page to list: the next page token a previous list printed")
	fs.BoolVar(&all, "all", false, "list every page")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	if pageSize < 0 || pageSize > 1000 {
		return usageError(io, a.cmd, errors.New("--page-size must be 0 to 1000"))
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		out := listJSON{Keys: []keyJSON{}}
		keys := cosignerv1.NewKeyServiceClient(c)
		for {
			resp, err := keys.ListKeys(ctx, &cosignerv1.ListKeysRequest{PageSize: int32(pageSize), PageToken: pageToken})
			if err != nil {
				return err
			}
			for _, k := range resp.GetKeys() {
				out.Keys = append(out.Keys, keyOut(k))
			}
			pageToken, out.NextPageToken = resp.GetNextPageToken(), resp.GetNextPageToken()
			if !all || pageToken == "" {
				break
			}
		}
		if a.asJSON {
			return jsonResult(io, out)
		}
		printKeyList(io.Out, out)
		return nil
	})
}

func printKeyList(w io.Writer, l listJSON) {
	if len(l.Keys) == 0 {
		fmt.Fprintln(w, "no keys")
	}
	for _, k := range l.Keys {
		fmt.Fprintf(w, "%s  %s  %d-of-%d  epoch %d  %s\n", k.Name, k.Scheme, k.Threshold, len(k.Parties), k.Epoch, printable(k.DisplayName))
	}
	if l.NextPageToken != "" {
		fmt.Fprintf(w, "more keys: --page-token %s\n", l.NextPageToken)
	}
}

// deriveJSON is what keys derive --json prints.
type deriveJSON struct {
	Key            string   `json:"key"`
	DerivationPath []uint32 `json:"derivation_path"`
	Scheme         string   `json:"scheme"`
	PublicKey      string   `json:"public_key"`
	ChainCode      string   `json:"chain_code"`
}

func runKeysDerive(ctx context.Context, args []string, io IO) int {
	var pathArg string
	fs, a := newAPIFlags("keys derive", "KEY", io, defaultTimeout)
	fs.StringVar(&pathArg, "path", "", "non-hardened BIP-32 path below the key, e.g. m/0/5 (required)")
	if code, done := parse(fs, args, 1); done {
		return code
	}
	name, err := keyName(fs.Arg(0))
	if err == nil && pathArg == "" {
		err = errors.New("--path is required")
	}
	path, perr := parsePath(pathArg)
	if err = errors.Join(err, perr); err != nil {
		return usageError(io, a.cmd, err)
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		resp, err := cosignerv1.NewKeyServiceClient(c).DerivePublicKey(ctx,
			&cosignerv1.DerivePublicKeyRequest{Name: name, DerivationPath: path})
		if err != nil {
			return err
		}
		out := deriveJSON{
			Key: name, DerivationPath: nonNil(path), Scheme: enumName(resp.GetScheme(), schemePrefix),
			PublicKey: hex.EncodeToString(resp.GetPublicKey()), ChainCode: hex.EncodeToString(resp.GetChainCode()),
		}
		if a.asJSON {
			return jsonResult(io, out)
		}
		fmt.Fprintf(io.Out, "%s %s (%s)\n  public key: %s\n  chain code: %s\n", name, formatPath(path), out.Scheme, out.PublicKey, out.ChainCode)
		return nil
	})
}

// keyJSON is a key as --json prints it.
type keyJSON struct {
	Name        string   `json:"name"`
	Scheme      string   `json:"scheme"`
	Threshold   uint32   `json:"threshold"`
	Parties     []string `json:"parties"`
	PublicKey   string   `json:"public_key"`
	ChainCode   string   `json:"chain_code"`
	Epoch       uint64   `json:"epoch"`
	DisplayName string   `json:"display_name"`
	CreateTime  string   `json:"create_time"`
	UpdateTime  string   `json:"update_time"`
}

func keyOut(k *cosignerv1.Key) keyJSON {
	return keyJSON{
		Name: k.GetName(), Scheme: enumName(k.GetScheme(), schemePrefix), Threshold: k.GetThreshold(),
		Parties: nonNil(k.GetParties()), PublicKey: hex.EncodeToString(k.GetPublicKey()),
		ChainCode: hex.EncodeToString(k.GetChainCode()), Epoch: k.GetEpoch(), DisplayName: k.GetDisplayName(),
		CreateTime: timestamp(k.GetCreateTime()), UpdateTime: timestamp(k.GetUpdateTime()),
	}
}

func printKey(w io.Writer, k *cosignerv1.Key) {
	j := keyOut(k)
	fmt.Fprintf(w, "%s\n", j.Name)
	fmt.Fprintf(w, "  scheme:       %s\n", j.Scheme)
	fmt.Fprintf(w, "  threshold:    %d of %d (%s)\n", j.Threshold, len(j.Parties), strings.Join(j.Parties, ", "))
	fmt.Fprintf(w, "  public key:   %s\n", j.PublicKey)
	fmt.Fprintf(w, "  chain code:   %s\n", j.ChainCode)
	fmt.Fprintf(w, "  epoch:        %d\n", j.Epoch)
	fmt.Fprintf(w, "  display name: %s\n", printable(j.DisplayName))
	fmt.Fprintf(w, "  created:      %s\n", j.CreateTime)
	fmt.Fprintf(w, "  updated:      %s\n", j.UpdateTime)
}

// nonNil makes a nil slice print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// jsonResult prints one result object.
func jsonResult(io IO, v any) error {
	if writeJSON(io, v) != ExitOK {
		return &answered{"writing the output failed"}
	}
	return nil
}
