package cache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Names of the files inside an entry directory, besides the boot image.
const (
	MetadataName = "metadata.json"
	VmlinuxName  = "vmlinux"
	BuildLogName = "build.log.gz"
)

// Source kinds recorded in SourceInfo.Type.
const (
	SourceTarball = "tarball"
	SourceGit     = "git"
	SourceLocal   = "local"
)

// BuiltAtLayout is the time layout of Metadata.BuiltAt, always in UTC.
const BuiltAtLayout = "2006-01-02T15:04:05Z"

// FormatBuiltAt formats t for Metadata.BuiltAt.
func FormatBuiltAt(t time.Time) string {
	return t.UTC().Format(BuiltAtLayout)
}

// SourceInfo is the origin of an entry's kernel source. It is written as
// ktstr's tagged object: {"type":"tarball"},
// {"type":"git","git_hash":…,"ref":…} or
// {"type":"local","source_tree_path":…,"git_hash":…}, with absent values as
// null.
type SourceInfo struct {
	Type           string  // SourceTarball, SourceGit or SourceLocal
	GitHash        *string // git and local: short commit hash; nil for a dirty or non-git local tree
	Ref            *string // git: the ref as the user gave it
	SourceTreePath *string // local: canonical path of the tree
}

// TarballSource returns the SourceInfo of a release tarball.
func TarballSource() SourceInfo {
	return SourceInfo{Type: SourceTarball}
}

// GitSource returns the SourceInfo of a git checkout of ref at hash.
func GitSource(hash, ref string) SourceInfo {
	return SourceInfo{Type: SourceGit, GitHash: optional(hash), Ref: optional(ref)}
}

// LocalSource returns the SourceInfo of a local tree; an empty gitHash is
// written as null.
func LocalSource(treePath, gitHash string) SourceInfo {
	return SourceInfo{Type: SourceLocal, SourceTreePath: optional(treePath), GitHash: optional(gitHash)}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// The wire forms keep ktstr's key order: the tag first, then the variant's
// fields in declaration order.
type gitSourceJSON struct {
	Type    string  `json:"type"`
	GitHash *string `json:"git_hash"`
	Ref     *string `json:"ref"`
}

type localSourceJSON struct {
	Type           string  `json:"type"`
	SourceTreePath *string `json:"source_tree_path"`
	GitHash        *string `json:"git_hash"`
}

type tarballSourceJSON struct {
	Type string `json:"type"`
}

// MarshalJSON writes s as ktstr's tagged object.
func (s SourceInfo) MarshalJSON() ([]byte, error) {
	switch s.Type {
	case SourceTarball:
		return marshalRaw(tarballSourceJSON{Type: s.Type})
	case SourceGit:
		return marshalRaw(gitSourceJSON{Type: s.Type, GitHash: s.GitHash, Ref: s.Ref})
	case SourceLocal:
		return marshalRaw(localSourceJSON{Type: s.Type, SourceTreePath: s.SourceTreePath, GitHash: s.GitHash})
	}
	return nil, fmt.Errorf("metadata source: unknown type %q — use %q, %q or %q", s.Type, SourceTarball, SourceGit, SourceLocal)
}

// marshalRaw encodes v without escaping <, > and &, as ktstr writes them;
// json.Marshal would escape them and an outer encoder keeps the escapes.
func marshalRaw(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON reads ktstr's tagged object; fields of other variants and
// unknown fields are ignored, absent ones read as nil.
func (s *SourceInfo) UnmarshalJSON(data []byte) error {
	var wire struct {
		Type           *string `json:"type"`
		GitHash        *string `json:"git_hash"`
		Ref            *string `json:"ref"`
		SourceTreePath *string `json:"source_tree_path"`
	}
	if err := json.Unmarshal(data, &wire); err != nil {
		return err
	}
	if wire.Type == nil {
		return &schemaError{msg: `field "source" has no "type"`}
	}
	switch *wire.Type {
	case SourceTarball:
		*s = SourceInfo{Type: SourceTarball}
	case SourceGit:
		*s = SourceInfo{Type: SourceGit, GitHash: wire.GitHash, Ref: wire.Ref}
	case SourceLocal:
		*s = SourceInfo{Type: SourceLocal, GitHash: wire.GitHash, SourceTreePath: wire.SourceTreePath}
	default:
		return &schemaError{msg: fmt.Sprintf("unknown source type %q", *wire.Type)}
	}
	return nil
}

// Metadata is the content of an entry's metadata.json.
//
// The fields up to SourceVmlinuxMtimeSecs are ktstr's, in ktstr's documented
// order; ktstr ignores the ones after them. Every pointer field is optional
// and written as null when nil.
type Metadata struct {
	Version                *string    `json:"version"`
	Source                 SourceInfo `json:"source"`
	Arch                   string     `json:"arch"`
	ImageName              string     `json:"image_name"`
	ConfigHash             *string    `json:"config_hash"` // CRC32 of the final .config
	BuiltAt                string     `json:"built_at"`    // BuiltAtLayout, UTC
	KtstrKconfigHash       *string    `json:"ktstr_kconfig_hash"`
	HasVmlinux             bool       `json:"has_vmlinux"`
	VmlinuxStripped        bool       `json:"vmlinux_stripped"`
	SourceVmlinuxSize      *int64     `json:"source_vmlinux_size"`       // local builds: size of the tree's vmlinux in bytes
	SourceVmlinuxMtimeSecs *int64     `json:"source_vmlinux_mtime_secs"` // local builds: its mtime in Unix seconds

	ExtraKconfigHash *string        `json:"extra_kconfig_hash"` // CRC32 of the extra fragment
	Build            *BuildFacts    `json:"build"`
	Tarball          *TarballOrigin `json:"tarball"`
}

// BuildFacts are the measurements of a build. The next build of the same
// tree uses Objects to estimate its progress.
type BuildFacts struct {
	MakeJobs      int     `json:"make_jobs"`
	ConfigureSecs float64 `json:"configure_secs"`
	BuildSecs     float64 `json:"build_secs"`
	StoreSecs     float64 `json:"store_secs"`
	Compiler      string  `json:"compiler"` // first line of the compiler's --version
	Pahole        string  `json:"pahole"`   // pahole --version
	Objects       int     `json:"objects"`  // objects compiled
}

// TarballOrigin identifies the local tarball an entry was built from, so a
// later build of the same file can hit the cache before extracting it.
type TarballOrigin struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	MtimeSecs int64  `json:"mtime_secs"`
	// SHA256 is the hex SHA-256 of the tarball file, "" in entries stored
	// before ktbuild recorded it.
	SHA256 string `json:"sha256,omitempty"`
}

// Encode returns m as pretty-printed JSON with a 2-space indent, the form
// written to metadata.json.
func (m Metadata) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return buf.Bytes(), nil
}

// schemaError is a metadata.json that is valid JSON but does not hold the
// fields ktstr requires, with the types it requires.
type schemaError struct{ msg string }

func (e *schemaError) Error() string { return e.msg }
