//! One wasmtime [`Engine`] for every plugin, with the epoch ticker that enforces call
//! deadlines and an on-disk cache of compiled modules keyed by content hash, so a restart
//! (or a reload of an unchanged file) does not pay for compilation again.

use super::error::LoadError;
use super::instance::HostState;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Config, Engine, ExternType, Linker, Module, OptLevel};

/// How often the epoch advances; deadlines are whole ticks, so this is their resolution.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The exports every plugin must have, with their signatures as the ABI fixes them.
const REQUIRED: &[(&str, &str)] = &[
    ("sluice_abi_version", "() -> (i32)"),
    ("sluice_alloc", "(i32) -> (i32)"),
    ("sluice_free", "(i32, i32) -> ()"),
    ("sluice_init", "(i32, i32) -> (i64)"),
    ("sluice_process", "(i32, i32) -> (i64)"),
];

/// Optional exports; present ones must have these signatures.
const OPTIONAL: &[(&str, &str)] = &[
    ("sluice_tick", "(i64) -> (i64)"),
    ("sluice_snapshot", "() -> (i64)"),
    ("sluice_restore", "(i32, i32) -> (i64)"),
    ("_initialize", "() -> ()"),
];

#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    compat: String,
}

/// A compiled, checked module, ready to instantiate any number of times.
#[derive(Clone)]
pub struct PluginModule {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub(crate) module: Module,
    pub has_tick: bool,
    pub has_snapshot: bool,
    /// Whether this load compiled the module (false: it came from the cache).
    pub compiled: bool,
}

impl PluginEngine {
    /// `cache_dir` is where compiled modules are kept; `None` compiles every time.
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config).map_err(wt)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut HostState| &mut s.wasi)
            .map_err(wt)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = format!("{:016x}", hasher.finish());
        spawn_epoch_ticker(&engine);
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache_dir,
                compat,
            }),
        })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// Reads, checks and compiles a plugin (or loads it from the cache).
    pub fn load(
        &self,
        name: &str,
        path: &Path,
        pin: Option<&str>,
    ) -> Result<PluginModule, LoadError> {
        let display = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            plugin: name.to_owned(),
            path: display.clone(),
            source,
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if let Some(expected) = pin {
            if !expected.eq_ignore_ascii_case(&sha256) {
                return Err(LoadError::Checksum {
                    plugin: name.to_owned(),
                    path: display,
                    expected: expected.to_owned(),
                    actual: sha256,
                });
            }
        }
        let (module, compiled) = self
            .compile(&bytes, &sha256)
            .map_err(|e| LoadError::Compile {
                plugin: name.to_owned(),
                path: display.clone(),
                reason: format!("{e:#}"),
            })?;
        let abi = |reason: String| LoadError::Abi {
            plugin: name.to_owned(),
            reason,
        };
        let signature = |export: &str| match module.get_export(export) {
            Some(ExternType::Func(f)) => {
                let params: Vec<String> = f.params().map(|p| p.to_string()).collect();
                let results: Vec<String> = f.results().map(|p| p.to_string()).collect();
                Some(format!(
                    "({}) -> ({})",
                    params.join(", "),
                    results.join(", ")
                ))
            }
            Some(_) => Some("not a function".to_owned()),
            None => None,
        };
        let missing: Vec<&str> = REQUIRED
            .iter()
            .filter(|(export, _)| signature(export).is_none())
            .map(|(export, _)| *export)
            .collect();
        if !missing.is_empty() {
            return Err(abi(format!(
                "{display} lacks the required export(s) {} (see docs/plugin-abi.md; a Rust plugin gets them from #[transform] or export_plugin!)",
                missing.join(", ")
            )));
        }
        for (export, want) in REQUIRED.iter().chain(OPTIONAL) {
            if let Some(have) = signature(export) {
                if normalise(&have) != normalise(want) {
                    return Err(abi(format!(
                        "export `{export}` has type {have}, ABI v1 requires {want}"
                    )));
                }
            }
        }
        if !matches!(module.get_export("memory"), Some(ExternType::Memory(_))) {
            return Err(abi(format!(
                "{display} does not export its linear memory as `memory`"
            )));
        }
        Ok(PluginModule {
            name: name.to_owned(),
            path: path.to_owned(),
            sha256,
            has_tick: signature("sluice_tick").is_some(),
            has_snapshot: signature("sluice_snapshot").is_some()
                && signature("sluice_restore").is_some(),
            module,
            compiled,
        })
    }

    fn compile(&self, bytes: &[u8], sha256: &str) -> anyhow::Result<(Module, bool)> {
        let engine = &self.inner.engine;
        let Some(dir) = &self.inner.cache_dir else {
            return Ok((Module::new(engine, bytes).map_err(wt)?, true));
        };
        let cached = dir.join(format!("{sha256}-{}.cwasm", self.inner.compat));
        // Read, not mapped: a cache file changed under a mapping would crash the process
        // (SIGBUS), and a few MiB copied once per load cost nothing.
        if let Ok(serialized) = std::fs::read(&cached) {
            // SAFETY: the file was written by `Module::serialize` of an engine with the
            // same compatibility hash (it is in the name) into our own data directory;
            // wasmtime checks the header and refuses what it did not write.
            match unsafe { Module::deserialize(engine, &serialized) } {
                Ok(module) => return Ok((module, false)),
                Err(e) => {
                    tracing::warn!(path = %cached.display(), error = %e, "ignoring unreadable compiled-module cache entry")
                }
            }
        }
        let module = Module::new(engine, bytes).map_err(wt)?;
        if let Err(e) = write_atomically(dir, &cached, &module.serialize().map_err(wt)?) {
            tracing::warn!(path = %cached.display(), error = %e, "cannot write compiled-module cache");
        }
        Ok((module, true))
    }
}

