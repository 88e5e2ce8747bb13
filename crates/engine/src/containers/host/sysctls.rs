//! `--sysctl`: only the sysctls the kernel namespaces, and only for a namespace the container
//! has of its own (runc's rules and messages; dockerd leaves them to the runtime at start,
//! berth checks them at create, when the namespaces are known already).

use std::collections::BTreeMap;

use super::invalid;
use super::namespaces::Namespaces;
use crate::error::Result;

/// runc's spelling rule: a name whose first separator is '/' has its '/' and '.' swapped
/// (`net/ipv4/conf/eth0.100/forwarding` is `net.ipv4.conf.eth0/100.forwarding`).
fn dotted(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    }
}

/// The IPC sysctls the kernel namespaces (runc's list), and fs.mqueue.*.
fn is_ipc_sysctl(name: &str) -> bool {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    IPC.contains(&name) || name.starts_with("fs.mqueue.")
}

/// Why the sysctl `name` (dotted) may not be set in a container with `ns` (runc's rules
/// and messages); None: it may. `own_net`: the container has its own network namespace.
fn sysctl_refusal(name: &str, ns: &Namespaces, own_net: bool) -> Option<String> {
    if is_ipc_sysctl(name) {
        return (!ns.has_ipc())
            .then(|| format!("sysctl {name:?} is not allowed in the hosts ipc namespace"));
    }
    if name.starts_with("net.") {
        return (!own_net)
            .then(|| format!("sysctl {name:?} not allowed in host network namespace"));
    }
    match name {
        // Namespaced by UTS, without an OCI field of its own.
        "kernel.domainname" if !ns.uts_host => None,
        "kernel.hostname" if !ns.uts_host => Some(format!(
            "sysctl {name:?} is not allowed as it conflicts with the OCI \"hostname\" field"
        )),
        _ if name.starts_with("user.") => Some(format!(
            "setting ucounts without a user namespace not allowed: {name}"
        )),
        _ => Some(format!(
            "sysctl {name:?} is not in a separate kernel namespace"
        )),
    }
}

/// The container's sysctls, checked. `own_net`: the container has
/// its own network namespace.
pub fn sysctls(
    given: &BTreeMap<String, String>,
    ns: &Namespaces,
    own_net: bool,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (key, value) in given {
        let name = dotted(key);
        if name.is_empty() || name.split('.').any(|p| p.is_empty() || p == "..") {
            return Err(invalid(format!("sysctl {key:?} is not a valid name")));
        }
        if let Some(why) = sysctl_refusal(&name, ns, own_net) {
            return Err(invalid(why));
        }
        // Written as given: the dotted name is for the checks only, as in runc.
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::host::namespaces::IpcMode;

    #[test]
    fn sysctls_need_the_namespace_they_belong_to() {
        let private = Namespaces::default();
        let shared = Namespaces {
            ipc: IpcMode::Host,
            uts_host: true,
            ..Namespaces::default()
        };
        let map = |k: &str| BTreeMap::from([(k.to_string(), "1".to_string())]);
        for ok in [
            "kernel.shmmax",
            "fs.mqueue.msg_max",
            "net.ipv4.ip_forward",
            "kernel.domainname",
        ] {
            assert!(sysctls(&map(ok), &private, true).is_ok(), "{ok}");
        }
        // The slashed spelling is checked as its dotted one.
        assert_eq!(
            dotted("net/ipv4/conf/eth0.100/forwarding"),
            "net.ipv4.conf.eth0/100.forwarding"
        );
        assert!(sysctls(&map("net/ipv4/ip_forward"), &private, true).is_ok());
        assert!(sysctls(&map("net/ipv4/ip_forward"), &private, false).is_err());
        for (bad, ns, own_net, msg) in [
            (
                "net.ipv4.ip_forward",
                &private,
                false,
                "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace",
            ),
            (
                "kernel.shmmax",
                &shared,
                true,
                "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace",
            ),
            (
                "vm.swappiness",
                &private,
                true,
                "sysctl \"vm.swappiness\" is not in a separate kernel namespace",
            ),
            (
                "kernel.hostname",
                &private,
                true,
                "conflicts with the OCI \"hostname\" field",
            ),
            (
                "kernel.domainname",
                &shared,
                true,
                "is not in a separate kernel namespace",
            ),
            ("user.max_user_namespaces", &private, true, "ucounts"),
            ("net..x", &private, true, "is not a valid name"),
        ] {
            let err = sysctls(&map(bad), ns, own_net);
            assert!(
                err.as_ref().is_err_and(|e| e.to_string().contains(msg)),
                "{bad}: {err:?}"
            );
        }
    }
}
