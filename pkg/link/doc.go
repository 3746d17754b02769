// Package link is the frame stream between a cosigner enclave and its
// parent: the one connection (vsock in production, TCP or unix sockets in
// development) over which the enclave hands signed MPC frames to the
// parent for the broker, and the parent hands the enclave the frames the
// broker holds for it. Both ends use this package; enclave/link is the
// enclave's client and parent/relay the parent's server.
//
// Frames are opaque here. The parent is untrusted: the link gives it no
// way to read or forge a frame (package wire signs and encrypts them
// inside the enclave) and asks it for no security decision. What the link
// provides is flow control and acknowledgements, so that a frame the
// broker holds is not lost when the link, the enclave or the parent
// restarts (delivery is at least once; receivers drop duplicates).
//
// # Records
//
// The stream is a sequence of records. Every integer is big-endian.
//
//	length  uint32   bytes that follow (kind and body), 1 to MaxRecordSize
//	kind    uint8
//	body    length-1 bytes, by kind:
//
//	HELLO   1  "NCLK" | min version uint16 | max version uint16 | max frame uint32
//	WELCOME 2  "NCLK" | version uint16 | max frame uint32
//	OUT     3  seq uint64 | id length uint8 | recipient ID | frame
//	IN      4  seq uint64 | frame
//	ACK     5  seq uint64
//	PING    6  nonce uint64
//	PONG    7  nonce uint64
//
// Parsing is strict: every body has exactly the length its kind implies;
// sequence numbers are not zero; a recipient ID passes CheckID; a frame is
// 1 to the receiver's max frame bytes; unknown kinds and records from the
// wrong direction end the link. Every record has exactly one encoding.
//
// # Handshake
//
// The enclave (the dialer) sends HELLO with the range of versions it
// speaks and the largest IN frame it accepts. The parent answers WELCOME
// with the version chosen (the highest both speak) and the largest OUT
// frame it accepts (its broker's limit), or closes the connection if they
// share no version. Nothing else may come first.
//
// # Flow
//
//   - OUT (enclave to parent) carries a frame for one recipient's inbox,
//     numbered by the enclave. The parent answers ACK with the same number
//     once it is done with the frame: published to the broker, or given
//     up after its bounded retries. The enclave keeps a frame until it is
//     ACKed and sends it again on its next connection, so a frame is not
//     lost with a link or a parent; it may be published twice.
//   - IN (parent to enclave) carries one frame from the enclave's inbox,
//     numbered by the parent. The enclave answers ACK once it has taken the
//     frame; only then does the parent acknowledge it to the broker. At
//     most MaxInFlight IN records may be unacknowledged on a link.
//   - PING asks the peer to answer PONG with the same nonce. Each side
//     pings at an interval and ends the link when nothing arrived for its
//     idle timeout.
//
// A record that breaks these rules ends the link; the enclave reconnects.
package link
