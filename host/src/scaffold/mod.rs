//! `sluice plugin new NAME`: a plugin crate that builds to Wasm and passes its tests as
//! generated (native `cargo test`, and `sluice test` on the built `.wasm`), with a
//! pipeline to try it in. The templates live in `template/`.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("`{name}` cannot name a plugin: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("{0} already exists: choose another name or remove it")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the new crate gets `sluice-sdk` from.
#[derive(Debug, Clone)]
pub enum Sdk {
    /// A checkout's `sdk/` directory.
    Path(PathBuf),
    /// The repository, for machines without a checkout.
    Git(String),
}

impl Sdk {
    fn dependency(&self) -> String {
        match self {
            Sdk::Path(p) => format!("{{ path = {:?} }}", p.display().to_string()),
            Sdk::Git(url) => format!("{{ git = {url:?} }}"),
        }
    }
}

const TEMPLATES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("template/Cargo.toml.tmpl")),
    (
        "rust-toolchain.toml",
        include_str!("template/rust-toolchain.toml.tmpl"),
    ),
    (".gitignore", include_str!("template/gitignore.tmpl")),
    ("src/lib.rs", include_str!("template/lib.rs.tmpl")),
    (
        "{{name}}.test.yaml",
        include_str!("template/test.yaml.tmpl"),
    ),
    ("pipeline.yaml", include_str!("template/pipeline.yaml.tmpl")),
    ("README.md", include_str!("template/README.md.tmpl")),
];

/// Creates `parent/NAME/` and returns the files written, relative to it.
pub fn create(parent: &Path, name: &str, sdk: &Sdk) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let fn_name = name.replace('-', "_");
    let vars = [
        ("{{name}}", name.to_owned()),
        ("{{fn_name}}", fn_name.clone()),
        ("{{type_name}}", camel_case(&fn_name)),
        (
            "{{wasm}}",
            format!("target/wasm32-wasip1/release/{fn_name}.wasm"),
        ),
        ("{{sdk}}", sdk.dependency()),
    ];
    let fill = |text: &str| {
        vars.iter()
            .fold(text.to_owned(), |t, (key, value)| t.replace(key, value))
    };
    let mut written = Vec::new();
    for (file, template) in TEMPLATES {
        let relative = PathBuf::from(fill(file));
        let path = dir.join(&relative);
        let write = |path: &Path| -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
            std::fs::write(path, fill(template))
        };
        write(&path).map_err(|source| ScaffoldError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(relative);
    }
    Ok(written)
}

/// A crate name that is also a Rust function name once `-` becomes `_`.
fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let invalid = |reason| ScaffoldError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > 64 {
        return Err(invalid("use 1 to 64 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(invalid("start with a lowercase letter"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(invalid("use lowercase letters, digits, `-` and `_` only"));
    }
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
        "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop",
        "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return", "self",
        "static", "struct", "super", "trait", "true", "try", "type", "typeof", "unsafe", "unsized",
        "use", "virtual", "where", "while", "yield",
    ];
    if KEYWORDS.contains(&name.replace('-', "_").as_str()) {
        return Err(invalid("it is a Rust keyword"));
    }
    Ok(())
}

/// The type `#[transform]` derives from the function's name (`order_tagger` → `OrderTagger`):
/// the same rule as `camel_case` in `sdk/macros` (a proc-macro crate cannot share it). The
/// e2e test that builds a scaffold fails if the two ever differ.
fn camel_case(snake: &str) -> String {
    snake
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_be_a_crate_and_a_function_are_refused() {
        for (name, why) in [
            ("", "1 to 64"),
            ("9lives", "lowercase letter"),
            ("Order", "lowercase letter"),
            ("order tagger", "only"),
            ("type", "keyword"),
        ] {
            let err = check_name(name).unwrap_err().to_string();
            assert!(err.contains(why), "{name}: {err}");
        }
        check_name("order-tagger_2").unwrap();
    }

    #[test]
    fn every_placeholder_is_filled_and_an_existing_directory_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = Sdk::Git("https://example.invalid/sluice".into());
        let files = create(dir.path(), "order-tagger", &sdk).unwrap();
        assert!(files.contains(&PathBuf::from("order-tagger.test.yaml")));
        for file in &files {
            let text = std::fs::read_to_string(dir.path().join("order-tagger").join(file)).unwrap();
            assert!(!text.contains("{{"), "{}: {text}", file.display());
        }
        let lib = std::fs::read_to_string(dir.path().join("order-tagger/src/lib.rs")).unwrap();
        assert!(lib.contains("pub fn order_tagger(") && lib.contains("run::<OrderTagger>"));
        let err = create(dir.path(), "order-tagger", &sdk).unwrap_err();
        assert!(matches!(err, ScaffoldError::Exists(_)), "{err}");
    }
}
