//! `features`: what this runtime implements, in the runtime-spec features.json format.
//! Honest: only what works today is listed as enabled.

use std::collections::HashMap;

use oci_spec::runtime::{
    ApparmorBuilder, CgroupBuilder, Features, FeaturesBuilder, IDMapBuilder, IntelRdtBuilder,
    LinuxFeatureBuilder, LinuxNamespaceType, LinuxSeccompAction, MemoryPolicyBuilder,
    MountExtensionsBuilder, NetDevicesBuilder, SeccompBuilder, SelinuxBuilder,
};

use crate::error::{Error, Result};

const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// linux.memoryPolicy: every mode and flag of runtime-spec 1.2 (set_mempolicy(2)).
const MEMORY_POLICY_MODES: [&str; 7] = [
    "MPOL_DEFAULT",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_LOCAL",
];
const MEMORY_POLICY_FLAGS: [&str; 3] = [
    "MPOL_F_NUMA_BALANCING",
    "MPOL_F_RELATIVE_NODES",
    "MPOL_F_STATIC_NODES",
];

/// Every action of `linux.seccomp` (SCMP_ACT_NOTIFY with a listenerPath).
const SECCOMP_ACTIONS: &[LinuxSeccompAction] = &[
    LinuxSeccompAction::ScmpActAllow,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActNotify,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActTrap,
];

pub fn features() -> Result<Features> {
    let err = |e: oci_spec::OciSpecError| Error::Init(format!("build features: {e}"));
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let mut caps = caps;
    caps.sort();
    let linux = LinuxFeatureBuilder::default()
        .namespaces(vec![
            LinuxNamespaceType::Cgroup,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::User,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Time,
        ])
        .capabilities(caps)
        .cgroup(
            CgroupBuilder::default()
                .v1(true)
                .v2(true)
                .systemd(false)
                .systemd_user(false)
                .rdma(true)
                .build()
                .map_err(err)?,
        )
        .seccomp(
            SeccompBuilder::default()
                .enabled(true)
                .actions(SECCOMP_ACTIONS.to_vec())
                .operators(
                    [
                        "SCMP_CMP_NE",
                        "SCMP_CMP_LT",
                        "SCMP_CMP_LE",
                        "SCMP_CMP_EQ",
                        "SCMP_CMP_GE",
                        "SCMP_CMP_GT",
                        "SCMP_CMP_MASKED_EQ",
                    ]
                    .map(String::from)
                    .to_vec(),
                )
                .known_flags(
                    [
                        "SECCOMP_FILTER_FLAG_TSYNC",
                        "SECCOMP_FILTER_FLAG_LOG",
                        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    ]
                    .map(String::from)
                    .to_vec(),
                )
                .build()
                .map_err(err)?,
        )
        .mount_extensions(
            MountExtensionsBuilder::default()
                .idmap(IDMapBuilder::default().enabled(true).build().map_err(err)?)
                .build()
                .map_err(err)?,
        )
        .apparmor(
            ApparmorBuilder::default()
                .enabled(false)
                .build()
                .map_err(err)?,
        )
        .selinux(
            SelinuxBuilder::default()
                .enabled(false)
                .build()
                .map_err(err)?,
        )
        // Where resctrl is mounted; create says so where it is not. No monitoring groups.
        .intel_rdt(
            IntelRdtBuilder::default()
                .enabled(true)
                .schemata(true)
                .monitoring(false)
                .build()
                .map_err(err)?,
        )
        .memory_policy(
            MemoryPolicyBuilder::default()
                .modes(MEMORY_POLICY_MODES.map(String::from).to_vec())
                .flags(MEMORY_POLICY_FLAGS.map(String::from).to_vec())
                .build()
                .map_err(err)?,
        )
        .net_devices(
            NetDevicesBuilder::default()
                .enabled(true)
                .build()
                .map_err(err)?,
        )
        .build()
        .map_err(err)?;
    let annotations = HashMap::from([
        (
            "org.opencontainers.runc.checkpoint.enabled".to_string(),
            "false".to_string(),
        ),
        (
            "io.github.berth.runtime.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ]);
    FeaturesBuilder::default()
        .oci_version_min("1.0.0")
        .oci_version_max(crate::spec::OCI_VERSION)
        .hooks(
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop",
            ]
            .map(String::from)
            .to_vec(),
        )
        .mount_options(
            MOUNT_OPTIONS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .linux(linux)
        .annotations(annotations)
        .build()
        .map_err(err)
}
