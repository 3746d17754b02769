package payload

import (
	"bytes"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// ethKey is a compressed secp256k1 key and its Ethereum address.
type ethKey struct {
	pub  []byte
	addr common.Address
}

// ethState is what FinishEth needs beyond the digest.
type ethState struct {
	from common.Address
	// tx and signer are set for transactions, nil for messages.
	tx     *types.Transaction
	signer types.Signer
}

func parseEthKey(pub []byte) (ethKey, error) {
	if len(pub) != 33 {
		return ethKey{}, invalid("Ethereum kinds need a 33-byte compressed ECDSA key")
	}
	pk, err := crypto.DecompressPubkey(pub)
	if err != nil {
		return ethKey{}, invalid("key is not a secp256k1 point")
	}
	return ethKey{pub: pub, addr: crypto.PubkeyToAddress(*pk)}, nil
}

func parseEth(req Request, key ethKey) (*Parsed, error) {
	var (
		p   *Parsed
		err error
	)
	switch req.Kind {
	case EthTransaction:
		p, err = parseEthTx(req, key)
	case EIP191:
		p = parseEIP191(req, key)
	case EIP712:
		p, err = parseEIP712(req, key)
	}
	if err != nil {
		return nil, err
	}
	p.Summary.From = key.addr.Hex()
	return p, nil
}

// Transaction types accepted: legacy, EIP-2930 and EIP-1559.
func supportedTxType(t byte) bool {
	return t == types.LegacyTxType || t == types.AccessListTxType || t == types.DynamicFeeTxType
}

func parseEthTx(req Request, key ethKey) (*Parsed, error) {
	b := req.Bytes
	if b[0] <= 0x7f && !supportedTxType(b[0]) {
		return nil, invalid("unsupported transaction type")
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(b); err != nil {
		return nil, invalid("malformed transaction")
	}
	if enc, err := tx.MarshalBinary(); err != nil || !bytes.Equal(enc, b) {
		return nil, invalid("transaction encoding is not canonical")
	}
	unsigned, chainID, err := unsignedTx(&tx, req.ChainID)
	if err != nil {
		return nil, err
	}
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(chainID))
	p := newParsed(EthTransaction, SchemeECDSA, key.pub, signer.Hash(unsigned))
	p.eth = &ethState{from: key.addr, tx: unsigned, signer: signer}
	p.Summary.ChainID = chainID
	if err := summarizeTx(&p.Summary, unsigned, key.addr); err != nil {
		return nil, err
	}
	return p, nil
}

// unsignedTx checks that tx carries no signature and settles its chain ID.
// A legacy transaction's v may hold the chain ID (the EIP-155 signing
// form); it is rebuilt with zero v so the signer sets it.
func unsignedTx(tx *types.Transaction, reqChain uint64) (*types.Transaction, uint64, error) {
	v, r, s := tx.RawSignatureValues()
	if r.Sign() != 0 || s.Sign() != 0 {
		return nil, 0, invalid("transaction is already signed")
	}
	for _, n := range []*big.Int{tx.Value(), tx.GasPrice(), tx.GasTipCap(), tx.GasFeeCap()} {
		if n.BitLen() > 256 {
			return nil, 0, invalid("amount out of range")
		}
	}
	if tx.Type() != types.LegacyTxType {
		if v.Sign() != 0 {
			return nil, 0, invalid("transaction is already signed")
		}
		if tx.ChainId().Sign() == 0 {
			return nil, 0, invalid("typed transaction without a chain ID")
		}
		chain, err := agreeChain(tx.ChainId(), reqChain)
		return tx, chain, err
	}
	chain, err := agreeChain(v, reqChain)
	if err != nil {
		return nil, 0, err
	}
	return types.NewTx(&types.LegacyTx{
		Nonce: tx.Nonce(), GasPrice: tx.GasPrice(), Gas: tx.Gas(),
		To: tx.To(), Value: tx.Value(), Data: tx.Data(),
	}), chain, nil
}

// agreeChain combines the chain ID in a payload (zero: absent) with the
// one in the request (zero: unset). One must be set; if both are, equal.
func agreeChain(inPayload *big.Int, req uint64) (uint64, error) {
	if inPayload.Sign() < 0 || !inPayload.IsUint64() {
		return 0, invalid("chain ID out of range")
	}
	c := inPayload.Uint64()
	switch {
	case c == 0 && req == 0:
		return 0, invalid("no chain ID (unprotected transactions are refused)")
	case c == 0:
		return req, nil
	case req != 0 && req != c:
		return 0, invalid("chain ID differs from the request's")
	}
	return c, nil
}

// summarizeTx fills in the value the transaction moves and what it calls.
func summarizeTx(sum *Summary, tx *types.Transaction, from common.Address) error {
	sum.Fee = new(big.Int).Mul(new(big.Int).SetUint64(tx.Gas()), tx.GasPrice())
	value, data := tx.Value(), tx.Data()
	if tx.To() == nil {
		created := crypto.CreateAddress(from, tx.Nonce())
		sum.Call = &Call{To: created.Hex(), Create: true}
		addNative(sum, created, value, from)
		return nil
	}
	to := *tx.To()
	addNative(sum, to, value, from)
	if len(data) == 0 {
		return nil
	}
	return summarizeCall(sum, to, data, from)
}

func addNative(sum *Summary, to common.Address, value *big.Int, from common.Address) {
	if value.Sign() == 0 {
		return
	}
	sum.Transfers = append(sum.Transfers, Transfer{
		Asset: AssetNative, To: to.Hex(), Amount: value, Self: to == from,
	})
}

// ERC-20 selectors decoded strictly.
var (
	selTransfer = [4]byte{0xa9, 0x05, 0x9c, 0xbb} // transfer(address,uint256)
	selApprove  = [4]byte{0x09, 0x5e, 0xa7, 0xb3} // approve(address,uint256)
)

func summarizeCall(sum *Summary, contract common.Address, data []byte, from common.Address) error {
	call := &Call{To: contract.Hex()}
	if len(data) < 4 {
		sum.Call = call
		return nil
	}
	sel := [4]byte(data[:4])
	call.Selector = "0x" + common.Bytes2Hex(sel[:])
	switch sel {
	case selTransfer:
		to, amount, err := addressAmountArgs(data)
		if err != nil {
			return err
		}
		sum.Transfers = append(sum.Transfers, Transfer{
			Asset: contract.Hex(), To: to.Hex(), Amount: amount, Self: to == from,
		})
		return nil
	case selApprove:
		spender, amount, err := addressAmountArgs(data)
		if err != nil {
			return err
		}
		call.Approval = &Approval{Token: contract.Hex(), Spender: spender.Hex(), Amount: amount}
	}
	sum.Call = call
	return nil
}

// addressAmountArgs decodes the arguments of f(address,uint256): exactly
// two 32-byte words, the address left-padded with zeros. Anything else is
// refused, since contracts differ in what they make of it.
func addressAmountArgs(data []byte) (common.Address, *big.Int, error) {
	if len(data) != 4+64 {
		return common.Address{}, nil, invalid("ERC-20 calldata has the wrong length")
	}
	word := data[4:36]
	if !bytes.Equal(word[:12], make([]byte, 12)) {
		return common.Address{}, nil, invalid("ERC-20 address argument is not zero-padded")
	}
	return common.BytesToAddress(word[12:]), new(big.Int).SetBytes(data[36:68]), nil
}
