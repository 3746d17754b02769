package kmsemu

import (
	"crypto/rand"
	"maps"
	"net/http"
	"slices"
)

// Values of the key and algorithm enumerations the emulator supports.
const (
	keySpec             = "SYMMETRIC_DEFAULT"
	keyUsage            = "ENCRYPT_DECRYPT"
	encryptionAlgorithm = "SYMMETRIC_DEFAULT"
)

// KMS size limits.
const (
	maxPlaintext        = 4096
	maxRandomBytes      = 1024
	maxContextSize      = 8192
	maxDescriptionBytes = 8192
)

// ---- CreateKey ----

type createKeyRequest struct {
	Policy                         string
	Description                    string
	KeyUsage                       string
	KeySpec                        string
	CustomerMasterKeySpec          string
	Origin                         string
	CustomKeyStoreId               string
	XksKeyId                       string
	MultiRegion                    *bool
	BypassPolicyLockoutSafetyCheck bool
	Tags                           []struct{ TagKey, TagValue string }
}

type createKeyResponse struct {
	KeyMetadata keyMetadata
}

func (e *Emulator) createKey(body []byte) (any, *apiError) {
	var req createKeyRequest
	if aerr := decodeJSON(body, &req); aerr != nil {
		return nil, aerr
	}
	if aerr := checkCreateKey(&req); aerr != nil {
		return nil, aerr
	}
	doc := req.Policy
	if doc == "" {
		doc = defaultPolicy
	}
	pol, aerr := parsePolicy(doc)
	if aerr != nil {
		return nil, aerr
	}
	k, err := newKMSKey(newUUID(), e.opts.Now(), req.Description, doc, pol)
	if err != nil {
		return nil, internalError()
	}
	if aerr := e.addKey(k); aerr != nil {
		return nil, aerr
	}
	return createKeyResponse{KeyMetadata: e.metadata(k)}, nil
}

func checkCreateKey(req *createKeyRequest) *apiError {
	switch {
	case !oneOf(req.KeyUsage, "", keyUsage):
		return unsupported("only ENCRYPT_DECRYPT keys are supported by the emulator")
	case !oneOf(req.KeySpec, "", keySpec) || !oneOf(req.CustomerMasterKeySpec, "", keySpec):
		return unsupported("only SYMMETRIC_DEFAULT keys are supported by the emulator")
	case !oneOf(req.Origin, "", "AWS_KMS") || req.CustomKeyStoreId != "" || req.XksKeyId != "":
		return unsupported("only AWS_KMS-origin keys are supported by the emulator")
	case req.MultiRegion != nil && *req.MultiRegion:
		return unsupported("multi-Region keys are not supported by the emulator")
	case len(req.Description) > maxDescriptionBytes:
		return validation("Description is too long")
	}
	return nil
}

// addKey stores k, saving the state file first when there is one: the
// key exists once addKey returns nil, and is on disk by then.
func (e *Emulator) addKey(k *kmsKey) *apiError {
	k.arn = e.arn(k.id)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.statePath != "" {
		next := maps.Clone(e.keys)
		next[k.id] = k
		if err := saveState(e.statePath, next); err != nil {
			e.log.Error("kms state not saved", "err", err)
			return internalError()
		}
	}
	e.keys[k.id] = k
	return nil
}

// ---- Encrypt ----

type encryptRequest struct {
	KeyId               string
	Plaintext           []byte
	EncryptionContext   map[string]string
	GrantTokens         []string
	EncryptionAlgorithm string
	DryRun              *bool
}

type encryptResponse struct {
	CiphertextBlob      []byte
	KeyId               string
	EncryptionAlgorithm string
}

