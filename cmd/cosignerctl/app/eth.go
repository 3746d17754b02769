package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// ethAddress is the EIP-55 address of a CMP key's compressed public key,
// "" for other keys.
func ethAddress(scheme cosignerv1.KeyScheme, pub []byte) string {
	if scheme != cosignerv1.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1 {
		return ""
	}
	pk, err := crypto.DecompressPubkey(pub)
	if err != nil {
		return ""
	}
	return crypto.PubkeyToAddress(*pk).Hex()
}

// ethTxJSON is an unsigned transaction in go-ethereum's JSON form (what
// json.Marshal of a types.Transaction writes; types.Transaction's own
// UnmarshalJSON wants a signature). Quantities are 0x hex. Fields that do
// not apply to the type must be absent or null; v, r, s and yParity, if
// present, must be zero; hash, if present, must be the unsigned
// transaction's.
type ethTxJSON struct {
	Type                 *hexutil.Uint64   `json:"type"`
	ChainID              *hexutil.Big      `json:"chainId"`
	Nonce                *hexutil.Uint64   `json:"nonce"`
	To                   *string           `json:"to"`
	Gas                  *hexutil.Uint64   `json:"gas"`
	GasPrice             *hexutil.Big      `json:"gasPrice"`
	MaxPriorityFeePerGas *hexutil.Big      `json:"maxPriorityFeePerGas"`
	MaxFeePerGas         *hexutil.Big      `json:"maxFeePerGas"`
	Value                *hexutil.Big      `json:"value"`
	Input                *hexutil.Bytes    `json:"input"`
	Data                 *hexutil.Bytes    `json:"data"` // another name of input
	AccessList           *types.AccessList `json:"accessList"`
	V                    *hexutil.Big      `json:"v"`
	R                    *hexutil.Big      `json:"r"`
	S                    *hexutil.Big      `json:"s"`
	YParity              *hexutil.Uint64   `json:"yParity"`
	Hash                 *common.Hash      `json:"hash"`
}

// parseEthTxJSON turns an unsigned transaction in go-ethereum's JSON form
// into its canonical binary encoding, the form the API takes, and its
// chain ID (0 for a legacy transaction without one).
func parseEthTxJSON(b []byte) ([]byte, uint64, error) {
	var j ethTxJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, 0, fmt.Errorf("not a transaction in go-ethereum's JSON form: %w", err)
	}
	if dec.More() {
		return nil, 0, errors.New("data after the transaction's JSON")
	}
	inner, err := j.inner()
	if err != nil {
		return nil, 0, err
	}
	if j.Hash != nil && types.NewTx(inner).Hash() != *j.Hash {
		return nil, 0, errors.New(`"hash" is not the hash of the unsigned transaction`)
	}
	chainID := j.chainID()
	if legacy, ok := inner.(*types.LegacyTx); ok && chainID != 0 {
		legacy.V = new(big.Int).SetUint64(chainID) // EIP-155: the unsigned encoding carries the chain ID as v
	}
	raw, err := types.NewTx(inner).MarshalBinary()
	return raw, chainID, err
}

func (j *ethTxJSON) chainID() uint64 {
	if j.ChainID == nil {
		return 0
	}
	return j.ChainID.ToInt().Uint64() // checked by inner
}

