package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key     string
		wantErr string // "" = valid
	}{
		{"6.12.0-tarball-x86_64-kc1a2b3c4d", ""},
		{"v6.12-git-abcdef0-aarch64-kc00000000-xkcffffffff", ""},
		{"local-abcdef0-x86_64-cfg12345678-kc1a2b3c4d", ""},
		{"a", ""},
		{"a.b", ""},
		{"key-with.dot_and+plus", ""},
		{"", "is empty"},
		{"   ", "is empty"},
		{"a/b", "path separator"},
		{`a\b`, "path separator"},
		{"/abs", "path separator"},
		{"a\x00b", "NUL"},
		{"..", `".."`},
		{"a..b", `".."`},
		{"x/../y", "path separator"},
		{".hidden", `starts with "."`},
		{".locks", `starts with "."`},
		{".tmp-key-123", `starts with "."`},
		{strings.Repeat("k", MaxKeyLen), ""},
		{strings.Repeat("k", MaxKeyLen+1), "more than the maximum"},
	}
	for _, tt := range tests {
		err := ValidateKey(tt.key)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateKey(%q) = %v, want nil", tt.key, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ValidateKey(%q) = nil, want an error containing %q", tt.key, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ValidateKey(%q) = %q, want it to contain %q", tt.key, err, tt.wantErr)
		}
		if !strings.Contains(err.Error(), "invalid cache key") || !strings.Contains(err.Error(), " — ") {
			t.Errorf("ValidateKey(%q) = %q, want an \"invalid cache key: … — fix\" message", tt.key, err)
		}
	}
}

