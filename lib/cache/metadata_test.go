package cache

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func fullMetadata() Metadata {
	return Metadata{
		Version:                ptr("6.12.0"),
		Source:                 LocalSource("/src/linux <&>", "abcdef0"),
		Arch:                   "x86_64",
		ImageName:              "bzImage",
		ConfigHash:             ptr("5e1d77c0"),
		BuiltAt:                "2026-04-12T10:00:00Z",
		KtstrKconfigHash:       ptr("a1b2c3d4"),
		HasVmlinux:             true,
		VmlinuxStripped:        true,
		SourceVmlinuxSize:      ptr(int64(304087216)),
		SourceVmlinuxMtimeSecs: ptr(int64(-5)),
		ExtraKconfigHash:       ptr("0badf00d"),
		Build: &BuildFacts{
			MakeJobs:      8,
			ConfigureSecs: 3.25,
			BuildSecs:     1234.5,
			StoreSecs:     0.75,
			Compiler:      "gcc (Debian 14.2.0-19) 14.2.0",
			Pahole:        "v1.29",
			Objects:       9001,
		},
		Tarball: &TarballOrigin{Path: "/usr/src/linux-source-6.12.tar.xz", Size: 146000000, MtimeSecs: 1760000000},
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	sources := []SourceInfo{
		TarballSource(),
		GitSource("abcdef0", "for-next/sched"),
		{Type: SourceGit},
		LocalSource("/src/linux", "abcdef0"),
		LocalSource("/src/linux", ""),
		{Type: SourceLocal},
	}
	for _, src := range sources {
		m := fullMetadata()
		m.Source = src
		data, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMetadata(data)
		if err != nil {
			t.Fatalf("DecodeMetadata(Encode(m)) with source %+v: %v\n%s", src, err, data)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip with source %+v:\n got %+v\nwant %+v", src, got, m)
		}
	}
}

func TestMetadataRoundTripAllNull(t *testing.T) {
	m := Metadata{Source: TarballSource(), Arch: "aarch64", ImageName: "Image", BuiltAt: "2026-01-01T00:00:00Z"}
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMetadata(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
}

// topLevelKeys returns the keys of a JSON object in the order they appear.
func topLevelKeys(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v %v", tok, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestMetadataFieldOrder(t *testing.T) {
	data, err := fullMetadata().Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"version", "source", "arch", "image_name", "config_hash", "built_at",
		"ktstr_kconfig_hash", "has_vmlinux", "vmlinux_stripped",
		"source_vmlinux_size", "source_vmlinux_mtime_secs",
		"extra_kconfig_hash", "build", "tarball",
	}
	if got := topLevelKeys(t, data); !reflect.DeepEqual(got, want) {
		t.Errorf("metadata keys:\n got %v\nwant %v", got, want)
	}

	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	wantBuild := []string{"make_jobs", "configure_secs", "build_secs", "store_secs", "compiler", "pahole", "objects"}
	if got := topLevelKeys(t, raw["build"]); !reflect.DeepEqual(got, wantBuild) {
		t.Errorf("build keys: got %v, want %v", got, wantBuild)
	}
	wantTarball := []string{"path", "size", "mtime_secs"}
	if got := topLevelKeys(t, raw["tarball"]); !reflect.DeepEqual(got, wantTarball) {
		t.Errorf("tarball keys: got %v, want %v", got, wantTarball)
	}
}

func TestMetadataNullFields(t *testing.T) {
	m := Metadata{Source: LocalSource("", ""), Arch: "x86_64", ImageName: "bzImage", BuiltAt: "2026-01-01T00:00:00Z"}
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, line := range []string{
		`  "version": null,`,
		`    "source_tree_path": null,`,
		`    "git_hash": null`,
		`  "config_hash": null,`,
		`  "ktstr_kconfig_hash": null,`,
		`  "source_vmlinux_size": null,`,
		`  "source_vmlinux_mtime_secs": null,`,
		`  "extra_kconfig_hash": null,`,
		`  "build": null,`,
		`  "tarball": null`,
		`  "has_vmlinux": false,`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("metadata.json lacks the line %q:\n%s", line, text)
		}
	}
}

