//go:build !release

package harness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// Each taproot spend moves spendSats of a spendSats+feeSats output: small,
// so that the default policy's daily bitcoin limit (1 BTC) allows some
// ten thousand of them.
const (
	spendSats = 9_000
	feeSats   = 1_000
)

// taprootSpend signs one-input Taproot key-path spends of a FROST key,
// each spending a different outpoint to BIP-173's regtest P2WPKH example.
func taprootSpend(key *pb.Key) (request, error) {
	pub, err := schnorr.ParsePubKey(key.GetPublicKey())
	if err != nil {
		return request{}, fmt.Errorf("taproot key: %w", err)
	}
	from, err := txscript.PayToTaprootScript(pub)
	if err != nil {
		return request{}, err
	}
	to, err := btcutil.DecodeAddress("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", &chaincfg.RegressionNetParams)
	if err != nil {
		return request{}, err
	}
	toScript, err := txscript.PayToAddrScript(to)
	if err != nil {
		return request{}, err
	}
	return request{
		make: func(i int) *pb.SignRequest {
			return &pb.SignRequest{IdempotencyKey: apiclient.NewIdempotencyKey(), Key: key.GetName(),
				MaxWait: durationpb.New(maxWait), Payload: &pb.SignRequest_BitcoinTaprootPsbt{
					BitcoinTaprootPsbt: &pb.BitcoinTaprootPsbt{Psbt: spendPSBT(i, from, toScript),
						Network: pb.BitcoinNetwork_BITCOIN_NETWORK_REGTEST}}}
		},
		check: func(_ int, op *pb.SignOperation) error {
			if len(op.GetBitcoinPsbt().GetTransaction()) == 0 {
				return errors.New("taproot spend: no signed transaction")
			}
			return nil
		},
	}, nil
}

// spendPSBT is the unsigned PSBT of spend i.
func spendPSBT(i int, from, to []byte) []byte {
	var prev chainhash.Hash
	binary.BigEndian.PutUint64(prev[:], uint64(i)+1)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: prev}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(spendSats, to))
	pkt, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		panic(err) // a well-formed unsigned transaction
	}
	pkt.Inputs[0].WitnessUtxo = wire.NewTxOut(spendSats+feeSats, from)
	var buf bytes.Buffer
	if err := pkt.Serialize(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}
