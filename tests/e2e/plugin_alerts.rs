//! Wasm tests of the `alerts` reference plugin (filled in by its author).
