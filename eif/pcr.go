package eif

import (
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"io"
)

// PCRSize is the size of a Nitro PCR: a SHA-384 digest.
const PCRSize = sha512.Size384

// PCR is the value of a platform configuration register.
type PCR [PCRSize]byte

// String returns the PCR in lowercase hex, as nitro-cli prints it and KMS
// policies compare it.
func (p PCR) String() string { return hex.EncodeToString(p[:]) }

// Extend returns SHA-384(p || data): p extended with data.
func (p PCR) Extend(data []byte) PCR {
	h := sha512.New384()
	h.Write(p[:])
	h.Write(data)
	return PCR(h.Sum(nil))
}

// ContentPCR returns a PCR extended once, from zero, with the SHA-384 of
// the concatenation of parts: how nitro-cli computes PCR0, PCR1, PCR2
// and PCR8.
func ContentPCR(parts ...[]byte) PCR {
	h := sha512.New384()
	for _, p := range parts {
		h.Write(p)
	}
	return finish(h)
}

func finish(h hash.Hash) PCR { return PCR{}.Extend(h.Sum(nil)) }

// PCR3 returns the PCR3 of an enclave whose parent instance has the IAM
// role roleARN: zero extended with the ARN's UTF-8 bytes themselves, as
// the AWS Nitro Enclaves User Guide computes it ("Where to get an
// enclave's measurements").
func PCR3(roleARN string) PCR { return PCR{}.Extend([]byte(roleARN)) }

// PCR4 returns the PCR4 of an enclave whose parent is the instance
// instanceID (for example i-1234567890abcdef0), computed like PCR3.
func PCR4(instanceID string) PCR { return PCR{}.Extend([]byte(instanceID)) }

// PCR8 returns the PCR8 of an image signed with the certificate whose DER
// is certDER.
func PCR8(certDER []byte) PCR { return ContentPCR(certDER) }

// Measurements are the PCRs nitro-cli computes for an image.
type Measurements struct {
	PCR0 PCR // kernel, cmdline and every ramdisk
	PCR1 PCR // kernel, cmdline and the first ramdisk
	PCR2 PCR // the ramdisks after the first
	// PCR8 is the signing certificate's measurement; zero, and Signed
	// false, for an unsigned image.
	PCR8   PCR
	Signed bool
}

// measurer feeds section data to the PCR0, PCR1 and PCR2 hashes.
type measurer struct {
	pcr0, pcr1, pcr2 hash.Hash
	certDER          []byte // the signing certificate, if any
}

func newMeasurer() *measurer {
	return &measurer{pcr0: sha512.New384(), pcr1: sha512.New384(), pcr2: sha512.New384()}
}

// writer returns where the data of a section of type t goes; ramdisk is
// its index among the ramdisks. Sections that are not measured go nowhere.
func (m *measurer) writer(t SectionType, ramdisk int) io.Writer {
	switch {
	case t == SectionKernel || t == SectionCmdline || t == SectionRamdisk && ramdisk == 0:
		return io.MultiWriter(m.pcr0, m.pcr1)
	case t == SectionRamdisk:
		return io.MultiWriter(m.pcr0, m.pcr2)
	}
	return io.Discard
}

func (m *measurer) result() Measurements {
	ms := Measurements{PCR0: finish(m.pcr0), PCR1: finish(m.pcr1), PCR2: finish(m.pcr2)}
	if m.certDER != nil {
		ms.PCR8, ms.Signed = PCR8(m.certDER), true
	}
	return ms
}
