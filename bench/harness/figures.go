//go:build !release

package harness

import (
	"fmt"
	"strings"
)

// Sections of the report, and how their figures are measured.
const (
	secOnline    = "Online sign through the whole stack"
	methodOnline = "Every client is an API caller of its own (a signer certificate issued with the devnet's client CA, " +
		"an attested gRPC connection from pkg/apiclient); client i talks to cosigner i mod N, which signs " +
		"with itself and the next threshold−1 cosigners. All clients start at once; each makes its signs one " +
		"after the other. Before each load the harness waits until, for 3 s, no frame has crossed the broker " +
		"and the devnet's processes have used less than a tenth of a core (read from /proc), so that " +
		"presignature pools, when the stack runs them, are warm and no refill shares the cores; the " +
		"one-client CMP load makes 4 signs, which a warm default pool (Target 8, refilled below 4) serves " +
		"without starting a refill. Latency runs from the Sign call to the signature in hand (Sign waits up " +
		"to 2 minutes, longer operations are polled every 250 ms); every CMP signature is checked (it must " +
		"recover to the key). p50 and p99 by nearest rank: with few samples, p99 is the slowest sign. CMP " +
		"signs are EIP-191 messages, FROST signs one-input Taproot PSBT spends, both allowed by the devnet's " +
		"default policy; every signer runs its whole judge (parse, policy, the devnet's approval callback, an " +
		"audit entry durable in S3). Names without _cN are for 1 client; _c10 and _c50 for 10 and 50 " +
		"concurrent clients; _n is the number of signs measured, _failed the number that failed."

	secThroughput    = "Throughput"
	methodThroughput = "Signs completed over the time from the start of a load to the end of its last sign. Burst: 50 " +
		"clients start at once with one sign each (CMP; 4 each for FROST), from warm pools when the stack " +
		"runs them. Sustained: 10 clients in a closed loop, 3 signs each for CMP (30 signs, more than a " +
		"2-of-3 key's warm pools hold, so refills or full signs pace the end of it), 10 each for FROST."

	secRatios    = "Whole stack against the bare library"
	methodRatios = "Keygen: CreateKey through cosigner-1's API (admin) until the key is returned, durable on every " +
		"party, against cmp.Keygen of three parties. Full sign: one EIP-191 sign through the API along " +
		"derivation path 0 — the node claims a presignature only for an underived single-digest sign, so this " +
		"is a full CMP sign whether pools run or not — against cmp.Sign by two parties. Refresh: RefreshKey " +
		"through the API against cmp.Refresh. The library runs every party in this process over Go channels " +
		"(no encoding, transport or storage; bench/harness/lib.go is a minimal driver written for this, the " +
		"same scheme as enclave/mpc's benchmarks); the stack runs separate enclave processes on the same " +
		"cores. Stack and library alternate which goes first, and the harness waits for the devnet to go " +
		"quiet (pool refills done) after each stack operation; each ratio is total stack time over total " +
		"library time; the _ms_ figures are medians. On a machine that other work competes for, the " +
		"kernel's fair scheduler gives the stack's several enclave processes more CPU time than the " +
		"library's one process (each runs up to GOMAXPROCS threads), which favours the stack: only a quiet " +
		"machine gives fair ratios."

	secTSS    = "Beside bnb-chain/tss-lib"
	methodTSS = "bench/tsslib, a Go module of its own (tss-lib never enters the product's go.mod), runs a tss-lib " +
		"keygen of three parties (pre-parameters taken from tss-lib's published test fixtures, so no safe-prime " +
		"search) and times GG18-style signs by two, every party in one process, messages routed by tss-lib's own " +
		"test helper (wire encoding included). full_sign_ratio_vs_tsslib is the median full sign through our " +
		"stack over the median tss-lib sign; lib_sign_ratio_vs_tsslib compares the two bare libraries."

	secBroker    = "Broker bytes"
	methodBroker = "A NATS subscriber on cosigner.inbox.> counts the payload bytes of every frame the parents publish to " +
		"the devnet's broker (each frame once: JetStream deliveries use other subjects; NATS protocol bytes " +
		"and acks are not counted), the coordinator's propose/accept/go messages included: over the " +
		"one-client CMP load (the API's sign as it runs: from a presignature when a pool serves it, else a " +
		"full sign), over the full signs along a derivation path, and over the one-client FROST load. Per " +
		"party is bytes over signs over signing parties."

	secStorage    = "Sealed state (synthetic keys)"
	methodStorage = "Creating thousands of keys by MPC keygen is far too slow, so these figures drive enclave/sealed " +
		"directly, in this process, against gofakes3 (in memory) and the KMS emulator over loopback HTTP, with " +
		"synthetic key records: CMP 2-of-3 records whose share is random bytes of the size of a real share " +
		"(cmp_share_bytes_2of3, from this run's library keygen). Restore: sealed.Open of a state of N keys into an " +
		"empty directory (fetch the wrapped key; KMS Decrypt with a Recipient document, RSA-2048 key generation " +
		"included; download and verify the snapshot; replay the tail; take over) and one GetKey; median of the " +
		"repetitions. The state was just built, so its tail is right after a compaction; enclave/sealed's " +
		"BenchmarkRestore also measures the longest tail. S3 bytes per key created with N keys stored: the PUT " +
		"bytes of a few key creations (one segment each), plus the snapshot that every 1000th mutation uploads " +
		"(Store.Snapshot's size at N keys) shared over those 1000. Memory per key: a child process (bench hold) " +
		"boots a state as an enclave does and reads every key with its share; its memory is its resident set " +
		"after a GC plus the database's bytes (the database lives in tmpfs in an enclave, i.e. in enclave " +
		"memory); per key is the difference between the largest and the smallest state over their difference " +
		"in keys."

	secDevnet    = "Devnets"
	methodDevnet = "devnet_start: cmd/cosignerctl/devnet.Start on a fresh directory (every enclave boots twice: once " +
		"with --init for its roster entry, then as a cosigner), until every cosigner answers an attested " +
		"call. pool_warmup: from a new CMP key's return until, for 3 s, no frame has crossed the broker and " +
		"the devnet's processes have used less than a tenth of a core, read from /proc (3 s is the least it " +
		"can be): the time the stack takes to fill the key's presignature pools."
)

