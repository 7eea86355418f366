//! Applies a reloaded pipeline to the running one: only what changed is touched.
//!
//! Order matters for losing nothing: every new or changed plugin is ready before anything
//! changes; a removed source finishes (its batches delivered) before anything downstream
//! of it changes; consumers are connected before anything feeding them starts; a sink
//! being replaced gets its new input connected in the same step the old one is
//! disconnected, and the new sink starts once the old one has delivered what it held.

use super::diff::Diff;
use super::running::{spec, Topology, RETIRE_DEADLINE};
use crate::config::PipelineConfig;
use crate::reload::{prepare, LoadPipeline, Loaded, ReloadReport, SwapOutcome, PARTLY_APPLIED};
use crate::transforms::{Swap, Swapped, Version};
use std::collections::BTreeMap;
use tokio::sync::{mpsc, oneshot};

impl Topology {
    /// Re-reads the pipeline and applies what changed. An error before anything changed
    /// says "nothing was changed"; later ones (a swap a worker refused, a sink whose buffer
    /// cannot open) name what did not apply.
    pub async fn reload(&mut self, load: &LoadPipeline) -> Result<ReloadReport, String> {
        let load = load.clone();
        let new = tokio::task::spawn_blocking(move || load())
            .await
            .map_err(|e| format!("loading the pipeline panicked: {e}"))?
            .map_err(|e| format!("the new pipeline is invalid: {e:#}"))?;
        let diff = Diff::between(&self.running_document(), &new.merged);
        if !diff.needs_restart.is_empty() {
            return Err(format!(
                "the new pipeline changes {}: restart Sluice to apply that (nothing was changed)",
                diff.needs_restart
                    .iter()
                    .map(|key| format!("`{key}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
        }
        let (swaps, added) = self.prepare_plugins(&new, &diff).await?;
        let loaded = Loaded::of(&new);
        let PipelineConfig {
            sources: mut new_sources,
            transforms: mut new_transforms,
            sinks: mut new_sinks,
            merged: doc,
            ..
        } = new;
        let mut report = ReloadReport {
            unchanged: diff
                .transforms
                .unchanged
                .iter()
                .chain(&diff.transforms.changed)
                .filter(|name| !swaps.iter().any(|(n, _)| n == *name))
                .cloned()
                .collect(),
            ..ReloadReport::default()
        };
        let mut refused = Vec::new();

        // Swaps first: they are the likeliest part to be refused (a new version may
        // refuse the old one's state), and a refusal leaves the old version running.
        for (name, version) in swaps {
            match self.swap(&name, version).await {
                Ok(how) => {
                    report.swapped.insert(name, how);
                }
                Err(e) => {
                    self.telemetry.reload_failed("plugin", &e);
                    refused.push(e);
                }
            }
        }
        for (name, config) in &new_transforms {
            let Some(task) = self.transforms.get_mut(name) else {
                continue;
            };
            let new_spec = spec(&doc, "transforms", name);
            if report.swapped.contains_key(name) || report.unchanged.contains(name) {
                task.config = config.clone();
                task.spec = new_spec;
            } else {
                // The swap was refused: the old settings stay (the next reload tries
                // again), the new inputs apply.
                task.config.inputs = config.inputs.clone();
                if let (Some(spec), Some(inputs)) =
                    (task.spec.as_object_mut(), new_spec.get("inputs"))
                {
                    spec.insert("inputs".into(), inputs.clone());
                }
            }
        }

        // Removed sources finish first, while everything downstream of them still
        // runs: their in-flight batches are delivered and checkpointed. Changed ones stop
        // too, saving their checkpoint for the new settings to resume from.
        for name in diff.sources.removed.iter().chain(&diff.sources.changed) {
            self.stop_source(name).await;
        }
        report.removed.extend(diff.sources.removed.iter().cloned());

        // Every new connection is made before any old one is cut, so a batch always has
        // somewhere to go: at worst it arrives twice (see docs/reload.md, Limits).
        // Transforms being removed keep sending what they hold to their consumers.
        self.retiring = diff.transforms.removed.iter().cloned().collect();
        for name in &diff.sinks.added {
            let sink = new_sinks
                .remove(name)
                .expect("an added sink is in the new pipeline");
            match self.start_sink(name, sink, None, spec(&doc, "sinks", name)) {
                Ok(()) => report.added.push(name.clone()),
                Err(e) => refused.push(format!("{e:#}")),
            }
        }
        // A replaced sink's new input takes the old one's place on each output in one
        // step; batches wait in it until the old sink has delivered what it holds.
        let mut replacing = Vec::new();
        for name in &diff.sinks.changed {
            let sink = new_sinks
                .remove(name)
                .expect("a changed sink is in the new pipeline");
            let (tx, rx) = mpsc::channel(super::CHANNEL_CAPACITY);
            self.connect(name, sink.inputs().to_vec(), tx);
            replacing.push((name.clone(), sink, rx));
        }
        // Kept consumers move before new transforms start, so the first batch a new
        // transform sends already has them.
        for name in &diff.transforms.rewired {
            if let Some(t) = new_transforms.get(name) {
                self.rewire(name, t.inputs.clone());
                report.rewired.push(name.clone());
            }
        }
        for name in diff
            .sinks
            .rewired
            .iter()
            .filter(|n| !diff.sinks.changed.contains(n))
        {
            if let (Some(sink), Some(task)) = (new_sinks.get(name), self.sinks.get_mut(name)) {
                task.spec = spec(&doc, "sinks", name);
                self.rewire(name, sink.inputs().to_vec());
                report.rewired.push(name.clone());
            }
        }
        let added_transforms: BTreeMap<_, _> = diff
            .transforms
            .added
            .iter()
            .filter_map(|name| {
                let t = new_transforms.remove(name)?;
                Some((name.clone(), (t, spec(&doc, "transforms", name))))
            })
            .collect();
        let names: Vec<String> = added_transforms.keys().cloned().collect();
        match self.start_transforms(added_transforms, added) {
            Ok(()) => report.added.extend(names),
            Err(e) => refused.push(format!("{e:#}")),
        }
        for name in &diff.transforms.removed {
            self.retire_transform(name);
            report.removed.push(name.clone());
        }
        self.retiring.clear();
        for name in diff.sources.changed.iter().chain(&diff.sources.added) {
            let source = new_sources.remove(name).expect("in the new pipeline");
            self.start_source(name, source, spec(&doc, "sources", name), true);
        }
        // Fanouts of removed components now live only as long as their producers do, so a
        // sink they fed sees its input close once they finish.
        self.forget_outputs();
        report.added.extend(diff.sources.added.iter().cloned());
        report
            .restarted
            .extend(diff.sources.changed.iter().cloned());

        // Removed sinks deliver what they hold; replaced ones too, before their successor
        // starts on the same buffer.
        for name in &diff.sinks.removed {
            self.disconnect(name);
            if !self.retire_sink(name).await {
                tracing::warn!(sink = %name, "removed sink did not deliver everything within {:?}; it was stopped (a disk buffer keeps the rest)", RETIRE_DEADLINE);
            }
            report.removed.push(name.clone());
        }
        for (name, sink, intake) in replacing {
            if !self.retire_sink(&name).await {
                tracing::warn!(sink = %name, "the old version of the sink did not deliver everything within {:?}; it was stopped (a disk buffer keeps the rest for the new one)", RETIRE_DEADLINE);
            }
            let spec = spec(&doc, "sinks", &name);
            match self.start_sink(&name, sink, Some(intake), spec) {
                Ok(()) => report.restarted.push(name),
                Err(e) => {
                    // Nothing reads its input now: cut it, so its sources are not held
                    // up; the next reload starts it again (it is not running).
                    self.disconnect(&name);
                    refused.push(format!("{e:#}"));
                }
            }
        }

        for name in &report.removed {
            self.telemetry.forget(name);
        }
        self.update_taps();
        self.current = loaded;
        if refused.is_empty() {
            Ok(report)
        } else {
            Err(format!(
                "{PARTLY_APPLIED}; not applied: {}",
                refused.join("; ")
            ))
        }
    }

    /// Loads and self-checks the plugin of every new transform and every kept one whose
    /// plugin file or settings changed. Any failure refuses the whole reload.
    async fn prepare_plugins(
        &self,
        new: &PipelineConfig,
        diff: &Diff,
    ) -> Result<(Vec<(String, Version)>, BTreeMap<String, Version>), String> {
        let mut swaps = Vec::new();
        let mut added = BTreeMap::new();
        let mut failures = Vec::new();
        for (name, config) in &new.transforms {
            let running = self.transforms.get(name);
            let running_sha = running.map(|t| t.sha256.clone()).unwrap_or_default();
            let same_settings = running.is_some() && !diff.transforms.changed.contains(name);
            let (engine, name2, config2) = (self.engine.clone(), name.clone(), config.clone());
            let ready = tokio::task::spawn_blocking(move || {
                prepare(&engine, &name2, &config2, &running_sha, same_settings)
            })
            .await
            .map_err(|e| format!("preparing `{name}` panicked: {e}"))?;
            match ready {
                Ok(None) => {}
                Ok(Some(version)) if running.is_some() => swaps.push((name.clone(), version)),
                Ok(Some(version)) => {
                    added.insert(name.clone(), version);
                }
                Err(e) => {
                    self.telemetry.reload_failed("plugin", &e);
                    failures.push(e);
                }
            }
        }
        if failures.is_empty() {
            Ok((swaps, added))
        } else {
            Err(failures.join("; "))
        }
    }

    /// Hands `name`'s worker a new version and waits until it runs it.
    async fn swap(&mut self, name: &str, version: Version) -> Result<SwapOutcome, String> {
        let task = self.transforms.get_mut(name).expect("a kept transform");
        let sha256 = version.module.sha256.clone();
        let (done, outcome) = oneshot::channel();
        if task.swaps.send(Swap { version, done }).await.is_err() {
            return Err(format!("`{name}` stopped before the swap"));
        }
        match outcome.await {
            Ok(Ok(how)) => {
                self.telemetry
                    .plugin_running(name, &sha256, Some(&task.sha256));
                task.sha256 = sha256;
                Ok(match how {
                    Swapped::StateCarried => SwapOutcome::StateCarried,
                    Swapped::Fresh => SwapOutcome::Fresh,
                })
            }
            Ok(Err(e)) => Err(format!("plugin `{name}`: {e}; the running version stays")),
            Err(_) => Err(format!("`{name}` stopped during the swap")),
        }
    }
}
