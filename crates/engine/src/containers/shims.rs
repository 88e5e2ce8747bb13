//! Which containers' shims still run. A shim reports its container's exit first and has the
//! runtime delete the container afterwards, off the path of whoever waits for the exit; so
//! the next start of that container waits here until the old shim has ended (the runtime's
//! state and the shim's socket must be gone before a new shim makes them again).

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Shims {
    live: Mutex<HashSet<String>>,
    ended: Condvar,
}

impl Shims {
    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shim of container `id` runs.
    pub fn started(&self, id: &str) {
        self.lock().insert(id.to_string());
    }

    /// The shim of container `id` has ended.
    pub fn ended(&self, id: &str) {
        self.lock().remove(id);
        self.ended.notify_all();
    }

    pub fn running(&self, id: &str) -> bool {
        self.lock().contains(id)
    }

    /// Wait up to `timeout` for the shim of `id` to end; whether it has.
    pub fn wait_ended(&self, id: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut live = self.lock();
        while live.contains(id) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            live = self
                .ended
                .wait_timeout(live, deadline - now)
                .map(|(l, _)| l)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn waits_for_the_shim_to_end() {
        let shims = Arc::new(Shims::default());
        assert!(shims.wait_ended("a", Duration::ZERO));
        shims.started("a");
        assert!(shims.running("a"));
        assert!(!shims.wait_ended("a", Duration::from_millis(10)));
        let other = shims.clone();
        let ender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.ended("a");
        });
        assert!(shims.wait_ended("a", Duration::from_secs(10)));
        assert!(!shims.running("a"));
        let _ = ender.join();
    }
}
