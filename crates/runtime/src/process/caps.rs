//! The five capability sets. A config without `capabilities` leaves the process's own (as
//! runc does); capabilities the running kernel does not know are skipped, also as runc does.

use std::str::FromStr;
use std::sync::OnceLock;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

/// The capabilities the running kernel knows. Probing them takes one prctl per capability
/// the library knows (41), so it is done once per process, not once per set.
fn supported() -> &'static CapsHashSet {
    static SUPPORTED: OnceLock<CapsHashSet> = OnceLock::new();
    SUPPORTED.get_or_init(caps::runtime::thread_all_supported)
}

fn to_set(list: Option<&Capabilities>) -> Result<CapsHashSet> {
    let supported = supported();
    let mut out = CapsHashSet::new();
    for cap in list.into_iter().flatten() {
        let name = format!("CAP_{cap}");
        let cap = Capability::from_str(&name)
            .map_err(|_| Error::config(format!("unknown capability {name}")))?;
        if supported.contains(&cap) {
            out.insert(cap);
        } else {
            tracing::warn!("capability {name} is not supported by this kernel: skipped");
        }
    }
    Ok(out)
}

fn caps_err(op: &str) -> impl FnOnce(caps::errors::CapsError) -> Error + '_ {
    move |e| Error::Init(format!("{op}: {e}"))
}

/// Drop from the bounding set what the config does not list (needs CAP_SETPCAP: do it first).
pub(super) fn drop_bounding(c: &LinuxCapabilities) -> Result<()> {
    let keep = to_set(c.bounding().as_ref())?;
    for &cap in supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(caps_err("drop bounding capability"))?;
        }
    }
    Ok(())
}

/// Set effective, permitted and inheritable, then raise the ambient ones.
pub(super) fn apply(c: &LinuxCapabilities) -> Result<()> {
    let permitted = to_set(c.permitted().as_ref())?;
    let effective = to_set(c.effective().as_ref())?;
    let inheritable = to_set(c.inheritable().as_ref())?;
    let ambient = to_set(c.ambient().as_ref())?;
    // One set per capset call: effective must stay within permitted at every step, so
    // shrink effective first and permitted last.
    caps::set(None, CapSet::Effective, &effective)
        .map_err(caps_err("set effective capabilities"))?;
    caps::set(None, CapSet::Inheritable, &inheritable)
        .map_err(caps_err("set inheritable capabilities"))?;
    caps::set(None, CapSet::Permitted, &permitted)
        .map_err(caps_err("set permitted capabilities"))?;
    caps::clear(None, CapSet::Ambient).map_err(caps_err("clear ambient capabilities"))?;
    for cap in ambient {
        // The kernel only raises an ambient capability that is permitted and inheritable;
        // runc ignores the others, and so do we, with a warning.
        if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
            tracing::debug!("cannot raise ambient {cap}: {e}");
        }
    }
    Ok(())
}
