//! Secret values in configuration. A secret is named, never written: `{env: NAME}` or
//! `{file: /run/secrets/x}`. It is read when the configuration is loaded and held in a
//! `redact::Secret`, whose Debug and Display print a placeholder, so no log line, error or
//! panic can show it.

use redact::Secret;
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum SecretSource {
    Env(String),
    File(PathBuf),
}

#[derive(Clone)]
pub struct SecretString {
    source: String,
    value: Secret<String>,
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretString({}: {:?})", self.source, self.value)
    }
}

impl SecretString {
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }

    /// Where it came from (`env NAME` or `file PATH`), for messages that must not show it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Compares in time independent of where the first difference is, so a bearer token
    /// cannot be guessed byte by byte from response times.
    pub fn matches(&self, candidate: &str) -> bool {
        let a = self.expose().as_bytes();
        let b = candidate.as_bytes();
        let mut diff = a.len() ^ b.len();
        for i in 0..a.len().max(b.len()) {
            diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

/// Only the two ways of naming a secret: a plain string is refused by the loader too.
impl schemars::JsonSchema for SecretString {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A secret, named and never written: `{env: VARIABLE}` or `{file: /path/to/secret}`.",
            "oneOf": [
                {"type": "object", "properties": {"env": {"type": "string"}}, "required": ["env"], "additionalProperties": false},
                {"type": "object", "properties": {"file": {"type": "string"}}, "required": ["file"], "additionalProperties": false}
            ]
        })
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.is_string() {
            return Err(D::Error::custom(
                "a secret cannot be written in the configuration: use `{env: VARIABLE}` or `{file: /path/to/secret}`",
            ));
        }
        let source: SecretSource = serde_json::from_value(value).map_err(|_| {
            D::Error::custom("a secret must be `{env: VARIABLE}` or `{file: /path/to/secret}`")
        })?;
        match source {
            SecretSource::Env(name) => match std::env::var(&name) {
                Ok(v) if !v.is_empty() => Ok(Self {
                    source: format!("env {name}"),
                    value: Secret::new(v),
                }),
                _ => Err(D::Error::custom(format!(
                    "the secret's environment variable `{name}` is not set or empty"
                ))),
            },
            SecretSource::File(path) => match std::fs::read_to_string(&path) {
                Ok(v) if !v.trim().is_empty() => Ok(Self {
                    source: format!("file {}", path.display()),
                    value: Secret::new(v.trim_end_matches(['\n', '\r']).to_owned()),
                }),
                Ok(_) => Err(D::Error::custom(format!(
                    "the secret file {} is empty",
                    path.display()
                ))),
                Err(e) => Err(D::Error::custom(format!(
                    "cannot read the secret file {}: {e}",
                    path.display()
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_secrets_are_refused_and_values_never_print() {
        let err = serde_json::from_str::<SecretString>("\"hunter2\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be written"), "{err}");
        assert!(!err.contains("hunter2"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t-value\n").unwrap();
        let json = format!("{{\"file\": {:?}}}", path.display().to_string());
        let secret: SecretString = serde_json::from_str(&json).unwrap();
        assert_eq!(secret.expose(), "s3cr3t-value");
        assert!(secret.matches("s3cr3t-value"));
        assert!(!secret.matches("s3cr3t-valuf"));
        assert!(!secret.matches("s3cr3t"));
        let printed = format!("{secret:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
    }

    #[test]
    fn missing_env_secret_names_the_variable_only() {
        let err = serde_json::from_str::<SecretString>("{\"env\": \"SLUICE_TEST_UNSET_SECRET\"}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("SLUICE_TEST_UNSET_SECRET"), "{err}");
    }
}
