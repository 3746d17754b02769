//go:build !release

package reliability_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// cluster is a running devnet and cached, attested client connections to
// its cosigners.
type cluster struct {
	t    *testing.T
	d    *devnet.Devnet
	dir  string
	info *devnet.Info
	ids  []string
	logs *testutil.Buffer

	calls atomic.Int64 // CreateKey, RefreshKey and Sign calls made

	mu    sync.Mutex
	conns map[string]*apiclient.Conn // by ID and role
}

// startCluster starts a devnet of n cosigners with the binaries this
// package builds and stops it when the test ends.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	// Unix socket paths under the directory must stay short.
	dir, err := os.MkdirTemp("", "rel")
	if err != nil {
		t.Fatal(err)
	}
	bin := needBinaries(t)
	c := &cluster{t: t, dir: dir, logs: &testutil.Buffer{}, conns: map[string]*apiclient.Conn{}}
	start := time.Now()
	c.d, err = devnet.Start(t.Context(), devnet.Config{Dir: dir, Parties: n, BinDir: bin,
		Logger: slog.New(slog.NewTextHandler(c.logs, nil))})
	if err != nil {
		t.Fatalf("devnet.Start: %v\n%s%s", err, c.logs.String(), childLogs(dir))
	}
	t.Logf("devnet of %d ready in %v", n, time.Since(start).Round(time.Millisecond))
	c.info = c.d.Info()
	for _, co := range c.info.Cosigners {
		c.ids = append(c.ids, co.ID)
	}
	t.Cleanup(func() {
		c.closeAll()
		if err := c.d.Stop(); err != nil {
			t.Errorf("devnet Stop: %v", err)
		}
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("devnet directory kept: %s", dir)
		}
	})
	return c
}

// childLogs returns the tails of the child processes' logs.
func childLogs(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	var b bytes.Buffer
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 4<<10 {
			data = data[len(data)-4<<10:]
		}
		b.WriteString("\n==== " + filepath.Base(f) + "\n")
		b.Write(data)
	}
	return b.String()
}

// enclaveLogs returns the whole log of cosigner id's enclave (every
// process it ever ran: the devnet appends).
func (c *cluster) enclaveLogs(id string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "logs", id+"-enclave.log"))
	return string(b)
}

// conn returns an attested connection to cosigner id with role's
// certificate, dialling it if needed.
func (c *cluster) conn(ctx context.Context, id, role string) (*apiclient.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.conns[id+"/"+role]; cc != nil {
		return cc, nil
	}
	cfg, err := c.info.ClientConfig(id, role)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cc, err := apiclient.Dial(dctx, cfg)
	if err != nil {
		return nil, err
	}
	c.conns[id+"/"+role] = cc
	return cc, nil
}

// forget drops the connections to cosigner id (its enclave restarted with
// a new TLS certificate, or its parent went away).
func (c *cluster) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, role := range devnet.Roles {
		if cc := c.conns[id+"/"+role]; cc != nil {
			cc.Close()
			delete(c.conns, id+"/"+role)
		}
	}
}

func (c *cluster) closeAll() {
	for _, id := range c.ids {
		c.forget(id)
	}
}

// key is an acknowledged key: CreateKey (or RefreshKey) returned it.
type key struct {
	name    string
	scheme  cosignerv1.KeyScheme
	pub     []byte
	epoch   uint64
	parties []string
}

func (k key) short() string {
	if len(k.name) > 13 {
		return k.name[:13]
	}
	return k.name
}

// createKey runs CreateKey of a 2-of-n key among every cosigner,
// coordinated by from.
func (c *cluster) createKey(ctx context.Context, from string, scheme cosignerv1.KeyScheme) (key, error) {
	return c.createKeyAmong(ctx, from, scheme, c.ids)
}

