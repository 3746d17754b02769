// Package eif reads and writes AWS Nitro Enclaves image files (EIF) and
// computes the measurements nitro-cli prints for them (PCR0, PCR1, PCR2
// and PCR8), so that an operator can know a release's PCRs from the file
// alone and write the KMS key policy that binds them.
//
// # Layout
//
// Taken from aws/aws-nitro-enclaves-image-format, the library nitro-cli
// builds and describes EIFs with: src/defs/mod.rs (EifHeader,
// EifSectionHeader, EifSectionType, PcrSignature), src/utils/mod.rs
// (EifBuilder: section order, offsets, CRC, measure) and
// src/utils/eif_reader.rs (EifReader, behind `nitro-cli describe-eif`).
// Every integer is big-endian.
//
// The header is 548 bytes:
//
//	offset  size  field
//	     0     4  magic ".eif" (2e 65 69 66)
//	     4     2  version (4 today; 2 added the CRC, 3 the signature
//	              section, 4 the metadata section)
//	     6     2  flags: bit 0 set for aarch64, clear for x86_64; no others
//	     8     8  default_mem: enclave memory in bytes (nitro-cli: 1 GiB)
//	    16     8  default_cpus (nitro-cli: 2)
//	    24     2  reserved (0)
//	    26     2  num_sections (at most 32)
//	    28   256  section_offsets[32]: file offset of each section header
//	   284   256  section_sizes[32]: size of each section's data
//	   540     4  unused (0)
//	   544     4  eif_crc32
//
// Sections follow the header back to back, each a 12-byte section header
// (type u16, flags u16, size u64) and size bytes of data. The types are 1
// kernel, 2 cmdline, 3 ramdisk, 4 signature, 5 metadata (0 is invalid).
// EifBuilder writes them in the order kernel, cmdline, metadata (version
// 4), the ramdisks (the first is AWS's bootstrap ramdisk, the others the
// application), then the signature (signed images only).
//
// eif_crc32 is the CRC-32 (IEEE, as zlib and Go's hash/crc32 compute it) of
// the first 544 bytes of the header followed by every section header and
// section data in file order: the whole file except the CRC field itself.
//
// The signature section is a CBOR array of PcrSignature maps with the text
// keys "signing_certificate" (the PEM certificate) and "signature" (a
// COSE_Sign1 over PCR0), each serialised by serde as an array of unsigned
// integers below 256. nitro-cli uses only the first entry.
//
// The metadata section is JSON (EifIdentityInfo: build time, tool and
// Docker information). It is not measured, so two EIFs of one image can
// differ in bytes and still have the same PCRs.
//
// # Measurements
//
// A PCR starts as 48 zero bytes and is extended with SHA-384(PCR || data).
// nitro-cli (EifHasher without cache, then tpm_extend_finalize_reset)
// extends each EIF register once, with the SHA-384 of the concatenation of
// the measured section data, in file order:
//
//   - PCR0: kernel, cmdline and every ramdisk;
//   - PCR1: kernel, cmdline and the first ramdisk;
//   - PCR2: every ramdisk after the first;
//   - PCR8: the DER of the signing certificate (signed images only).
//
// Section headers, the metadata and the signature themselves are not
// measured. PCR3 (the parent's IAM role ARN) and PCR4 (the parent's
// instance ID) are extended by the hypervisor with the raw UTF-8 string,
// not its hash: see [PCR3] and [PCR4].
//
// # Strictness
//
// [Read] accepts the layouts EifBuilder writes (and those of versions 2
// and 3, without metadata or signature), and refuses anything else with
// an error wrapping [ErrMalformed] that names the problem: a
// wrong magic, a version other than 2 to 4, unknown flags, non-zero
// reserved fields, a section table whose offsets and sizes do not describe
// contiguous sections from byte 548, section headers that disagree with
// the table, sections out of order or repeated, no ramdisk, a cmdline with
// a NUL byte, metadata that is not JSON, a signature section whose first
// certificate does not parse, bytes after the last section, and a CRC
// mismatch. It reads the file once, front to back, and keeps in memory only
// the small sections (cmdline, metadata, signature) unless asked to keep
// everything; the header's sizes are checked against ReadOptions.MaxSize
// and the small sections' limits before any section is read. Because the layout is then fully determined by the
// header fields and the sections, [Write] reproduces an accepted file byte
// for byte.
package eif
