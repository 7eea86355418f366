//! Wasm tests of the `enrich` reference plugin (filled in by its author).