// createKeyAmong runs CreateKey of a 2-of-len(parties) key.
func (c *cluster) createKeyAmong(ctx context.Context, from string, scheme cosignerv1.KeyScheme, parties []string) (key, error) {
	c.calls.Add(1)
	cc, err := c.conn(ctx, from, devnet.RoleAdmin)
	if err != nil {
		return key{}, err
	}
	stream, err := cosignerv1.NewKeyServiceClient(cc).CreateKey(ctx, &cosignerv1.CreateKeyRequest{
		IdempotencyKey: apiclient.NewIdempotencyKey(), Scheme: scheme, Threshold: 2, Parties: parties})
	if err != nil {
		return key{}, err
	}
	return lastKey(stream)
}

// refreshKey runs RefreshKey, coordinated by from.
func (c *cluster) refreshKey(ctx context.Context, from string, k key) (key, error) {
	c.calls.Add(1)
	cc, err := c.conn(ctx, from, devnet.RoleAdmin)
	if err != nil {
		return key{}, err
	}
	stream, err := cosignerv1.NewKeyServiceClient(cc).RefreshKey(ctx, &cosignerv1.RefreshKeyRequest{
		IdempotencyKey: apiclient.NewIdempotencyKey(), Name: k.name})
	if err != nil {
		return key{}, err
	}
	return lastKey(stream)
}

type keyEvent interface{ GetKey() *cosignerv1.Key }

func lastKey[E keyEvent](stream interface{ Recv() (E, error) }) (key, error) {
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return key{}, errors.New("the stream ended without a key")
		}
		if err != nil {
			return key{}, err
		}
		if k := resp.GetKey(); k != nil {
			return key{name: k.GetName(), scheme: k.GetScheme(), pub: k.GetPublicKey(), epoch: k.GetEpoch(), parties: k.GetParties()}, nil
		}
	}
}

// getKey returns cosigner id's view of a key.
func (c *cluster) getKey(ctx context.Context, id, name string) (*cosignerv1.Key, error) {
	cc, err := c.conn(ctx, id, devnet.RoleAuditor)
	if err != nil {
		return nil, err
	}
	resp, err := cosignerv1.NewKeyServiceClient(cc).GetKey(ctx, &cosignerv1.GetKeyRequest{Name: name})
	if err != nil {
		return nil, err
	}
	return resp.GetKey(), nil
}

// signed is a sign request and the operation it ended as.
type signed struct {
	op      *cosignerv1.SignOperation
	payload []byte // the PSBT, or the EIP-191 message
}

// sign asks cosigner from to sign a fresh payload for k (a Taproot spend,
// or an EIP-191 message for a CMP key) and waits for the operation to end.
func (c *cluster) sign(ctx context.Context, from string, k key, note string) (signed, error) {
	c.calls.Add(1)
	cc, err := c.conn(ctx, from, devnet.RoleSigner)
	if err != nil {
		return signed{}, err
	}
	req := &cosignerv1.SignRequest{IdempotencyKey: apiclient.NewIdempotencyKey(), Key: k.name, Note: note,
		MaxWait: durationpb.New(time.Minute)}
	var s signed
	if k.scheme == cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT {
		s.payload, err = spend(k.pub)
		if err != nil {
			return signed{}, err
		}
		req.Payload = &cosignerv1.SignRequest_BitcoinTaprootPsbt{BitcoinTaprootPsbt: &cosignerv1.BitcoinTaprootPsbt{
			Psbt: s.payload, Network: cosignerv1.BitcoinNetwork_BITCOIN_NETWORK_REGTEST}}
	} else {
		s.payload = []byte(fmt.Sprintf("reliability %s %d", note, time.Now().UnixNano()))
		req.Payload = &cosignerv1.SignRequest_EthereumMessage{EthereumMessage: &cosignerv1.EthereumMessage{Message: s.payload, ChainId: 1}}
	}
	client := cosignerv1.NewSigningServiceClient(cc)
	resp, err := client.Sign(ctx, req)
	if err != nil {
		return signed{}, err
	}
	s.op = resp.GetOperation()
	for s.op.GetState() < cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED {
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		got, err := client.GetSignOperation(ctx, &cosignerv1.GetSignOperationRequest{Name: s.op.GetName()})
		if err != nil {
			return s, err
		}
		s.op = got.GetOperation()
	}
	return s, nil
}

