//! Volumes of the local driver (issue 16), through the real docker CLI, the berth CLI and
//! the API: data that outlives containers and berthd, volumes filled from the image,
//! read-only mounts, anonymous volumes and their removal, prune, in-use refusals, tmpfs
//! volumes, `--mount`, `--volumes-from`, and bad input refused with nothing half-made.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;

/// `bb:1`, and `seeded:1`: busybox with `/srv/data/seed` (owner 1234:99, mode 0640) in a
/// directory of mode 0750, and `VOLUME /srv/data`.
fn images(d: &Daemon) {
    busybox_image(d);
    busybox_image_with(
        d,
        "seeded:1",
        |root| {
            let dir = root.join("srv/data");
            std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
            std::fs::write(dir.join("seed"), "from the image\n").expect("write");
            std::fs::write(dir.join("sub/deep"), "deep\n").expect("write");
            std::os::unix::fs::chown(dir.join("seed"), Some(1234), Some(99)).expect("chown");
            std::fs::set_permissions(dir.join("seed"), std::fs::Permissions::from_mode(0o640))
                .expect("chmod");
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).expect("chmod");
            xattr(&dir.join("seed"), Some("from-image"));
        },
        &["CMD [\"sh\"]", "VOLUME /srv/data"],
    );
}

/// Set (`Some`) or read the `user.origin` extended attribute of `path` (through python3:
/// the test shares no code with the copy under test).
fn xattr(path: &Path, value: Option<&str>) -> String {
    let script = match value {
        Some(v) => format!("import os,sys; os.setxattr(sys.argv[1], 'user.origin', b'{v}')"),
        None => "import os,sys; print(os.getxattr(sys.argv[1], 'user.origin').decode())".into(),
    };
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker run --rm --network none [extra] IMAGE sh -c script`.
fn sh(d: &Daemon, extra: &[&str], image: &str, script: &str) -> Out {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "sh", "-c", script]);
    d.docker(&args)
}

fn volume_names(d: &Daemon) -> Vec<String> {
    let out = d.docker(&["volume", "ls", "-q"]);
    out.ok();
    let mut names: Vec<String> = out.stdout.lines().map(String::from).collect();
    names.sort();
    names
}

/// Anonymous volumes: 64 hex digits.
fn anonymous(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .cloned()
        .collect()
}

/// What berthd's mount namespace has mounted on `path`.
fn mounted_in_berthd(d: &Daemon, path: &Path) -> bool {
    let info = std::fs::read_to_string(format!("/proc/{}/mountinfo", d.pid())).expect("mountinfo");
    let wanted = path.display().to_string();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
}

/// Data written to a named volume by one container is read by the next after `rm`; the
/// volume lives at <data-root>/volumes/NAME/_data (the volumes directory 0701, as moby);
/// inspect shows it, and the container's Mounts list it.
#[test]
fn named_volume_data_outlives_its_container() {
    let d = Daemon::start_for_containers();
    images(&d);
    d.docker(&[
        "run",
        "--name",
        "writer",
        "--network",
        "none",
        "-v",
        "keep:/data",
        "bb:1",
        "sh",
        "-c",
        "echo persisted > /data/f",
    ])
    .ok();
    let mounts = d.docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}} {{.Driver}}{{end}}",
        "writer",
    ]);
    assert_eq!(mounts.ok().stdout.trim(), "volume keep /data true local");
    d.docker(&["rm", "-v", "writer"]).ok();
    // rm -v keeps a named volume.
    assert_eq!(volume_names(&d), ["keep"]);
    let out = sh(&d, &["-v", "keep:/data"], "bb:1", "cat /data/f");
    assert_eq!(out.ok().stdout, "persisted\n");
    let fmt = d.docker(&[
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}} {{.Driver}} {{.Scope}} {{.CreatedAt}}",
        "keep",
    ]);
    let text = fmt.ok().stdout.clone();
    let parts: Vec<&str> = text.split_whitespace().collect();
    let data = d.data_root().join("volumes/keep/_data");
    assert_eq!(parts[..3], [data.to_str().expect("utf8"), "local", "local"]);
    assert!(parts[3].starts_with("20"), "{text}");
    assert_eq!(
        std::fs::read_to_string(data.join("f")).expect("read"),
        "persisted\n"
    );
    let mode = std::fs::metadata(d.data_root().join("volumes"))
        .expect("stat")
        .mode();
    assert_eq!(mode & 0o7777, 0o701);
    // With the berth CLI too.
    let listed = d.berth(&["volume", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert_eq!(listed.ok().stdout, "keep local\n");
    // moby's volume events: made, mounted and unmounted by each container.
    let events = d.past_events(&[
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    let events: Vec<&str> = events.ok().stdout.lines().collect();
    assert_eq!(
        events,
        [
            "create keep",
            "mount keep",
            "unmount keep",
            "mount keep",
            "unmount keep"
        ]
    );
}

/// A new, empty volume is filled with the image's directory at its destination (owners,
/// modes, sub-directories); `nocopy` leaves it empty; a volume that holds data already is
/// not filled again; the image's VOLUME gives an anonymous volume filled the same way.
#[test]
fn new_volume_is_filled_from_the_image() {
    let d = Daemon::start_for_containers();
    images(&d);
    let out = sh(
        &d,
        &["-v", "filled:/srv/data"],
        "seeded:1",
        "cat /srv/data/seed /srv/data/sub/deep; stat -c '%u:%g %a' /srv/data/seed /srv/data",
    );
    assert_eq!(
        out.ok().stdout,
        "from the image\ndeep\n1234:99 640\n0:0 750\n"
    );
    let data = d.data_root().join("volumes/filled/_data");
    let meta = std::fs::metadata(data.join("seed")).expect("seed");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (1234, 99, 0o640)
    );
    assert_eq!(xattr(&data.join("seed"), None), "from-image");
    // Changed, then used again: not filled over.
    sh(
        &d,
        &["-v", "filled:/srv/data"],
        "seeded:1",
        "rm /srv/data/seed",
    )
    .ok();
    let out = sh(&d, &["-v", "filled:/srv/data"], "seeded:1", "ls /srv/data");
    assert_eq!(out.ok().stdout, "sub\n");
    let out = sh(
        &d,
        &["-v", "empty:/srv/data:nocopy"],
        "seeded:1",
        "ls -A /srv/data | wc -l",
    );
    assert_eq!(out.ok().stdout.trim(), "0");
    let out = sh(
        &d,
        &[
            "--mount",
            "type=volume,src=empty2,dst=/srv/data,volume-nocopy",
        ],
        "seeded:1",
        "ls -A /srv/data | wc -l",
    );
    assert_eq!(out.ok().stdout.trim(), "0");
    // The image's VOLUME: an anonymous volume, filled.
    d.docker(&[
        "run",
        "--name",
        "anon",
        "--network",
        "none",
        "seeded:1",
        "cat",
        "/srv/data/seed",
    ])
    .ok();
    let name = d.docker(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "anon"]);
    let name = name.ok().stdout.trim().to_string();
    assert_eq!(anonymous(&volume_names(&d)), std::slice::from_ref(&name));
    let seed = d.data_root().join(format!("volumes/{name}/_data/seed"));
    assert_eq!(
        std::fs::read_to_string(seed).expect("seed"),
        "from the image\n"
    );
    d.docker(&["rm", "anon"]).ok();
}

/// `:ro` (and `--mount readonly`) volumes cannot be written from inside; the same volume
/// stays writable for a container that mounts it read-write.
#[test]
fn read_only_volumes() {
    let d = Daemon::start_for_containers();
    images(&d);
    sh(&d, &["-v", "shared:/data"], "bb:1", "echo a > /data/a").ok();
    let out = sh(
        &d,
        &["-v", "shared:/data:ro"],
        "bb:1",
        "cat /data/a; echo b > /data/b",
    );
    out.failed();
    assert_eq!(out.stdout, "a\n");
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    let out = sh(
        &d,
        &["--mount", "source=shared,target=/data,readonly"],
        "bb:1",
        "touch /data/c",
    );
    out.failed();
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    let ro = d.docker(&[
        "create",
        "--network",
        "none",
        "-v",
        "shared:/data:ro",
        "bb:1",
    ]);
    let id = ro.ok().stdout.trim().to_string();
    let rw = d.docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.RW}} {{.Mode}}{{end}}",
        &id,
    ]);
    assert_eq!(rw.ok().stdout.trim(), "false ro");
    d.docker(&["rm", &id]).ok();
    assert!(!d.data_root().join("volumes/shared/_data/b").exists());
}

/// Anonymous volumes (`-v /path`, `--mount` without a source) go with `rm -v` and `--rm`,
/// not with a plain `rm`; named volumes stay in every case.
#[test]
fn anonymous_volumes_go_with_rm_v_and_auto_remove() {
    let d = Daemon::start_for_containers();
    images(&d);
    d.docker(&[
        "create",
        "--name",
        "plain",
        "--network",
        "none",
        "-v",
        "/scratch",
        "bb:1",
        "true",
    ])
    .ok();
    let kept = anonymous(&volume_names(&d));
    assert_eq!(kept.len(), 1);
    d.docker(&["rm", "plain"]).ok();
    assert_eq!(anonymous(&volume_names(&d)), kept, "a plain rm keeps them");
    d.docker(&[
        "create",
        "--name",
        "withv",
        "--network",
        "none",
        "-v",
        "/scratch",
        "-v",
        "named:/n",
        "--mount",
        "type=volume,dst=/m",
        "bb:1",
        "true",
    ])
    .ok();
    assert_eq!(anonymous(&volume_names(&d)).len(), 3);
    d.docker(&["rm", "-v", "withv"]).ok();
    assert_eq!(anonymous(&volume_names(&d)), kept);
    assert!(volume_names(&d).contains(&"named".to_string()));
    sh(&d, &["-v", "/scratch"], "bb:1", "echo x > /scratch/x").ok();
    // Gone by the time `run --rm` returns (the CLI waits for the removal).
    assert_eq!(
        anonymous(&volume_names(&d)),
        kept,
        "--rm removes its anonymous volume"
    );
    // Started detached with --rm: removed at its end, its volume with it.
    d.docker(&[
        "run",
        "-d",
        "--rm",
        "--network",
        "none",
        "-v",
        "/scratch",
        "bb:1",
        "true",
    ])
    .ok();
    assert!(wait_for(|| anonymous(&volume_names(&d)) == kept));
}

/// `volume prune` removes unused anonymous volumes only; `-a` every unused one; a label
/// filter narrows it; volumes in use are never pruned.
#[test]
fn prune_removes_only_what_it_should() {
    let d = Daemon::start_for_containers();
    images(&d);
    d.docker(&["volume", "create", "--label", "keep=no", "named1"])
        .ok();
    d.docker(&["volume", "create", "named2"]).ok();
    d.docker(&[
        "create",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        "/used",
        "-v",
        "named2:/n",
        "bb:1",
    ])
    .ok();
    d.docker(&[
        "create",
        "--name",
        "gone",
        "--network",
        "none",
        "-v",
        "/unused",
        "bb:1",
    ])
    .ok();
    let used = d.docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/used\"}}{{.Name}}{{end}}{{end}}",
        "user",
    ]);
    let used = used.ok().stdout.trim().to_string();
    let unused = d.docker(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "gone"]);
    let unused = unused.ok().stdout.trim().to_string();
    d.docker(&["rm", "gone"]).ok();
    let dangling = d.docker(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    let mut dangling: Vec<&str> = dangling.ok().stdout.lines().collect();
    dangling.sort();
    let mut expected = vec!["named1", unused.as_str()];
    expected.sort();
    assert_eq!(dangling, expected);
    let out = d.docker(&["volume", "prune", "-f"]);
    assert!(out.ok().stdout.contains(&unused), "{}", out.stdout);
    let mut left = vec!["named1".to_string(), "named2".to_string(), used.clone()];
    left.sort();
    assert_eq!(volume_names(&d), left);
    // -a with a label that matches nothing unused: nothing goes.
    d.docker(&["volume", "prune", "-af", "--filter", "label=keep=yes"])
        .ok();
    assert_eq!(volume_names(&d), left);
    let out = d.docker(&["volume", "prune", "-af", "--filter", "label=keep=no"]);
    assert!(out.ok().stdout.contains("named1"), "{}", out.stdout);
    let out = d.docker(&["volume", "prune", "-af"]);
    out.ok();
    let mut left = vec!["named2".to_string(), used];
    left.sort();
    assert_eq!(volume_names(&d), left, "volumes in use stay");
    // ls filters: name, label, driver.
    let by_name = d.docker(&["volume", "ls", "-q", "--filter", "name=amed"]);
    assert_eq!(by_name.ok().stdout, "named2\n");
    let by_driver = d.docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        "driver=local",
        "--filter",
        "label=com.docker.volume.anonymous",
    ]);
    assert_eq!(by_driver.ok().stdout.lines().count(), 1);
}

/// A volume any container references (running or not) refuses rm, with or without -f, as
/// a 409 from the API; once the container is gone, it goes. `volume rm -f` of a missing
/// volume is no error; without -f it is.
#[test]
fn volume_in_use_refuses_rm() {
    let d = Daemon::start_for_containers();
    images(&d);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "none",
        "-v",
        "held:/data",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    d.docker(&["volume", "rm", "held"])
        .failed_with("volume is in use");
    d.docker(&["volume", "rm", "-f", "held"])
        .failed_with("volume is in use");
    // Which containers use it: `ps --filter volume=` (by name or destination).
    for filter in ["volume=held", "volume=/data"] {
        let ps = d.docker(&["ps", "-a", "--format", "{{.Names}}", "--filter", filter]);
        assert_eq!(ps.ok().stdout, "busy\n", "{filter}");
    }
    let none = d.docker(&["ps", "-aq", "--filter", "volume=other"]);
    assert_eq!(none.ok().stdout, "");
    let (status, body) = d.http("DELETE", "/v1.45/volumes/held", b"");
    assert_eq!(status, 409, "{body}");
    d.docker(&["stop", "-t", "0", "busy"]).ok();
    d.docker(&["volume", "rm", "held"])
        .failed_with("volume is in use");
    d.docker(&["rm", "busy"]).ok();
    d.docker(&["volume", "rm", "held"]).ok();
    assert!(!d.data_root().join("volumes/held").exists());
    d.docker(&["volume", "rm", "held"])
        .failed_with("no such volume");
    d.docker(&["volume", "rm", "-f", "held"]).ok();
    let (status, _) = d.http("GET", "/v1.45/volumes/held", b"");
    assert_eq!(status, 404);
}

/// `--opt type=tmpfs`: the volume is a tmpfs of the size asked for while a container uses
/// it, mounted on its _data in berthd's namespace, and unmounted after the last user ends.
/// `--mount type=tmpfs` with its size and mode.
#[test]
fn tmpfs_volume_and_tmpfs_mounts() {
    let d = Daemon::start_for_containers();
    images(&d);
    d.docker(&[
        "volume",
        "create",
        "--driver",
        "local",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=2m,uid=1000",
        "ram",
    ])
    .ok();
    let opts = d.docker(&[
        "volume",
        "inspect",
        "-f",
        "{{.Options.type}} {{.Options.o}}",
        "ram",
    ]);
    assert_eq!(opts.ok().stdout.trim(), "tmpfs size=2m,uid=1000");
    let data = d.data_root().join("volumes/ram/_data");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "ramuser",
        "--network",
        "none",
        "-v",
        "ram:/ram",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    let out = d.docker(&[
        "exec",
        "ramuser",
        "sh",
        "-c",
        "grep ' /ram ' /proc/mounts; stat -c %u /ram",
    ]);
    let text = out.ok().stdout.clone();
    assert!(
        text.starts_with("tmpfs /ram tmpfs") && text.contains("size=2048k"),
        "{text}"
    );
    assert!(text.ends_with("1000\n"), "{text}");
    assert!(mounted_in_berthd(&d, &data));
    d.docker(&["rm", "-f", "ramuser"]).ok();
    assert!(
        wait_for(|| !mounted_in_berthd(&d, &data)),
        "unmounted after the last user"
    );
    let out = sh(
        &d,
        &["--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770"],
        "bb:1",
        "grep ' /t ' /proc/mounts",
    );
    let text = out.ok().stdout.clone();
    assert!(
        text.contains("size=1024k") && text.contains("mode=1770"),
        "{text}"
    );
    let c = d.docker(&[
        "create",
        "--network",
        "none",
        "--mount",
        "type=tmpfs,dst=/t,readonly",
        "--tmpfs",
        "/other",
        "bb:1",
    ]);
    let id = c.ok().stdout.trim().to_string();
    let mounts = d.docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}};{{end}}",
        &id,
    ]);
    assert_eq!(mounts.ok().stdout.trim(), "tmpfs /t false;");
    d.docker(&["rm", &id]).ok();
    // A bind of a host directory (`type=none o=bind device=DIR`): the container writes to
    // the host's directory; removing the volume leaves that directory's files alone.
    let host_dir = d.dir.path().join("bound");
    std::fs::create_dir_all(&host_dir).expect("mkdir");
    std::fs::write(host_dir.join("keep"), "host file\n").expect("write");
    let device = format!("device={}", host_dir.display());
    d.docker(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &device,
        "hostbound",
    ])
    .ok();
    let out = sh(
        &d,
        &["-v", "hostbound:/b"],
        "bb:1",
        "cat /b/keep; echo new > /b/new",
    );
    assert_eq!(out.ok().stdout, "host file\n");
    assert_eq!(
        std::fs::read_to_string(host_dir.join("new")).expect("new"),
        "new\n"
    );
    d.docker(&["volume", "rm", "hostbound"]).ok();
    assert!(host_dir.join("keep").exists() && host_dir.join("new").exists());
    // A bad option for the local driver is refused at create.
    d.docker(&["volume", "create", "--opt", "bogus=1", "bad"])
        .failed_with("invalid option");
    d.docker(&["volume", "create", "--opt", "type=tmpfs", "bad"])
        .failed_with("missing required option");
    assert_eq!(volume_names(&d), ["ram"]);
}

/// `--volumes-from C[:ro]`: C's volumes and binds at the same places, read-only when asked;
/// the volume is then in use by both.
#[test]
fn volumes_from_another_container() {
    let d = Daemon::start_for_containers();
    images(&d);
    let host_dir = d.dir.path().join("hostdir");
    std::fs::create_dir_all(&host_dir).expect("mkdir");
    std::fs::write(host_dir.join("h"), "host\n").expect("write");
    let bind = format!("{}:/hostdir", host_dir.display());
    d.docker(&[
        "create",
        "--name",
        "source",
        "--network",
        "none",
        "-v",
        "from:/data",
        "-v",
        &bind,
        "bb:1",
    ])
    .ok();
    sh(
        &d,
        &["--volumes-from", "source"],
        "bb:1",
        "echo shared > /data/f",
    )
    .ok();
    let out = sh(
        &d,
        &["--volumes-from", "source:ro"],
        "bb:1",
        "cat /data/f /hostdir/h; touch /data/g",
    );
    out.failed();
    assert_eq!(out.stdout, "shared\nhost\n");
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "nosuch",
        "bb:1",
        "true",
    ])
    .failed_with("No such container");
}

/// Volumes survive a restart of berthd and its SIGKILL; a volume half made by a crash (in
/// the staging area) is cleared at the next start.
#[test]
fn volumes_survive_restart_and_sigkill() {
    let mut d = Daemon::start_for_containers();
    images(&d);
    d.docker(&["volume", "create", "--label", "a=b", "durable"])
        .ok();
    sh(&d, &["-v", "durable:/d"], "bb:1", "echo one > /d/f").ok();
    d.stop();
    d.spawn(&[]);
    assert_eq!(
        sh(&d, &["-v", "durable:/d"], "bb:1", "cat /d/f")
            .ok()
            .stdout,
        "one\n"
    );
    // A container that runs on with the volume while berthd is SIGKILLed.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "none",
        "-v",
        "durable:/d",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    d.kill();
    std::fs::create_dir_all(d.data_root().join("volumes/_creating/half/_data")).expect("mkdir");
    d.spawn(&[]);
    assert_eq!(volume_names(&d), ["durable"]);
    let out = d.docker(&["exec", "holder", "sh", "-c", "cat /d/f; echo two >> /d/f"]);
    assert_eq!(out.ok().stdout, "one\n");
    d.docker(&["volume", "rm", "durable"])
        .failed_with("volume is in use");
    d.docker(&["rm", "-f", "holder"]).ok();
    let labels = d.docker(&["volume", "inspect", "-f", "{{.Labels.a}}", "durable"]);
    assert_eq!(labels.ok().stdout.trim(), "b");
    assert!(!d.data_root().join("volumes/_creating/half").exists());
    // `system df -v` lists it with its size and users.
    let df = d.docker(&[
        "system",
        "df",
        "-v",
        "--format",
        "{{range .Volumes}}{{.Name}} {{.Links}} {{.Size}}{{end}}",
    ]);
    assert_eq!(df.ok().stdout.trim(), "durable 0 8B");
}

/// Bad input: volume names with `/` or `..`, `--mount` with unknown keys or a bind of a
/// missing path, duplicate destinations, an unknown driver: clear errors, and nothing made
/// (no volume, no container) by a create that fails, even after its volumes were planned.
#[test]
fn bad_input_is_refused_and_nothing_is_half_made() {
    let d = Daemon::start_for_containers();
    images(&d);
    for name in ["a/b", "..", "../x", "x"] {
        d.docker(&["volume", "create", name]).failed();
    }
    d.docker(&["volume", "create", "a/b"])
        .failed_with("includes invalid characters");
    d.docker(&["volume", "create", "--driver", "nfs-plugin", "vol"])
        .failed_with("plugin \"nfs-plugin\" not found");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["bb:1", "true"]);
        d.docker(&args)
    };
    // (The docker CLI makes `../x` an absolute host path: the API takes it as a name.)
    run(&["-v", "a/b:/a"]).failed_with("invalid characters");
    run(&["-v", "ok1:/a:bogus"]).failed_with("invalid mode");
    run(&["-v", "ok1:/a", "-v", "ok2:/a"]).failed_with("Duplicate mount point");
    run(&["--mount", "type=volume,src=ok1,dst=/a,bogus=1"]).failed_with("unexpected key 'bogus'");
    run(&["--mount", "type=bind,src=/no/such/dir,dst=/a"])
        .failed_with("bind source path does not exist");
    run(&["--mount", "type=volume,src=ok1,dst=/a,volume-opt=what=1"]).failed_with("invalid option");
    // Through the API: an unknown mount type, a bind's option on a volume.
    let create = |host: &str| {
        let body = format!(
            r#"{{"Image":"bb:1","Cmd":["true"],"HostConfig":{{"NetworkMode":"none",{host}}}}}"#
        );
        d.http("POST", "/v1.45/containers/create", body.as_bytes())
    };
    for binds in [
        r#""Binds":["../x:/a"]"#,
        r#""Binds":["..:/a"]"#,
        r#""Mounts":[{"Type":"volume","Source":"../x","Target":"/a"}]"#,
    ] {
        let (status, body) = create(binds);
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("invalid characters"), "{body}");
    }
    let (status, body) = create(r#""Mounts":[{"Type":"weird","Target":"/a"}]"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("mount type unknown"), "{body}");
    let (status, body) = create(
        r#""Mounts":[{"Type":"volume","Source":"ok1","Target":"/a","BindOptions":{"Propagation":"shared"}}]"#,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = create(r#""VolumeDriver":"convoy","Binds":["ok1:/a"]"#);
    assert_eq!(status, 404, "{body}");
    // A create that fails once its volumes are made (the name is taken) leaves none.
    d.docker(&["create", "--name", "taken", "--network", "none", "bb:1"])
        .ok();
    d.docker(&[
        "create",
        "--name",
        "taken",
        "--network",
        "none",
        "-v",
        "late:/a",
        "-v",
        "/anon",
        "bb:1",
    ])
    .failed_with("already in use");
    assert_eq!(volume_names(&d), Vec::<String>::new());
    let containers = d.docker(&["ps", "-aq"]);
    assert_eq!(containers.ok().stdout.lines().count(), 1);
}

/// The berth CLI: `volume create/ls/inspect/rm/prune` as the docker CLI's, and `run` with
/// `-v NAME:/path`, `--mount` (its keys checked as the docker CLI checks them) and
/// `--volumes-from`.
#[test]
fn berth_cli_volumes() {
    let d = Daemon::start_for_containers();
    images(&d);
    let created = d.berth(&[
        "volume",
        "create",
        "--label",
        "team=a",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "bv",
    ]);
    assert_eq!(created.ok().stdout, "bv\n");
    let generated = d.berth(&["volume", "create"]);
    let generated = generated.ok().stdout.trim().to_string();
    assert_eq!(
        anonymous(std::slice::from_ref(&generated)).len(),
        1,
        "{generated}"
    );
    let inspected = d.berth(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Labels.team}} {{.Options.type}} {{.Scope}}",
        "bv",
    ]);
    assert_eq!(inspected.ok().stdout, "bv a tmpfs local\n");
    let listed = d.berth(&["volume", "ls", "-q", "--filter", "label=team=a"]);
    assert_eq!(listed.ok().stdout, "bv\n");
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "bv:/t",
        "--mount",
        "type=volume,src=bm,dst=/m",
        "bb:1",
        "sh",
        "-c",
        "grep -c ' /t tmpfs' /proc/mounts; echo m > /m/f",
    ]);
    assert_eq!(out.ok().stdout, "1\n");
    d.berth(&[
        "create",
        "--name",
        "src",
        "--network",
        "none",
        "-v",
        "bm:/m",
        "bb:1",
    ])
    .ok();
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "src:ro",
        "bb:1",
        "cat",
        "/m/f",
    ]);
    assert_eq!(out.ok().stdout, "m\n");
    let bad = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=volume,dst=/a,nope=1",
        "bb:1",
        "true",
    ]);
    bad.failed_with("unexpected key 'nope'");
    let rm = d.berth(&["volume", "rm", "bm", "bv"]);
    assert_eq!(rm.code, 1);
    assert_eq!(rm.stdout, "bv\n");
    assert!(rm.stderr.contains("volume is in use"), "{}", rm.stderr);
    d.berth(&["rm", "src"]).ok();
    let pruned = d.berth(&["volume", "prune", "-f", "-a"]);
    let text = pruned.ok().stdout.clone();
    assert!(text.contains("bm") && text.contains(&generated), "{text}");
    assert_eq!(volume_names(&d), Vec::<String>::new());
    let df = d.berth(&["system", "df"]);
    assert!(df.ok().stdout.contains("Local Volumes"), "{}", df.stdout);
}

/// A loop device made for a test, detached (by its path) when dropped.
struct LoopDevice(String);

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

/// `--opt type=ext4 --opt device=/dev/loopN`: a block device's filesystem is the volume,
/// mounted while a container uses it; what one container writes, the next reads from the
/// device.
#[test]
fn block_device_volume() {
    let d = Daemon::start_for_containers();
    images(&d);
    let image = d.dir.path().join("disk.img");
    std::fs::write(&image, vec![0u8; 16 << 20]).expect("disk image");
    let mkfs = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&image)
        .status()
        .expect("mkfs.ext4");
    assert!(mkfs.success());
    let attach = std::process::Command::new("losetup")
        .args(["--find", "--show"])
        .arg(&image)
        .output()
        .expect("losetup");
    assert!(
        attach.status.success(),
        "{}",
        String::from_utf8_lossy(&attach.stderr)
    );
    let device = LoopDevice(String::from_utf8_lossy(&attach.stdout).trim().to_string());
    let opt = format!("device={}", device.0);
    d.docker(&[
        "volume",
        "create",
        "--opt",
        "type=ext4",
        "--opt",
        &opt,
        "disk",
    ])
    .ok();
    let out = sh(
        &d,
        &["-v", "disk:/disk"],
        "bb:1",
        "grep ' /disk ' /proc/mounts | cut -d' ' -f3; echo on-disk > /disk/f; ls /disk",
    );
    assert_eq!(out.ok().stdout, "ext4\nf\nlost+found\n");
    let data = d.data_root().join("volumes/disk/_data");
    assert!(wait_for(|| !mounted_in_berthd(&d, &data)));
    assert!(
        !data.join("f").exists(),
        "written to the device, not the directory"
    );
    let out = sh(&d, &["-v", "disk:/disk"], "bb:1", "cat /disk/f");
    assert_eq!(out.ok().stdout, "on-disk\n");
    d.docker(&["volume", "rm", "disk"]).ok();
    drop(device);
}
