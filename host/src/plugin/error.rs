use thiserror::Error;

/// Why a plugin could not be loaded. Refuses the plugin before it runs.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("plugin `{plugin}`: cannot read {path}: {source}")]
    Read {
        plugin: String,
        path: String,
        source: std::io::Error,
    },
    #[error("plugin `{plugin}`: sha256 of {path} is {actual}, but the pipeline pins {expected}")]
    Checksum {
        plugin: String,
        path: String,
        expected: String,
        actual: String,
    },
    #[error("plugin `{plugin}`: {path} is not a valid WebAssembly module: {reason}")]
    Compile {
        plugin: String,
        path: String,
        reason: String,
    },
    #[error("plugin `{plugin}`: {reason}")]
    Abi { plugin: String, reason: String },
    #[error("plugin `{plugin}`: cannot instantiate: {reason}")]
    Instantiate { plugin: String, reason: String },
    #[error("plugin `{plugin}`: init failed: {reason}")]
    Init { plugin: String, reason: String },
}

/// Why one call into a plugin failed. Each kind is a metric label and feeds the
/// transform's `on_error` policy; all of them mean the instance is rebuilt.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CallError {
    #[error("trapped: {0}")]
    Trap(String),
    #[error("timed out after {0} ms")]
    Timeout(u64),
    #[error("exceeded its memory limit of {0} bytes")]
    OutOfMemory(usize),
    #[error("returned malformed output: {0}")]
    Malformed(String),
    #[error("reported an error: {0}")]
    Guest(String),
    /// The instance failed earlier and could not be rebuilt (its `init` now fails).
    #[error("could not be restarted: {0}")]
    Unavailable(String),
}

impl CallError {
    /// The `kind` label of `sluice_plugin_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Trap(_) => "trap",
            CallError::Timeout(_) => "timeout",
            CallError::OutOfMemory(_) => "out_of_memory",
            CallError::Malformed(_) => "malformed",
            CallError::Guest(_) => "guest_error",
            CallError::Unavailable(_) => "unavailable",
        }
    }

    /// A guest-reported error leaves the instance consistent; every other failure may
    /// have left it half-way through a call, so it must not be called again.
    pub fn poisons_instance(&self) -> bool {
        !matches!(self, CallError::Guest(_))
    }
}
