package payload

import (
	"bytes"
	"math/big"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

func parseEIP191(req Request, key ethKey) *Parsed {
	p := newParsed(EIP191, SchemeECDSA, key.pub, [DigestSize]byte(accounts.TextHash(req.Bytes)))
	p.eth = &ethState{from: key.addr}
	p.Summary.ChainID = req.ChainID
	return p
}

// EthSigned is a finished Ethereum signature.
type EthSigned struct {
	// V, R, S as the transaction carries them (v per EIP-155 for legacy
	// transactions, the y parity for typed ones), or v = 27/28 for
	// messages.
	V, R, S *big.Int
	// Raw is the signed transaction in its network encoding (what
	// eth_sendRawTransaction takes), or the 65-byte r‖s‖v signature of a
	// message.
	Raw []byte
	// TxHash is the signed transaction's hash; zero for messages.
	TxHash common.Hash
}

// FinishEth checks sig against the key and digest and builds the signed
// transaction or message signature. For a transaction it also recovers the
// sender from the signed transaction and compares it with the key's
// address. A signature that fails any check is ErrSignature.
func (p *Parsed) FinishEth(sig Signature) (*EthSigned, error) {
	if p.eth == nil {
		return nil, invalid("not an Ethereum payload")
	}
	sig65, err := p.checkECDSA(sig)
	if err != nil {
		return nil, err
	}
	if p.eth.tx == nil {
		out := bytes.Clone(sig65)
		out[64] += 27
		return &EthSigned{
			V: big.NewInt(int64(out[64])), R: new(big.Int).SetBytes(sig.R[:]),
			S: new(big.Int).SetBytes(sig.S[:]), Raw: out,
		}, nil
	}
	return p.finishTx(sig65)
}

func (p *Parsed) finishTx(sig65 []byte) (*EthSigned, error) {
	signed, err := p.eth.tx.WithSignature(p.eth.signer, sig65)
	if err != nil {
		return nil, ErrSignature
	}
	if from, err := types.Sender(p.eth.signer, signed); err != nil || from != p.eth.from {
		return nil, ErrSignature
	}
	raw, err := signed.MarshalBinary()
	if err != nil {
		return nil, ErrSignature
	}
	v, r, s := signed.RawSignatureValues()
	return &EthSigned{V: v, R: r, S: s, Raw: raw, TxHash: signed.Hash()}, nil
}

// checkECDSA verifies an ECDSA signature over the single digest and returns
// it as r‖s‖recovery-id. It requires a low s and a recovery ID of 0 or 1,
// and the key recovered from it must be the signing key.
func (p *Parsed) checkECDSA(sig Signature) ([]byte, error) {
	if p.Scheme != SchemeECDSA || len(p.digests) != 1 {
		return nil, invalid("not an ECDSA payload")
	}
	r, s := new(big.Int).SetBytes(sig.R[:]), new(big.Int).SetBytes(sig.S[:])
	if sig.RecoveryID > 1 || !crypto.ValidateSignatureValues(sig.RecoveryID, r, s, true) {
		return nil, ErrSignature
	}
	sig65 := make([]byte, 0, 65)
	sig65 = append(append(append(sig65, sig.R[:]...), sig.S[:]...), sig.RecoveryID)
	pub, err := crypto.SigToPub(p.digests[0][:], sig65)
	if err != nil || !bytes.Equal(crypto.CompressPubkey(pub), p.key) {
		return nil, ErrSignature
	}
	return sig65, nil
}

// FinishDigest checks sig over a RawDigest and returns it: r‖s‖recovery-id
// (65 bytes, recovery ID 0 or 1) for ECDSA, the 64-byte BIP-340 signature
// for Schnorr.
func (p *Parsed) FinishDigest(sig Signature) ([]byte, error) {
	if p.Kind != RawDigest {
		return nil, invalid("not a raw digest")
	}
	if p.Scheme == SchemeECDSA {
		return p.checkECDSA(sig)
	}
	sig64 := make([]byte, 0, 64)
	sig64 = append(append(sig64, sig.R[:]...), sig.S[:]...)
	if err := verifySchnorr(p.key, p.digests[0], sig64); err != nil {
		return nil, err
	}
	return sig64, nil
}

// verifySchnorr checks a 64-byte BIP-340 signature with btcd.
func verifySchnorr(xonly []byte, digest [DigestSize]byte, sig64 []byte) error {
	pub, err := schnorr.ParsePubKey(xonly)
	if err != nil {
		return ErrSignature
	}
	s, err := schnorr.ParseSignature(sig64)
	if err != nil || !s.Verify(digest[:], pub) {
		return ErrSignature
	}
	return nil
}
