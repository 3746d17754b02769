package node

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/judge"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/payload"
)

// Sign runs a sign to its end; see the package documentation.
func (n *Node) Sign(ctx context.Context, req api.SignParams) (api.SignOutcome, error) {
	if err := n.checkOwner(ctx, req.Caller, req.Key); err != nil {
		return api.SignOutcome{}, err
	}
	info, err := n.engineKey(ctx, req.Key)
	if err != nil {
		return api.SignOutcome{}, err
	}
	parsed, err := n.parse(ctx, info, req)
	if err != nil {
		return api.SignOutcome{}, err
	}
	out := api.SignOutcome{Digests: parsed.Digests(), Created: n.cfg.Now()}
	res, signers, err := n.proposeSign(ctx, info, req, len(parsed.Digests()))
	out.Signers, out.Completed = signers, n.cfg.Now()
	switch {
	case errors.Is(err, api.ErrInvalidArgument), errors.Is(err, api.ErrFailedPrecondition):
		return api.SignOutcome{}, err // the request never became an operation
	case errors.Is(err, errNotEnoughSigners) && signers == nil:
		return api.SignOutcome{}, fmt.Errorf("%w: %v", api.ErrFailedPrecondition, err)
	}
	if err != nil {
		return n.failed(out, err), nil
	}
	if err := finish(&out, parsed, res.Signatures); err != nil {
		n.log.Error("signatures from a finished session do not verify", "key", req.Key.String(), "err", err)
		out.State, out.Reason = api.StateFailed, api.ReasonInternal
		return out, nil
	}
	out.State = api.StateSucceeded
	return out, nil
}

// errNotEnoughSigners means fewer than threshold parties are left to ask.
var errNotEnoughSigners = errors.New("not enough cosigners answer to reach the threshold")

// maxPresignedTries bounds the proposals of one sign that name a
// presignature: when a signer refuses the one claimed (another initiator
// of the same signer set named it first, see enclave/judge), the sign
// claims another; after this many it runs in full.
const maxPresignedTries = 3

// proposeSign proposes the sign to this cosigner and the next threshold-1
// parties; parties that do not accept in time (coord.NoAnswerError) are
// left out of the next attempt, until the threshold cannot be met. A
// proposal whose presignature a signer refused is made again with another
// presignature, or in full (maxPresignedTries). It returns the result and
// the signers of the last attempt.
func (n *Node) proposeSign(ctx context.Context, info mpc.KeyInfo, req api.SignParams, digests int) (coord.Result, []mpc.PartyID, error) {
	down := map[mpc.PartyID]bool{}
	var last []mpc.PartyID
	presigned := 0
	for {
		signers, err := n.signers(info, down)
		if err != nil {
			return coord.Result{}, last, err
		}
		p, err := n.signProposal(info, req, signers, digests, presigned < maxPresignedTries)
		if err != nil {
			return coord.Result{}, signers, err
		}
		res, err := n.cfg.Coord.Initiate(ctx, p)
		last = signers
		switch {
		case err == nil || ctx.Err() != nil:
			return res, signers, err
		case !p.Presignature.IsZero() && presignatureTaken(err):
			presigned++
			n.log.Info("the presignature claimed for a sign was taken; proposing again", "key", info.Key.String(),
				"presignature", p.Presignature.String(), "tries", presigned)
			continue
		}
		var none *coord.NoAnswerError
		if !errors.As(err, &none) || len(none.Missing) == 0 {
			return res, signers, err
		}
		n.log.Warn("cosigners did not answer; proposing to others", "missing", none.Missing, "key", info.Key.String())
		for _, m := range none.Missing {
			down[m] = true
		}
	}
}

// presignatureTaken reports whether a sign failed only because a signer,
// this one included, could not use the presignature it named: a refusal
// with coord.CodePresignature, or the engine's ErrPresignatureUnavailable
// here before the online round (our share was never computed). Either way
// no signature share for it left this enclave, and the sign can be
// proposed again.
func presignatureTaken(err error) bool {
	var refused *coord.RefusedError
	var own *coord.Refusal
	switch {
	case errors.As(err, &refused):
		return refused.Code == coord.CodePresignature
	case errors.As(err, &own):
		return own.Code == coord.CodePresignature
	}
	return errors.Is(err, mpc.ErrPresignatureUnavailable)
}

// parse checks the payload against the key here, before any peer is asked.
func (n *Node) parse(ctx context.Context, info mpc.KeyInfo, req api.SignParams) (*payload.Parsed, error) {
	pub := info.PublicKey
	if len(req.Path) > 0 {
		d, err := n.cfg.Engine.DeriveKey(ctx, info.Key, req.Path)
		if err != nil {
			return nil, fmt.Errorf("%w: derivation path", api.ErrInvalidArgument)
		}
		pub = d.PublicKey
	}
	parsed, err := payload.Parse(req.Payload, pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", api.ErrInvalidArgument, payloadReason(err))
	}
	if !schemeFits(info.Scheme, parsed.Scheme) {
		return nil, fmt.Errorf("%w: the payload needs a %s key", api.ErrFailedPrecondition, parsed.Scheme)
	}
	return parsed, nil
}

// payloadReason is payload's own short reason (it never quotes the input).
func payloadReason(err error) string {
	if errors.Is(err, payload.ErrInvalid) {
		return err.Error()
	}
	return "payload"
}