// Goals of issue 9. KB is 1024 bytes.
const (
	goalP50Ms      = 5
	goalP99Ms      = 25
	goalBurst      = 500
	goalRatio      = 1.15
	goalRestoreS   = 2
	goalS3PerKey   = 12 << 10
	goalBrokerSign = 2 << 10
)

// addPair reports a stack-against-library pair of op on 2-of-3.
func (r *run) addPair(op string, p paired) {
	sec := r.report.section(secRatios, methodRatios)
	sec.add(op+"_ms_stack_2of3", ms(median(p.a)), "ms")
	sec.add(op+"_ms_lib_2of3", ms(median(p.b)), "ms")
	sec.add(op+"_ratio_vs_lib_2of3", p.ratio(), "ratio").atMost(goalRatio, fmt.Sprintf(
		"The stack runs three enclave processes on the same %d cores and adds the coordinator's "+
			"propose/accept/go, two broker trips per round (signed frames with attestation documents), the "+
			"judges' policy, approval and audit steps%s; not broken down here. %d repetition(s).",
		describeMachine().Cores, storeNote(op), len(p.a)))
}

func storeNote(op string) string {
	if op == "full_sign" {
		return ""
	}
	return ", and a durable S3 write of each new share before answering; safe-prime search makes keygen and refresh times vary widely from run to run"
}

// addOnline reports one sign load.
func (r *run) addOnline(kind, devnet string, l load, res loadResult) {
	suffix := loadSuffix(devnet, l)
	why := r.whyOnline(kind, devnet, l)
	sec := r.report.section(secOnline, methodOnline)
	if len(res.lat) > 0 {
		sec.add(fmt.Sprintf("%s_p50_ms_%s", kind, suffix), ms(percentile(res.lat, 50)), "ms").atMost(goalP50Ms, why)
		sec.add(fmt.Sprintf("%s_p99_ms_%s", kind, suffix), ms(percentile(res.lat, 99)), "ms").atMost(goalP99Ms, why)
	}
	sec.add(fmt.Sprintf("%s_n_%s", kind, suffix), float64(len(res.lat)), "signs")
	if err := res.err(); err != nil {
		sec.add(fmt.Sprintf("%s_failed_%s", kind, suffix), float64(len(res.errs)), "signs").atMost(0, whyFailed(res, l))
	}
	if l.role == "" {
		return
	}
	why = r.whyThroughput(kind, devnet, l)
	if len(res.errs) > 0 {
		why += fmt.Sprintf(" %d of the %d signs failed (see %s_failed_%s).", len(res.errs), len(res.errs)+len(res.lat), kind, suffix)
	}
	r.report.section(secThroughput, methodThroughput).add(throughputName(kind, devnet, l), res.throughput(), "signs/s").
		atLeast(goalBurst, why)
}

// loadSuffix names a load's figures: the devnet, _cN for N > 1 clients,
// _sustained for the sustained load.
func loadSuffix(devnet string, l load) string {
	s := devnet
	if l.clients > 1 {
		s += fmt.Sprintf("_c%d", l.clients)
	}
	if l.role == "sustained" {
		s += "_sustained"
	}
	return s
}

