//! A running `sluice run` process, stopped with SIGTERM (or killed) when dropped.

use sluice_tests::{sluice_bin, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Sluice {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Sluice {
    /// Starts `sluice run -c config`, logging to `dir/sluice-N.log`.
    pub fn start(dir: &Path, config: &Path) -> Self {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("sluice-{n}.log"));
        let child = Command::new(sluice_bin())
            .args(["run", "-c"])
            .arg(config)
            .env("SLUICE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self {
            child: Some(child),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal by name (`HUP`, `TERM`...) without waiting.
    pub fn signal(&self, name: &str) {
        signal(self.child.as_ref().expect("running"), name);
    }

    /// The exit code if the process ends within `timeout` (it keeps running otherwise).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut().expect("running");
        let status = wait_for(timeout, || child.try_wait().unwrap())?;
        self.child = None;
        Some(status.code().unwrap_or(-1))
    }

    /// SIGTERM, then waits for a clean exit; returns the exit code.
    pub fn stop(mut self) -> i32 {
        let mut child = self.child.take().unwrap();
        signal(&child, "TERM");
        let status = wait_for(Duration::from_secs(60), || child.try_wait().unwrap())
            .expect("sluice did not stop within 60 s");
        status.code().unwrap_or(-1)
    }
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status();
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes `text` to `dir/pipeline.yaml` and returns its path.
pub fn pipeline(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("pipeline.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn append(path: &Path, lines: impl IntoIterator<Item = String>) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(f, "{line}").unwrap();
    }
}
