package nsm

import (
	"fmt"

	"github.com/hf/nsm"
	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"
)

// Device is the real NSM, reached through /dev/nsm inside a Nitro Enclave.
// It is safe for concurrent use except Close.
type Device struct {
	sess session
}

// session is the part of *nsm.Session the Device uses; tests replace it,
// since /dev/nsm exists only inside an enclave.
type session interface {
	Send(request.Request) (response.Response, error)
	Read([]byte) (int, error)
	Close() error
}

var _ Attester = (*Device)(nil)

// OpenDevice opens /dev/nsm. It fails outside a Nitro Enclave.
func OpenDevice() (*Device, error) {
	sess, err := nsm.OpenDefaultSession()
	if err != nil {
		return nil, fmt.Errorf("%w: opening /dev/nsm: %v", ErrDevice, err)
	}
	return &Device{sess: sess}, nil
}

// Attest asks the NSM for an attestation document binding r.
func (d *Device) Attest(r Request) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	res, err := d.sess.Send(&request.Attestation{UserData: r.UserData, Nonce: r.Nonce, PublicKey: r.PublicKey})
	if err != nil {
		return nil, fmt.Errorf("%w: attestation request: %v", ErrDevice, err)
	}
	if res.Error != "" {
		return nil, fmt.Errorf("%w: attestation refused: %s", ErrDevice, res.Error)
	}
	if res.Attestation == nil || len(res.Attestation.Document) == 0 {
		return nil, fmt.Errorf("%w: attestation response carries no document", ErrDevice)
	}
	return res.Attestation.Document, nil
}

// Read fills p with random bytes from the NSM.
func (d *Device) Read(p []byte) (int, error) {
	n, err := d.sess.Read(p)
	if err != nil {
		return n, fmt.Errorf("%w: reading random bytes: %v", ErrDevice, err)
	}
	return n, nil
}

// Close closes the device. No other call may run during or after it.
func (d *Device) Close() error { return d.sess.Close() }
