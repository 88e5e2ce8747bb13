//! Health checks, as moby's daemon/health.go runs them: a probe (`CMD` exec'd, `CMD-SHELL`
//! through `/bin/sh -c`) exec'd into the running container through its shim, every
//! `Interval` (or `StartInterval` during the start period); `Retries` failures in a row make
//! the container unhealthy, one success healthy. The state (`State.Health`: status, failing
//! streak, the last five results) lives in the container's record, changed in memory by
//! each probe and saved with the record's next save (moby's CommitInMemory).
//!
//! One scheduler thread serves every container that has a health check and runs; it sleeps
//! until the next probe is due and hands each probe to a thread of its own for the probe's
//! life. A container without a health check costs nothing, and berthd without any running
//! has no scheduler thread (it ends when the last monitored container stops).

mod probe;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Containers, Status};
use crate::error::{Error, Result};

/// Longest probe output kept (moby's maxOutputLen); longer output ends with "...".
const MAX_OUTPUT: usize = 4096;
/// Results kept in State.Health.Log (moby's maxLogEntries).
const MAX_LOG: usize = 5;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// moby's MinimumDuration for every duration of a health check.
const MINIMUM: i64 = 1_000_000;

/// moby's HealthConfig: the create body's `Config.Healthcheck`, the image's, and the merged
/// one a container keeps (the API's type; the rules the engine applies to it are
/// [`HealthRules`]).
pub use berth_api_types::container::HealthConfig;

/// What a health check means to the engine: moby's validation, its merge with the image's,
/// and the defaults of its zero durations.
pub trait HealthRules {
    /// moby's validateHealthCheck (the request's, before the merge with the image's).
    fn validate(&self) -> Result<()>;
    /// Whether the container runs health checks.
    fn probes(&self) -> bool;
    /// The probe this check runs: Some(shell?) for CMD and CMD-SHELL; None for NONE, no
    /// test, or a type moby does not know (which it only warns about).
    fn probe(&self) -> Option<bool>;
    fn interval(&self) -> Duration;
    fn timeout(&self) -> Duration;
    fn start_period(&self) -> Duration;
    fn start_interval(&self) -> Duration;
    fn retries(&self) -> i64;
}

impl HealthRules for HealthConfig {
    fn validate(&self) -> Result<()> {
        let at_least_minimum = |name: &str, value: i64| {
            if value != 0 && value < MINIMUM {
                return Err(Error::InvalidArgument(format!(
                    "{name} in Healthcheck cannot be less than {}",
                    go_duration(MINIMUM)
                )));
            }
            Ok(())
        };
        at_least_minimum("Interval", self.interval)?;
        at_least_minimum("Timeout", self.timeout)?;
        if self.retries < 0 {
            return Err(Error::InvalidArgument(
                "Retries in Healthcheck cannot be negative".into(),
            ));
        }
        at_least_minimum("StartPeriod", self.start_period)?;
        at_least_minimum("StartInterval", self.start_interval)
    }

    fn probe(&self) -> Option<bool> {
        match self.test.first().map(String::as_str) {
            Some("CMD") => Some(false),
            Some("CMD-SHELL") => Some(true),
            _ => None,
        }
    }

    fn probes(&self) -> bool {
        self.probe().is_some()
    }

    fn interval(&self) -> Duration {
        duration_or(self.interval, DEFAULT_INTERVAL)
    }

    fn timeout(&self) -> Duration {
        duration_or(self.timeout, DEFAULT_TIMEOUT)
    }

    fn start_period(&self) -> Duration {
        duration_or(self.start_period, Duration::ZERO)
    }

    fn start_interval(&self) -> Duration {
        duration_or(self.start_interval, DEFAULT_START_INTERVAL)
    }

    fn retries(&self) -> i64 {
        if self.retries <= 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }
}

/// moby's merge: the container's health check over the image's; a field the
/// container leaves at zero comes from the image.
pub fn merge(user: Option<HealthConfig>, image: Option<HealthConfig>) -> Option<HealthConfig> {
    let Some(image) = image else { return user };
    let Some(mut user) = user else {
        return Some(image);
    };
    if user.test.is_empty() {
        user.test = image.test;
    }
    for (mine, theirs) in [
        (&mut user.interval, image.interval),
        (&mut user.timeout, image.timeout),
        (&mut user.start_period, image.start_period),
        (&mut user.start_interval, image.start_interval),
        (&mut user.retries, image.retries),
    ] {
        if *mine == 0 {
            *mine = theirs;
        }
    }
    Some(user)
}

