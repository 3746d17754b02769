//go:build !release

package e2e_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The devnet's parents serve their own metrics and their enclave's,
// relayed: after a keygen, the enclave's session metrics are there.
func TestDevnetParentsServeMetrics(t *testing.T) {
	d, _ := startDevnet(t, t.TempDir(), 2)
	info := d.Info()
	createTaprootKey(t, info)
	for _, c := range info.Cosigners {
		if c.Metrics == "" {
			t.Fatalf("%s: devnet.json names no metrics address", c.ID)
		}
		body := scrape(t, "http://"+c.Metrics+"/metrics")
		for _, want := range []string{
			"cosigner_parent_build_info", "cosigner_parent_relay_frames_out_total",
			"cosigner_enclave_build_info", "cosigner_enclave_mpc_session_duration_seconds",
			"cosigner_enclave_frames_accepted_total",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s's parent /metrics has no %s", c.ID, want)
			}
		}
		if strings.Contains(body, "cosigner_parent_enclave_metrics_up 0") {
			t.Errorf("%s's parent could not fetch its enclave's metrics", c.ID)
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}