func TestValidateImageName(t *testing.T) {
	for _, name := range []string{"bzImage", "Image", "vmlinuz-6.12"} {
		if err := validateImageName(name); err != nil {
			t.Errorf("validateImageName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "boot/bzImage", `a\b`, "..", "a\x00", MetadataName, VmlinuxName, BuildLogName} {
		if err := validateImageName(name); err == nil {
			t.Errorf("validateImageName(%q) = nil, want an error", name)
		}
	}
}

func TestKeyBuilders(t *testing.T) {
	suffix := KconfigSuffix("1a2b3c4d", "")
	extra := KconfigSuffix("1a2b3c4d", "deadbeef")
	tests := []struct{ got, want string }{
		{suffix, "kc1a2b3c4d"},
		{extra, "kc1a2b3c4d-xkcdeadbeef"},
		{TarballKey("6.12.3", "x86_64", suffix), "6.12.3-tarball-x86_64-kc1a2b3c4d"},
		{TarballKey("6.13-rc2", "aarch64", extra), "6.13-rc2-tarball-aarch64-kc1a2b3c4d-xkcdeadbeef"},
		{GitKey("v6.12", "abcdef0", "x86_64", suffix), "v6.12-git-abcdef0-x86_64-kc1a2b3c4d"},
		{GitKey("for-next/sched", "abcdef0", "x86_64", suffix), "for-next_sched-git-abcdef0-x86_64-kc1a2b3c4d"},
		{LocalKey("abcdef0", "x86_64", "", suffix), "local-abcdef0-x86_64-kc1a2b3c4d"},
		{LocalKey("abcdef0", "x86_64", "0badc0de", suffix), "local-abcdef0-x86_64-cfg0badc0de-kc1a2b3c4d"},
		{LocalUnknownKey("/src/linux", "x86_64", suffix), "local-unknown-" + CRC32Hex([]byte("/src/linux")) + "-x86_64-kc1a2b3c4d"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got key %q, want %q", tt.got, tt.want)
		}
		if err := ValidateKey(tt.got); err != nil {
			t.Errorf("built key %q is invalid: %v", tt.got, err)
		}
	}
}

func TestSafeRef(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"main", "main"},
		{"v6.12-rc3", "v6.12-rc3"},
		{"refs/heads/main", "refs_heads_main"},
		{"for-next/sched_ext", "for-next_sched_ext"},
		{"HEAD~1", "HEAD_1"},
		{"v6.12^{}", "v6.12___"},
		{"a..b", "a._b"},
		{"a...b", "a.__b"},
		{".hidden", "_hidden"},
		{"../escape", "___escape"},
		{`win\path`, "win_path"},
		{"nul\x00ref", "nul_ref"},
		{"ünï", "__n__"},
		{"a b", "a_b"},
	}
	for _, tt := range tests {
		if got := SafeRef(tt.ref); got != tt.want {
			t.Errorf("SafeRef(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

func TestSafeRefKeysAlwaysValid(t *testing.T) {
	refs := []string{"", ".", "..", "/", "./..", ".../...", "-", "a/.b", strings.Repeat("/..", 80), strings.Repeat("z", 500)}
	for _, ref := range refs {
		key := GitKey(ref, "abcdef0", "x86_64", KconfigSuffix("1a2b3c4d", "deadbeef"))
		if ref != "" {
			if err := ValidateKey(key); err != nil {
				t.Errorf("GitKey for ref %q = %q: %v", ref, key, err)
			}
		}
		if safe := SafeRef(ref); len(safe) > maxSafeRefLen {
			t.Errorf("SafeRef(%q) is %d bytes, want at most %d", ref, len(safe), maxSafeRefLen)
		}
	}
}

func TestSafeRefLongRefsStayDistinct(t *testing.T) {
	long := strings.Repeat("feature/", 30)
	a, b := SafeRef(long+"one"), SafeRef(long+"two")
	if a == b {
		t.Fatalf("SafeRef maps two long refs to the same text %q", a)
	}
	if !strings.HasPrefix(a, "feature_feature_") {
		t.Errorf("SafeRef(long) = %q, want it to keep the readable start", a)
	}
	if len(a) != maxSafeRefLen {
		t.Errorf("len(SafeRef(long)) = %d, want %d", len(a), maxSafeRefLen)
	}
}

func TestCRC32Hex(t *testing.T) {
	// The IEEE CRC32 check value of "123456789" is cbf43926.
	if got := CRC32Hex([]byte("123456789")); got != "cbf43926" {
		t.Errorf("CRC32Hex(123456789) = %s, want cbf43926", got)
	}
	if got := CRC32Hex(nil); got != "00000000" {
		t.Errorf("CRC32Hex(nil) = %s, want 00000000", got)
	}
}

func TestFileCRC32(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".config")
	if err := os.WriteFile(path, []byte("123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := FileCRC32(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != "cbf43926" {
		t.Errorf("FileCRC32 = %s, want cbf43926", got)
	}

	_, err = FileCRC32(filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("FileCRC32(missing) = %v, want an error naming the path", err)
	}
}

func TestLooksLikeKey(t *testing.T) {
	const h = "1a2b3c4d"
	suffixes := []string{KconfigSuffix(h, ""), KconfigSuffix(h, "deadbeef")}
	var keys []string
	for _, sfx := range suffixes {
		keys = append(keys,
			TarballKey("6.12.118", "x86_64", sfx),
			TarballKey("6.13-rc2", "aarch64", sfx),
			GitKey("refs/heads/for-next", "abcdef0", "x86_64", sfx),
			GitKey("local-topic", "abcdef0123", "x86_64", sfx),
			GitKey("v6.12-tarball", "abcdef0", "x86_64", sfx),
			LocalKey("1a2b3c4", "x86_64", "", sfx),
			LocalKey("1a2b3c4", "x86_64", "0badc0de", sfx),
			LocalUnknownKey("/home/me/linux", "x86_64", sfx),
		)
	}
	keys = append(keys, "6.12.118-tarball-x86_64-kcb7244b33", "local-1a2b3c4-x86_64-kcb7244b33")
	for _, key := range keys {
		if !LooksLikeKey(key) {
			t.Errorf("LooksLikeKey(%q) = false, want true", key)
		}
	}

	for _, name := range []string{
		"projects", "Documents", "node_modules", "linux-6.12", "kernels",
		"kc1a2b3c4d",
		"6.12-tarball-x86_64",                // no kconfig suffix
		"6.12-tarball-x86_64-kc1A2B3C4D",     // upper case hash
		"6.12-tarball-x86_64-kc1a2b3c4",      // 7 hex digits
		"6.12-tarball-x86_64-kc1a2b3c4d-xkc", // empty extra hash
		"6.12-tarball-x86_64-xkc1a2b3c4d",    // extra hash alone
		"-tarball-x86_64-kc1a2b3c4d",         // empty version
		"6.12-tarball-kc1a2b3c4d",            // no arch
		"6.12-tarball-x86-64-kc1a2b3c4d",     // arch with "-" leaves no source tag
		"my-project-kc1a2b3c4d",
		"main-git-zzzzzzz-x86_64-kc1a2b3c4d", // hash not hex
		"main-git-abc-x86_64-kc1a2b3c4d",     // hash too short
		"-git-abcdef0-x86_64-kc1a2b3c4d",     // empty ref
		"local-xyz-x86_64-kc1a2b3c4d",
		"local-1a2b3c4-x86_64-cfgnothex-kc1a2b3c4d",
		"local-unknown-1234-x86_64-kc1a2b3c4d",
		".tmp-6.12-tarball-x86_64-kc1a2b3c4d-42",
		"6.12..1-tarball-x86_64-kc1a2b3c4d",
	} {
		if LooksLikeKey(name) {
			t.Errorf("LooksLikeKey(%q) = true, want false", name)
		}
	}
}
