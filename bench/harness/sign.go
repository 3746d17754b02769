//go:build !release

package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// client is one simulated API client: its own signer certificate, one
// attested connection to one cosigner.
type client struct {
	api pb.SigningServiceClient
}

// clients makes n clients, the i-th on cosigner i mod N, each with a
// certificate of its own.
func (s *stack) clients(ctx context.Context, n int) ([]*client, error) {
	out := make([]*client, n)
	names, certs := make([]string, n), make([]tls.Certificate, n)
	for i := range out {
		s.clientSeq++
		names[i] = fmt.Sprintf("bench-client-%d", s.clientSeq)
		var err error
		if certs[i], err = s.ca.issue(names[i], devnet.RoleSigner); err != nil {
			return nil, err
		}
	}
	if err := s.registerUsers(ctx, names, certs); err != nil {
		return nil, err
	}
	for i := range out {
		id := s.ids[i%len(s.ids)]
		cfg, err := s.info.ClientConfig(id, devnet.RoleSigner)
		if err != nil {
			return nil, err
		}
		cfg.ClientCertificate = certs[i]
		conn, err := s.dialConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		out[i] = &client{api: pb.NewSigningServiceClient(conn)}
	}
	return out, nil
}

// Sign waits at most this long per call; longer operations are polled.
const (
	maxWait   = 2 * time.Minute
	pollEvery = 250 * time.Millisecond
	signLimit = 10 * time.Minute
)

// sign calls Sign and, if the operation has not ended when the call
// returns, polls it; the time is from the call to the final state.
func (c *client) sign(ctx context.Context, req *pb.SignRequest) (*pb.SignOperation, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, signLimit)
	defer cancel()
	began := time.Now()
	resp, err := c.api.Sign(ctx, req)
	if err != nil {
		return nil, 0, fmt.Errorf("calling Sign: %w", err)
	}
	op := resp.GetOperation()
	for op.GetState() < pb.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED {
		time.Sleep(pollEvery)
		got, err := c.api.GetSignOperation(ctx, &pb.GetSignOperationRequest{Name: op.GetName()})
		if err != nil {
			return nil, 0, fmt.Errorf("polling the operation: %w", err)
		}
		op = got.GetOperation()
	}
	took := time.Since(began)
	if op.GetState() != pb.SignOperationState_SIGN_OPERATION_STATE_SUCCEEDED {
		return op, took, opError(op)
	}
	return op, took, nil
}

// opError describes an operation that did not succeed.
func opError(op *pb.SignOperation) error {
	state := strings.TrimPrefix(op.GetState().String(), "SIGN_OPERATION_STATE_")
	reason := strings.TrimPrefix(op.GetFailureReason().String(), "SIGN_FAILURE_REASON_")
	if by := op.GetRefusedBy(); by != "" {
		return fmt.Errorf("sign operation %s (%s, refused by %s)", state, reason, by)
	}
	return fmt.Errorf("sign operation %s (%s)", state, reason)
}

// request is what a load signs: the i-th request, and how to check its
// result.
type request struct {
	make  func(i int) *pb.SignRequest
	check func(i int, op *pb.SignOperation) error
}

// eip191 signs personal messages with CMP key name along path (the
// devnet's default policy allows EIP-191 on chain 1) and checks that each
// signature recovers to pub, the key at that path.
func eip191(name string, path []uint32, pub []byte) request {
	msg := func(i int) []byte { return fmt.Appendf(nil, "nitro-cosigner bench message %d", i) }
	return request{
		make: func(i int) *pb.SignRequest {
			return &pb.SignRequest{IdempotencyKey: apiclient.NewIdempotencyKey(), Key: name, DerivationPath: path,
				MaxWait: durationpb.New(maxWait), Payload: &pb.SignRequest_EthereumMessage{
					EthereumMessage: &pb.EthereumMessage{Message: msg(i), ChainId: 1}}}
		},
		check: func(i int, op *pb.SignOperation) error {
			return checkEIP191(pub, msg(i), op.GetEthereumSignature().GetSignature())
		},
	}
}

func checkEIP191(pub, msg, sig []byte) error {
	if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
		return errors.New("EIP-191 signature: not r || s || v")
	}
	rsv := bytes.Clone(sig)
	rsv[64] -= 27
	got, err := crypto.SigToPub(accounts.TextHash(msg), rsv)
	if err != nil {
		return fmt.Errorf("EIP-191 signature: %w", err)
	}
	if !bytes.Equal(crypto.CompressPubkey(got), pub) {
		return errors.New("EIP-191 signature: recovers to another key")
	}
	return nil
}

// loadResult is what a load measured.
type loadResult struct {
	lat  []time.Duration // successful signs
	wall time.Duration   // from the start to the last sign's end
	errs []error
	// cpu is the CPU time the devnet's processes used during the load;
	// tapped the frames that crossed its broker.
	cpu    time.Duration
	tapped tapCount
	// presigned counts the signs made from a presignature (the rest were
	// full signs); retried the signs proposed again because another
	// initiator of their signer set took the presignature they claimed.
	presigned, retried int
	// breakdown is where a one-client load's time went; nil for others.
	breakdown *breakdown
}

func (r loadResult) throughput() float64 {
	if r.wall == 0 {
		return 0
	}
	return float64(len(r.lat)) / r.wall.Seconds()
}

// runLoad starts every client at once; each makes perClient signs one
// after another (a closed loop).
func runLoad(ctx context.Context, clients []*client, perClient int, req request) loadResult {
	var (
		mu  sync.Mutex
		res loadResult
		wg  sync.WaitGroup
	)
	start := make(chan struct{})
	for c, cl := range clients {
		wg.Go(func() {
			<-start
			for k := range perClient {
				i := c*perClient + k
				op, d, err := cl.sign(ctx, req.make(i))
				if err == nil {
					err = req.check(i, op)
				}
				mu.Lock()
				if err != nil {
					res.errs = append(res.errs, err)
				} else {
					res.lat = append(res.lat, d)
				}
				mu.Unlock()
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	res.wall = time.Since(began)
	return res
}

// err reports a load in which a sign failed, counting each kind of
// failure.
func (r loadResult) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	count := map[string]int{}
	for _, e := range r.errs {
		count[e.Error()]++
	}
	kinds := slices.SortedFunc(maps.Keys(count), func(a, b string) int { return count[b] - count[a] })
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d × %s", count[k], k))
	}
	return fmt.Errorf("%d of %d signs failed: %s", len(r.errs), len(r.errs)+len(r.lat), strings.Join(parts, "; "))
}
