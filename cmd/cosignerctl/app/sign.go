package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

const (
	statePrefix   = "SIGN_OPERATION_STATE_"
	reasonPrefix  = "SIGN_FAILURE_REASON_"
	kindPrefix    = "SIGN_PAYLOAD_KIND_"
	networkPrefix = "BITCOIN_NETWORK_"

	maxMaxWait = 120 * time.Second // signing.proto: max_wait
	firstPoll  = 250 * time.Millisecond
	maxPoll    = 2 * time.Second
)

// signCmd holds what every sign subcommand shares.
type signCmd struct {
	fs              *flag.FlagSet
	a               *apiFlags
	key, path, note string
	maxWait         time.Duration
	noWait          bool
}

func newSignCmd(name, positional string, io IO) *signCmd {
	fs, a := newAPIFlags(name, strings.TrimSpace("[KEY] "+positional), io, defaultTimeout)
	a.withIdempotencyKey(fs)
	s := &signCmd{fs: fs, a: a}
	fs.StringVar(&s.key, "key", "", "the key to sign with: its ID, or keys/ and its ID (or give it as KEY)")
	fs.StringVar(&s.path, "path", "", "non-hardened BIP-32 path below the key to sign with, e.g. m/0/5 (default: the key itself)")
	fs.StringVar(&s.note, "note", "", "free text for the audit log and the approval callback")
	fs.DurationVar(&s.maxWait, "max-wait", 0, "how long one Sign call waits for the operation to end, at most 2m (default: the server's, 30s)")
	fs.BoolVar(&s.noWait, "no-wait", false, "return after one Sign call even if the operation is still running, instead of polling it until it ends or --timeout")
	return s
}

// run parses args (the key and one more), lets build set the payload
// from the last, signs and prints the operation.
func (s *signCmd) run(ctx context.Context, args []string, io IO, build func(req *cosignerv1.SignRequest, arg string) error) int {
	key, code, done := parseKeyed(s.fs, &s.key, args, 1)
	if done {
		return code
	}
	req, err := s.request(key, func(req *cosignerv1.SignRequest) error { return build(req, s.fs.Arg(0)) })
	if err != nil {
		return usageError(io, s.a.cmd, err)
	}
	return s.a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		op, err := s.sign(ctx, io, c, req)
		if err != nil {
			return err
		}
		return reportOperation(io, s.a, op, s.noWait)
	})
}

// sign sends req and, unless --no-wait, waits for the operation to end.
func (s *signCmd) sign(ctx context.Context, io IO, c *apiclient.Conn, req *cosignerv1.SignRequest) (*cosignerv1.SignOperation, error) {
	s.a.printIdempotencyKey(io)
	req.IdempotencyKey = s.a.idempotencyKey
	client := cosignerv1.NewSigningServiceClient(c)
	resp, err := client.Sign(ctx, req)
	if err != nil {
		return nil, err
	}
	op := resp.GetOperation()
	if !s.noWait {
		return waitFinal(ctx, client, op)
	}
	return op, nil
}

func (s *signCmd) request(key string, build func(*cosignerv1.SignRequest) error) (*cosignerv1.SignRequest, error) {
	path, err := parsePath(s.path)
	if err != nil {
		return nil, fmt.Errorf("--path: %w", err)
	}
	if s.maxWait < 0 || s.maxWait > maxMaxWait {
		return nil, fmt.Errorf("--max-wait must be 0 to %v", maxMaxWait)
	}
	req := &cosignerv1.SignRequest{Key: key, DerivationPath: path, Note: s.note}
	if s.maxWait > 0 {
		req.MaxWait = durationpb.New(s.maxWait)
	}
	return req, build(req)
}

func runSignEthTx(ctx context.Context, args []string, io IO) int {
	var chainID uint64
	s := newSignCmd("sign eth-tx", "FILE", io)
	s.fs.Uint64Var(&chainID, "chain-id", 0, "chain ID: required for a legacy transaction without one, else 0 or the transaction's")
	return s.run(ctx, args, io, func(req *cosignerv1.SignRequest, file string) error {
		return ethTxPayload(req, file, chainID, io)
	})
}