/// moby's timeoutWithDefault: zero is the default; a negative value (only an image can
/// carry one) is no wait at all, as Go's timers take it.
fn duration_or(nanos: i64, default: Duration) -> Duration {
    if nanos == 0 {
        default
    } else {
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
    }
}

/// Go's time.Duration.String: `1h2m3.5s`, `1.5s`, `100ms`, `0s`.
pub fn go_duration(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let fraction = |value: u64, unit: u64| {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = unit.ilog10() as usize;
            let frac = format!("{rest:0digits$}");
            format!("{whole}.{}", frac.trim_end_matches('0'))
        }
    };
    let body = match n {
        0 => "0s".to_string(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", fraction(n, 1_000)),
        n if n < 1_000_000_000 => format!("{}ms", fraction(n, 1_000_000)),
        n => {
            let secs = n / 1_000_000_000;
            let seconds = fraction(n % 60_000_000_000, 1_000_000_000);
            let (hours, minutes) = (secs / 3600, secs / 60 % 60);
            if hours > 0 {
                format!("{hours}h{minutes}m{seconds}s")
            } else if minutes > 0 {
                format!("{minutes}m{seconds}s")
            } else {
                format!("{seconds}s")
            }
        }
    };
    format!("{sign}{body}")
}

/// Go's time.ParseDuration (what `HEALTHCHECK --interval` and the docker CLI's duration
/// flags take): `1h2m`, `1.5s`, `100ms`, `0`; in nanoseconds, or Go's message.
pub fn parse_go_duration(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration \"{s}\""))?;
        let number: f64 = rest[..number_end].parse().map_err(|_| bad())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => {
                return Err(format!(
                    "time: unknown unit \"{other}\" in duration \"{s}\""
                ))
            }
        };
        total += number * unit;
        rest = &rest[unit_end..];
    }
    if total >= i64::MAX as f64 {
        return Err(bad());
    }
    let nanos = total.round() as i64;
    Ok(if negative { -nanos } else { nanos })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result (moby's HealthcheckResult).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// `State.Health` (moby's Health).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: i64,
    /// The last results, oldest first.
    pub log: Vec<HealthResult>,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// moby's handleProbeResult: the new state after `result` (which started at `start`).
fn apply(
    health: &mut Health,
    config: &HealthConfig,
    started: SystemTime,
    start: SystemTime,
    result: HealthResult,
) {
    if health.log.len() >= MAX_LOG {
        health.log.drain(..=health.log.len() - MAX_LOG);
    }
    let failed = result.exit_code != 0;
    health.log.push(result);
    if !failed {
        health.failing_streak = 0;
        health.status = HealthStatus::Healthy;
        return;
    }
    // Failures while starting, within the start period, do not count.
    let in_start_period = health.status == HealthStatus::Starting
        && start.duration_since(started).unwrap_or_default() < config.start_period();
    if !in_start_period {
        health.failing_streak += 1;
        if health.failing_streak >= config.retries() {
            health.status = HealthStatus::Unhealthy;
        }
    }
}

/// A container being monitored.
struct Watch {
    /// Which run of the monitor this is: results of an earlier one are dropped.
    generation: u64,
    config: Arc<HealthConfig>,
    /// When the container started (its start period counts from there).
    started: SystemTime,
    /// Set when the monitor stops: a probe under way gives up and kills its process.
    cancel: Arc<AtomicBool>,
}

#[derive(Default)]
struct Schedule {
    watches: HashMap<String, Watch>,
    /// When each watch's next probe is due, earliest first.
    due: BinaryHeap<Reverse<(Instant, u64, String)>>,
    generations: u64,
    /// Whether the scheduler thread runs.
    scheduler: bool,
}

/// The health monitor of every container (in [`Containers`]).
#[derive(Default)]
pub(crate) struct Monitor {
    schedule: Mutex<Schedule>,
    wake: Condvar,
}

/// A probe to run: container, generation, its check, its start and its cancel flag.
struct Job {
    id: String,
    generation: u64,
    config: Arc<HealthConfig>,
    started: SystemTime,
    cancel: Arc<AtomicBool>,
}