func (e *Emulator) encrypt(body []byte) (any, *apiError) {
	var req encryptRequest
	if aerr := decodeJSON(body, &req); aerr != nil {
		return nil, aerr
	}
	defer clear(req.Plaintext)
	if len(req.Plaintext) == 0 || len(req.Plaintext) > maxPlaintext {
		return nil, validation("Plaintext must be 1 to %d bytes", maxPlaintext)
	}
	if aerr := checkAlgorithm(req.EncryptionAlgorithm); aerr != nil {
		return nil, aerr
	}
	k, aerr := e.prepare(req.KeyId, "kms:Encrypt", req.EncryptionContext, nil, req.DryRun)
	if aerr != nil {
		return nil, aerr
	}
	return encryptResponse{CiphertextBlob: k.seal(req.Plaintext, req.EncryptionContext),
		KeyId: k.arn, EncryptionAlgorithm: encryptionAlgorithm}, nil
}

// ---- GenerateDataKey ----

type generateDataKeyRequest struct {
	KeyId             string
	EncryptionContext map[string]string
	NumberOfBytes     *int
	KeySpec           string
	GrantTokens       []string
	Recipient         *recipientInfo
	DryRun            *bool
}

type generateDataKeyResponse struct {
	CiphertextBlob         []byte
	Plaintext              []byte `json:",omitempty"`
	KeyId                  string
	CiphertextForRecipient []byte `json:",omitempty"`
}

func (e *Emulator) generateDataKey(body []byte) (any, *apiError) {
	var req generateDataKeyRequest
	if aerr := decodeJSON(body, &req); aerr != nil {
		return nil, aerr
	}
	size, aerr := dataKeySize(req.KeySpec, req.NumberOfBytes)
	if aerr != nil {
		return nil, aerr
	}
	rcp, aerr := e.verifyRecipient(req.Recipient)
	if aerr != nil {
		return nil, aerr
	}
	k, aerr := e.prepare(req.KeyId, "kms:GenerateDataKey", req.EncryptionContext, rcp, req.DryRun)
	if aerr != nil {
		return nil, aerr
	}
	dataKey := make([]byte, size)
	rand.Read(dataKey)
	resp := generateDataKeyResponse{CiphertextBlob: k.seal(dataKey, req.EncryptionContext), KeyId: k.arn}
	resp.Plaintext, resp.CiphertextForRecipient, aerr = release(dataKey, rcp)
	return resp, aerr
}

func dataKeySize(spec string, n *int) (int, *apiError) {
	switch {
	case (spec == "") == (n == nil):
		return 0, validation("exactly one of KeySpec and NumberOfBytes is required")
	case n != nil && (*n < 1 || *n > maxRandomBytes):
		return 0, validation("NumberOfBytes must be 1 to %d", maxRandomBytes)
	case n != nil:
		return *n, nil
	case spec == "AES_256":
		return 32, nil
	case spec == "AES_128":
		return 16, nil
	}
	return 0, validation("KeySpec must be AES_256 or AES_128")
}

// ---- Decrypt ----

type decryptRequest struct {
	CiphertextBlob      []byte
	EncryptionContext   map[string]string
	GrantTokens         []string
	KeyId               string
	EncryptionAlgorithm string
	Recipient           *recipientInfo
	DryRun              *bool
	DryRunModifiers     []string
}

type decryptResponse struct {
	KeyId                  string
	Plaintext              []byte `json:",omitempty"`
	EncryptionAlgorithm    string
	CiphertextForRecipient []byte `json:",omitempty"`
}

func (e *Emulator) decrypt(body []byte) (any, *apiError) {
	var req decryptRequest
	if aerr := decodeJSON(body, &req); aerr != nil {
		return nil, aerr
	}
	if aerr := checkAlgorithm(req.EncryptionAlgorithm); aerr != nil {
		return nil, aerr
	}
	keyID, aerr := e.decryptKeyID(req.CiphertextBlob, req.KeyId)
	if aerr != nil {
		return nil, aerr
	}
	rcp, aerr := e.verifyRecipient(req.Recipient)
	if aerr != nil {
		return nil, aerr
	}
	k, aerr := e.prepare(keyID, "kms:Decrypt", req.EncryptionContext, rcp, req.DryRun)
	if aerr != nil {
		return nil, aerr
	}
	pt, ok := k.open(req.CiphertextBlob, req.EncryptionContext)
	if !ok {
		return nil, errInvalidCiphertext
	}
	resp := decryptResponse{KeyId: k.arn, EncryptionAlgorithm: encryptionAlgorithm}
	resp.Plaintext, resp.CiphertextForRecipient, aerr = release(pt, rcp)
	return resp, aerr
}

