//! Property-based fuzzing of the parsers berth feeds with outside input: generators of
//! hostile layer tars, image archives and JSON bodies, and [`check`], a runner that is
//! deterministic (a fixed seed), bounded (a number of cases and a time budget) and
//! runs inside `cargo test`. One test file per target lives in `tests/`.
//!
//! Knobs (environment): `BERTH_FUZZ_SCALE` multiplies each target's number of cases (CI's
//! fuzz stage, `scripts/fuzz.sh`, runs 10x); `BERTH_FUZZ_SEED` picks another sequence (a
//! number, or `random`); `BERTH_FUZZ_SECONDS` caps each target's run (cases past it are
//! skipped); `BERTH_FUZZ_HANG` is how long one case may run before the process aborts.
//!
//! A failing input is shrunk and printed; it then becomes a plain regression test next to
//! the code it broke (failures are not persisted in files).

pub mod json;
pub mod tar;

use std::fmt::Debug;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

/// The sequence CI and `cargo test` run unless told otherwise.
pub const DEFAULT_SEED: u64 = 0x6265_7274_6866_757a;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    match std::env::var("BERTH_FUZZ_SEED").as_deref() {
        Ok("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(DEFAULT_SEED, |d| d.as_nanos() as u64),
        Ok(v) => v.trim().parse().unwrap_or(DEFAULT_SEED),
        Err(_) => DEFAULT_SEED,
    }
}

/// Panics of any thread (a server's worker threads too), recorded by a hook, so that a case
/// fails when code it reached panicked where nothing propagates the panic to the test.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let thread = std::thread::current().name().unwrap_or("?").to_string();
            PANICS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("thread {thread} panicked{at}: {info}"));
            default(info);
        }));
    });
}

/// The panics recorded since the last call.
pub fn take_panics() -> Vec<String> {
    std::mem::take(&mut *PANICS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Aborts the process when one case runs longer than `BERTH_FUZZ_HANG` seconds (a hang in a
/// parser would otherwise hold CI until its own limit, without saying where).
struct Watchdog {
    /// Milliseconds since `origin` at which the running case started; 0 when idle.
    started: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(name: &str, seed: u64) -> Watchdog {
        let started = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let limit = Duration::from_secs(env_u64("BERTH_FUZZ_HANG", 120));
        let origin = Instant::now();
        let (s, st, name) = (started.clone(), stop.clone(), name.to_string());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let at = s.load(Ordering::Relaxed);
                if at != 0 && origin.elapsed() > Duration::from_millis(at) + limit {
                    eprintln!(
                        "fuzz {name}: a case has run for more than {limit:?} (seed {seed}): a hang; \
                         rerun with BERTH_FUZZ_SEED={seed} under a debugger"
                    );
                    std::process::abort();
                }
            }
        });
        Watchdog { started, stop }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Run `test` on inputs drawn from `strategy`: `base_cases` of them (times
/// `BERTH_FUZZ_SCALE`), from a fixed seed, within `BERTH_FUZZ_SECONDS`. A case fails when
/// `test` returns an error, panics, or something it reached panicked on another thread.
/// The smallest failing input is printed in the panic message.
pub fn check<S>(
    name: &str,
    base_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    record_panics();
    let scale = env_u64("BERTH_FUZZ_SCALE", 1).clamp(1, 100_000) as u32;
    let cases = base_cases.saturating_mul(scale);
    let seed = seed();
    let budget = Duration::from_secs(env_u64("BERTH_FUZZ_SECONDS", 600));
    let config = Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_time: 120_000,
        max_global_rejects: cases.saturating_mul(4),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let watchdog = Watchdog::start(name, seed);
    let begun = Instant::now();
    let origin = Instant::now();
    let ran = AtomicU64::new(0);
    let skipped = AtomicU64::new(0);
    let failing = AtomicBool::new(false);
    take_panics();
    let result = runner.run(&strategy, |value| {
        // Past the budget the remaining cases pass unrun; once a case failed, shrinking
        // runs whatever the time.
        if begun.elapsed() > budget && !failing.load(Ordering::Relaxed) {
            skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        ran.fetch_add(1, Ordering::Relaxed);
        watchdog.started.store(
            origin.elapsed().as_millis().max(1) as u64,
            Ordering::Relaxed,
        );
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| test(value)));
        watchdog.started.store(0, Ordering::Relaxed);
        let panics = take_panics();
        let outcome = match outcome {
            Ok(Ok(())) if panics.is_empty() => Ok(()),
            Ok(Ok(())) => Err(TestCaseError::fail(panics.join("\n"))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TestCaseError::fail(format!(
                "panicked: {}",
                panics.join("\n")
            ))),
        };
        if outcome.is_err() {
            failing.store(true, Ordering::Relaxed);
        }
        outcome
    });
    drop(watchdog);
    let skipped = skipped.into_inner();
    eprintln!(
        "fuzz {name}: {} cases in {:.1?} (seed {seed}){}",
        ran.into_inner(),
        begun.elapsed(),
        if skipped > 0 {
            format!(", {skipped} skipped past the {budget:?} budget")
        } else {
            String::new()
        }
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, input)) => panic!(
            "fuzz {name} (seed {seed}) found a failing input; make it a regression test.\n\
             why: {why}\nminimal input: {input:#?}"
        ),
        Err(TestError::Abort(why)) => panic!("fuzz {name} (seed {seed}) gave up: {why}"),
    }
}

/// A scratch directory on a tmpfs when there is one (creating inodes on this VM's ext4 is
/// 25-80 times slower), else in the temp dir.
pub fn scratch_root() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}
