package remote

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestFromEnv(t *testing.T) {
	home := t.TempDir()
	cases := []struct {
		name      string
		env       map[string]string
		wantNil   bool
		wantRepo  string
		wantPlain bool
		wantErr   string
	}{
		{name: "unset", env: map[string]string{}, wantNil: true},
		{name: "blank", env: map[string]string{EnvRepository: "  "}, wantNil: true},
		{name: "https registry", env: map[string]string{EnvRepository: "registry.invalid/org/kernels"}, wantRepo: "registry.invalid/org/kernels"},
		{name: "loopback IP", env: map[string]string{EnvRepository: "127.0.0.1:5000/kernels"}, wantRepo: "127.0.0.1:5000/kernels", wantPlain: true},
		{name: "localhost", env: map[string]string{EnvRepository: "localhost:5000/a/b"}, wantRepo: "localhost:5000/a/b", wantPlain: true},
		{name: "IPv6 loopback", env: map[string]string{EnvRepository: "[::1]:5000/kernels"}, wantRepo: "[::1]:5000/kernels", wantPlain: true},
		{name: "plain HTTP forced", env: map[string]string{EnvRepository: "registry.invalid:5000/kernels", EnvPlainHTTP: "1"}, wantRepo: "registry.invalid:5000/kernels", wantPlain: true},
		{name: "plain HTTP off", env: map[string]string{EnvRepository: "registry.invalid/kernels", EnvPlainHTTP: "0"}, wantRepo: "registry.invalid/kernels"},
		{name: "plain HTTP invalid", env: map[string]string{EnvRepository: "registry.invalid/kernels", EnvPlainHTTP: "yes"}, wantErr: EnvPlainHTTP},
		{name: "scheme", env: map[string]string{EnvRepository: "https://registry.invalid/kernels"}, wantErr: "drop it"},
		{name: "tag", env: map[string]string{EnvRepository: "registry.invalid/kernels:v1"}, wantErr: `tag or digest "v1"`},
		{name: "digest", env: map[string]string{EnvRepository: "registry.invalid/kernels@sha256:" + strings.Repeat("a", 64)}, wantErr: "tag or digest"},
		{name: "no path", env: map[string]string{EnvRepository: "registry.invalid:5000"}, wantErr: "no repository path"},
		{name: "uppercase path", env: map[string]string{EnvRepository: "registry.invalid/Kernels"}, wantErr: "lowercase"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["HOME"] = home
			r, err := FromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FromEnv error = %v, want one containing %q", err, tc.wantErr)
				}
				// EnvPlainHTTP starts with EnvRepository, so this covers both.
				if !strings.Contains(err.Error(), EnvRepository) {
					t.Errorf("error does not name the variable: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantNil {
				if r != nil {
					t.Fatalf("FromEnv = %v, want nil", r)
				}
				return
			}
			if r.String() != tc.wantRepo {
				t.Errorf("String() = %q, want %q", r.String(), tc.wantRepo)
			}
			if r.PlainHTTP() != tc.wantPlain {
				t.Errorf("PlainHTTP() = %v, want %v", r.PlainHTTP(), tc.wantPlain)
			}
		})
	}
}

func TestFromEnvDockerConfigPath(t *testing.T) {
	home, dockerDir := t.TempDir(), t.TempDir()
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"DOCKER_CONFIG", map[string]string{"DOCKER_CONFIG": dockerDir, "HOME": home}, filepath.Join(dockerDir, "config.json")},
		{"HOME", map[string]string{"HOME": home}, filepath.Join(home, ".docker", "config.json")},
		{"neither", map[string]string{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.env[EnvRepository] = "127.0.0.1:5000/kernels"
			r, err := FromEnv(func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if r.dockerConfig != tc.want {
				t.Errorf("Docker config = %q, want %q", r.dockerConfig, tc.want)
			}
		})
	}
}

func TestFromEnvBadDockerConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvRepository: "127.0.0.1:5000/kernels", "DOCKER_CONFIG": dir}
	_, err := FromEnv(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "DOCKER_CONFIG") {
		t.Fatalf("FromEnv error = %v, want one naming %s and DOCKER_CONFIG", err, path)
	}
}

func TestIsLoopback(t *testing.T) {
	cases := map[string]bool{
		"localhost":          true,
		"LOCALHOST:5000":     true,
		"127.0.0.1":          true,
		"127.1.2.3:443":      true,
		"[::1]:5000":         true,
		"::1":                true,
		"registry.invalid":   false,
		"10.0.0.1:5000":      false,
		"localhost.invalid":  false,
		"128.0.0.1":          false,
		"[2001:db8::1]:5000": false,
	}
	for host, want := range cases {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

var tagRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

func TestTagFor(t *testing.T) {
	long := strings.Repeat("a", 200)
	cases := []struct {
		key        string
		wantSame   bool   // the key is its own tag
		wantPrefix string // else the tag starts with this
	}{
		{key: "6.12.9-tarball-x86_64-kc1a2b3c4d", wantSame: true},
		{key: "local-abc1234-x86_64-cfg0badc0de-kc1a2b3c4d-xkc5e6f7a8b", wantSame: true},
		{key: "_x", wantSame: true},
		{key: strings.Repeat("k", 128), wantSame: true},
		{key: strings.Repeat("k", 129), wantPrefix: strings.Repeat("k", 111) + "-"},
		{key: "feature+x~1-git-abc1234-x86_64-kc1", wantPrefix: "feature_x_1-git-abc1234-x86_64-kc1-"},
		{key: "-leading-dash", wantPrefix: "_leading-dash-"},
		{key: "v6.12:rc1@main", wantPrefix: "v6.12_rc1_main-"},
		{key: "ünïcode", wantPrefix: "__n__code-"},
		{key: long, wantPrefix: strings.Repeat("a", 111) + "-"},
		{key: "", wantPrefix: "_-"},
	}
	for _, tc := range cases {
		tag := TagFor(tc.key)
		if !tagRe.MatchString(tag) {
			t.Errorf("TagFor(%q) = %q, not a valid OCI tag", tc.key, tag)
		}
		if tag != TagFor(tc.key) {
			t.Errorf("TagFor(%q) is not deterministic", tc.key)
		}
		if tc.wantSame {
			if tag != tc.key {
				t.Errorf("TagFor(%q) = %q, want the key itself", tc.key, tag)
			}
			continue
		}
		if !strings.HasPrefix(tag, tc.wantPrefix) {
			t.Errorf("TagFor(%q) = %q, want prefix %q", tc.key, tag, tc.wantPrefix)
		}
	}
}

func TestTagForDistinctKeys(t *testing.T) {
	// These keys rewrite to the same readable prefix; the hash keeps them
	// apart.
	keys := []string{"a+b", "a~b", "a@b", "a:b", strings.Repeat("z", 130), strings.Repeat("z", 131)}
	seen := map[string]string{}
	for _, k := range keys {
		tag := TagFor(k)
		if other, dup := seen[tag]; dup {
			t.Errorf("keys %q and %q share the tag %q", k, other, tag)
		}
		seen[tag] = k
	}
}