// decryptKeyID returns the ID of the key that sealed blob, checking it
// against the optional KeyId parameter.
func (e *Emulator) decryptKeyID(blob []byte, keyIDParam string) (string, *apiError) {
	id, ok := blobKeyID(blob)
	if !ok {
		return "", errInvalidCiphertext
	}
	if keyIDParam == "" {
		return id, nil
	}
	k, aerr := e.lookupKey(keyIDParam)
	if aerr != nil {
		return "", aerr
	}
	if k.id != id {
		return "", newAPIError(http.StatusBadRequest, codeIncorrectKey, "the KeyId does not identify the key that encrypted the ciphertext")
	}
	return id, nil
}

// ---- GenerateRandom ----

type generateRandomRequest struct {
	NumberOfBytes    *int
	CustomKeyStoreId string
	Recipient        *recipientInfo
}

type generateRandomResponse struct {
	Plaintext              []byte `json:",omitempty"`
	CiphertextForRecipient []byte `json:",omitempty"`
}

func (e *Emulator) generateRandom(body []byte) (any, *apiError) {
	var req generateRandomRequest
	if aerr := decodeJSON(body, &req); aerr != nil {
		return nil, aerr
	}
	if req.CustomKeyStoreId != "" {
		return nil, unsupported("custom key stores are not supported by the emulator")
	}
	if req.NumberOfBytes == nil || *req.NumberOfBytes < 1 || *req.NumberOfBytes > maxRandomBytes {
		return nil, validation("NumberOfBytes must be 1 to %d", maxRandomBytes)
	}
	rcp, aerr := e.verifyRecipient(req.Recipient)
	if aerr != nil {
		return nil, aerr
	}
	b := make([]byte, *req.NumberOfBytes)
	rand.Read(b)
	var resp generateRandomResponse
	resp.Plaintext, resp.CiphertextForRecipient, aerr = release(b, rcp)
	return resp, aerr
}

// ---- shared steps ----

// prepare runs the steps every keyed operation shares, in KMS's order:
// resolve the key, check the encryption context, authorize the action
// against the key policy (with the verified Recipient's attestation
// values), then honour DryRun.
func (e *Emulator) prepare(keyID, action string, ctx map[string]string, rcp *recipient, dryRun *bool) (*kmsKey, *apiError) {
	k, aerr := e.lookupKey(keyID)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkContext(ctx); aerr != nil {
		return nil, aerr
	}
	rc := requestContext{}
	for key, v := range ctx {
		rc[canonicalKey("kms:EncryptionContext:"+key)] = v
	}
	rcp.addConditions(rc)
	if err := k.policy.authorize(action, rc); err != nil {
		return nil, accessDenied("not authorized to perform %s on resource %s because of %v", action, k.arn, err)
	}
	if dryRun != nil && *dryRun {
		return nil, errDryRun
	}
	return k, nil
}

// release returns secret bytes the way KMS does: in the clear without a
// Recipient, else only as CMS EnvelopedData for the recipient's key (and
// the clear copy is wiped).
func release(secretBytes []byte, rcp *recipient) (plaintext, forRecipient []byte, aerr *apiError) {
	if rcp == nil {
		return secretBytes, nil, nil
	}
	defer clear(secretBytes)
	forRecipient, aerr = rcp.seal(secretBytes)
	return nil, forRecipient, aerr
}

func checkContext(ctx map[string]string) *apiError {
	n := 0
	for k, v := range ctx {
		n += len(k) + len(v)
	}
	if n > maxContextSize {
		return validation("EncryptionContext is larger than %d bytes", maxContextSize)
	}
	return nil
}

func checkAlgorithm(alg string) *apiError {
	if !oneOf(alg, "", encryptionAlgorithm) {
		return unsupported("only the SYMMETRIC_DEFAULT encryption algorithm is supported")
	}
	return nil
}

func oneOf(s string, allowed ...string) bool { return slices.Contains(allowed, s) }