func throughputName(kind, devnet string, l load) string {
	prefix := ""
	if kind == "frost_sign" {
		prefix = "frost_"
	}
	return prefix + l.role + "_sign_per_s_" + devnet
}

func whyFailed(res loadResult, l load) string {
	err := res.err()
	why := fmt.Sprintf("%v; no latency is counted for a failed sign.", err)
	if res.collisions > 0 {
		why += fmt.Sprintf(" The enclaves logged %q %d time(s) during this load: clients on different cosigners "+
			"of the same signer set claimed the same presignature from their own copies of the set's pool, and "+
			"the later sign fails (mpc.Engine.ClaimPresignature documents this race); the API reports it as "+
			"INTERNAL.", presigUnavailable, res.collisions)
	}
	if strings.Contains(err.Error(), "DEADLINE") {
		why += fmt.Sprintf(" DEADLINE_EXCEEDED: the session did not end within node.DefaultSignTimeout (3 minutes); "+
			"%d sessions at once share the machine's cores, and the harness cannot tell whether that alone "+
			"explains it.", l.clients*l.perClient)
	}
	return why
}

func (r *run) whyOnline(kind, devnet string, l load) string {
	var b strings.Builder
	switch {
	case kind == "online_sign" && r.pools[devnet]:
		b.WriteString("Even from a presignature, a sign crosses the broker for the coordinator's propose/accept/go " +
			"and the online round, and every signer's judge calls the approval server and makes its audit entry " +
			"durable in S3 (frost_sign_* shows the same costs around FROST); not broken down here.")
		if l.clients*l.perClient > poolTarget {
			fmt.Fprintf(&b, " Of %d signs, those beyond a signer set's pool (%d presignatures by default) ran as "+
				"full signs.", l.clients*l.perClient, poolTarget)
		}
	case kind == "online_sign":
		b.WriteString("No presignature pool served these signs (see Notes): they are full CMP signs, with " +
			"presign's Paillier and zero-knowledge work in the latency.")
	default:
		b.WriteString("Before FROST's two rounds, the coordinator's propose/accept/go crosses the broker and every " +
			"signer's judge asks the approval server (HTTPS through the parent's egress proxy) and makes its audit " +
			"entry and spend reservation durable in S3; not broken down here.")
	}
	if l.clients > 1 {
		fmt.Fprintf(&b, " With %d clients, signs also queue for the machine's cores.", l.clients)
	}
	return b.String()
}

// mpc.PoolConfig's defaults.
const (
	poolTarget   = 8
	poolLowWater = 4
)

func (r *run) whyThroughput(kind, devnet string, l load) string {
	switch {
	case kind != "online_sign":
		return "Every FROST sign makes several durable S3 writes and an approval call on each signer, and runs all " +
			"cosigners' processes on the same cores."
	case r.pools[devnet] && l.role == "sustained":
		return "Once the pools are drained, signs run as full signs or wait for refills, which run one presign " +
			"session at a time per pool (PoolConfig.Concurrent 1)."
	case r.pools[devnet]:
		return fmt.Sprintf("The warm pools hold %d presignatures per signer set by default; the rest of the burst "+
			"ran as full signs, which are CPU-bound.", poolTarget)
	}
	why := "Full CMP signs (no pool) are CPU-bound"
	if len(r.fullSignLib) > 0 {
		why += fmt.Sprintf(": the bare library alone takes %.1f s per 2-of-3 sign here", median(r.fullSignLib).Seconds())
	}
	return why + fmt.Sprintf(", on %d shared cores.", describeMachine().Cores)
}

// addBroker reports broker bytes and frames per sign per party.
// full says the signs were full CMP signs.
func (r *run) addBroker(bytesName, framesName string, c tapCount, signs, parties int, full bool) {
	if signs == 0 {
		return
	}
	sec := r.report.section(secBroker, methodBroker)
	per := float64(c.bytes) / float64(signs) / float64(parties)
	frames := float64(c.frames) / float64(signs) / float64(parties)
	why := fmt.Sprintf("%.0f frames per sign per party, %.0f bytes each on average: the enclave app leaves "+
		"peer.Config.LeanAttach off, so every frame carries the sender's attestation document", frames, per/max(frames, 1))
	if full {
		why += "; and a full CMP sign carries presign's Paillier ciphertexts and zero-knowledge proofs."
	} else {
		why += "."
	}
	sec.add(bytesName, per, "bytes").atMost(goalBrokerSign, why)
	sec.add(framesName, frames, "frames")
}
