//! Wasm tests of the `metrics` reference plugin (filled in by its author).
