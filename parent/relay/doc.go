// Package relay moves opaque MPC frames between the enclave and the
// message broker: frames the enclave sends (OUT records on the link, see
// package link) are published to their recipients' inboxes, and frames
// in this cosigner's inbox are handed to the enclave (IN records). The
// relay never parses, alters or filters a frame and makes no security
// decision: the enclaves sign, encrypt, verify and drop duplicates.
//
// # Delivery: at least once, both ways
//
// Enclave to broker: the relay ACKs an OUT record once Broker.Publish has
// stored the frame, or once it gave up on it (a permanent error such as
// broker.ErrFrameTooLarge, or PublishTimeout of retries with capped
// backoff; counted in Stats.PublishDropped). The enclave keeps every
// un-ACKed frame and sends it again on its next link, so frames queued in
// a relay that stops or loses its link are not lost; they may be published
// twice.
//
// Broker to enclave: the subscription's handler writes one IN record,
// waits for the enclave's ACK and only then returns nil, so the broker
// forgets a frame only once the enclave has taken it. When the handler
// cannot hand the frame over it returns an error and the broker delivers
// it again after its retry delay. Choice: the handler waits a bounded
// time rather than failing at once or blocking: up to LinkWait for an
// enclave link (so a reconnect or restart of the enclave costs no
// redelivery), then up to AckTimeout for the ACK. Keep LinkWait plus
// AckTimeout below the broker's redelivery timeout (NATS AckWait, SQS
// visibility timeout) to avoid needless duplicates. A frame larger than
// the enclave accepts (it says so in the handshake) can never be handed
// over: it is acknowledged and dropped (Stats.InDropped).
//
// # Bounded memory and backpressure
//
// Inbound, the relay holds at most one frame: the broker adapters call
// the handler one frame at a time, and the rest stays in the broker.
// Outbound, OUT frames wait in a queue bounded by QueueLen frames and
// QueueBytes bytes for Publishers workers. When it is full, the link
// reader stops reading, so the enclave's writes stall; the enclave's own
// window of un-ACKed frames (enclave/link) normally stops it first. At
// most QueueLen+Publishers OUT frames (or QueueBytes plus Publishers
// frames) and one IN frame are in memory at once, besides the link's
// read buffer. While the reader is stopped it reads no ACK either, so an
// inbox frame may then time out (AckTimeout) and come again: overload
// costs duplicates, never memory.
//
// # Links
//
// The relay serves one enclave link at a time: a link that completes the
// handshake replaces the one before it (the enclave reconnects after a
// restart), and the frames the old one had queued are still published.
// Anyone who can connect to Listener can take the link over; that costs
// availability only, since every frame is signed inside the enclaves.
//
// Run subscribes to the inbox of Self and retries a Subscribe that fails
// to set up; the broker adapters reconnect on their own. Run returns when
// its context ends, once every goroutine it started has returned.
package relay
