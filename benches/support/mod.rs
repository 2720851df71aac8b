//! What the timing benches share: a criterion configured for a short run, the tokio baseline
//! (current_thread + LocalSet, IO and timers enabled, as `#[tokio::main(flavor =
//! "current_thread")]` builds it), and a tally of each side's measurements so a bench can
//! print the ringhop/tokio ratio of the same run.

#![allow(dead_code)] // each bench uses a different part

use std::time::Duration;

use criterion::Criterion;

/// Ten samples of about two seconds each: enough for a stable median on a quiet machine, and
/// `cargo bench` stays within a few minutes. Command-line options (`--sample-size`,
/// `--measurement-time`, a filter) still apply.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// The stock tokio setup for local tasks.
pub fn tokio_local() -> (tokio::runtime::Runtime, tokio::task::LocalSet) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    (rt, tokio::task::LocalSet::new())
}

/// The cores this process may run on, as seen by the first caller. Read once: a thread
/// inherits its creator's affinity, so a thread spawned after [`pin_last`] would otherwise
/// see only the last core, and [`pin_first`] would pin it next to the load (a same-core
/// wake, which costs ~1 µs where a cross-core wake of an idle vCPU costs ~40 µs).
fn allowed_cores() -> &'static [core_affinity::CoreId] {
    static CORES: std::sync::OnceLock<Vec<core_affinity::CoreId>> = std::sync::OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// Pins the calling thread to the first core the process may use (the reactor side).
pub fn pin_first() {
    if let Some(first) = allowed_cores().first() {
        core_affinity::set_for_current(*first);
    }
}

/// Pins the calling thread to the last core the process may use (the load side).
pub fn pin_last() {
    if let Some(last) = allowed_cores().last() {
        core_affinity::set_for_current(*last);
    }
}

/// Resident set size of process `pid` ("self" for this one), in KiB.
pub fn rss_kib(pid: &str) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("/proc/<pid>/status")
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Raises this process's open-file limit to its hard limit (10,000 connections need it).
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a valid, initialized struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

/// Every iteration criterion timed for one side, and optional per-operation latencies.
#[derive(Default)]
pub struct Tally {
    elapsed: Duration,
    iters: u64,
    latencies: Vec<Duration>,
}

impl Tally {
    /// Adds one criterion sample and hands its time back to criterion.
    pub fn record(&mut self, iters: u64, elapsed: Duration) -> Duration {
        self.iters += iters;
        self.elapsed += elapsed;
        elapsed
    }

    /// Adds a sample of `done` operations where criterion asked for `iters` (work split over
    /// threads rounds up), and hands criterion the time `iters` would have taken.
    pub fn record_rounded(&mut self, iters: u64, done: u64, elapsed: Duration) -> Duration {
        self.record(done, elapsed);
        elapsed.mul_f64(iters as f64 / done as f64)
    }

    /// Adds one operation's own latency (for percentiles).
    pub fn latency(&mut self, latency: Duration) {
        self.latencies.push(latency);
    }

    /// Mean time per iteration over everything recorded, or `None` when filtered out.
    pub fn per_iter(&self) -> Option<Duration> {
        (self.iters > 0).then(|| self.elapsed.div_f64(self.iters as f64))
    }

    /// The `p` quantile (0..=1) of the recorded latencies.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        self.latencies.sort_unstable();
        let at = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        Some(self.latencies[at])
    }
}

/// Lines printed after criterion's own output, so the ratios are read in one place.
#[derive(Default)]
pub struct Summary {
    lines: Vec<String>,
}

impl Summary {
    pub fn add(&mut self, line: String) {
        self.lines.push(line);
    }

    /// `what: ringhop A, tokio B (ringhop/tokio R)` for per-iteration times.
    pub fn versus(&mut self, what: &str, ringhop: &Tally, tokio: &Tally) {
        if let (Some(r), Some(t)) = (ringhop.per_iter(), tokio.per_iter()) {
            self.add(format!(
                "{what}: ringhop {r:?}, tokio {t:?} per op (time ringhop/tokio {:.2})",
                r.as_secs_f64() / t.as_secs_f64()
            ));
        }
    }

    pub fn print(&self) {
        println!("\n== side by side (same run) ==");
        for line in &self.lines {
            println!("{line}");
        }
    }
}
