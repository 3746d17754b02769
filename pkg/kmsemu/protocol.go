package kmsemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBodySize is the largest request body accepted. The largest legitimate
// request is a Decrypt with a 6 KiB blob and a 16 KiB attestation
// document, base64-encoded.
const MaxBodySize = 64 * 1024

const (
	targetPrefix = "TrentService."
	contentType  = "application/x-amz-json-1.1"
)

// handler runs one operation on a JSON body and returns the response value.
type handler func(e *Emulator, body []byte) (any, *apiError)

var operations = map[string]handler{
	"CreateKey":       (*Emulator).createKey,
	"Decrypt":         (*Emulator).decrypt,
	"Encrypt":         (*Emulator).encrypt,
	"GenerateDataKey": (*Emulator).generateDataKey,
	"GenerateRandom":  (*Emulator).generateRandom,
}

// ServeHTTP implements the KMS JSON 1.1 protocol. It never panics: an
// unexpected panic becomes a KMSInternalException.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	logOp := op // the header is untrusted: log only names we know
	if _, ok := operations[op]; !ok {
		logOp = "unknown"
	}
	defer e.recoverPanic(w, logOp)
	resp, aerr := e.handle(w, r, op)
	if aerr != nil {
		e.log.Info("kms request refused", "op", logOp, "code", aerr.code, "status", aerr.status)
		writeError(w, aerr)
		return
	}
	e.log.Info("kms request", "op", logOp, "status", http.StatusOK)
	writeJSON(w, http.StatusOK, resp)
}

// handle checks the protocol envelope, reads the body and runs op.
func (e *Emulator) handle(w http.ResponseWriter, r *http.Request, op string) (any, *apiError) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return nil, newAPIError(http.StatusNotFound, codeUnknownOperation, "only POST / is served")
	}
	if !strings.HasPrefix(r.Header.Get("X-Amz-Target"), targetPrefix) {
		return nil, newAPIError(http.StatusBadRequest, codeUnknownOperation, "missing or foreign X-Amz-Target")
	}
	run, ok := operations[op]
	if !ok {
		return nil, newAPIError(http.StatusBadRequest, codeUnknownOperation, "operation is not supported by the emulator")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != contentType {
		return nil, serialization("Content-Type must be %s", contentType)
	}
	body, aerr := readBody(w, r)
	if aerr != nil {
		return nil, aerr
	}
	return run(e, body)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, newAPIError(http.StatusRequestEntityTooLarge, codeTooLarge,
			"request body larger than %d bytes", MaxBodySize)
	case err != nil:
		return nil, serialization("cannot read the request body")
	}
	return body, nil
}

// decodeJSON decodes body into v strictly: one JSON object, no unknown
// fields, nothing after it. Errors do not echo the body.
func decodeJSON(body []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return serialization("the request body is not a valid JSON request for this operation")
	}
	if _, err := dec.Token(); err != io.EOF {
		return serialization("trailing data after the JSON request")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, errorBody(internalError())
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-RequestId", newUUID())
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, aerr *apiError) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-RequestId", newUUID())
	w.Header().Set("X-Amzn-ErrorType", aerr.code)
	w.WriteHeader(aerr.status)
	w.Write(errorBody(aerr))
}

func errorBody(aerr *apiError) []byte {
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{aerr.code, aerr.msg})
	return b
}

func (e *Emulator) recoverPanic(w http.ResponseWriter, op string) {
	if v := recover(); v != nil {
		e.log.Error("kms request panicked", "op", op, "panic", fmt.Sprintf("%T", v))
		writeError(w, internalError())
	}
}
