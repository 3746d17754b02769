package demo

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
)

// The Ethereum half's parameters.
var (
	// chainID is the local chain the devnet's default policy allows.
	chainID = big.NewInt(31337)
	// ethPath is the derivation path of the sending address.
	ethPath = "m/44/60/0/0/7"
	// recipient receives the transfer.
	recipient = common.HexToAddress("0x000000000000000000000000000000000000bEEF")
	funding   = new(big.Int).Mul(big.NewInt(100), big.NewInt(params.Ether))
	transfer  = big.NewInt(params.Ether)
	tip       = big.NewInt(params.GWei)
)

// cmpKey is what keys create --json prints that the demo uses.
type cmpKey struct {
	KeyID      string `json:"key_id"`
	PublicKey  string `json:"public_key"`
	ChainCode  string `json:"chain_code"`
	EthAddress string `json:"eth_address"`
}

// derivedKey is what keys derive --json prints.
type derivedKey struct {
	PublicKey  string `json:"public_key"`
	EthAddress string `json:"eth_address"`
}

// signedTx is what sign --eth-tx --json prints.
type signedTx struct {
	SignedTx string `json:"signed_tx"`
	TxHash   string `json:"tx_hash"`
	From     string `json:"from"`
}

func (d *demo) ethereum(ctx context.Context) error {
	d.section("Ethereum: a 2-of-3 CMP key signs an EIP-1559 transfer")
	key, err := d.createCMPKey(ctx)
	if err != nil {
		return err
	}
	from, err := d.derive(ctx, key)
	if err != nil {
		return err
	}
	sim := simulated.NewBackend(types.GenesisAlloc{from: {Balance: funding}}, withChainID(chainID))
	defer sim.Close()
	d.pass("go-ethereum's simulated chain %v funds %s with 100 ETH in its genesis", chainID, from.Hex())
	tx, err := d.signTransfer(ctx, sim, key, from)
	if err != nil {
		return err
	}
	return d.mine(ctx, sim, tx, from)
}

func (d *demo) createCMPKey(ctx context.Context) (cmpKey, error) {
	var key cmpKey
	err := d.ctlJSON(ctx, &key, "keys", "create", "--threshold", "2", "--parties", "3", "--scheme", "cmp")
	if err != nil {
		return key, err
	}
	pub, err := parsePub(key.PublicKey)
	if err != nil || key.KeyID == "" || key.EthAddress != crypto.PubkeyToAddress(*pub.ToECDSA()).Hex() {
		return key, fmt.Errorf("keys create: key_id %q, public_key %q, eth_address %q: not a CMP key and its address", key.KeyID, key.PublicKey, key.EthAddress)
	}
	d.pass("keys create: a 2-of-3 CMP key; eth_address is go-ethereum's EIP-55 address of its public key")
	return key, nil
}

// derive derives the sending address and checks it, and that a hardened
// path is refused.
func (d *demo) derive(ctx context.Context, key cmpKey) (common.Address, error) {
	var got derivedKey
	if err := d.ctlJSON(ctx, &got, "keys", "derive", "--key", key.KeyID, "--path", ethPath); err != nil {
		return common.Address{}, err
	}
	want, err := bip32Child(key, ethPath)
	if err != nil {
		return common.Address{}, err
	}
	if got.PublicKey != hex.EncodeToString(want.SerializeCompressed()) {
		return common.Address{}, fmt.Errorf("keys derive: public key %s, BIP-32 gives %x", got.PublicKey, want.SerializeCompressed())
	}
	addr := crypto.PubkeyToAddress(*want.ToECDSA())
	if got.EthAddress != addr.Hex() {
		return common.Address{}, fmt.Errorf("keys derive: eth_address %s, go-ethereum gives %s", got.EthAddress, addr.Hex())
	}
	d.pass("keys derive %s: the BIP-32 child btcd's hdkeychain derives from the key and its chain code, at %s", ethPath, addr.Hex())
	return addr, d.hardenedRefused(ctx, key)
}

func (d *demo) hardenedRefused(ctx context.Context, key cmpKey) error {
	const path = "m/44'/60'/0'/0/7"
	args := []string{"--devnet", d.cfg.DevnetDir(), "keys", "derive", "--key", key.KeyID, "--path", path, "--json"}
	fmt.Fprintf(d.out, "$ cosignerctl %s\n", strings.Replace(strings.Join(args, " "), path, `"`+path+`"`, 1))
	code, _, stderr := d.run(ctx, args)
	fmt.Fprintf(d.out, "%sexit %d\n", stderr, code)
	if code != 2 || !strings.Contains(stderr, "hardened") {
		return fmt.Errorf("keys derive of a hardened path: exit %d, %q; want a usage error (2)", code, stderr)
	}
	d.pass("keys derive refuses a hardened path (exit 2): no cosigner holds the whole key it would need")
	return nil
}

func parsePub(h string) (*btcec.PublicKey, error) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, err
	}
	return btcec.ParsePubKey(b)
}

// bip32Child derives the public key at path below key, as BIP-32 does.
func bip32Child(key cmpKey, path string) (*btcec.PublicKey, error) {
	pub, err := hex.DecodeString(key.PublicKey)
	chainCode, err2 := hex.DecodeString(key.ChainCode)
	if errors.Join(err, err2) != nil {
		return nil, fmt.Errorf("keys create: public_key or chain_code is not hex")
	}
	ext := hdkeychain.NewExtendedKey(chaincfg.MainNetParams.HDPublicKeyID[:], pub, chainCode, make([]byte, 4), 0, 0, false)
	for _, elem := range strings.Split(strings.TrimPrefix(path, "m/"), "/") {
		i, err := strconv.ParseUint(elem, 10, 31)
		if err != nil {
			return nil, err
		}
		if ext, err = ext.Derive(uint32(i)); err != nil {
			return nil, err
		}
	}
	return ext.ECPubKey()
}

