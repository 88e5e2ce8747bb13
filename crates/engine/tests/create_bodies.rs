//! Create bodies that broke `Engine::create_container`, found by fuzzing
//! (fuzz/tests/fuzz_engine_bodies.rs). Each must be answered, with a container or an error,
//! never a panic; and what a container is created with must be what the runtime can run.

use berth_engine::Engine;
use serde_json::{json, Value};

/// An engine on a temp data root, without an image: these bodies are decided before the
/// image is looked up (a body that passes fails there, on the missing image).
fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("tmp");
    let engine =
        Engine::open(&dir.path().join("data"), &dir.path().join("exec"), None).expect("engine");
    (dir, engine)
}

/// The error create gives `host_config`; a panic fails the test.
fn refusal(host_config: Value) -> String {
    let (_dir, engine) = engine();
    let mut host_config = host_config;
    host_config["NetworkMode"] = json!("none");
    let body = json!({"Image": "missing:1", "HostConfig": host_config});
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let req = berth_api_types::container::decode::create_request(&body)?;
        engine.create_container(&req, None, None).map(|r| r.id)
    }));
    match outcome {
        Ok(Ok(id)) => panic!("created {id} from {body}"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => panic!("create_container panicked on {body}"),
    }
}

/// HostConfig.Memory above i64::MAX / 2 without MemorySwap: the default swap limit,
/// Memory * 2, overflowed (a panic in a debug build, a negative limit in a release one).
/// Now it saturates (no swap limit beyond the largest one), so the body goes on to the
/// image lookup.
#[test]
fn a_huge_memory_limit_is_not_an_overflow() {
    for memory in [i64::MAX, 1_i64 << 62] {
        let e = refusal(json!({"Memory": memory}));
        assert!(e.contains("No such image"), "{e}");
    }
}

/// A negative CpuPeriod or CpuShares was taken, and written into the OCI config where the
/// runtime wants unsigned numbers: the container was created and could never start.
/// Docker refuses them at create (the period must be 1ms to 1s).
#[test]
fn negative_cpu_period_and_shares_are_refused() {
    for host in [
        json!({"CpuPeriod": -1}),
        json!({"CpuPeriod": i64::from(i32::MIN)}),
        json!({"CpuShares": -2}),
    ] {
        let e = refusal(host.clone());
        assert!(!e.contains("No such image"), "{host}: {e}");
    }
}

/// --cap-add of a capability that does not exist was taken (any upper-case name), and the
/// runtime refused the config at start. Docker answers "unknown capability" at create.
#[test]
fn unknown_capabilities_are_refused() {
    for caps in [json!(["CAP_BOGUS"]), json!(["bogus"])] {
        let e = refusal(json!({"CapAdd": caps}));
        assert!(e.contains("capability"), "{caps}: {e}");
    }
}