// ethTxPayload reads an unsigned Ethereum transaction from file: in
// go-ethereum's JSON form, or its canonical encoding as hex (0x and white
// space allowed) or raw bytes. chainID, if not 0, must agree with the
// JSON's.
func ethTxPayload(req *cosignerv1.SignRequest, file string, chainID uint64, io IO) error {
	b, err := readInput(file, io)
	if err != nil {
		return err
	}
	var tx []byte
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var fromJSON uint64
		if tx, fromJSON, err = parseEthTxJSON(t); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if chainID != 0 && fromJSON != 0 && chainID != fromJSON {
			return fmt.Errorf("--chain-id %d: %s is for chain %d", chainID, file, fromJSON)
		}
		chainID = max(chainID, fromJSON)
	} else if tx, err = decodeHex(b); err != nil { // not hex: the raw encoding
		tx = b
	}
	if len(tx) == 0 {
		return fmt.Errorf("%s is empty", file)
	}
	req.Payload = &cosignerv1.SignRequest_EthereumTransaction{EthereumTransaction: &cosignerv1.EthereumTransaction{
		UnsignedTransaction: tx, ChainId: chainID,
	}}
	return nil
}

func runSignEthMessage(ctx context.Context, args []string, io IO) int {
	var chainID uint64
	s := newSignCmd("sign eth-message", "FILE", io)
	s.fs.Uint64Var(&chainID, "chain-id", 0, "chain the message is for, for policy (0: none)")
	return s.run(ctx, args, io, func(req *cosignerv1.SignRequest, file string) error {
		msg, err := readInput(file, io)
		if err != nil {
			return err
		}
		req.Payload = &cosignerv1.SignRequest_EthereumMessage{EthereumMessage: &cosignerv1.EthereumMessage{
			Message: msg, ChainId: chainID,
		}}
		return nil
	})
}

func runSignEthTypedData(ctx context.Context, args []string, io IO) int {
	var chainID uint64
	s := newSignCmd("sign eth-typed-data", "FILE", io)
	s.fs.Uint64Var(&chainID, "chain-id", 0, "chain the document is for: 0, or its domain's chainId")
	return s.run(ctx, args, io, func(req *cosignerv1.SignRequest, file string) error {
		doc, err := readInput(file, io)
		if err != nil {
			return err
		}
		if !json.Valid(doc) {
			return fmt.Errorf("%s is not JSON", file)
		}
		req.Payload = &cosignerv1.SignRequest_EthereumTypedData{EthereumTypedData: &cosignerv1.EthereumTypedData{
			TypedDataJson: string(doc), ChainId: chainID,
		}}
		return nil
	})
}

// psbtMagic starts every binary PSBT (BIP 174).
var psbtMagic = []byte("psbt\xff")

func runSignTaprootPSBT(ctx context.Context, args []string, io IO) int {
	var network string
	s := newSignCmd("sign taproot-psbt", "FILE", io)
	s.fs.StringVar(&network, "network", "", "Bitcoin network: mainnet, testnet3, testnet4, signet or regtest (required)")
	return s.run(ctx, args, io, func(req *cosignerv1.SignRequest, file string) error {
		return psbtPayload(req, file, network, io)
	})
}

// psbtPayload reads a Taproot PSBT to sign on network from file.
func psbtPayload(req *cosignerv1.SignRequest, file, network string, io IO) error {
	n, err := parseEnum(network, networkPrefix, cosignerv1.BitcoinNetwork_value)
	if err != nil {
		return fmt.Errorf("--network: %w", err)
	}
	b, err := readInput(file, io)
	if err != nil {
		return err
	}
	psbt, err := decodePSBT(b)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	req.Payload = &cosignerv1.SignRequest_BitcoinTaprootPsbt{BitcoinTaprootPsbt: &cosignerv1.BitcoinTaprootPsbt{
		Psbt: psbt, Network: cosignerv1.BitcoinNetwork(n),
	}}
	return nil
}

// decodePSBT accepts a binary PSBT or its base64.
func decodePSBT(b []byte) ([]byte, error) {
	if bytes.HasPrefix(b, psbtMagic) {
		return b, nil
	}
	psbt, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || !bytes.HasPrefix(psbt, psbtMagic) {
		return nil, errors.New("neither a binary PSBT nor its base64")
	}
	return psbt, nil
}