func schemeFits(k mpc.Scheme, s payload.Scheme) bool {
	return k == mpc.SchemeECDSA && s == payload.SchemeECDSA || k == mpc.SchemeTaproot && s == payload.SchemeSchnorr
}

// signers is this cosigner and the next threshold-1 parties of the key
// that are not down, in the key's party order.
func (n *Node) signers(info mpc.KeyInfo, down map[mpc.PartyID]bool) ([]mpc.PartyID, error) {
	if !slices.Contains(info.Parties, n.Self()) {
		return nil, fmt.Errorf("%w: this cosigner holds no share of the key", api.ErrFailedPrecondition)
	}
	out := []mpc.PartyID{n.Self()}
	for _, p := range info.Parties {
		if len(out) == info.Threshold {
			break
		}
		if p != n.Self() && !down[p] {
			out = append(out, p)
		}
	}
	if len(out) < info.Threshold {
		return nil, errNotEnoughSigners
	}
	return out, nil
}

// signProposal builds the proposal; with usePool, an ECDSA sign of one
// underived digest claims a presignature from this cosigner's pool.
func (n *Node) signProposal(info mpc.KeyInfo, req api.SignParams, signers []mpc.PartyID, digests int, usePool bool) (coord.Proposal, error) {
	if digests < 1 || digests > coord.MaxSigns {
		return coord.Proposal{}, fmt.Errorf("%w: the payload has %d digests (1 to %d)", api.ErrInvalidArgument, digests, coord.MaxSigns)
	}
	body, err := judge.EncodeSignRequest(judge.SignRequest{Payload: req.Payload, Path: req.Path,
		Caller: req.Caller.ID, RequestID: req.OperationID, Note: req.Note})
	if err != nil {
		return coord.Proposal{}, err
	}
	p, err := n.proposal(coord.OpSign, signers, n.cfg.SignTime)
	if err != nil {
		return coord.Proposal{}, err
	}
	p.Key, p.Epoch, p.Request, p.Signs = info.Key, info.Epoch, body, uint16(digests)
	if usePool && info.Scheme == mpc.SchemeECDSA && digests == 1 && len(req.Path) == 0 {
		if id, ok := n.cfg.Engine.ClaimPresignature(info.Key, info.Epoch, signers); ok {
			p.Presignature = id
		}
	}
	return p, nil
}

// failed turns a failed proposal into the outcome's state and reason.
func (n *Node) failed(out api.SignOutcome, err error) api.SignOutcome {
	out.State = api.StateFailed
	var refused *coord.RefusedError
	var own *coord.Refusal
	var abort *mpc.AbortError
	switch {
	case errors.As(err, &refused):
		out.RefusedBy = mpc.PartyID(refused.Party)
		out.State, out.Reason = refusalOutcome(refused.Code)
	case errors.As(err, &own):
		out.RefusedBy = n.Self()
		out.State, out.Reason = refusalOutcome(own.Code)
	case errors.Is(err, errNotEnoughSigners), errors.Is(err, coord.ErrDeadline), errors.Is(err, mpc.ErrDeadline):
		out.Reason = api.ReasonDeadlineExceeded
	case errors.Is(err, mpc.ErrPresignatureUnavailable), errors.Is(err, coord.ErrBusy):
		out.Reason = api.ReasonBusy // retryable: nothing was signed
	case errors.Is(err, coord.ErrCancelled):
		out.Reason = api.ReasonSessionAborted
	case errors.As(err, &abort):
		out.Reason, out.Culprits = api.ReasonSessionAborted, slices.Clone(abort.Culprits)
	case errors.As(err, new(*mpc.PeerAbortError)):
		out.Reason = api.ReasonSessionAborted
	default:
		n.log.Error("sign failed", "err", err)
		out.Reason = api.ReasonInternal
	}
	return out
}

func refusalOutcome(c coord.Code) (api.SignState, api.FailureReason) {
	switch c {
	case coord.CodePolicy:
		return api.StateRejected, api.ReasonPolicyDenied
	case coord.CodeApproval:
		return api.StateRejected, api.ReasonApprovalDenied
	case coord.CodeUnknownKey:
		return api.StateFailed, api.ReasonUnknownKey
	case coord.CodeBusy, coord.CodePresignature:
		return api.StateFailed, api.ReasonBusy
	}
	return api.StateFailed, api.ReasonInternal
}

// finish checks the signatures and builds what the caller gets back.
func finish(out *api.SignOutcome, parsed *payload.Parsed, sigs []mpc.Signature) error {
	if len(sigs) != len(parsed.Digests()) {
		return fmt.Errorf("%d signatures for %d digests", len(sigs), len(parsed.Digests()))
	}
	switch parsed.Kind {
	case payload.EthTransaction, payload.EIP191, payload.EIP712:
		signed, err := parsed.FinishEth(toPayload(sigs[0]))
		out.Ethereum = signed
		return err
	case payload.TaprootPSBT:
		raw := make([][64]byte, len(sigs))
		for i, s := range sigs {
			copy(raw[i][:32], s.R[:])
			copy(raw[i][32:], s.S[:])
		}
		signed, err := parsed.FinishPSBT(raw)
		out.PSBT = signed
		return err
	case payload.RawDigest:
		b, err := parsed.FinishDigest(toPayload(sigs[0]))
		out.Raw = b
		return err
	}
	return errors.New("unknown payload kind")
}

func toPayload(s mpc.Signature) payload.Signature {
	return payload.Signature{R: s.R, S: s.S, RecoveryID: s.RecoveryID}
}