impl Monitor {
    fn lock(&self) -> std::sync::MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stop monitoring `id` (if it was); true if it was.
    fn unwatch(schedule: &mut Schedule, id: &str) -> bool {
        match schedule.watches.remove(id) {
            Some(w) => {
                w.cancel.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

/// moby's getInterval: within the start period, while still starting, the start interval.
fn next_interval(config: &HealthConfig, started: SystemTime, status: HealthStatus) -> Duration {
    let elapsed = SystemTime::now()
        .duration_since(started)
        .unwrap_or_default();
    if elapsed >= config.start_period() || status != HealthStatus::Starting {
        config.interval()
    } else {
        config.start_interval()
    }
}

impl Containers {
    /// The container has started (or runs on after a restart of berthd): its health is
    /// "starting" with no failures, and probes begin (moby's initHealthMonitor). Nothing
    /// for a container without a health check.
    pub(crate) fn health_started(self: &Arc<Self>, id: &str) {
        self.health_monitor(id, true);
    }

    /// The container was unpaused: probes go on from the state it has (moby's
    /// updateHealthMonitor).
    pub(crate) fn health_resumed(self: &Arc<Self>, id: &str) {
        self.health_monitor(id, false);
    }

    fn health_monitor(self: &Arc<Self>, id: &str, reset: bool) {
        let Ok(record) = self.resolve(id) else { return };
        let Some(config) = record
            .config
            .healthcheck
            .clone()
            .filter(HealthConfig::probes)
        else {
            return;
        };
        if record.state.status != Status::Running || record.state.paused {
            return;
        }
        if !reset && record.state.health.is_none() {
            return;
        }
        let started = record
            .state
            .started_at
            .as_deref()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .unwrap_or_else(SystemTime::now);
        let mut schedule = self.health.lock();
        if reset {
            Monitor::unwatch(&mut schedule, id);
            let updated = self.change(
                id,
                |r| match &mut r.state.health {
                    Some(h) => {
                        h.status = HealthStatus::Starting;
                        h.failing_streak = 0;
                    }
                    None => {
                        r.state.health = Some(Health {
                            status: HealthStatus::Starting,
                            failing_streak: 0,
                            log: Vec::new(),
                        })
                    }
                },
                false,
            );
            if updated.is_err() {
                return;
            }
        } else if schedule.watches.contains_key(id) {
            return;
        }
        let status = self
            .resolve(id)
            .ok()
            .and_then(|r| r.state.health.map(|h| h.status))
            .unwrap_or(HealthStatus::Starting);
        schedule.generations += 1;
        let generation = schedule.generations;
        let due = Instant::now() + next_interval(&config, started, status);
        schedule.watches.insert(
            id.to_string(),
            Watch {
                generation,
                config: Arc::new(config),
                started,
                cancel: Arc::new(AtomicBool::new(false)),
            },
        );
        schedule
            .due
            .push(Reverse((due, generation, id.to_string())));
        if !schedule.scheduler {
            let containers = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("health".into())
                .stack_size(THREAD_STACK)
                .spawn(move || schedule_probes(&containers));
            match spawned {
                Ok(_) => schedule.scheduler = true,
                Err(e) => tracing::error!("cannot start the health check scheduler: {e}"),
            }
        }
        self.health.wake.notify_all();
    }

    /// The container stops, or is paused: probes end, and the status is unhealthy (as
    /// moby's CloseMonitorChannel leaves it). In memory; the caller's change saves it.
    pub(crate) fn health_stopped(&self, id: &str) {
        let mut schedule = self.health.lock();
        if Monitor::unwatch(&mut schedule, id) {
            let _ = self.change(
                id,
                |r| {
                    if let Some(h) = &mut r.state.health {
                        h.status = HealthStatus::Unhealthy;
                    }
                },
                false,
            );
        }
    }

    /// A probe of `job` ended with `result` (None: cancelled): recorded if the monitor it
    /// belongs to still runs, and the next one scheduled.
    fn probe_done(&self, job: &Job, start: SystemTime, result: Option<HealthResult>) {
        let mut schedule = self.health.lock();
        let current = schedule
            .watches
            .get(&job.id)
            .is_some_and(|w| w.generation == job.generation);
        let Some(result) = result.filter(|_| current) else {
            return;
        };
        let mut change = None;
        let updated = self.change(
            &job.id,
            |r| {
                // A watch that raced with the container's end (an unpause as it exits)
                // ends here, its result dropped.
                if r.state.status != Status::Running || r.state.paused {
                    return;
                }
                if let Some(h) = &mut r.state.health {
                    let before = h.status;
                    apply(h, &job.config, job.started, start, result);
                    change = Some((before, h.status));
                }
            },
            false,
        );
        let Some((before, after)) = change.filter(|_| updated.is_ok()) else {
            Monitor::unwatch(&mut schedule, &job.id);
            return;
        };
        let due = Instant::now() + next_interval(&job.config, job.started, after);
        schedule
            .due
            .push(Reverse((due, job.generation, job.id.clone())));
        self.health.wake.notify_all();
        drop(schedule);
        if before != after {
            self.event(&job.id, &format!("health_status: {}", after.as_str()), &[]);
        }
    }
}

/// Stack of the scheduler and probe threads (they parse a config and copy frames).
const THREAD_STACK: usize = 256 * 1024;

/// The scheduler: sleeps until the earliest probe is due, starts each due probe on a thread
/// of its own, and ends when nothing is monitored any more.
fn schedule_probes(containers: &Weak<Containers>) {
    let Some(containers) = containers.upgrade() else {
        return;
    };
    let monitor = &containers.health;
    let mut schedule = monitor.lock();
    loop {
        let now = Instant::now();
        while let Some(Reverse((due, generation, id))) = schedule.due.peek().cloned() {
            if due > now {
                break;
            }
            schedule.due.pop();
            let Some(w) = schedule
                .watches
                .get(&id)
                .filter(|w| w.generation == generation)
            else {
                continue;
            };
            let retry = now + w.config.interval();
            let job = Job {
                id: id.clone(),
                generation,
                config: w.config.clone(),
                started: w.started,
                cancel: w.cancel.clone(),
            };
            let owner = containers.clone();
            let spawned = std::thread::Builder::new()
                .name("health-probe".into())
                .stack_size(THREAD_STACK)
                .spawn(move || run_probe(&owner, &job));
            if let Err(e) = spawned {
                // Tried again an interval later: the monitor does not stop.
                tracing::warn!("cannot start a health check thread for {id}: {e}");
                schedule.due.push(Reverse((retry, generation, id)));
            }
        }
        if schedule.watches.is_empty() {
            schedule.due.clear();
            schedule.scheduler = false;
            return;
        }
        // Until the next probe is due, or a change (a new watch, a result) wakes it; the
        // lock is held from the look at the queue to the wait, so no wake-up is missed.
        let wait = schedule.due.peek().map_or(IDLE, |Reverse((due, _, _))| {
            due.saturating_duration_since(now)
        });
        schedule = match monitor.wake.wait_timeout(schedule, wait) {
            Ok((guard, _)) => guard,
            Err(e) => e.into_inner().0,
        };
    }
}

/// How long the scheduler sleeps when every monitored container has a probe under way (the
/// end of each wakes it).
const IDLE: Duration = Duration::from_secs(3600);

/// Run one probe and record what it says; an error running it is a failure with exit -1
/// and the error as its output, as in moby.
fn run_probe(containers: &Arc<Containers>, job: &Job) {
    let start = SystemTime::now();
    let outcome = probe::run(containers, &job.id, &job.config, &job.cancel);
    let result = match outcome {
        probe::Outcome::Cancelled => None,
        probe::Outcome::Ended { exit_code, output } => Some((exit_code, output)),
        probe::Outcome::Failed(msg) => {
            tracing::warn!("Health check for container {} error: {msg}", job.id);
            Some((-1, msg))
        }
    };
    let result = result.map(|(exit_code, output)| HealthResult {
        start: rfc3339(start),
        end: rfc3339(SystemTime::now()),
        exit_code,
        output,
    });
    containers.probe_done(job, start, result);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        for (nanos, text) in [
            (0, "0s"),
            (1_000_000, "1ms"),
            (100_000_000, "100ms"),
            (1_500_000, "1.5ms"),
            (1_500_000_000, "1.5s"),
            (30_000_000_000, "30s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (1_500, "1.5µs"),
            (12, "12ns"),
            (-2_000_000_000, "-2s"),
        ] {
            assert_eq!(go_duration(nanos), text);
        }
    }

    #[test]
    fn durations_parse_as_go_parses_them() {
        for (text, nanos) in [
            ("100ms", 100_000_000),
            ("1.5s", 1_500_000_000),
            ("1m30s", 90_000_000_000),
            ("2h", 7_200_000_000_000),
            ("0", 0),
            ("250us", 250_000),
            ("3\u{b5}s", 3_000),
            ("-1s", -1_000_000_000),
        ] {
            assert_eq!(parse_go_duration(text), Ok(nanos), "{text}");
        }
        for bad in ["", "10", "1x", "s", "1.2.3s", "9999999999h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_go_duration("10").err().as_deref(),
            Some("time: missing unit in duration \"10\"")
        );
    }

    #[test]
    fn validation_has_mobys_messages() {
        let check = |c: HealthConfig| c.validate().err().map(|e| e.to_string());
        let base = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            ..HealthConfig::default()
        };
        assert_eq!(check(base.clone()), None);
        assert_eq!(
            check(HealthConfig {
                interval: 999_999,
                ..base.clone()
            })
            .as_deref(),
            Some("Interval in Healthcheck cannot be less than 1ms")
        );
        assert_eq!(
            check(HealthConfig {
                timeout: -1,
                ..base.clone()
            })
            .as_deref(),
            Some("Timeout in Healthcheck cannot be less than 1ms")
        );
        assert_eq!(
            check(HealthConfig {
                retries: -1,
                ..base.clone()
            })
            .as_deref(),
            Some("Retries in Healthcheck cannot be negative")
        );
        assert_eq!(
            check(HealthConfig {
                start_period: 5,
                ..base.clone()
            })
            .as_deref(),
            Some("StartPeriod in Healthcheck cannot be less than 1ms")
        );
        assert_eq!(
            check(HealthConfig {
                start_interval: 5,
                ..base
            })
            .as_deref(),
            Some("StartInterval in Healthcheck cannot be less than 1ms")
        );
    }

    #[test]
    fn the_containers_check_overrides_the_images_field_by_field() {
        let image = HealthConfig {
            test: vec!["CMD-SHELL".into(), "check".into()],
            interval: 5,
            timeout: 6,
            start_period: 7,
            start_interval: 8,
            retries: 9,
        };
        let user = HealthConfig {
            interval: 50,
            retries: 1,
            ..HealthConfig::default()
        };
        let merged = merge(Some(user), Some(image.clone())).expect("merged");
        assert_eq!(merged.test, image.test);
        assert_eq!((merged.interval, merged.retries), (50, 1));
        assert_eq!((merged.timeout, merged.start_period), (6, 7));
        assert_eq!(merged.start_interval, 8);
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        };
        let merged = merge(Some(none), Some(image.clone())).expect("merged");
        assert!(!merged.probes());
        assert_eq!(merge(None, Some(image.clone())), Some(image));
        assert_eq!(merge(None, None), None);
    }

    fn result(code: i64) -> HealthResult {
        HealthResult {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: code.to_string(),
        }
    }

    #[test]
    fn results_move_the_status_as_in_moby() {
        let config = HealthConfig {
            test: vec!["CMD".into(), "x".into()],
            retries: 2,
            start_period: 10_000_000_000,
            ..HealthConfig::default()
        };
        let started = SystemTime::now();
        let mut h = Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        };
        // Failures within the start period do not count while starting.
        for _ in 0..3 {
            apply(&mut h, &config, started, started, result(1));
        }
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        // A success makes it healthy at once; failures then count even in the period.
        apply(&mut h, &config, started, started, result(0));
        assert_eq!(h.status, HealthStatus::Healthy);
        apply(&mut h, &config, started, started, result(1));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 1));
        apply(&mut h, &config, started, started, result(2));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        // The log keeps the last five, oldest first.
        assert_eq!(h.log.len(), MAX_LOG);
        assert_eq!(h.log[MAX_LOG - 1].output, "2");
        assert_eq!(h.log[0].output, "1");
        // After the start period, failures count while starting too.
        let long_ago = started - Duration::from_secs(60);
        let mut h = Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        };
        apply(&mut h, &config, long_ago, started, result(1));
        apply(&mut h, &config, long_ago, started, result(1));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
    }

    #[test]
    fn intervals_follow_the_start_period() {
        let config = HealthConfig {
            interval: 2_000_000_000,
            start_interval: 100_000_000,
            start_period: 60_000_000_000,
            ..HealthConfig::default()
        };
        let now = SystemTime::now();
        let starting = next_interval(&config, now, HealthStatus::Starting);
        assert_eq!(starting, Duration::from_millis(100));
        let healthy = next_interval(&config, now, HealthStatus::Healthy);
        assert_eq!(healthy, Duration::from_secs(2));
        let later = now - Duration::from_secs(61);
        let after = next_interval(&config, later, HealthStatus::Starting);
        assert_eq!(after, Duration::from_secs(2));
        let defaults = HealthConfig::default();
        assert_eq!(defaults.interval(), DEFAULT_INTERVAL);
        assert_eq!(defaults.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(defaults.retries(), DEFAULT_RETRIES);
        assert_eq!(defaults.start_interval(), DEFAULT_START_INTERVAL);
    }
}
