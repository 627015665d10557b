package record

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

const fileKeySize = chacha20poly1305.KeySize

// maxWrappedKey bounds what is read from an age file that should hold 32
// bytes.
const maxWrappedKey = 64 << 10

// newFileKey makes a random file key and its age wrapping to r, base64.
func newFileKey(r age.Recipient) (cipher.AEAD, string, error) {
	key := make([]byte, fileKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, "", fmt.Errorf("generate file key: %w", err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, "", fmt.Errorf("wrap file key: %w", err)
	}
	if _, err := w.Write(key); err != nil {
		return nil, "", fmt.Errorf("wrap file key: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, "", fmt.Errorf("wrap file key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, "", err
	}
	return aead, base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// openFileKey unwraps a header's wrapped key with id.
func openFileKey(wrapped string, id age.Identity) (cipher.AEAD, error) {
	if len(wrapped) > maxWrappedKey {
		return nil, fmt.Errorf("unwrap file key: wrapped key longer than %d bytes", maxWrappedKey)
	}
	b, err := base64.StdEncoding.DecodeString(wrapped)
	if err != nil {
		return nil, fmt.Errorf("unwrap file key: %w", err)
	}
	r, err := age.Decrypt(bytes.NewReader(b), id)
	if err != nil {
		return nil, fmt.Errorf("unwrap file key: %w", err)
	}
	key, err := io.ReadAll(io.LimitReader(r, fileKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("unwrap file key: %w", err)
	}
	if len(key) != fileKeySize {
		return nil, fmt.Errorf("unwrap file key: %d bytes, want %d", len(key), fileKeySize)
	}
	return chacha20poly1305.NewX(key)
}

// additionalData binds a ciphertext to its place in the file.
func additionalData(seq uint64, kind Kind) []byte {
	ad := make([]byte, 0, 16+8+len(kind))
	ad = append(ad, "sluice-record-v1"...)
	ad = binary.BigEndian.AppendUint64(ad, seq)
	return append(ad, kind...)
}

// envelope is the data of an encrypted record.
type envelope struct {
	Enc []byte `json:"enc"` // nonce || ciphertext; base64 by encoding/json
}

// seal encrypts the JSON data of record seq and returns the envelope.
func seal(aead cipher.AEAD, seq uint64, kind Kind, data []byte) ([]byte, error) {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(data)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	ct := aead.Seal(nonce, nonce, data, additionalData(seq, kind))
	n := base64.StdEncoding.EncodedLen(len(ct))
	out := make([]byte, 0, len(`{"enc":""}`)+n)
	out = append(out, `{"enc":"`...)
	out = base64.StdEncoding.AppendEncode(out, ct)
	return append(out, `"}`...), nil
}

// parseEnvelope returns the sealed bytes of an {"enc":...} data object.
func parseEnvelope(data []byte) ([]byte, error) {
	var e envelope
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&e); err != nil {
		return nil, fmt.Errorf("not an encrypted envelope: %w", err)
	}
	if e.Enc == nil {
		return nil, fmt.Errorf("not an encrypted envelope: no enc field")
	}
	return e.Enc, nil
}

// open decrypts an envelope of record seq.
func open(aead cipher.AEAD, seq uint64, kind Kind, data []byte) ([]byte, error) {
	ct, err := parseEnvelope(data)
	if err != nil {
		return nil, err
	}
	if len(ct) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: ciphertext too short", ErrDecrypt)
	}
	pt, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], additionalData(seq, kind))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