func runSignDigest(ctx context.Context, args []string, io IO) int {
	s := newSignCmd("sign digest", "HEX", io)
	return s.run(ctx, args, io, func(req *cosignerv1.SignRequest, arg string) error {
		d, err := decodeHex([]byte(arg))
		if err != nil || len(d) != 32 {
			return errors.New("the digest must be 64 hex digits")
		}
		req.Payload = &cosignerv1.SignRequest_RawDigest{RawDigest: &cosignerv1.RawDigest{Digest: d}}
		return nil
	})
}

func runSignStatus(ctx context.Context, args []string, io IO) int {
	fs, a := newAPIFlags("sign status", "OPERATION", io, defaultTimeout)
	if code, done := parse(fs, args, 1); done {
		return code
	}
	name, err := operationName(fs.Arg(0))
	if err != nil {
		return usageError(io, a.cmd, err)
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		resp, err := cosignerv1.NewSigningServiceClient(c).GetSignOperation(ctx, &cosignerv1.GetSignOperationRequest{Name: name})
		if err != nil {
			return err
		}
		return reportOperation(io, a, resp.GetOperation(), true)
	})
}

func final(s cosignerv1.SignOperationState) bool {
	switch s {
	case cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED,
		cosignerv1.SignOperationState_SIGN_OPERATION_STATE_REJECTED,
		cosignerv1.SignOperationState_SIGN_OPERATION_STATE_FAILED:
		return true
	}
	return false
}

// waitFinal polls an operation until it ends. When ctx ends first it
// returns the last state seen, without error.
func waitFinal(ctx context.Context, client cosignerv1.SigningServiceClient, op *cosignerv1.SignOperation) (*cosignerv1.SignOperation, error) {
	delay := firstPoll
	for !final(op.GetState()) {
		select {
		case <-ctx.Done():
			return op, nil
		case <-time.After(delay):
		}
		resp, err := client.GetSignOperation(ctx, &cosignerv1.GetSignOperationRequest{Name: op.GetName()})
		if ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded { // the server may notice the deadline first
			return op, nil
		}
		if err != nil {
			return nil, err
		}
		op, delay = resp.GetOperation(), min(2*delay, maxPoll)
	}
	return op, nil
}

// reportOperation prints op and says how the command ends: nil when it
// succeeded (or, if running is fine, has not ended yet), an answered
// error when it was rejected or failed or is still running.
func reportOperation(io IO, a *apiFlags, op *cosignerv1.SignOperation, running bool) error {
	out := operationOut(op)
	out.IdempotencyKey = a.idempotencyKey
	if a.asJSON {
		if err := jsonResult(io, out); err != nil {
			return err
		}
	} else {
		printOperation(io.Out, out)
	}
	switch {
	case op.GetState() == cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED:
		return nil
	case final(op.GetState()):
		msg := out.Name + " " + out.State
		if out.FailureReason != "" {
			msg += ": " + out.FailureReason
		}
		if out.RefusedBy != "" {
			msg += " (refused by " + printable(out.RefusedBy) + ")"
		}
		return &answered{msg}
	case running:
		fmt.Fprintf(io.Err, "%s is still %s; follow it with: cosignerctl sign status %s\n", out.Name, out.State, out.Name)
		return nil
	}
	return &answered{fmt.Sprintf("%s is still %s at the deadline; follow it with: cosignerctl sign status %s", out.Name, out.State, out.Name)}
}

// signOpJSON is a sign operation as --json prints it. Exactly one of the
// result fields is set when state is "succeeded".
type signOpJSON struct {
	Name                string        `json:"name"`
	Key                 string        `json:"key"`
	DerivationPath      []uint32      `json:"derivation_path"`
	PayloadKind         string        `json:"payload_kind"`
	Digests             []string      `json:"digests"`
	State               string        `json:"state"`
	FailureReason       string        `json:"failure_reason,omitempty"`
	RefusedBy           string        `json:"refused_by,omitempty"`
	Culprits            []string      `json:"culprits,omitempty"`
	Signers             []string      `json:"signers"`
	CreateTime          string        `json:"create_time"`
	CompleteTime        string        `json:"complete_time,omitempty"`
	EthereumTransaction *ethTxSigJSON `json:"ethereum_transaction,omitempty"`
	EthereumSignature   *sigJSON      `json:"ethereum_signature,omitempty"`
	BitcoinPSBT         *psbtSigJSON  `json:"bitcoin_psbt,omitempty"`
	RawDigest           *sigJSON      `json:"raw_digest,omitempty"`
	IdempotencyKey      string        `json:"idempotency_key,omitempty"`
}

