package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// devnetNetwork is the Bitcoin network sign --psbt assumes with --devnet.
const devnetNetwork = "regtest"

// runSign is `sign --key ID (--eth-tx FILE | --psbt FILE)`: it signs and
// prints what a wallet needs (the signed transaction, its hash and sender;
// the signed PSBT), after checking an Ethereum transaction itself.
func runSign(ctx context.Context, args []string, io IO) int {
	var (
		ethTx, psbtFile, network string
		chainID                  uint64
	)
	s := newSignCmd("sign", "", io)
	s.fs.StringVar(&ethTx, "eth-tx", "", "sign the unsigned Ethereum transaction in `FILE`: go-ethereum's JSON form, or its canonical encoding (hex or raw)")
	s.fs.Uint64Var(&chainID, "chain-id", 0, "with --eth-tx: chain ID of a legacy transaction without one (else 0 or the transaction's)")
	s.fs.StringVar(&psbtFile, "psbt", "", "sign the Taproot key-path spends of the PSBT in `FILE` (base64 or binary)")
	s.fs.StringVar(&network, "network", "", "with --psbt: Bitcoin network, mainnet, testnet3, testnet4, signet or regtest (default regtest with --devnet, else required)")
	key, code, done := parseKeyed(s.fs, &s.key, args, 0)
	if done {
		return code
	}
	if (ethTx == "") == (psbtFile == "") {
		return usageError(io, s.a.cmd, errors.New("give one of --eth-tx FILE and --psbt FILE"))
	}
	if network == "" && s.a.devnet != "" {
		network = devnetNetwork
	}
	req, err := s.request(key, func(req *cosignerv1.SignRequest) error {
		if ethTx != "" {
			return ethTxPayload(req, ethTx, chainID, io)
		}
		return psbtPayload(req, psbtFile, network, io)
	})
	if err != nil {
		return usageError(io, s.a.cmd, err)
	}
	return s.a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		op, err := s.sign(ctx, io, c, req)
		if err != nil {
			return err
		}
		if op.GetState() != cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED {
			return reportOperation(io, s.a, op, s.noWait)
		}
		if ethTx != "" {
			return reportSignedEth(ctx, io, s.a, c, req, op)
		}
		return reportSignedPSBT(io, s.a, op)
	})
}

// signedJSON is what sign --json prints about the operation.
type signedJSON struct {
	Operation      string   `json:"operation"`
	Key            string   `json:"key"`
	DerivationPath []uint32 `json:"derivation_path"`
	Signers        []string `json:"signers"`
	IdempotencyKey string   `json:"idempotency_key"`
}

// signedEthJSON is what sign --eth-tx --json prints. Ethereum values are
// written as Ethereum tools write them: 0x hex, EIP-55 addresses.
type signedEthJSON struct {
	SignedTx string `json:"signed_tx"`
	TxHash   string `json:"tx_hash"`
	From     string `json:"from"`
	ChainID  uint64 `json:"chain_id"`
	signedJSON
}

// signedPSBTJSON is what sign --psbt --json prints.
type signedPSBTJSON struct {
	PSBT string `json:"psbt"` // base64 of the finalized PSBT
	Tx   string `json:"tx"`   // hex of the network transaction
	signedJSON
}

func signedOut(a *apiFlags, op *cosignerv1.SignOperation) signedJSON {
	return signedJSON{op.GetName(), op.GetKey(), nonNil(op.GetDerivationPath()), nonNil(op.GetSigners()), a.idempotencyKey}
}

func reportSignedEth(ctx context.Context, io IO, a *apiFlags, c *apiclient.Conn, req *cosignerv1.SignRequest, op *cosignerv1.SignOperation) error {
	out, err := checkSignedEth(ctx, c, req, op)
	if err != nil {
		return fmt.Errorf("%s: %w", op.GetName(), err)
	}
	out.signedJSON = signedOut(a, op)
	if a.asJSON {
		return jsonResult(io, out)
	}
	printSignedHeader(io, op)
	fmt.Fprintf(io.Out, "  from:       %s\n  chain ID:   %d\n  tx hash:    %s\n  signed tx:  %s\n", out.From, out.ChainID, out.TxHash, out.SignedTx)
	return nil
}

