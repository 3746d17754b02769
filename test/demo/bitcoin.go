package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// The Bitcoin half's parameters: a made-up coin of the key, spent to
// BIP-173's regtest P2WPKH example with 1,000 sat of fee.
const (
	coinValue  = 100_000
	spendValue = 99_000
	payTo      = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
)

// frostKey is what keys create --json prints that the demo uses.
type frostKey struct {
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
}

// signedPSBT is what sign --psbt --json prints.
type signedPSBT struct {
	PSBT string `json:"psbt"`
}

// spend is the unsigned spend and what the script engine needs.
type spend struct {
	pkt  *psbt.Packet
	prev *wire.TxOut
}

func (d *demo) bitcoin(ctx context.Context) error {
	d.section("Bitcoin: a 2-of-3 FROST key signs a Taproot key-path spend")
	var key frostKey
	if err := d.ctlJSON(ctx, &key, "keys", "create", "--threshold", "2", "--parties", "3", "--scheme", "frost"); err != nil {
		return err
	}
	sp, err := newSpend(key)
	if err != nil {
		return err
	}
	d.pass("keys create: a 2-of-3 FROST key; its x-only key pays to P2TR script %x", sp.prev.PkScript)
	file, err := d.writePSBT(sp)
	if err != nil {
		return err
	}
	var out signedPSBT
	if err := d.ctlJSON(ctx, &out, "sign", "--key", key.KeyID, "--psbt", file); err != nil {
		return err
	}
	tx, err := sp.final(out.PSBT)
	if err != nil {
		return err
	}
	d.pass("sign --psbt: a finalized PSBT spending exactly the coin to %s, with one 64-byte BIP-340 signature", payTo)
	return d.execute(sp, tx)
}

// newSpend builds the PSBT: a coin of coinValue paying to the key's
// untweaked P2TR script (OP_1 <x-only key>, what the FROST engine signs
// for), spent to payTo.
func newSpend(key frostKey) (spend, error) {
	xonly, err := hex.DecodeString(key.PublicKey)
	if err != nil {
		return spend{}, fmt.Errorf("keys create: public_key %q is not hex", key.PublicKey)
	}
	pub, err := schnorr.ParsePubKey(xonly)
	if err != nil {
		return spend{}, fmt.Errorf("keys create: public_key %q is not an x-only key: %v", key.PublicKey, err)
	}
	script, err := txscript.PayToTaprootScript(pub)
	if err != nil {
		return spend{}, err
	}
	to, err := btcutil.DecodeAddress(payTo, &chaincfg.RegressionNetParams)
	if err != nil {
		return spend{}, err
	}
	toScript, err := txscript.PayToAddrScript(to)
	if err != nil {
		return spend{}, err
	}
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash(sha256.Sum256([]byte("nitro-cosigner demo coin"))), Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(spendValue, toScript))
	pkt, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		return spend{}, err
	}
	prev := wire.NewTxOut(coinValue, script)
	pkt.Inputs[0].WitnessUtxo = prev
	return spend{pkt: pkt, prev: prev}, nil
}

func (d *demo) writePSBT(sp spend) (string, error) {
	b64, err := sp.pkt.B64Encode()
	if err != nil {
		return "", err
	}
	file, err := d.writeFile("spend.psbt", []byte(b64+"\n"))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(d.out, "%s (unsigned PSBT, base64): %s\n", file, b64)
	return file, nil
}

// final decodes the signed PSBT and extracts its transaction, which must
// spend the coin, pay what the unsigned one paid and carry one 64-byte
// (SIGHASH_DEFAULT) BIP-340 signature.
func (sp spend) final(b64 string) (*wire.MsgTx, error) {
	pkt, err := psbt.NewFromRawBytes(strings.NewReader(b64), true)
	if err != nil {
		return nil, fmt.Errorf("sign: psbt is not a base64 PSBT: %v", err)
	}
	if !pkt.IsComplete() {
		return nil, errors.New("sign: the PSBT is not finalized")
	}
	tx, err := psbt.Extract(pkt)
	if err != nil {
		return nil, fmt.Errorf("sign: btcd cannot extract the transaction: %v", err)
	}
	want := sp.pkt.UnsignedTx
	if tx.TxHash() != want.TxHash() || len(tx.TxIn) != 1 || len(tx.TxIn[0].Witness) != 1 || len(tx.TxIn[0].Witness[0]) != schnorr.SignatureSize {
		return nil, errors.New("sign: the signed transaction is not the PSBT's, with one key-path signature")
	}
	return tx, nil
}

// execute runs btcd's script engine over the spend, which must pass, and
// over the same transaction paying one satoshi less, which must fail.
func (d *demo) execute(sp spend, tx *wire.MsgTx) error {
	if err := runEngine(sp.prev, tx); err != nil {
		return fmt.Errorf("btcd's script engine refuses the signed spend: %v", err)
	}
	var raw bytes.Buffer
	if err := tx.Serialize(&raw); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "transaction %s: %x\n", tx.TxHash(), raw.Bytes())
	d.pass("btcd's script engine (standard verify flags) accepts the Taproot key-path spend, txid %s", tx.TxHash())
	tampered := tx.Copy()
	tampered.TxOut[0].Value--
	if runEngine(sp.prev, tampered) == nil {
		return errors.New("btcd's script engine accepts the spend with an output changed: the check proves nothing")
	}
	d.pass("and refuses the same signature once an output is changed by one satoshi")
	return nil
}

func runEngine(prev *wire.TxOut, tx *wire.MsgTx) error {
	fetcher := txscript.NewCannedPrevOutputFetcher(prev.PkScript, prev.Value)
	vm, err := txscript.NewEngine(prev.PkScript, tx, 0, txscript.StandardVerifyFlags, nil,
		txscript.NewTxSigHashes(tx, fetcher), prev.Value, fetcher)
	if err != nil {
		return err
	}
	return vm.Execute()
}
