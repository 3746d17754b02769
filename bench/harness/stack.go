//go:build !release

package harness

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// stack is a running devnet (real cosigner-parent and cosigner-enclave
// processes, the embedded NATS broker, S3, KMS and approval server) and
// what the bench needs to drive it through the API.
type stack struct {
	name  string // "2of3", "3of5"
	dir   string
	d     *devnet.Devnet
	info  *devnet.Info
	ids   []string
	admin *apiclient.Conn // cosigner-1, admin role
	ca    *clientCA
	tap   *brokerTap
	conns []*apiclient.Conn // every connection made, closed by close
	// clientSeq numbers the bench's API users (registerUsers).
	clientSeq int
	// attDoc is the size of cosigner-1's attestation document (through
	// the API), which enclave/peer attaches to every frame.
	attDoc int
}

// startStack starts a devnet of n cosigners in a new directory under
// cfg.WorkDir (short: the unix socket paths under it must fit), with
// enclaveFlags added to every enclave's command line.
func startStack(ctx context.Context, cfg Config, name string, n int, enclaveFlags []string) (*stack, time.Duration, error) {
	dir, err := os.MkdirTemp(cfg.WorkDir, "nb")
	if err != nil {
		return nil, 0, err
	}
	began := time.Now()
	d, err := devnet.Start(ctx, devnet.Config{Dir: dir, Parties: n, BinDir: cfg.BinDir, EnclaveFlags: enclaveFlags})
	if err != nil {
		os.RemoveAll(dir)
		return nil, 0, fmt.Errorf("starting a devnet of %d: %w", n, err)
	}
	took := time.Since(began)
	s := &stack{name: name, dir: dir, d: d, info: d.Info()}
	for _, c := range s.info.Cosigners {
		s.ids = append(s.ids, c.ID)
	}
	if err := s.connect(ctx); err != nil {
		return nil, 0, errors.Join(err, s.close(false))
	}
	return s, took, nil
}

func (s *stack) connect(ctx context.Context) error {
	var err error
	if s.ca, err = loadClientCA(s.info.ClientCA); err != nil {
		return err
	}
	if s.tap, err = tapBroker(s.info.Broker.URL); err != nil {
		return err
	}
	if s.admin, err = s.dial(ctx, s.ids[0], devnet.RoleAdmin); err != nil {
		return err
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	att, err := pb.NewAttestationServiceClient(s.admin).GetAttestation(ctx, &pb.GetAttestationRequest{Nonce: nonce})
	if err != nil {
		return fmt.Errorf("GetAttestation: %w", err)
	}
	s.attDoc = len(att.GetAttestationDocument())
	return nil
}

// dial connects to cosigner id with the devnet's certificate for role,
// attesting it.
func (s *stack) dial(ctx context.Context, id, role string) (*apiclient.Conn, error) {
	cfg, err := s.info.ClientConfig(id, role)
	if err != nil {
		return nil, err
	}
	return s.dialConfig(ctx, cfg)
}

func (s *stack) dialConfig(ctx context.Context, cfg apiclient.Config) (*apiclient.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := apiclient.Dial(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("dialling %s: %w", cfg.CosignerID, err)
	}
	s.conns = append(s.conns, conn)
	return conn, nil
}

// close stops the devnet and removes its directory, unless keep is set.
func (s *stack) close(keep bool) error {
	for _, c := range s.conns {
		c.Close()
	}
	if s.tap != nil {
		s.tap.close()
	}
	err := s.d.Stop()
	if keep {
		return err
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// createKey runs a keygen among every cosigner through cosigner-1's API
// and returns the key and the time from the call to the key (durable on
// every party).
func (s *stack) createKey(ctx context.Context, scheme pb.KeyScheme, threshold int) (*pb.Key, time.Duration, error) {
	began := time.Now()
	stream, err := pb.NewKeyServiceClient(s.admin).CreateKey(ctx, &pb.CreateKeyRequest{
		IdempotencyKey: apiclient.NewIdempotencyKey(), Scheme: scheme, Threshold: uint32(threshold),
		Parties: s.ids, DisplayName: "bench"})
	if err != nil {
		return nil, 0, fmt.Errorf("CreateKey: %w", err)
	}
	key, err := awaitKey(stream.Recv)
	return key, time.Since(began), err
}

// refreshKey refreshes the key's shares through cosigner-1's API.
func (s *stack) refreshKey(ctx context.Context, name string) (time.Duration, error) {
	began := time.Now()
	stream, err := pb.NewKeyServiceClient(s.admin).RefreshKey(ctx, &pb.RefreshKeyRequest{
		IdempotencyKey: apiclient.NewIdempotencyKey(), Name: name})
	if err != nil {
		return 0, fmt.Errorf("RefreshKey: %w", err)
	}
	_, err = awaitKey(stream.Recv)
	return time.Since(began), err
}

// logLines counts the lines of the enclaves' logs that contain substr.
func (s *stack) logLines(substr string) int {
	n := 0
	for _, c := range s.info.Cosigners {
		for line := range strings.Lines(readFile(c.EnclaveLog)) {
			if strings.Contains(line, substr) {
				n++
			}
		}
	}
	return n
}

// derive returns the public key of name along path.
func (s *stack) derive(ctx context.Context, name string, path []uint32) ([]byte, error) {
	resp, err := pb.NewKeyServiceClient(s.admin).DerivePublicKey(ctx, &pb.DerivePublicKeyRequest{Name: name, DerivationPath: path})
	if err != nil {
		return nil, fmt.Errorf("DerivePublicKey: %w", err)
	}
	return resp.GetPublicKey(), nil
}

type keyEvent interface{ GetKey() *pb.Key }

// awaitKey reads a key operation's progress stream up to its key.
func awaitKey[T keyEvent](recv func() (T, error)) (*pb.Key, error) {
	for {
		ev, err := recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the stream ended without a key")
		}
		if err != nil {
			return nil, err
		}
		if k := ev.GetKey(); k != nil {
			return k, nil
		}
	}
}
