//go:build !release

package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// taprootKey is a FROST Taproot key of the devnet.
type taprootKey struct {
	name  string
	xonly []byte // the key-path output key
}

// createTaprootKey generates a 2-of-n FROST Taproot key among every
// cosigner, coordinated by the first.
func createTaprootKey(t *testing.T, info *devnet.Info) taprootKey {
	t.Helper()
	return createTaprootKeyOf(t, info, 2)
}

// createTaprootKeyOf generates a threshold-of-n FROST Taproot key among
// every cosigner, coordinated by the first.
func createTaprootKeyOf(t *testing.T, info *devnet.Info, threshold uint32) taprootKey {
	t.Helper()
	var parties []string
	for _, c := range info.Cosigners {
		parties = append(parties, c.ID)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	stream, err := cosignerv1.NewKeyServiceClient(dial(t, info, parties[0], devnet.RoleAdmin)).CreateKey(ctx,
		&cosignerv1.CreateKeyRequest{IdempotencyKey: apiclient.NewIdempotencyKey(),
			Scheme: cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT, Threshold: threshold, Parties: parties})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			t.Fatal("CreateKey ended without a key")
		}
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		if k := resp.GetKey(); k != nil {
			return taprootKey{name: k.GetName(), xonly: k.GetPublicKey()}
		}
	}
}

// spend is an unsigned PSBT spending 50,000 sat of key to a regtest
// address, with 1,000 sat of fee.
func (k taprootKey) spend(t *testing.T) (*psbt.Packet, []byte) {
	t.Helper()
	pub, err := schnorr.ParsePubKey(k.xonly)
	if err != nil {
		t.Fatal(err)
	}
	script, err := txscript.PayToTaprootScript(pub)
	if err != nil {
		t.Fatal(err)
	}
	// BIP-173's P2WPKH example on regtest.
	to, err := btcutil.DecodeAddress("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	toScript, _ := txscript.PayToAddrScript(to)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{1}, Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(49_000, toScript))
	pkt, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	pkt.Inputs[0].WitnessUtxo = wire.NewTxOut(50_000, script)
	var buf bytes.Buffer
	if err := pkt.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return pkt, buf.Bytes()
}

// signSpend asks cosigner id to sign a spend of k with note, and waits
// for the operation to end.
func signSpend(t *testing.T, info *devnet.Info, id string, k taprootKey, note string) *cosignerv1.SignOperation {
	t.Helper()
	_, raw := k.spend(t)
	client := cosignerv1.NewSigningServiceClient(dial(t, info, id, devnet.RoleSigner))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	resp, err := client.Sign(ctx, &cosignerv1.SignRequest{
		IdempotencyKey: apiclient.NewIdempotencyKey(), Key: k.name, Note: note, MaxWait: durationpb.New(time.Minute),
		Payload: &cosignerv1.SignRequest_BitcoinTaprootPsbt{BitcoinTaprootPsbt: &cosignerv1.BitcoinTaprootPsbt{
			Psbt: raw, Network: cosignerv1.BitcoinNetwork_BITCOIN_NETWORK_REGTEST}},
	})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	op := resp.GetOperation()
	for op.GetState() < cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED {
		time.Sleep(100 * time.Millisecond)
		got, err := client.GetSignOperation(ctx, &cosignerv1.GetSignOperationRequest{Name: op.GetName()})
		if err != nil {
			t.Fatalf("GetSignOperation: %v", err)
		}
		op = got.GetOperation()
	}
	return op
}

// checkSigned checks that op signed the spend of k: the transaction it
// returns passes btcd's script engine, spending the key's output with a
// BIP-340 key-path signature (checked with btcd, not with our own code).
func checkSigned(t *testing.T, k taprootKey, op *cosignerv1.SignOperation) {
	t.Helper()
	if op.GetState() != cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("sign operation %s: %v (%v, refused by %q)", op.GetName(), op.GetState(), op.GetFailureReason(), op.GetRefusedBy())
	}
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(op.GetBitcoinPsbt().GetTransaction())); err != nil {
		t.Fatalf("signed transaction: %v", err)
	}
	unsigned, _ := k.spend(t)
	prev := unsigned.Inputs[0].WitnessUtxo
	if len(tx.TxIn) != 1 || tx.TxIn[0].PreviousOutPoint != unsigned.UnsignedTx.TxIn[0].PreviousOutPoint {
		t.Fatal("the signed transaction does not spend the PSBT's input")
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(prev.PkScript, prev.Value)
	vm, err := txscript.NewEngine(prev.PkScript, &tx, 0, txscript.StandardVerifyFlags, nil,
		txscript.NewTxSigHashes(&tx, fetcher), prev.Value, fetcher)
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Execute(); err != nil {
		t.Fatalf("the signed transaction does not pass the script engine: %v", err)
	}
}

// checkRejected checks that op was refused by the approval callback.
func checkRejected(t *testing.T, op *cosignerv1.SignOperation) {
	t.Helper()
	if op.GetState() != cosignerv1.SignOperationState_SIGN_OPERATION_STATE_REJECTED ||
		op.GetFailureReason() != cosignerv1.SignFailureReason_SIGN_FAILURE_REASON_APPROVAL_DENIED {
		t.Fatalf("sign operation with a rejecting note: %v, %v", op.GetState(), op.GetFailureReason())
	}
}
