package cms

import "bytes"

// Parse decodes a KMS CiphertextForRecipient (BER) without decrypting it.
// It checks, in order:
//
//  1. the input is at most MaxSize bytes and is exactly one BER element;
//  2. it is a ContentInfo SEQUENCE of contentType envelopedData and one
//     [0] EXPLICIT content;
//  3. the content is an EnvelopedData SEQUENCE of version 2, a SET of
//     exactly one recipient and an EncryptedContentInfo, with no
//     originatorInfo and no unprotectedAttrs;
//  4. the recipient is a KeyTransRecipientInfo of version 2 with a
//     [0] SubjectKeyIdentifier rid of 32 bytes, an AlgorithmIdentifier
//     that is byte for byte one of the encodings of RSAES-OAEP with SHA-256,
//     MGF1-SHA-256 and the empty label (sha256 parameters NULL, as KMS
//     writes them, or absent, as RFC 4055 prefers), and an encryptedKey of
//     1..512 bytes;
//  5. the EncryptedContentInfo has contentType id-data, algorithm
//     AES-256-CBC with a 16-byte OCTET STRING IV, and an encryptedContent
//     [0], primitive or constructed from primitive OCTET STRINGs, whose
//     length is a positive multiple of 16.
//
// Every failure wraps ErrMalformed. The returned parts alias ber.
func Parse(ber []byte) (*EnvelopedData, error) {
	if len(ber) > MaxSize {
		return nil, malformed("input larger than MaxSize")
	}
	ci, err := readOne(ber)
	if err != nil {
		return nil, malformed("ContentInfo: " + err.Error())
	}
	env, err := parseContentInfo(ci)
	if err != nil {
		return nil, err
	}
	return parseEnvelopedData(env)
}

// parseContentInfo returns the EnvelopedData inside a ContentInfo.
func parseContentInfo(ci element) (element, error) {
	parts, err := sequence(ci, 2, "ContentInfo")
	if err != nil {
		return element{}, err
	}
	if !isOID(parts[0], oidEnvelopedData) {
		return element{}, malformed("content type is not envelopedData")
	}
	inner, err := explicit(parts[1], "ContentInfo content")
	if err != nil {
		return element{}, err
	}
	return inner, nil
}

// parseEnvelopedData checks step 3 of Parse and decodes the rest.
func parseEnvelopedData(env element) (*EnvelopedData, error) {
	parts, err := sequence(env, 3, "EnvelopedData")
	if err != nil {
		return nil, err
	}
	if !isVersion2(parts[0]) {
		return nil, malformed("EnvelopedData version is not 2")
	}
	ri, err := onlyRecipient(parts[1])
	if err != nil {
		return nil, err
	}
	ed := new(EnvelopedData)
	if err := parseKTRI(ri, ed); err != nil {
		return nil, err
	}
	if err := parseEncryptedContentInfo(parts[2], ed); err != nil {
		return nil, err
	}
	return ed, nil
}

// onlyRecipient returns the single RecipientInfo of a recipientInfos SET.
func onlyRecipient(set element) (element, error) {
	if !set.is(classUniversal, tagSet, true) {
		return element{}, malformed("recipientInfos is not a SET")
	}
	ris, err := readChildren(set, 0)
	if err != nil {
		return element{}, malformed("recipientInfos: " + err.Error())
	}
	if len(ris) != 1 {
		return element{}, malformed("not exactly one recipient")
	}
	return ris[0], nil
}

// parseKTRI checks step 4 of Parse.
func parseKTRI(ri element, ed *EnvelopedData) error {
	parts, err := sequence(ri, 4, "KeyTransRecipientInfo")
	if err != nil {
		return err
	}
	rid, alg, key := parts[1], parts[2], parts[3]
	switch {
	case !isVersion2(parts[0]):
		return malformed("KeyTransRecipientInfo version is not 2")
	case !rid.is(classContext, 0, false) || len(rid.content) != SKISize:
		return malformed("rid is not a 32-byte SubjectKeyIdentifier")
	case !isOAEPSHA256(alg):
		return malformed("key encryption algorithm is not RSAES-OAEP with SHA-256 and MGF1-SHA-256")
	case !key.is(classUniversal, tagOctetString, false) ||
		len(key.content) == 0 || len(key.content) > maxEncryptedKeySize:
		return malformed("encryptedKey is not an OCTET STRING of 1..512 bytes")
	}
	ed.RecipientSKI, ed.EncryptedKey = rid.content, key.content
	return nil
}

