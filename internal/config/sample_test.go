package config

import "testing"

// The sample configuration shipped in deploy/ must load and validate.
func TestSampleConfigLoads(t *testing.T) {
	cfg, err := Load("../../deploy/rewind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Capture.FlushInterval != Default().Capture.FlushInterval {
		t.Errorf("sample flush_interval %v differs from the default %v", cfg.Capture.FlushInterval, Default().Capture.FlushInterval)
	}
}
