//! Checks that need the whole configuration: names, `inputs` that lead somewhere, no
//! cycles, plugin files that exist. Every problem is collected, none stops the others.

use super::{ConfigError, KeyPath, Origins, PipelineConfig};
use std::collections::{BTreeMap, BTreeSet};

/// The named side outputs of every transform, addressed as `NAME.OUTPUT` in `inputs`.
pub const TRANSFORM_OUTPUTS: &[&str] = &["dead_letter", "metrics", "alerts"];

pub fn validate(
    config: &mut PipelineConfig,
    declared: &BTreeSet<String>,
    origins: &Origins,
    errors: &mut Vec<ConfigError>,
) {
    let mut seen = BTreeMap::new();
    let sections = [
        (
            "sources",
            config.sources.keys().cloned().collect::<Vec<_>>(),
        ),
        ("transforms", config.transforms.keys().cloned().collect()),
        ("sinks", config.sinks.keys().cloned().collect()),
    ];
    for (section, names) in &sections {
        for name in names {
            let path = KeyPath::parse(&[section, name]);
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                errors.push(origins.error(
                    path.clone(),
                    format!(
                        "component name `{name}` may contain only letters, digits, `_` and `-`"
                    ),
                ));
            }
            if let Some(other) = seen.insert(name.clone(), *section) {
                errors.push(origins.error(
                    path,
                    format!("`{name}` is already the name of one of the {other}"),
                ));
            }
        }
    }

    let mut outputs: BTreeSet<String> = config.sources.keys().cloned().collect();
    for name in config.transforms.keys() {
        outputs.insert(name.clone());
        for output in TRANSFORM_OUTPUTS {
            outputs.insert(format!("{name}.{output}"));
        }
    }
    let consumers = config
        .transforms
        .iter()
        .map(|(n, t)| (("transforms", n.as_str()), t.inputs.as_slice()))
        .chain(
            config
                .sinks
                .iter()
                .map(|(n, s)| (("sinks", n.as_str()), s.inputs())),
        );
    for ((section, name), inputs) in consumers {
        let base = KeyPath::parse(&[section, name, "inputs"]);
        if inputs.is_empty() {
            errors.push(origins.error(base.clone(), "`inputs` must name at least one component"));
        }
        for (i, input) in inputs.iter().enumerate() {
            if input == name {
                errors.push(
                    origins.error(base.index(i), format!("`{name}` cannot be its own input")),
                );
            } else if !outputs.contains(input)
                && !declared.contains(input.split('.').next().unwrap_or(input))
            {
                let known: Vec<&str> = outputs.iter().map(String::as_str).collect();
                errors.push(origins.error(
                    base.index(i),
                    format!(
                        "unknown input `{input}`; the outputs are: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
    }

    if let Some(cycle) = find_cycle(config) {
        let path = KeyPath::parse(&["transforms", &cycle[0], "inputs"]);
        errors.push(origins.error(
            path,
            format!("the transforms form a cycle: {}", cycle.join(" -> ")),
        ));
    }

    let consumed: BTreeSet<&String> = config
        .transforms
        .values()
        .flat_map(|t| t.inputs.iter())
        .chain(config.sinks.values().flat_map(|s| s.inputs().iter()))
        .collect();
    for (name, transform) in &config.transforms {
        if transform.on_error == crate::transforms::OnError::DeadLetter
            && !consumed.contains(&format!("{name}.dead_letter"))
        {
            errors.push(origins.error(
                KeyPath::parse(&["transforms", name, "on_error"]),
                format!("`on_error: dead_letter`, but no component reads `{name}.dead_letter`; add it to a sink's `inputs`"),
            ));
        }
    }

    for (name, transform) in config.transforms.iter_mut() {
        let key = KeyPath::parse(&["transforms", name, "plugin"]);
        transform.plugin = origins.resolve(&key, &transform.plugin);
        if !transform.plugin.is_file() {
            errors.push(origins.error(
                key,
                format!(
                    "plugin file {} does not exist (build the reference plugins with `scripts/build-plugins`)",
                    transform.plugin.display()
                ),
            ));
        }
        if let Some(pin) = &transform.sha256 {
            if pin.len() != 64 || !pin.chars().all(|c| c.is_ascii_hexdigit()) {
                errors.push(origins.error(
                    KeyPath::parse(&["transforms", name, "sha256"]),
                    "`sha256` must be 64 hexadecimal digits",
                ));
            }
        }
        if let Some(canary) = transform.canary.as_mut() {
            let key = KeyPath::parse(&["transforms", name, "canary", "plugin"]);
            canary.plugin = origins.resolve(&key, &canary.plugin);
            if !canary.plugin.is_file() {
                errors.push(origins.error(
                    key,
                    format!(
                        "canary plugin file {} does not exist",
                        canary.plugin.display()
                    ),
                ));
            }
            if !(canary.sample > 0.0 && canary.sample <= 1.0) {
                errors.push(origins.error(
                    KeyPath::parse(&["transforms", name, "canary", "sample"]),
                    "`sample` is the share of batches copied to the canary: above 0, at most 1",
                ));
            }
        }
    }
    for (name, sink) in config.sinks.iter_mut() {
        sink.resolve_paths(&|key: &[&str], path| {
            let mut full = vec!["sinks", name.as_str()];
            full.extend_from_slice(key);
            origins.resolve(&KeyPath::parse(&full), path)
        });
    }
    for (name, sink) in &config.sinks {
        for (key, message) in sink.check() {
            let mut path = KeyPath::parse(&["sinks", name]);
            for k in key {
                path = path.key(&k);
            }
            errors.push(origins.error(path, message));
        }
    }
    for (name, source) in config.sources.iter_mut() {
        for problem in source.check() {
            let mut full = vec!["sources", name.as_str()];
            full.extend_from_slice(problem.0);
            errors.push(origins.error(KeyPath::parse(&full), problem.1));
        }
    }
}

/// A cycle among transforms, as the list of names around it (first repeated at the end).
fn find_cycle(config: &PipelineConfig) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        node: &str,
        config: &PipelineConfig,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Visiting);
        stack.push(node.to_owned());
        if let Some(t) = config.transforms.get(node) {
            for input in &t.inputs {
                let upstream = input.split('.').next().unwrap_or(input);
                if config.transforms.contains_key(upstream) {
                    if let Some(cycle) = visit(upstream, config, marks, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for name in config.transforms.keys() {
        if let Some(cycle) = visit(name, config, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}
