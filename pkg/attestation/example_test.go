package attestation_test

import (
	"fmt"
	"os"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

func ExampleVerify() {
	raw, err := os.ReadFile("testdata/anjuna_2021-03-24_prod_rsa_pubkey.cbor")
	if err != nil {
		fmt.Println(err)
		return
	}
	// A real caller passes time.Now(); this document's leaf certificate
	// expired three hours after it was made.
	doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: time.UnixMilli(1616602241734)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(doc.ModuleID)
	fmt.Printf("PCR0 %x…\n", doc.PCRs[0][:8])
	fmt.Println(len(doc.PublicKey), "byte public key")
	// Output:
	// i-0a6d65e7122308898-enc017846bcd2f820da
	// PCR0 672cd3c91b7ac756…
	// 294 byte public key
}

func ExamplePolicy_Check() {
	raw, err := os.ReadFile("testdata/anjuna_2024-01-24_debug_pk_ud_nonce.cbor")
	if err != nil {
		fmt.Println(err)
		return
	}
	at := time.UnixMilli(1706120065635)
	doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: at})
	if err != nil {
		fmt.Println(err)
		return
	}
	production := attestation.Policy{
		PCRs:   map[int][]byte{0: doc.PCRs[0]},
		Nonce:  attestation.Equal([]byte("Nonce\n")),
		MaxAge: 5 * time.Minute,
	}
	fmt.Println(production.Check(doc, at.Add(time.Minute)))

	development := production
	development.AllowDebug = true
	fmt.Println(development.Check(doc, at.Add(time.Minute)))
	fmt.Println(development.Check(doc, at.Add(time.Hour)))
	// Output:
	// attestation: policy violation: debug-mode enclave
	// <nil>
	// attestation: policy violation: stale document: older than 5m0s
}
