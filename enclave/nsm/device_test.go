package nsm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"
)

// fakeSession answers like the NSM driver would, with a canned response.
type fakeSession struct {
	res  response.Response
	err  error
	got  *request.Attestation
	rand []byte
}

func (f *fakeSession) Send(r request.Request) (response.Response, error) {
	f.got, _ = r.(*request.Attestation)
	return f.res, f.err
}

func (f *fakeSession) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	return copy(p, f.rand), nil
}

func (f *fakeSession) Close() error { return nil }

func TestDeviceAttest(t *testing.T) {
	doc := []byte{0x84, 0x44}
	fake := &fakeSession{res: response.Response{Attestation: &response.Attestation{Document: doc}}}
	d := &Device{sess: fake}
	req := Request{UserData: []byte("u"), Nonce: []byte("n"), PublicKey: []byte("k")}
	got, err := d.Attest(req)
	if err != nil || !bytes.Equal(got, doc) {
		t.Fatalf("Attest = %x, %v", got, err)
	}
	if fake.got == nil || string(fake.got.UserData) != "u" || string(fake.got.Nonce) != "n" || string(fake.got.PublicKey) != "k" {
		t.Fatalf("request sent to the NSM: %+v", fake.got)
	}
}

func TestDeviceErrors(t *testing.T) {
	for name, fake := range map[string]*fakeSession{
		"ioctl":       {err: errors.New("ioctl failed")},
		"nsm error":   {res: response.Response{Error: "InvalidArgument"}},
		"no document": {res: response.Response{Attestation: &response.Attestation{}}},
		"no response": {},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := (&Device{sess: fake}).Attest(Request{}); !errors.Is(err, ErrDevice) {
				t.Fatalf("err = %v, want ErrDevice", err)
			}
		})
	}
	if _, err := (&Device{sess: &fakeSession{err: errors.New("x")}}).Read(make([]byte, 4)); !errors.Is(err, ErrDevice) {
		t.Fatalf("Read err = %v, want ErrDevice", err)
	}
}

func TestRequestLimits(t *testing.T) {
	fake := &fakeSession{}
	d := &Device{sess: fake}
	for _, r := range []Request{
		{UserData: make([]byte, MaxUserData+1)},
		{Nonce: make([]byte, MaxNonce+1)},
		{PublicKey: make([]byte, MaxPublicKey+1)},
	} {
		if _, err := d.Attest(r); !errors.Is(err, ErrRequest) {
			t.Errorf("err = %v, want ErrRequest", err)
		}
	}
	if fake.got != nil {
		t.Fatal("an oversized request reached the device")
	}
}

func TestOpenDeviceOutsideEnclave(t *testing.T) {
	d, err := OpenDevice()
	if err == nil {
		d.Close()
		t.Skip("/dev/nsm exists: running inside a Nitro Enclave")
	}
	if !errors.Is(err, ErrDevice) {
		t.Fatalf("err = %v, want ErrDevice", err)
	}
}
