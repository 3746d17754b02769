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
		party           stringList
		count           int
	)
	fs, a := newAPIFlags("keys create", "", io, defaultTimeout)
	a.withIdempotencyKey(fs)
	fs.StringVar(&scheme, "scheme", "cmp", "signature scheme: cmp (cmp_ecdsa_secp256k1: Ethereum, ECDSA) or frost (frost_taproot: Bitcoin Taproot, BIP-340)")
	fs.UintVar(&threshold, "threshold", 0, "cosigners needed to sign, the t of t-of-n (required)")
	fs.Var(&party, "party", "ID of a cosigner to hold a share, this one included (repeat for each: 2 to 16)")
	fs.IntVar(&count, "parties", 0, "with --devnet, instead of --party: the number of cosigners to hold shares, the first N of devnet.json (default all)")
	fs.StringVar(&display, "display-name", "", "label for operators")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	parties, err := a.keyParties(party, count, flagSet(fs, "parties"))
	if err != nil {
		return usageError(io, a.cmd, err)
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

// keyParties returns the parties of a new key: the --party IDs, or with
// --devnet the first count cosigners of devnet.json (all if count is not
// set and no --party is given).
func (a *apiFlags) keyParties(party []string, count int, countSet bool) ([]string, error) {
	switch {
	case countSet && len(party) > 0:
		return nil, errors.New("--party and --parties do not go together")
	case countSet && a.devnet == "":
		return nil, errors.New("--parties N counts the cosigners of --devnet DIR; without it, name each with --party")
	case countSet && count < minParties:
		return nil, fmt.Errorf("--parties must be %d to %d", minParties, maxParties)
	case a.devnet != "" && len(party) == 0:
		return devnetParties(a.devnet, count)
	}
	return party, nil
}

// schemeAliases are the short names of the schemes.
var schemeAliases = map[string]cosignerv1.KeyScheme{
	"cmp":   cosignerv1.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1,
	"frost": cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT,
}

func parseScheme(s string) (cosignerv1.KeyScheme, error) {
	if k, ok := schemeAliases[strings.ToLower(s)]; ok {
		return k, nil
	}
	v, err := parseEnum(s, schemePrefix, cosignerv1.KeyScheme_value)
	if err != nil {
		return 0, fmt.Errorf("%q is not one of cmp, frost (or cmp_ecdsa_secp256k1, frost_taproot)", s)
	}
	return cosignerv1.KeyScheme(v), nil
}

func createKeyRequest(scheme string, threshold uint, parties []string, display string) (*cosignerv1.CreateKeyRequest, error) {
	s, err := parseScheme(scheme)
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
		Scheme: s, Threshold: uint32(threshold), Parties: parties, DisplayName: display,
	}, nil
}

