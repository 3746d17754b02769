package payload

import (
	"bytes"
	"math/big"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Bounds on a PSBT: each input costs a FROST signature.
const (
	maxPSBTInputs  = 256
	maxPSBTOutputs = 1024
)

// networks maps Request.Network to address parameters. Testnet4 shares
// testnet3's address encodings.
var networks = map[string]*chaincfg.Params{
	"mainnet":  &chaincfg.MainNetParams,
	"testnet3": &chaincfg.TestNet3Params,
	"testnet4": &chaincfg.TestNet3Params,
	"signet":   &chaincfg.SigNetParams,
	"regtest":  &chaincfg.RegressionNetParams,
}

// btcState is what FinishPSBT needs beyond the digests.
type btcState struct {
	raw       []byte // the PSBT as parsed; FinishPSBT decodes a fresh copy
	hashTypes []txscript.SigHashType
}

// taprootKey is the signing key as an x-only key and its output script.
type taprootKey struct {
	xonly  []byte
	pub    *btcec.PublicKey
	script []byte
}

func parseTaprootKey(pub []byte) (taprootKey, error) {
	if len(pub) != 32 {
		return taprootKey{}, invalid("a PSBT needs a 32-byte x-only Schnorr key")
	}
	pk, err := schnorr.ParsePubKey(pub)
	if err != nil {
		return taprootKey{}, invalid("key is not a secp256k1 point")
	}
	// The key is the output key: the FROST engine signs with it untweaked.
	script, err := txscript.PayToTaprootScript(pk)
	if err != nil {
		return taprootKey{}, invalid("key has no Taproot script")
	}
	return taprootKey{xonly: pub, pub: pk, script: script}, nil
}

func parsePSBT(req Request, pub []byte) (*Parsed, error) {
	params, ok := networks[req.Network]
	if !ok {
		return nil, invalid("unknown Bitcoin network")
	}
	if req.ChainID != 0 {
		return nil, invalid("chain ID does not apply to a PSBT")
	}
	key, err := parseTaprootKey(pub)
	if err != nil {
		return nil, err
	}
	pkt, err := decodePSBT(req.Bytes)
	if err != nil {
		return nil, err
	}
	hashTypes, inSum, err := checkInputs(pkt, key)
	if err != nil {
		return nil, err
	}
	digests, err := taprootDigests(pkt, hashTypes)
	if err != nil {
		return nil, err
	}
	p := newParsed(TaprootPSBT, SchemeSchnorr, pub, digests...)
	p.btc = &btcState{raw: bytes.Clone(req.Bytes), hashTypes: hashTypes}
	if err := summarizePSBT(&p.Summary, pkt, key, params, inSum); err != nil {
		return nil, err
	}
	p.Summary.Network = req.Network
	return p, nil
}

// decodePSBT reads a binary PSBT and nothing after it. btcd's parser
// panics on some inputs (v1.1.10: a Taproot BIP-32 derivation whose hash
// count overflows int makes ReadTaprootBip32Derivation call make with a
// negative length), so it runs under safeCall.
func decodePSBT(b []byte) (*psbt.Packet, error) {
	r := bytes.NewReader(b)
	var pkt *psbt.Packet
	err := safeCall("malformed PSBT", func() (err error) {
		pkt, err = psbt.NewFromRawBytes(r, false)
		return err
	})
	if err != nil {
		return nil, invalid("malformed PSBT")
	}
	if r.Len() != 0 {
		return nil, invalid("data after the PSBT")
	}
	tx := pkt.UnsignedTx
	if len(tx.TxIn) == 0 || len(tx.TxIn) > maxPSBTInputs || len(tx.TxOut) == 0 || len(tx.TxOut) > maxPSBTOutputs {
		return nil, invalid("PSBT has no inputs or outputs, or too many")
	}
	return pkt, nil
}

// checkInputs checks that every input is a Taproot key-path spend by key
// and returns the sighash types and the sum of the inputs' amounts.
func checkInputs(pkt *psbt.Packet, key taprootKey) ([]txscript.SigHashType, int64, error) {
	hashTypes := make([]txscript.SigHashType, len(pkt.Inputs))
	seen := make(map[wire.OutPoint]bool, len(pkt.Inputs))
	var sum int64
	for i := range pkt.Inputs {
		in, op := &pkt.Inputs[i], pkt.UnsignedTx.TxIn[i].PreviousOutPoint
		if seen[op] {
			return nil, 0, invalidf("input %d spends an outpoint twice", i)
		}
		seen[op] = true
		ht, err := checkInput(in, op, key)
		if err != nil {
			return nil, 0, invalidf("input %d: %s", i, reason(err))
		}
		hashTypes[i] = ht
		if sum += in.WitnessUtxo.Value; sum > btcutil.MaxSatoshi {
			return nil, 0, invalid("inputs exceed the money supply")
		}
	}
	return hashTypes, sum, nil
}

// reason strips the ErrInvalid prefix, for nesting a reason in another.
func reason(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
}

func checkInput(in *psbt.PInput, op wire.OutPoint, key taprootKey) (txscript.SigHashType, error) {
	utxo := in.WitnessUtxo
	switch {
	case utxo == nil:
		return 0, invalid("no witness UTXO")
	case !bytes.Equal(utxo.PkScript, key.script):
		return 0, invalid("does not pay to the signing key")
	case utxo.Value < 0 || utxo.Value > btcutil.MaxSatoshi:
		return 0, invalid("amount out of range")
	case len(in.TaprootLeafScript) > 0 || len(in.TaprootScriptSpendSig) > 0 || len(in.TaprootMerkleRoot) > 0:
		return 0, invalid("script-path data present (key-path spends only)")
	case len(in.PartialSigs) > 0 || len(in.TaprootKeySpendSig) > 0:
		return 0, invalid("already signed")
	case len(in.FinalScriptSig) > 0 || len(in.FinalScriptWitness) > 0:
		return 0, invalid("already finalized")
	case len(in.RedeemScript) > 0 || len(in.WitnessScript) > 0:
		return 0, invalid("redeem or witness script present")
	case len(in.TaprootInternalKey) > 0 && !bytes.Equal(in.TaprootInternalKey, key.xonly):
		return 0, invalid("internal key is not the signing key")
	}
	if err := checkNonWitnessUtxo(in, op); err != nil {
		return 0, err
	}
	switch in.SighashType {
	case txscript.SigHashDefault, txscript.SigHashAll:
		return in.SighashType, nil
	}
	return 0, invalid("sighash type other than DEFAULT or ALL")
}

// checkNonWitnessUtxo checks an optional full previous transaction against
// the outpoint and the witness UTXO.
func checkNonWitnessUtxo(in *psbt.PInput, op wire.OutPoint) error {
	prev := in.NonWitnessUtxo
	if prev == nil {
		return nil
	}
	if prev.TxHash() != op.Hash || int(op.Index) >= len(prev.TxOut) {
		return invalid("non-witness UTXO does not match the outpoint")
	}
	out := prev.TxOut[op.Index]
	if out.Value != in.WitnessUtxo.Value || !bytes.Equal(out.PkScript, in.WitnessUtxo.PkScript) {
		return invalid("non-witness UTXO does not match the witness UTXO")
	}
	return nil
}

func prevOutFetcher(pkt *psbt.Packet) *txscript.MultiPrevOutFetcher {
	prevOuts := make(map[wire.OutPoint]*wire.TxOut, len(pkt.Inputs))
	for i, in := range pkt.UnsignedTx.TxIn {
		prevOuts[in.PreviousOutPoint] = pkt.Inputs[i].WitnessUtxo
	}
	return txscript.NewMultiPrevOutFetcher(prevOuts)
}

// taprootDigests computes the BIP-341 signature hash of every input.
func taprootDigests(pkt *psbt.Packet, hashTypes []txscript.SigHashType) ([][DigestSize]byte, error) {
	fetcher := prevOutFetcher(pkt)
	sigHashes := txscript.NewTxSigHashes(pkt.UnsignedTx, fetcher)
	digests := make([][DigestSize]byte, len(hashTypes))
	for i, ht := range hashTypes {
		d, err := txscript.CalcTaprootSignatureHash(sigHashes, ht, pkt.UnsignedTx, i, fetcher)
		if err != nil || len(d) != DigestSize {
			return nil, invalidf("input %d: no signature hash", i)
		}
		digests[i] = [DigestSize]byte(d)
	}
	return digests, nil
}

// summarizePSBT lists every output as a transfer and computes the fee.
func summarizePSBT(sum *Summary, pkt *psbt.Packet, key taprootKey, params *chaincfg.Params, inSum int64) error {
	from, err := btcutil.NewAddressTaproot(key.xonly, params)
	if err != nil {
		return invalid("key has no Taproot address")
	}
	sum.From = from.EncodeAddress()
	var outSum int64
	for i, out := range pkt.UnsignedTx.TxOut {
		if out.Value < 0 || out.Value > btcutil.MaxSatoshi {
			return invalidf("output %d: amount out of range", i)
		}
		if outSum += out.Value; outSum > inSum {
			return invalid("outputs exceed inputs")
		}
		to, err := outputAddress(out, params)
		if err != nil {
			return invalidf("output %d: %s", i, reason(err))
		}
		if to == "" {
			continue // a zero-value OP_RETURN moves nothing
		}
		sum.Transfers = append(sum.Transfers, Transfer{
			Asset: AssetBTC, To: to, Amount: big.NewInt(out.Value),
			Self: bytes.Equal(out.PkScript, key.script),
		})
	}
	sum.Fee = big.NewInt(inSum - outSum)
	return nil
}

// outputAddress returns the address an output pays to, or "" for a
// zero-value OP_RETURN. Bare public keys, bare multisig, unknown witness
// versions and non-standard scripts are refused: they have no address a
// policy could list.
func outputAddress(out *wire.TxOut, params *chaincfg.Params) (string, error) {
	class, addrs, _, err := txscript.ExtractPkScriptAddrs(out.PkScript, params)
	if err != nil {
		return "", invalid("unreadable output script")
	}
	switch class {
	case txscript.NullDataTy:
		if out.Value != 0 {
			return "", invalid("OP_RETURN output with value")
		}
		return "", nil
	case txscript.PubKeyHashTy, txscript.ScriptHashTy, txscript.WitnessV0PubKeyHashTy,
		txscript.WitnessV0ScriptHashTy, txscript.WitnessV1TaprootTy:
		if len(addrs) == 1 {
			return addrs[0].EncodeAddress(), nil
		}
	}
	return "", invalid("output script has no standard address")
}

// PSBTSigned is a finished Taproot PSBT.
type PSBTSigned struct {
	// PSBT is the finalized PSBT (binary): every input carries its final
	// witness.
	PSBT []byte
	// Tx is the signed transaction in network serialization.
	Tx []byte
}

// FinishPSBT checks one BIP-340 signature per input (in input order)
// against the key and that input's digest, adds each as the input's
// Taproot key-spend signature (with the sighash byte appended for
// SIGHASH_ALL), finalizes every input, and runs the extracted transaction
// through the txscript engine. Any failure is ErrSignature.
func (p *Parsed) FinishPSBT(sigs [][64]byte) (*PSBTSigned, error) {
	if p.btc == nil {
		return nil, invalid("not a PSBT payload")
	}
	if len(sigs) != len(p.digests) {
		return nil, invalid("one signature per input is needed")
	}
	for i := range sigs {
		if err := verifySchnorr(p.key, p.digests[i], sigs[i][:]); err != nil {
			return nil, err
		}
	}
	pkt, err := decodePSBT(p.btc.raw)
	if err != nil {
		return nil, err
	}
	for i := range pkt.Inputs {
		sig := bytes.Clone(sigs[i][:])
		if ht := p.btc.hashTypes[i]; ht != txscript.SigHashDefault {
			sig = append(sig, byte(ht))
		}
		pkt.Inputs[i].TaprootKeySpendSig = sig
		if err := psbt.Finalize(pkt, i); err != nil {
			return nil, ErrSignature
		}
	}
	return finishedPSBT(pkt)
}

// finishedPSBT extracts the transaction, executes every input's script,
// and serializes both.
func finishedPSBT(pkt *psbt.Packet) (*PSBTSigned, error) {
	tx, err := psbt.Extract(pkt)
	if err != nil {
		return nil, ErrSignature
	}
	fetcher := prevOutFetcher(pkt)
	sigHashes := txscript.NewTxSigHashes(tx, fetcher)
	for i := range tx.TxIn {
		prev := fetcher.FetchPrevOutput(tx.TxIn[i].PreviousOutPoint)
		vm, err := txscript.NewEngine(prev.PkScript, tx, i, txscript.StandardVerifyFlags,
			nil, sigHashes, prev.Value, fetcher)
		if err != nil || vm.Execute() != nil {
			return nil, ErrSignature
		}
	}
	var psbtBuf, txBuf bytes.Buffer
	if err := pkt.Serialize(&psbtBuf); err != nil {
		return nil, ErrSignature
	}
	if err := tx.Serialize(&txBuf); err != nil {
		return nil, ErrSignature
	}
	return &PSBTSigned{PSBT: psbtBuf.Bytes(), Tx: txBuf.Bytes()}, nil
}