/// wasmtime has its own error type; keep its full chain of causes in ours.
fn wt(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

fn normalise(sig: &str) -> String {
    sig.replace(' ', "")
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// The ticker holds only a weak handle, so it stops by itself once the engine is gone.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawn epoch ticker");
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"(module
      (memory (export "memory") 1)
      (func (export "sluice_abi_version") (result i32) (i32.const 1))
      (func (export "sluice_alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "sluice_free") (param i32 i32))
      (func (export "sluice_init") (param i32 i32) (result i64) (i64.const 0))
      (func (export "sluice_process") (param i32 i32) (result i64) (i64.const 0)))"#;

    #[test]
    fn a_second_load_comes_from_the_cache_not_the_compiler() {
        let dir = tempfile::tempdir().unwrap();
        let wat = dir.path().join("p.wat");
        std::fs::write(&wat, MINIMAL).unwrap();
        let cache = dir.path().join("cache");

        let first = PluginEngine::new(Some(cache.clone()))
            .unwrap()
            .load("p", &wat, None)
            .unwrap();
        assert!(first.compiled);
        let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
        assert_eq!(entries.len(), 1);
        assert!(entries[0]
            .file_name()
            .to_string_lossy()
            .starts_with(&first.sha256));

        // A new engine, as after a restart.
        let second = PluginEngine::new(Some(cache.clone()))
            .unwrap()
            .load("p", &wat, None)
            .unwrap();
        assert!(!second.compiled);
        assert_eq!(second.sha256, first.sha256);

        // A corrupted cache entry is ignored and rewritten, never fatal.
        std::fs::write(entries[0].path(), b"garbage").unwrap();
        let third = PluginEngine::new(Some(cache))
            .unwrap()
            .load("p", &wat, None)
            .unwrap();
        assert!(third.compiled);
    }

    #[test]
    fn a_wrong_pin_is_refused_with_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let wat = dir.path().join("p.wat");
        std::fs::write(&wat, MINIMAL).unwrap();
        let pin = "0".repeat(64);
        let err = PluginEngine::new(None)
            .unwrap()
            .load("p", &wat, Some(&pin))
            .err()
            .unwrap();
        let message = err.to_string();
        assert!(message.starts_with("plugin `p`: sha256 of"), "{message}");
        assert!(message.contains(&pin), "{message}");
    }
}