// parseEncryptedContentInfo checks step 5 of Parse.
func parseEncryptedContentInfo(eci element, ed *EnvelopedData) error {
	parts, err := sequence(eci, 3, "EncryptedContentInfo")
	if err != nil {
		return err
	}
	if !isOID(parts[0], oidData) {
		return malformed("encrypted content type is not id-data")
	}
	if ed.IV, err = parseAES256CBC(parts[1]); err != nil {
		return err
	}
	if ed.EncryptedContent, err = encryptedContent(parts[2]); err != nil {
		return err
	}
	return nil
}

// parseAES256CBC returns the IV of an AES-256-CBC AlgorithmIdentifier.
func parseAES256CBC(alg element) ([]byte, error) {
	parts, err := sequence(alg, 2, "content encryption algorithm")
	if err != nil {
		return nil, err
	}
	if !isOID(parts[0], oidAES256CBC) {
		return nil, malformed("content encryption algorithm is not AES-256-CBC")
	}
	iv := parts[1]
	if !iv.is(classUniversal, tagOctetString, false) || len(iv.content) != IVSize {
		return nil, malformed("IV is not a 16-byte OCTET STRING")
	}
	return iv.content, nil
}

// encryptedContent returns the ciphertext of an encryptedContent [0],
// primitive or constructed from primitive OCTET STRING chunks.
func encryptedContent(e element) ([]byte, error) {
	if e.class != classContext || e.tag != 0 {
		return nil, malformed("encryptedContent is not [0]")
	}
	ct := e.content
	if e.constructed {
		var err error
		if ct, err = joinChunks(e); err != nil {
			return nil, err
		}
	}
	if len(ct) == 0 || len(ct)%blockSize != 0 {
		return nil, malformed("encryptedContent is not a positive multiple of the block size")
	}
	return ct, nil
}

// joinChunks concatenates the primitive OCTET STRINGs of a constructed
// string. Nested constructed chunks are refused: KMS does not emit them.
func joinChunks(e element) ([]byte, error) {
	chunks, err := readChildren(e, 0)
	if err != nil {
		return nil, malformed("encryptedContent: " + err.Error())
	}
	var out []byte
	for _, c := range chunks {
		if !c.is(classUniversal, tagOctetString, false) {
			return nil, malformed("encryptedContent chunk is not a primitive OCTET STRING")
		}
		out = append(out, c.content...)
	}
	return out, nil
}

// sequence checks that e is a constructed SEQUENCE of exactly n elements
// and returns them.
func sequence(e element, n int, what string) ([]element, error) {
	if !e.is(classUniversal, tagSequence, true) {
		return nil, malformed(what + " is not a SEQUENCE")
	}
	parts, err := readChildren(e, 0)
	if err != nil {
		return nil, malformed(what + ": " + err.Error())
	}
	if len(parts) != n {
		return nil, malformed(what + " has the wrong number of fields")
	}
	return parts, nil
}

// explicit returns the one element inside a constructed [0] EXPLICIT tag.
func explicit(e element, what string) (element, error) {
	if !e.is(classContext, 0, true) {
		return element{}, malformed(what + " is not [0] EXPLICIT")
	}
	inner, err := readChildren(e, 0)
	if err != nil {
		return element{}, malformed(what + ": " + err.Error())
	}
	if len(inner) != 1 {
		return element{}, malformed(what + " does not hold exactly one element")
	}
	return inner[0], nil
}

func isOID(e element, want []byte) bool {
	return e.is(classUniversal, tagOID, false) && bytes.Equal(e.content, want)
}

func isOAEPSHA256(e element) bool {
	for _, enc := range oaepSHA256AlgIDs {
		if bytes.Equal(e.raw, enc) {
			return true
		}
	}
	return false
}

func isVersion2(e element) bool {
	return e.is(classUniversal, tagInteger, false) && bytes.Equal(e.content, []byte{2})
}