func TestMetadataSourceJSON(t *testing.T) {
	tests := []struct {
		src  SourceInfo
		want string
	}{
		{TarballSource(), `{"type":"tarball"}`},
		{GitSource("abcdef0", "v6.12"), `{"type":"git","git_hash":"abcdef0","ref":"v6.12"}`},
		{SourceInfo{Type: SourceGit}, `{"type":"git","git_hash":null,"ref":null}`},
		{LocalSource("/src/linux", "abcdef0"), `{"type":"local","source_tree_path":"/src/linux","git_hash":"abcdef0"}`},
		{LocalSource("/src/linux", ""), `{"type":"local","source_tree_path":"/src/linux","git_hash":null}`},
		// Payload fields of another variant are not written.
		{SourceInfo{Type: SourceTarball, GitHash: ptr("x"), Ref: ptr("y")}, `{"type":"tarball"}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.src)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("json.Marshal(%+v) = %s, want %s", tt.src, got, tt.want)
		}
	}

	if _, err := json.Marshal(SourceInfo{Type: "svn"}); err == nil || !strings.Contains(err.Error(), `"svn"`) {
		t.Errorf("json.Marshal(type svn) = %v, want an error naming the type", err)
	}
}

func TestMetadataPrettyPrinted(t *testing.T) {
	data, err := fullMetadata().Encode()
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.HasPrefix(text, "{\n  \"version\": \"6.12.0\",\n  \"source\": {\n    \"type\": \"local\",\n") {
		t.Errorf("metadata.json is not indented by two spaces:\n%s", text)
	}
	if !strings.Contains(text, `"source_tree_path": "/src/linux <&>"`) {
		t.Errorf("metadata.json escapes <, > or &, which ktstr writes as they are:\n%s", text)
	}
}

func TestMetadataReadsKtstrFile(t *testing.T) {
	data, err := os.ReadFile("testdata/ktstr-local.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMetadata(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Metadata{
		Version:                ptr("6.12.0"),
		Source:                 LocalSource("/home/dev/linux", "3f2a9c1"),
		Arch:                   "x86_64",
		ImageName:              "bzImage",
		ConfigHash:             ptr("5e1d77c0"),
		BuiltAt:                "2026-03-02T08:15:42Z",
		KtstrKconfigHash:       ptr("a1b2c3d4"),
		HasVmlinux:             true,
		VmlinuxStripped:        true,
		SourceVmlinuxSize:      ptr(int64(304087216)),
		SourceVmlinuxMtimeSecs: ptr(int64(1772439300)),
		ExtraKconfigHash:       ptr("0badf00d"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ktstr metadata:\n got %+v\nwant %+v", got, want)
	}
}

func TestMetadataReadsOldKtstrFile(t *testing.T) {
	data, err := os.ReadFile("testdata/ktstr-old-tarball.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMetadata(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Metadata{
		Version:   ptr("6.6.30"),
		Source:    TarballSource(),
		Arch:      "aarch64",
		ImageName: "Image",
		BuiltAt:   "2025-11-20T23:59:59Z",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("old ktstr metadata:\n got %+v\nwant %+v", got, want)
	}
}

func TestDecodeMetadataKinds(t *testing.T) {
	valid, err := fullMetadata().Encode()
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) string {
		s := strings.Replace(string(valid), old, new, 1)
		if s == string(valid) {
			t.Fatalf("test input lacks %q", old)
		}
		return s
	}
	tests := []struct {
		name, data, kind string
	}{
		{"empty", "", KindTruncated},
		{"whitespace", " \n", KindTruncated},
		{"cut in half", string(valid[:len(valid)/2]), KindTruncated},
		{"cut after brace", "{", KindTruncated},
		{"not json", "hello", KindMalformed},
		{"bad close", `{"arch": "x86_64"]`, KindMalformed},
		{"trailing garbage", string(valid) + "}", KindMalformed},
		{"array", "[]", KindSchemaDrift},
		{"null", "null", KindSchemaDrift},
		{"string", `"x"`, KindSchemaDrift},
		{"no arch", replace(`"arch": "x86_64",`, ""), KindSchemaDrift},
		{"no source", replace(`"source": {`, `"origin": {`), KindSchemaDrift},
		{"no built_at", replace(`"built_at"`, `"build_time"`), KindSchemaDrift},
		{"no has_vmlinux", replace(`"has_vmlinux"`, `"vmlinux"`), KindSchemaDrift},
		{"no vmlinux_stripped", replace(`"vmlinux_stripped"`, `"stripped"`), KindSchemaDrift},
		{"null arch", replace(`"arch": "x86_64"`, `"arch": null`), KindSchemaDrift},
		{"numeric image_name", replace(`"image_name": "bzImage"`, `"image_name": 7`), KindSchemaDrift},
		{"string bool", replace(`"has_vmlinux": true`, `"has_vmlinux": "yes"`), KindSchemaDrift},
		{"numeric version", replace(`"version": "6.12.0"`, `"version": 612`), KindSchemaDrift},
		{"string size", replace(`"source_vmlinux_size": 304087216`, `"source_vmlinux_size": "big"`), KindSchemaDrift},
		{"unknown source type", replace(`"type": "local"`, `"type": "svn"`), KindSchemaDrift},
		{"source without type", replace(`"type": "local",`, ``), KindSchemaDrift},
		{"numeric git_hash", replace(`"git_hash": "abcdef0"`, `"git_hash": 1`), KindSchemaDrift},
		{"not utf-8", replace(`"x86_64"`, "\"x86\xff64\""), KindParseError},
	}
	for _, tt := range tests {
		_, err := DecodeMetadata([]byte(tt.data))
		bad, ok := err.(*CorruptError)
		if !ok {
			t.Errorf("%s: DecodeMetadata = %v, want a *CorruptError", tt.name, err)
			continue
		}
		if bad.Kind != tt.kind {
			t.Errorf("%s: kind %s (%s), want %s", tt.name, bad.Kind, bad.Reason, tt.kind)
		}
		if !strings.HasPrefix(bad.Reason, "metadata.json ") {
			t.Errorf("%s: reason %q does not name metadata.json", tt.name, bad.Reason)
		}
	}
}

func TestDecodeMetadataDropsBrokenExtras(t *testing.T) {
	data, err := fullMetadata().Encode()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), `"make_jobs": 8`, `"make_jobs": "eight"`, 1)
	text = strings.Replace(text, `"size": 146000000`, `"size": []`, 1)
	got, err := DecodeMetadata([]byte(text))
	if err != nil {
		t.Fatalf("a broken build or tarball field made the entry corrupt: %v", err)
	}
	if got.Build != nil || got.Tarball != nil {
		t.Errorf("broken fields decoded as build=%+v tarball=%+v, want nil", got.Build, got.Tarball)
	}
	if got.Arch != "x86_64" || got.ExtraKconfigHash == nil {
		t.Errorf("the rest of the metadata was lost: %+v", got)
	}
}

func TestFormatBuiltAt(t *testing.T) {
	at := time.Date(2026, 4, 12, 12, 30, 5, 999, time.FixedZone("CEST", 2*3600))
	if got := FormatBuiltAt(at); got != "2026-04-12T10:30:05Z" {
		t.Errorf("FormatBuiltAt = %s, want 2026-04-12T10:30:05Z", got)
	}
}

func TestDecodeMetadataTruncatedAnywhere(t *testing.T) {
	data, err := fullMetadata().Encode()
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.TrimSpace(data)
	for n := range len(data) {
		_, err := DecodeMetadata(data[:n])
		bad, ok := err.(*CorruptError)
		if !ok || bad.Kind != KindTruncated {
			t.Fatalf("metadata.json cut to %d bytes (%q): %v, want kind truncated", n, data[max(0, n-10):n], err)
		}
	}
}
