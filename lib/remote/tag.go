package remote

import (
	"crypto/sha256"
	"encoding/hex"
)

// maxTagLen is the longest tag the OCI distribution spec allows.
const maxTagLen = 128

// hashSuffixLen is the number of hex digits of the key's SHA-256 that end a
// rewritten tag. That is 64 bits, so two keys that rewrite to the same
// prefix collide with a chance of about 2^-64.
const hashSuffixLen = 16

// TagFor returns the OCI tag under which the entry of key is pushed.
//
// A key that already is a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}) is
// its own tag. Any other key becomes a readable prefix, with each byte
// outside [A-Za-z0-9._-] replaced by "_" and cut to fit, followed by "-"
// and 16 hex digits of the key's SHA-256, so distinct keys keep distinct
// tags. The result depends only on key.
func TagFor(key string) string {
	if isValidTag(key) {
		return key
	}

	sum := sha256.Sum256([]byte(key))
	suffix := "-" + hex.EncodeToString(sum[:])[:hashSuffixLen]
	prefix := []byte(key)
	if limit := maxTagLen - len(suffix); len(prefix) > limit {
		prefix = prefix[:limit]
	}
	if len(prefix) == 0 {
		prefix = []byte("_")
	}
	for i, b := range prefix {
		if !tagByte(b) || (i == 0 && (b == '.' || b == '-')) {
			prefix[i] = '_'
		}
	}
	return string(prefix) + suffix
}

func isValidTag(s string) bool {
	if len(s) == 0 || len(s) > maxTagLen || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tagByte(s[i]) {
			return false
		}
	}
	return true
}

func tagByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '.' || b == '-'
}
