//go:build pin

// This file only pins the project's backbone modules in go.mod until the
// packages that use them land; it is never compiled into a binary (the "pin"
// build tag is never set). Remove an import once real code imports it.
package depcheck

import (
	_ "github.com/aws/aws-sdk-go-v2/aws"
	_ "github.com/btcsuite/btcd/btcec/v2"
	_ "github.com/fxamacker/cbor/v2"
	_ "github.com/hf/nsm"
	_ "github.com/mdlayher/vsock"
	_ "github.com/mutecomm/go-sqlcipher/v4"
	_ "github.com/taurusgroup/multi-party-sig/protocols/cmp"
	_ "github.com/taurusgroup/multi-party-sig/protocols/frost"
	_ "go.uber.org/goleak"
	_ "google.golang.org/grpc"
)