// succeeded reports whether the operation says it signed.
func (s signed) succeeded() bool {
	return s.op.GetState() == cosignerv1.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED
}

// verify checks, with btcd or go-ethereum and not with our own code, that
// a succeeded operation returned a valid signature of the payload by k.
func (s signed) verify(k key) error {
	if k.scheme == cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT {
		return verifySpend(k.pub, s.payload, s.op.GetBitcoinPsbt().GetTransaction())
	}
	return verifyEIP191(k.pub, s.payload, s.op.GetEthereumSignature().GetSignature())
}

// spend is an unsigned PSBT spending 50,000 sat of the Taproot key pub
// (from a random outpoint) to a regtest address.
func spend(xonly []byte) ([]byte, error) {
	pkt, err := spendPacket(xonly, chainhash.HashH([]byte(time.Now().String())))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = pkt.Serialize(&buf)
	return buf.Bytes(), err
}

func spendPacket(xonly []byte, prev chainhash.Hash) (*psbt.Packet, error) {
	pub, err := schnorr.ParsePubKey(xonly)
	if err != nil {
		return nil, err
	}
	script, err := txscript.PayToTaprootScript(pub)
	if err != nil {
		return nil, err
	}
	to, err := btcutil.DecodeAddress("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", &chaincfg.RegressionNetParams)
	if err != nil {
		return nil, err
	}
	toScript, _ := txscript.PayToAddrScript(to)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: prev, Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(49_000, toScript))
	pkt, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		return nil, err
	}
	pkt.Inputs[0].WitnessUtxo = wire.NewTxOut(50_000, script)
	return pkt, nil
}

// verifySpend runs btcd's script engine on the signed transaction.
func verifySpend(xonly, rawPSBT, rawTx []byte) error {
	unsigned, err := psbt.NewFromRawBytes(bytes.NewReader(rawPSBT), false)
	if err != nil {
		return err
	}
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(rawTx)); err != nil {
		return fmt.Errorf("signed transaction: %w", err)
	}
	prev := unsigned.Inputs[0].WitnessUtxo
	if len(tx.TxIn) != 1 || tx.TxIn[0].PreviousOutPoint != unsigned.UnsignedTx.TxIn[0].PreviousOutPoint {
		return errors.New("the signed transaction does not spend the PSBT's input")
	}
	want, _ := schnorr.ParsePubKey(xonly)
	wantScript, _ := txscript.PayToTaprootScript(want)
	if !bytes.Equal(prev.PkScript, wantScript) {
		return errors.New("the PSBT does not spend the key's output")
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(prev.PkScript, prev.Value)
	vm, err := txscript.NewEngine(prev.PkScript, &tx, 0, txscript.StandardVerifyFlags, nil,
		txscript.NewTxSigHashes(&tx, fetcher), prev.Value, fetcher)
	if err != nil {
		return err
	}
	return vm.Execute()
}

// verifyEIP191 recovers the signer of an EIP-191 signature (r||s||v, v 27
// or 28) with go-ethereum and checks it is the compressed key pub, and
// checks the signature again with btcec.
func verifyEIP191(pub, msg, sig []byte) error {
	if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
		return fmt.Errorf("signature of %d bytes", len(sig))
	}
	digest := accounts.TextHash(msg)
	rsv := bytes.Clone(sig)
	rsv[64] -= 27
	got, err := crypto.SigToPub(digest, rsv)
	if err != nil {
		return err
	}
	if !bytes.Equal(crypto.CompressPubkey(got), pub) {
		return errors.New("the signature recovers another key")
	}
	key, err := btcec.ParsePubKey(pub)
	if err != nil {
		return err
	}
	if !crypto.VerifySignature(crypto.FromECDSAPub(key.ToECDSA()), digest, sig[:64]) {
		return errors.New("the signature does not verify")
	}
	return nil
}
