//! Wasm tests of the `redact` reference plugin (filled in by its author).