// inner checks the fields against the type and builds the transaction.
func (j *ethTxJSON) inner() (types.TxData, error) {
	c, err := j.commonFields()
	if err != nil {
		return nil, err
	}
	typ := uint64(0)
	if j.Type != nil {
		typ = uint64(*j.Type)
	}
	switch typ {
	case types.LegacyTxType:
		if err := j.only("legacy", j.MaxFeePerGas == nil, j.MaxPriorityFeePerGas == nil, j.AccessList == nil); err != nil {
			return nil, err
		}
		if j.GasPrice == nil {
			return nil, errors.New(`a legacy transaction needs "gasPrice"`)
		}
		return &types.LegacyTx{Nonce: c.nonce, GasPrice: j.GasPrice.ToInt(), Gas: c.gas, To: c.to,
			Value: c.value, Data: c.data, V: new(big.Int), R: new(big.Int), S: new(big.Int)}, nil
	case types.AccessListTxType:
		if err := j.only("type 0x1", j.MaxFeePerGas == nil, j.MaxPriorityFeePerGas == nil); err != nil {
			return nil, err
		}
		if j.GasPrice == nil || j.ChainID == nil {
			return nil, errors.New(`a type 0x1 transaction needs "chainId" and "gasPrice"`)
		}
		return &types.AccessListTx{ChainID: j.ChainID.ToInt(), Nonce: c.nonce, GasPrice: j.GasPrice.ToInt(), Gas: c.gas,
			To: c.to, Value: c.value, Data: c.data, AccessList: j.accessList(), V: new(big.Int), R: new(big.Int), S: new(big.Int)}, nil
	case types.DynamicFeeTxType:
		if err := j.only("type 0x2", j.GasPrice == nil); err != nil {
			return nil, err
		}
		if j.ChainID == nil || j.MaxFeePerGas == nil || j.MaxPriorityFeePerGas == nil {
			return nil, errors.New(`a type 0x2 transaction needs "chainId", "maxFeePerGas" and "maxPriorityFeePerGas"`)
		}
		return &types.DynamicFeeTx{ChainID: j.ChainID.ToInt(), Nonce: c.nonce, GasTipCap: j.MaxPriorityFeePerGas.ToInt(),
			GasFeeCap: j.MaxFeePerGas.ToInt(), Gas: c.gas, To: c.to, Value: c.value, Data: c.data,
			AccessList: j.accessList(), V: new(big.Int), R: new(big.Int), S: new(big.Int)}, nil
	}
	return nil, fmt.Errorf("transaction type %#x: only 0x0 (legacy), 0x1 and 0x2 are signed", typ)
}

// only fails unless every condition holds: the fields of other types are
// absent.
func (j *ethTxJSON) only(kind string, absent ...bool) error {
	for _, ok := range absent {
		if !ok {
			return fmt.Errorf("a %s transaction has a field of another type (gasPrice, maxFeePerGas, maxPriorityFeePerGas or accessList)", kind)
		}
	}
	return nil
}

func (j *ethTxJSON) accessList() types.AccessList {
	if j.AccessList == nil {
		return nil
	}
	return *j.AccessList
}

// txCommon holds the fields every type shares.
type txCommon struct {
	nonce, gas uint64
	to         *common.Address
	value      *big.Int
	data       []byte
}

func (j *ethTxJSON) commonFields() (txCommon, error) {
	if j.Nonce == nil || j.Gas == nil {
		return txCommon{}, errors.New(`"nonce" and "gas" are required`)
	}
	if j.ChainID != nil && !j.ChainID.ToInt().IsUint64() {
		return txCommon{}, errors.New(`"chainId" does not fit in 64 bits`)
	}
	for _, sig := range []*hexutil.Big{j.V, j.R, j.S} {
		if sig != nil && sig.ToInt().Sign() != 0 {
			return txCommon{}, errors.New("the transaction is signed already (v, r, s)")
		}
	}
	if j.YParity != nil && *j.YParity != 0 {
		return txCommon{}, errors.New("the transaction is signed already (yParity)")
	}
	c := txCommon{nonce: uint64(*j.Nonce), gas: uint64(*j.Gas), value: new(big.Int)}
	if j.Value != nil {
		c.value = j.Value.ToInt()
	}
	var err error
	if c.data, err = j.input(); err != nil {
		return txCommon{}, err
	}
	if j.To != nil {
		to, err := parseEthAddress(*j.To)
		if err != nil {
			return txCommon{}, fmt.Errorf(`"to": %w`, err)
		}
		c.to = &to
	}
	return c, nil
}

func (j *ethTxJSON) input() ([]byte, error) {
	switch {
	case j.Input != nil && j.Data != nil && !bytes.Equal(*j.Input, *j.Data):
		return nil, errors.New(`"input" and "data" differ`)
	case j.Input != nil:
		return *j.Input, nil
	case j.Data != nil:
		return *j.Data, nil
	}
	return nil, nil
}

// parseEthAddress reads a 0x address; one in mixed case must carry a
// valid EIP-55 checksum.
func parseEthAddress(s string) (common.Address, error) {
	if len(s) != 42 || (s[:2] != "0x" && s[:2] != "0X") || !common.IsHexAddress(s) {
		return common.Address{}, fmt.Errorf("%q is not a 0x address of 40 hex digits", s)
	}
	addr := common.HexToAddress(s)
	lower, upper := bytes.ToLower([]byte(s[2:])), bytes.ToUpper([]byte(s[2:]))
	if s[2:] != string(lower) && s[2:] != string(upper) && s != addr.Hex() {
		return common.Address{}, fmt.Errorf("%q has a wrong EIP-55 checksum", s)
	}
	return addr, nil
}