func reportSignedPSBT(io IO, a *apiFlags, op *cosignerv1.SignOperation) error {
	res := op.GetBitcoinPsbt()
	if res == nil {
		return fmt.Errorf("%s succeeded without a signed PSBT", op.GetName())
	}
	out := signedPSBTJSON{base64.StdEncoding.EncodeToString(res.GetSignedPsbt()), fmt.Sprintf("%x", res.GetTransaction()), signedOut(a, op)}
	if a.asJSON {
		return jsonResult(io, out)
	}
	printSignedHeader(io, op)
	fmt.Fprintf(io.Out, "  psbt:       %s\n  tx:         %s\n", out.PSBT, out.Tx)
	return nil
}

func printSignedHeader(io IO, op *cosignerv1.SignOperation) {
	fmt.Fprintf(io.Out, "%s: succeeded\n  key:        %s %s\n  signers:    %s\n", op.GetName(), op.GetKey(),
		formatPath(op.GetDerivationPath()), printable(strings.Join(op.GetSigners(), ", ")))
}

// checkSignedEth checks the server's signed transaction before printing
// it: it decodes; its hash is the one reported; it is the transaction we
// sent, on the chain we named, with a signature; and its sender, recovered
// from that signature, is the address of the key at the path we asked for
// (DerivePublicKey).
func checkSignedEth(ctx context.Context, c *apiclient.Conn, req *cosignerv1.SignRequest, op *cosignerv1.SignOperation) (signedEthJSON, error) {
	res := op.GetEthereumTransaction()
	var signed, unsigned types.Transaction
	if err := signed.UnmarshalBinary(res.GetSignedTransaction()); err != nil {
		return signedEthJSON{}, errors.New("the signed transaction does not decode")
	}
	if !bytes.Equal(signed.Hash().Bytes(), res.GetTransactionHash()) {
		return signedEthJSON{}, errors.New("the transaction hash is not the signed transaction's")
	}
	payload := req.GetEthereumTransaction()
	if err := unsigned.UnmarshalBinary(payload.GetUnsignedTransaction()); err != nil {
		return signedEthJSON{}, errors.New("the server signed a transaction we cannot decode")
	}
	chainID := payload.GetChainId()
	if v, _, _ := unsigned.RawSignatureValues(); chainID == 0 && unsigned.Type() == types.LegacyTxType {
		chainID = v.Uint64() // EIP-155: an unsigned legacy transaction's v is its chain ID
	} else if chainID == 0 {
		chainID = unsigned.ChainId().Uint64()
	}
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(chainID))
	if signed.Type() != unsigned.Type() || signed.ChainId().Cmp(signer.ChainID()) != 0 || signer.Hash(&signed) != signer.Hash(&unsigned) {
		return signedEthJSON{}, errors.New("the signed transaction is not the one sent")
	}
	from, err := types.Sender(signer, &signed)
	if err != nil {
		return signedEthJSON{}, errors.New("the signed transaction's signature does not recover a sender")
	}
	want, err := keyAddress(ctx, c, req)
	if err != nil {
		return signedEthJSON{}, err
	}
	if from != want {
		return signedEthJSON{}, fmt.Errorf("the signed transaction's sender %s is not the key's address %s", from.Hex(), want.Hex())
	}
	return signedEthJSON{SignedTx: hexutil.Encode(res.GetSignedTransaction()), TxHash: signed.Hash().Hex(), From: from.Hex(), ChainID: chainID}, nil
}

// keyAddress is the Ethereum address of the key req signs with.
func keyAddress(ctx context.Context, c *apiclient.Conn, req *cosignerv1.SignRequest) (common.Address, error) {
	resp, err := cosignerv1.NewKeyServiceClient(c).DerivePublicKey(ctx,
		&cosignerv1.DerivePublicKeyRequest{Name: req.GetKey(), DerivationPath: req.GetDerivationPath()})
	if err != nil {
		return common.Address{}, err
	}
	addr := ethAddress(resp.GetScheme(), resp.GetPublicKey())
	if addr == "" {
		return common.Address{}, errors.New("the key is not an Ethereum (CMP) key")
	}
	return common.HexToAddress(addr), nil
}
