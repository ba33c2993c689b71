//! Holds the workspace test suite (tests/) and benchmarks (benches/).
