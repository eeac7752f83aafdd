package reserve_test

import (
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/lib/reserve"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func intPtr(n int) *int { return &n }

func TestBudget(t *testing.T) {
	tests := []struct {
		name    string
		flag    *int
		env     map[string]string
		allowed int
		want    int
		reason  string
	}{
		{"flag", intPtr(3), nil, 8, 3, "cap 3 from -cpucap"},
		{"flag beats env", intPtr(2), map[string]string{reserve.EnvCPUCap: "5"}, 8, 2, "-cpucap"},
		{"env", nil, map[string]string{reserve.EnvCPUCap: "5"}, 8, 5, "cap 5 from KTSTR_CPU_CAP"},
		{"env with spaces", nil, map[string]string{reserve.EnvCPUCap: " 4\n"}, 8, 4, "KTSTR_CPU_CAP"},
		{"empty env is unset", nil, map[string]string{reserve.EnvCPUCap: ""}, 10, 3, "default 30% of 10 allowed CPUs"},
		{"default rounds up", nil, nil, 8, 3, "default 30% of 8 allowed CPUs"},
		{"default exact", nil, nil, 20, 6, "default 30%"},
		{"default at least one", nil, nil, 1, 1, "default 30% of 1"},
		{"default of two", nil, nil, 2, 1, "default"},
		{"cap equals allowed", intPtr(4), nil, 4, 4, "cap 4"},
		{"bypass without cap", nil, map[string]string{reserve.EnvBypass: "1"}, 6, 6, "KTSTR_BYPASS_LLC_LOCKS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, reason, err := reserve.Budget(tt.flag, envMap(tt.env), tt.allowed)
			if err != nil {
				t.Fatalf("Budget: %v", err)
			}
			if n != tt.want {
				t.Errorf("n = %d, want %d", n, tt.want)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", reason, tt.reason)
			}
		})
	}
}

func TestBudgetErrors(t *testing.T) {
	tests := []struct {
		name    string
		flag    *int
		env     map[string]string
		allowed int
		want    []string
	}{
		{"flag zero", intPtr(0), nil, 8, []string{"cap 0", "-cpucap", "at least 1"}},
		{"flag negative", intPtr(-2), nil, 8, []string{"cap -2"}},
		{"env zero", nil, map[string]string{reserve.EnvCPUCap: "0"}, 8, []string{"cap 0", "KTSTR_CPU_CAP"}},
		{"env not an integer", nil, map[string]string{reserve.EnvCPUCap: "four"}, 8, []string{"KTSTR_CPU_CAP", `"four"`, "not an integer"}},
		{"env fraction", nil, map[string]string{reserve.EnvCPUCap: "1.5"}, 8, []string{"not an integer"}},
		{"flag above allowed", intPtr(9), nil, 8, []string{"cap 9", "8 CPUs"}},
		{"env above allowed", nil, map[string]string{reserve.EnvCPUCap: "16"}, 4, []string{"cap 16", "4 CPUs"}},
		{"bypass with flag", intPtr(2), map[string]string{reserve.EnvBypass: "yes"}, 8, []string{"KTSTR_BYPASS_LLC_LOCKS", "cap 2", "-cpucap"}},
		{"bypass with env", nil, map[string]string{reserve.EnvBypass: "1", reserve.EnvCPUCap: "2"}, 8, []string{"KTSTR_BYPASS_LLC_LOCKS", "KTSTR_CPU_CAP"}},
		{"no allowed CPUs", nil, nil, 0, []string{"no allowed CPUs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _, err := reserve.Budget(tt.flag, envMap(tt.env), tt.allowed)
			if err == nil {
				t.Fatalf("Budget = %d, want an error", n)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCapGiven(t *testing.T) {
	if reserve.CapGiven(nil, envMap(nil)) {
		t.Error("CapGiven with no flag and no env = true")
	}
	if !reserve.CapGiven(intPtr(1), envMap(nil)) {
		t.Error("CapGiven with a flag = false")
	}
	if !reserve.CapGiven(nil, envMap(map[string]string{reserve.EnvCPUCap: "2"})) {
		t.Error("CapGiven with KTSTR_CPU_CAP = false")
	}
}
