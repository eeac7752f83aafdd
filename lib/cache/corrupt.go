package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"unicode/utf8"
)

// Kinds of corrupt entries, as ktstr names them in `kernel list --json`.
const (
	KindMissing      = "missing"       // no metadata.json
	KindUnreadable   = "unreadable"    // metadata.json cannot be read
	KindSchemaDrift  = "schema_drift"  // valid JSON without the required fields and types
	KindMalformed    = "malformed"     // not JSON
	KindTruncated    = "truncated"     // JSON that ends early
	KindParseError   = "parse_error"   // not UTF-8 text
	KindImageMissing = "image_missing" // the image that metadata.json names is absent
	KindUnknown      = "unknown"       // anything else, such as an image that is not a regular file
)

// CorruptError is the reason an entry directory is not a usable entry.
type CorruptError struct {
	Kind   string // one of the Kind constants
	Reason string
	Err    error // underlying cause, if any
}

func (e *CorruptError) Error() string { return e.Reason }
func (e *CorruptError) Unwrap() error { return e.Err }

func corrupt(kind string, err error, format string, args ...any) *CorruptError {
	return &CorruptError{Kind: kind, Reason: fmt.Sprintf(format, args...), Err: err}
}

// requiredFields are the metadata fields that ktstr refuses to default, with
// the first byte their JSON value must start with.
var requiredFields = []struct {
	name     string
	first    string
	expected string
}{
	{"source", "{", "an object"},
	{"arch", `"`, "a string"},
	{"image_name", `"`, "a string"},
	{"built_at", `"`, "a string"},
	{"has_vmlinux", "tf", "true or false"},
	{"vmlinux_stripped", "tf", "true or false"},
}

// DecodeMetadata parses the content of a metadata.json. Unknown fields are
// ignored and absent optional fields read as nil. It returns a *CorruptError
// whose Kind names the reason data is not usable.
//
// A broken "build" or "tarball" field is dropped rather than reported,
// because ktstr does not read them and would still use the entry.
func DecodeMetadata(data []byte) (Metadata, error) {
	// NOTE: ktstr reports text that is not UTF-8 as unreadable; this package
	// gives it the kind parse_error so that the kind has a cause.
	if !utf8.Valid(data) {
		return Metadata{}, corrupt(KindParseError, nil, "metadata.json parse error: the file is not UTF-8 text")
	}

	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return Metadata{}, classifyJSONError(data, err)
	}
	for _, f := range requiredFields {
		raw, ok := fields[f.name]
		if !ok {
			return Metadata{}, corrupt(KindSchemaDrift, nil, "metadata.json schema drift: required field %q is missing", f.name)
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || !bytes.ContainsRune([]byte(f.first), rune(raw[0])) {
			return Metadata{}, corrupt(KindSchemaDrift, nil, "metadata.json schema drift: field %q is %s, expected %s", f.name, abbreviate(raw), f.expected)
		}
	}

	var wire struct {
		Metadata
		Build   json.RawMessage `json:"build"`
		Tarball json.RawMessage `json:"tarball"`
	}
	if err := json.Unmarshal(data, &wire); err != nil {
		return Metadata{}, classifyJSONError(data, err)
	}
	m := wire.Metadata
	m.Build = decodeOptional[BuildFacts]("build", wire.Build)
	m.Tarball = decodeOptional[TarballOrigin]("tarball", wire.Tarball)
	return m, nil
}

func decodeOptional[T any](field string, raw json.RawMessage) *T {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		slog.Debug("cache: ignoring unreadable metadata field", "field", field, "err", err)
		return nil
	}
	return v
}

func classifyJSONError(data []byte, err error) *CorruptError {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var schema *schemaError
	switch {
	case errors.As(err, &syntax) && endsEarly(data):
		return corrupt(KindTruncated, err, "metadata.json truncated: %v", err)
	case errors.As(err, &syntax):
		return corrupt(KindMalformed, err, "metadata.json malformed: %v", err)
	case errors.As(err, &typeErr):
		return corrupt(KindSchemaDrift, err, "metadata.json schema drift: %v", err)
	case errors.As(err, &schema):
		return corrupt(KindSchemaDrift, err, "metadata.json schema drift: %v", err)
	}
	return corrupt(KindParseError, err, "metadata.json parse error: %v", err)
}

// endsEarly reports whether data is the start of a JSON value cut short.
// json.Unmarshal cannot tell: a file cut inside "null" fails as an invalid
// character, while a streaming decoder reports the missing rest as EOF.
func endsEarly(data []byte) bool {
	var v json.RawMessage
	err := json.NewDecoder(bytes.NewReader(data)).Decode(&v)
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func abbreviate(raw []byte) string {
	if len(raw) == 0 {
		return "empty"
	}
	if len(raw) > 40 {
		return string(raw[:37]) + "..."
	}
	return string(raw)
}

// readMetadata reads and decodes metadata.json in the entry directory open as
// dir, classifying every failure.
func readMetadata(dir fs.FS) (Metadata, error) {
	data, err := fs.ReadFile(dir, MetadataName)
	if errors.Is(err, fs.ErrNotExist) {
		return Metadata{}, corrupt(KindMissing, err, "metadata.json missing")
	}
	if err != nil {
		return Metadata{}, corrupt(KindUnreadable, err, "metadata.json unreadable: %v", err)
	}
	return DecodeMetadata(data)
}
