// Package link is the enclave's end of the frame stream to its parent
// (see package pkg/link for the records and handshake). The enclave has no
// network: this link, over vsock, is how its signed MPC frames reach the
// broker and how frames from other cosigners reach it.
//
// A Client dials the parent and keeps doing so, with capped backoff, for
// as long as it runs: across parent restarts and dropped connections.
//
//   - Send queues a frame for one recipient and returns; it blocks while
//     the window of frames the parent has not yet ACKed is full (Window
//     frames or WindowBytes bytes), which is the backpressure the broker
//     and parent exert on the enclave. The Client keeps each frame until
//     the parent ACKs it (published, or given up) and sends it again on
//     its next link, so a frame survives a lost link or a parent restart;
//     it may reach the broker twice. A nil error means queued, not
//     delivered.
//   - Receive is called for each frame from the parent, one at a time, in
//     a goroutine of its own; the Client ACKs the frame once Receive has
//     returned (and only if the Client is still running), and only then
//     does the parent acknowledge it to the broker. A slow Receive slows
//     the parent, which leaves the frames in the broker. Frames may arrive
//     twice: the wire layer's replay guard drops duplicates.
//
// The parent is untrusted: a parent that breaks the protocol (a malformed
// record, more than pkg/link.MaxInFlight unacknowledged frames) loses its
// link, and the Client reconnects.
package link
