package api

import (
	"bytes"
	"crypto/sha256"
	"math/big"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// timestamp is t as a proto timestamp; nil for the zero time.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

var schemes = map[mpc.Scheme]pb.KeyScheme{
	mpc.SchemeECDSA:   pb.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1,
	mpc.SchemeTaproot: pb.KeyScheme_KEY_SCHEME_FROST_TAPROOT,
}

// schemeFromPB maps a requested scheme; false for UNSPECIFIED and unknown
// values.
func schemeFromPB(s pb.KeyScheme) (mpc.Scheme, bool) {
	for k, v := range schemes {
		if v == s {
			return k, true
		}
	}
	return 0, false
}

func partyStrings(ids []mpc.PartyID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

func keyToPB(k Key) *pb.Key {
	parties := partyStrings(k.Info.Parties)
	slices.Sort(parties)
	return &pb.Key{
		Name:        keyName(k.Info.Key),
		Scheme:      schemes[k.Info.Scheme],
		Threshold:   uint32(k.Info.Threshold),
		Parties:     parties,
		PublicKey:   bytes.Clone(k.Info.PublicKey),
		ChainCode:   bytes.Clone(k.Info.ChainCode),
		Epoch:       k.Info.Epoch,
		DisplayName: k.DisplayName,
		CreateTime:  timestamp(k.Created),
		UpdateTime:  timestamp(k.Updated),
	}
}

// keyEvent is one progress event of a key operation, shared by CreateKey
// and RefreshKey (whose responses have the same shape).
type keyEvent struct {
	queued  *pb.OperationQueued
	started *pb.SessionStarted
}

// progressEvent converts a Node progress step; ok is false for a kind this
// API does not know, which is dropped.
func progressEvent(p Progress) (keyEvent, bool) {
	switch p.Kind {
	case ProgressQueued:
		return keyEvent{queued: &pb.OperationQueued{QueueTime: timestamp(p.At)}}, true
	case ProgressSessionStarted:
		return keyEvent{started: &pb.SessionStarted{
			Key:       keyName(p.Key),
			SessionId: p.Session.String(),
			Parties:   partyStrings(p.Parties),
			Deadline:  timestamp(p.Deadline),
		}}, true
	}
	return keyEvent{}, false
}

func policyToPB(p PolicyDoc) *pb.Policy {
	sum := sha256.Sum256(p.Document)
	return &pb.Policy{
		Version:        p.Version,
		Document:       bytes.Clone(p.Document),
		DocumentSha256: sum[:],
		UpdateTime:     timestamp(p.Updated),
	}
}

func auditHeaderToPB(h auditfmt.Header) *pb.AuditHeader {
	return &pb.AuditHeader{
		CosignerId:          h.CosignerID,
		IdentityPublicKey:   bytes.Clone(h.IdentityKey),
		FirstSeq:            h.FirstSeq,
		PrevHash:            bytes.Clone(h.PrevHash[:]),
		AttestationDocument: bytes.Clone(h.Attestation),
	}
}

func auditEntryToPB(r auditfmt.Record) *pb.AuditEntry {
	return &pb.AuditEntry{
		Seq:       r.Entry.Seq,
		Entry:     bytes.Clone(r.Raw),
		Hash:      bytes.Clone(r.Hash[:]),
		Signature: bytes.Clone(r.Sig),
	}
}

var payloadKinds = map[payload.Kind]pb.SignPayloadKind{
	payload.EthTransaction: pb.SignPayloadKind_SIGN_PAYLOAD_KIND_ETHEREUM_TRANSACTION,
	payload.EIP191:         pb.SignPayloadKind_SIGN_PAYLOAD_KIND_ETHEREUM_MESSAGE,
	payload.EIP712:         pb.SignPayloadKind_SIGN_PAYLOAD_KIND_ETHEREUM_TYPED_DATA,
	payload.TaprootPSBT:    pb.SignPayloadKind_SIGN_PAYLOAD_KIND_BITCOIN_TAPROOT_PSBT,
	payload.RawDigest:      pb.SignPayloadKind_SIGN_PAYLOAD_KIND_RAW_DIGEST,
}

// bitcoinNetworks are the payload.Request network names of the proto's
// BitcoinNetwork values.
var bitcoinNetworks = map[pb.BitcoinNetwork]string{
	pb.BitcoinNetwork_BITCOIN_NETWORK_MAINNET:  "mainnet",
	pb.BitcoinNetwork_BITCOIN_NETWORK_TESTNET3: "testnet3",
	pb.BitcoinNetwork_BITCOIN_NETWORK_TESTNET4: "testnet4",
	pb.BitcoinNetwork_BITCOIN_NETWORK_SIGNET:   "signet",
	pb.BitcoinNetwork_BITCOIN_NETWORK_REGTEST:  "regtest",
}

// signPayload converts the request's payload oneof. It checks what can be
// checked without the key: one kind set, sizes, the digest length, the
// network; parsing is the Node's.
func signPayload(req *pb.SignRequest) (payload.Request, error) {
	switch p := req.GetPayload().(type) {
	case *pb.SignRequest_EthereumTransaction:
		return payloadBytes("ethereum_transaction.unsigned_transaction", payload.Request{
			Kind: payload.EthTransaction, Bytes: p.EthereumTransaction.GetUnsignedTransaction(),
			ChainID: p.EthereumTransaction.GetChainId(),
		})
	case *pb.SignRequest_EthereumMessage:
		return payloadBytes("ethereum_message.message", payload.Request{
			Kind: payload.EIP191, Bytes: p.EthereumMessage.GetMessage(), ChainID: p.EthereumMessage.GetChainId(),
		})
	case *pb.SignRequest_EthereumTypedData:
		return payloadBytes("ethereum_typed_data.typed_data_json", payload.Request{
			Kind: payload.EIP712, Bytes: []byte(p.EthereumTypedData.GetTypedDataJson()),
			ChainID: p.EthereumTypedData.GetChainId(),
		})
	case *pb.SignRequest_BitcoinTaprootPsbt:
		network, ok := bitcoinNetworks[p.BitcoinTaprootPsbt.GetNetwork()]
		if !ok {
			return payload.Request{}, invalid("bitcoin_taproot_psbt.network", "a BitcoinNetwork other than UNSPECIFIED")
		}
		return payloadBytes("bitcoin_taproot_psbt.psbt", payload.Request{
			Kind: payload.TaprootPSBT, Bytes: p.BitcoinTaprootPsbt.GetPsbt(), Network: network,
		})
	case *pb.SignRequest_RawDigest:
		if len(p.RawDigest.GetDigest()) != payload.DigestSize {
			return payload.Request{}, invalid("raw_digest.digest", "exactly 32 bytes")
		}
		return payload.Request{Kind: payload.RawDigest, Bytes: bytes.Clone(p.RawDigest.GetDigest())}, nil
	}
	return payload.Request{}, invalid("payload", "exactly one kind must be set")
}

// payloadBytes checks a payload's size (1 byte to payload.MaxSize) and
// returns it with its own copy of the bytes.
func payloadBytes(field string, r payload.Request) (payload.Request, error) {
	if len(r.Bytes) == 0 || len(r.Bytes) > payload.MaxSize {
		return payload.Request{}, invalid(field, "1 byte to 128 KiB")
	}
	r.Bytes = bytes.Clone(r.Bytes)
	return r, nil
}

var signStates = map[SignState]pb.SignOperationState{
	StateSucceeded: pb.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED,
	StateRejected:  pb.SignOperationState_SIGN_OPERATION_STATE_REJECTED,
	StateFailed:    pb.SignOperationState_SIGN_OPERATION_STATE_FAILED,
}

var failureReasons = map[FailureReason]pb.SignFailureReason{
	ReasonNone:             pb.SignFailureReason_SIGN_FAILURE_REASON_UNSPECIFIED,
	ReasonPolicyDenied:     pb.SignFailureReason_SIGN_FAILURE_REASON_POLICY_DENIED,
	ReasonApprovalDenied:   pb.SignFailureReason_SIGN_FAILURE_REASON_APPROVAL_DENIED,
	ReasonUnknownKey:       pb.SignFailureReason_SIGN_FAILURE_REASON_UNKNOWN_KEY,
	ReasonBusy:             pb.SignFailureReason_SIGN_FAILURE_REASON_BUSY,
	ReasonSessionAborted:   pb.SignFailureReason_SIGN_FAILURE_REASON_SESSION_ABORTED,
	ReasonDeadlineExceeded: pb.SignFailureReason_SIGN_FAILURE_REASON_DEADLINE_EXCEEDED,
	ReasonInternal:         pb.SignFailureReason_SIGN_FAILURE_REASON_INTERNAL,
}

// setResult sets op's result from a succeeded outcome. It reports false if
// the outcome carries no result, or one of another kind than the payload,
// which the caller turns into a failure.
func setResult(op *pb.SignOperation, kind payload.Kind, out *SignOutcome) bool {
	set := 0
	for _, isSet := range []bool{out.Ethereum != nil, out.PSBT != nil, out.Raw != nil} {
		if isSet {
			set++
		}
	}
	if set != 1 {
		return false
	}
	switch {
	case kind == payload.EthTransaction && out.Ethereum != nil:
		e := out.Ethereum
		op.Result = &pb.SignOperation_EthereumTransaction{EthereumTransaction: &pb.EthereumTransactionSignature{
			V: bigBytes(e.V, 0), R: bigBytes(e.R, 32), S: bigBytes(e.S, 32),
			SignedTransaction: bytes.Clone(e.Raw), TransactionHash: bytes.Clone(e.TxHash[:]),
		}}
	case (kind == payload.EIP191 || kind == payload.EIP712) && out.Ethereum != nil:
		op.Result = &pb.SignOperation_EthereumSignature{EthereumSignature: &pb.EthereumSignature{
			Signature: bytes.Clone(out.Ethereum.Raw),
		}}
	case kind == payload.TaprootPSBT && out.PSBT != nil:
		op.Result = &pb.SignOperation_BitcoinPsbt{BitcoinPsbt: &pb.BitcoinPsbtSignature{
			SignedPsbt: bytes.Clone(out.PSBT.PSBT), Transaction: bytes.Clone(out.PSBT.Tx),
		}}
	case kind == payload.RawDigest && out.Raw != nil:
		op.Result = &pb.SignOperation_RawDigest{RawDigest: &pb.RawDigestSignature{Signature: bytes.Clone(out.Raw)}}
	default:
		return false
	}
	return true
}

// bigBytes is v big-endian: in size bytes when size is not 0 and v fits,
// else without leading zeros (empty for zero or nil).
func bigBytes(v *big.Int, size int) []byte {
	if v == nil {
		return nil
	}
	if size > 0 && v.Sign() >= 0 && v.BitLen() <= size*8 {
		return v.FillBytes(make([]byte, size))
	}
	return v.Bytes()
}