// signTransfer has the cosigners sign a 1 ETH transfer from the derived
// address and checks the result with go-ethereum.
func (d *demo) signTransfer(ctx context.Context, sim *simulated.Backend, key cmpKey, from common.Address) (*types.Transaction, error) {
	unsigned, err := transferTx(ctx, sim.Client(), from)
	if err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(unsigned, "", "  ")
	if err != nil {
		return nil, err
	}
	file, err := d.writeFile("transfer.json", js)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(d.out, "%s (go-ethereum's JSON of the unsigned transaction):\n%s\n", file, js)
	var out signedTx
	if err := d.ctlJSON(ctx, &out, "sign", "--key", key.KeyID, "--path", ethPath, "--eth-tx", file); err != nil {
		return nil, err
	}
	return d.checkSigned(out, unsigned, from)
}

// transferTx is an unsigned EIP-1559 transfer of 1 ETH from from to
// recipient, with fees the chain accepts.
func transferTx(ctx context.Context, client simulated.Client, from common.Address) (*types.Transaction, error) {
	head, err := client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	nonce, err := client.NonceAt(ctx, from, nil)
	if err != nil {
		return nil, err
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	return types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap,
		Gas: params.TxGas, To: &recipient, Value: transfer}), nil
}

// checkSigned checks the signed transaction with go-ethereum: it decodes,
// it is the transaction we wrote, its hash is the one printed, and its
// signature recovers the derived address.
func (d *demo) checkSigned(out signedTx, unsigned *types.Transaction, from common.Address) (*types.Transaction, error) {
	raw, err := hexutil.Decode(out.SignedTx)
	if err != nil {
		return nil, fmt.Errorf("sign: signed_tx is not 0x hex: %v", err)
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("sign: go-ethereum cannot decode signed_tx: %v", err)
	}
	signer := types.LatestSignerForChainID(chainID)
	if tx.Type() != types.DynamicFeeTxType || signer.Hash(&tx) != signer.Hash(unsigned) {
		return nil, errors.New("sign: signed_tx is not the transaction in the file")
	}
	if tx.Hash().Hex() != out.TxHash {
		return nil, fmt.Errorf("sign: tx_hash %s, go-ethereum hashes the transaction to %s", out.TxHash, tx.Hash().Hex())
	}
	sender, err := types.Sender(signer, &tx)
	if err != nil || sender != from || out.From != from.Hex() {
		return nil, fmt.Errorf("sign: go-ethereum recovers sender %s (%v); from says %s; the derived address is %s", sender.Hex(), err, out.From, from.Hex())
	}
	d.pass("sign --eth-tx: go-ethereum decodes the signed EIP-1559 transaction and recovers its sender: the derived address %s", from.Hex())
	return &tx, nil
}

// mine sends the transaction to the simulated chain, mines a block and
// checks the receipt and the balances.
func (d *demo) mine(ctx context.Context, sim *simulated.Backend, tx *types.Transaction, from common.Address) error {
	client := sim.Client()
	if err := client.SendTransaction(ctx, tx); err != nil {
		return fmt.Errorf("the simulated chain refuses the transaction: %v", err)
	}
	sim.Commit()
	receipt, err := client.TransactionReceipt(ctx, tx.Hash())
	if err != nil {
		return fmt.Errorf("no receipt: %v", err)
	}
	fmt.Fprintf(d.out, "receipt: block %v, status %d, gas used %d, effective gas price %v wei\n",
		receipt.BlockNumber, receipt.Status, receipt.GasUsed, receipt.EffectiveGasPrice)
	if receipt.Status != types.ReceiptStatusSuccessful {
		return fmt.Errorf("the transaction failed on chain (status %d)", receipt.Status)
	}
	if err := checkBalances(ctx, client, from, receipt); err != nil {
		return err
	}
	d.pass("mined in block %v with status 1: the recipient holds 1 ETH, the sender paid 1 ETH and %v wei of gas", receipt.BlockNumber,
		new(big.Int).Mul(new(big.Int).SetUint64(receipt.GasUsed), receipt.EffectiveGasPrice))
	return nil
}

func checkBalances(ctx context.Context, client simulated.Client, from common.Address, receipt *types.Receipt) error {
	got, err := client.BalanceAt(ctx, recipient, nil)
	if err != nil {
		return err
	}
	left, err := client.BalanceAt(ctx, from, nil)
	if err != nil {
		return err
	}
	fee := new(big.Int).Mul(new(big.Int).SetUint64(receipt.GasUsed), receipt.EffectiveGasPrice)
	want := new(big.Int).Sub(new(big.Int).Sub(funding, transfer), fee)
	if got.Cmp(transfer) != 0 || left.Cmp(want) != 0 {
		return fmt.Errorf("balances after the transfer: recipient %v wei, sender %v wei; want %v and %v", got, left, transfer, want)
	}
	return nil
}

// withChainID makes the simulated chain's ID id (the backend's own is
// 1337, which the devnet's policy does not allow).
func withChainID(id *big.Int) func(*node.Config, *ethconfig.Config) {
	return func(_ *node.Config, c *ethconfig.Config) {
		cfg := *c.Genesis.Config
		cfg.ChainID = id
		c.Genesis.Config = &cfg
	}
}
