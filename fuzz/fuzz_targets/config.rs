//! The pipeline config loader on YAML text (`config::load_sources`, what `load_files`
//! calls after reading the files, and what `sluice validate` and every reload run).
//! Any text must load or give `ConfigErrors`, never panic; every error carries a message,
//! and one that names a file position names this file and a line that exists in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::config::load_sources;
use std::path::PathBuf;

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/sluice".into()),
        "PORT" => Some("3100".into()),
        "EMPTY" => Some(String::new()),
        "LOKI_URL" => Some("http://loki:3100".into()),
        _ => None,
    }
}

/// Lines as YAML counts them (any of its line breaks, `\r\n` as one), plus the one a
/// position just past the end is on.
fn lines(text: &str) -> usize {
    let text = text.replace("\r\n", "\n");
    1 + text
        .chars()
        .filter(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
        .count()
}

fuzz_target!(|data: &[u8]| {
    // Files are read with `read_to_string`, so only UTF-8 ever reaches the loader.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let name = PathBuf::from("fuzz.yaml");
    let sources = vec![(name.clone(), text.to_owned())];
    match load_sources(&sources, &env) {
        Ok(config) => {
            assert!(!config.sources.is_empty() && !config.sinks.is_empty());
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "Err without any error");
            for e in &errors.0 {
                assert!(!e.message.is_empty(), "empty message: {e:?}");
                if let Some(l) = &e.location {
                    assert_eq!(l.file, name);
                    assert!(
                        l.line >= 1 && l.column >= 1,
                        "position {l:?} is not 1-based"
                    );
                    assert!(
                        l.line <= lines(text),
                        "{e}: line {} of a {}-line file",
                        l.line,
                        lines(text)
                    );
                }
            }
            let _ = errors.to_string();
        }
    }
});