type ethTxSigJSON struct {
	V                 string `json:"v"`
	R                 string `json:"r"`
	S                 string `json:"s"`
	SignedTransaction string `json:"signed_transaction"`
	TransactionHash   string `json:"transaction_hash"`
}

type sigJSON struct {
	Signature string `json:"signature"`
}

type psbtSigJSON struct {
	SignedPSBT  string `json:"signed_psbt"`
	Transaction string `json:"transaction"`
}

func operationOut(op *cosignerv1.SignOperation) signOpJSON {
	out := signOpJSON{
		Name: op.GetName(), Key: op.GetKey(), DerivationPath: nonNil(op.GetDerivationPath()),
		PayloadKind: enumName(op.GetPayloadKind(), kindPrefix), Digests: []string{},
		State: enumName(op.GetState(), statePrefix), RefusedBy: op.GetRefusedBy(),
		Culprits: op.GetCulprits(), Signers: nonNil(op.GetSigners()),
		CreateTime: timestamp(op.GetCreateTime()), CompleteTime: timestamp(op.GetCompleteTime()),
	}
	if r := op.GetFailureReason(); r != cosignerv1.SignFailureReason_SIGN_FAILURE_REASON_UNSPECIFIED {
		out.FailureReason = enumName(r, reasonPrefix)
	}
	for _, d := range op.GetDigests() {
		out.Digests = append(out.Digests, hex.EncodeToString(d))
	}
	if t := op.GetEthereumTransaction(); t != nil {
		out.EthereumTransaction = &ethTxSigJSON{hex.EncodeToString(t.GetV()), hex.EncodeToString(t.GetR()), hex.EncodeToString(t.GetS()),
			hex.EncodeToString(t.GetSignedTransaction()), hex.EncodeToString(t.GetTransactionHash())}
	}
	if s := op.GetEthereumSignature(); s != nil {
		out.EthereumSignature = &sigJSON{hex.EncodeToString(s.GetSignature())}
	}
	if p := op.GetBitcoinPsbt(); p != nil {
		out.BitcoinPSBT = &psbtSigJSON{hex.EncodeToString(p.GetSignedPsbt()), hex.EncodeToString(p.GetTransaction())}
	}
	if s := op.GetRawDigest(); s != nil {
		out.RawDigest = &sigJSON{hex.EncodeToString(s.GetSignature())}
	}
	return out
}

func printOperation(w io.Writer, o signOpJSON) {
	fmt.Fprintf(w, "%s: %s\n", o.Name, o.State)
	line := func(label, value string) {
		if value != "" {
			fmt.Fprintf(w, "  %-19s %s\n", label+":", value)
		}
	}
	line("key", o.Key+" "+formatPath(o.DerivationPath))
	line("payload", o.PayloadKind)
	for _, d := range o.Digests {
		line("digest", d)
	}
	line("reason", o.FailureReason)
	line("refused by", printable(o.RefusedBy))
	line("culprits", printable(strings.Join(o.Culprits, ", ")))
	line("signers", printable(strings.Join(o.Signers, ", ")))
	line("created", o.CreateTime)
	line("completed", o.CompleteTime)
	if t := o.EthereumTransaction; t != nil {
		line("v", t.V)
		line("r", t.R)
		line("s", t.S)
		line("signed transaction", t.SignedTransaction)
		line("transaction hash", t.TransactionHash)
	}
	if s := o.EthereumSignature; s != nil {
		line("signature", s.Signature)
	}
	if p := o.BitcoinPSBT; p != nil {
		line("signed psbt", p.SignedPSBT)
		line("transaction", p.Transaction)
	}
	if s := o.RawDigest; s != nil {
		line("signature", s.Signature)
	}
}
