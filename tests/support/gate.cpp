// The default gate: every test binary runs unconditionally.
int qcodec_test_gate();
int qcodec_test_gate() { return 0; }