func runKeysRefresh(ctx context.Context, args []string, io IO) int {
	var key string
	fs, a := newAPIFlags("keys refresh", "[KEY]", io, defaultTimeout)
	a.withIdempotencyKey(fs)
	fs.StringVar(&key, "key", "", "the key: its ID, or keys/ and its ID (or give it as KEY)")
	name, code, done := parseKeyed(fs, &key, args, 0)
	if done {
		return code
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

// keyResultJSON is what keys create and keys refresh print with --json.
type keyResultJSON struct {
	keyJSON
	IdempotencyKey string `json:"idempotency_key"`
}

// printProgress prints one event of a key operation. With --json the
// progress goes to stderr, as text, and the key to stdout, as JSON.
func printProgress(io IO, a *apiFlags, done string, ev progressEvent) error {
	w := io.Out
	if a.asJSON {
		w = io.Err
	}
	switch {
	case ev.GetQueued() != nil:
		fmt.Fprintf(w, "queued at %s\n", timestamp(ev.GetQueued().GetQueueTime()))
	case ev.GetSessionStarted() != nil:
		s := ev.GetSessionStarted()
		fmt.Fprintf(w, "session %s started for %s among %s (deadline %s)\n", s.GetSessionId(), s.GetKey(),
			printable(strings.Join(s.GetParties(), ", ")), timestamp(s.GetDeadline()))
	case ev.GetRoundCompleted() != nil:
		r := ev.GetRoundCompleted()
		fmt.Fprintf(w, "round %d of %d done\n", r.GetRound(), r.GetTotalRounds())
	case ev.GetKey() != nil && a.asJSON:
		return jsonResult(io, keyResultJSON{keyOut(ev.GetKey()), a.idempotencyKey})
	case ev.GetKey() != nil:
		fmt.Fprintf(w, "key %s:\n", done)
		printKey(w, ev.GetKey())
	}
	return nil // or an event this version does not know
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
	var key string
	fs, a := newAPIFlags("keys get", "[KEY]", io, defaultTimeout)
	fs.StringVar(&key, "key", "", "the key: its ID, or keys/ and its ID (or give it as KEY)")
	name, code, done := parseKeyed(fs, &key, args, 0)
	if done {
		return code
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
	KeyID          string   `json:"key_id"`
	DerivationPath []uint32 `json:"derivation_path"`
	Scheme         string   `json:"scheme"`
	PublicKey      string   `json:"public_key"`
	EthAddress     string   `json:"eth_address,omitempty"`
	ChainCode      string   `json:"chain_code"`
}

func runKeysDerive(ctx context.Context, args []string, io IO) int {
	var key, pathArg string
	fs, a := newAPIFlags("keys derive", "[KEY]", io, defaultTimeout)
	fs.StringVar(&key, "key", "", "the key: its ID, or keys/ and its ID (or give it as KEY)")
	fs.StringVar(&pathArg, "path", "", "non-hardened BIP-32 path below the key, e.g. m/44/60/0/0/7 (required)")
	name, code, done := parseKeyed(fs, &key, args, 0)
	if done {
		return code
	}
	if pathArg == "" {
		return usageError(io, a.cmd, errors.New("--path is required"))
	}
	path, err := parsePath(pathArg)
	if err != nil {
		return usageError(io, a.cmd, fmt.Errorf("--path: %w", err))
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		resp, err := cosignerv1.NewKeyServiceClient(c).DerivePublicKey(ctx,
			&cosignerv1.DerivePublicKeyRequest{Name: name, DerivationPath: path})
		if err != nil {
			return err
		}
		out := deriveJSON{
			Key: name, KeyID: strings.TrimPrefix(name, "keys/"), DerivationPath: nonNil(path),
			Scheme: enumName(resp.GetScheme(), schemePrefix), PublicKey: hex.EncodeToString(resp.GetPublicKey()),
			EthAddress: ethAddress(resp.GetScheme(), resp.GetPublicKey()), ChainCode: hex.EncodeToString(resp.GetChainCode()),
		}
		if a.asJSON {
			return jsonResult(io, out)
		}
		fmt.Fprintf(io.Out, "%s %s (%s)\n  public key:  %s\n", name, formatPath(path), out.Scheme, out.PublicKey)
		if out.EthAddress != "" {
			fmt.Fprintf(io.Out, "  eth address: %s\n", out.EthAddress)
		}
		fmt.Fprintf(io.Out, "  chain code:  %s\n", out.ChainCode)
		return nil
	})
}

// keyJSON is a key as --json prints it.
type keyJSON struct {
	KeyID       string   `json:"key_id"`
	Name        string   `json:"name"`
	Scheme      string   `json:"scheme"`
	Threshold   uint32   `json:"threshold"`
	Parties     []string `json:"parties"`
	PublicKey   string   `json:"public_key"`
	EthAddress  string   `json:"eth_address,omitempty"` // CMP keys
	ChainCode   string   `json:"chain_code"`
	Epoch       uint64   `json:"epoch"`
	DisplayName string   `json:"display_name"`
	CreateTime  string   `json:"create_time"`
	UpdateTime  string   `json:"update_time"`
}

func keyOut(k *cosignerv1.Key) keyJSON {
	return keyJSON{
		KeyID: strings.TrimPrefix(k.GetName(), "keys/"), Name: k.GetName(), Scheme: enumName(k.GetScheme(), schemePrefix),
		Threshold: k.GetThreshold(), Parties: nonNil(k.GetParties()), PublicKey: hex.EncodeToString(k.GetPublicKey()),
		EthAddress: ethAddress(k.GetScheme(), k.GetPublicKey()), ChainCode: hex.EncodeToString(k.GetChainCode()), Epoch: k.GetEpoch(), DisplayName: k.GetDisplayName(),
		CreateTime: timestamp(k.GetCreateTime()), UpdateTime: timestamp(k.GetUpdateTime()),
	}
}

func printKey(w io.Writer, k *cosignerv1.Key) {
	j := keyOut(k)
	fmt.Fprintf(w, "%s\n", j.Name)
	fmt.Fprintf(w, "  scheme:       %s\n", j.Scheme)
	fmt.Fprintf(w, "  threshold:    %d of %d (%s)\n", j.Threshold, len(j.Parties), strings.Join(j.Parties, ", "))
	fmt.Fprintf(w, "  public key:   %s\n", j.PublicKey)
	if j.EthAddress != "" {
		fmt.Fprintf(w, "  eth address:  %s\n", j.EthAddress)
	}
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
