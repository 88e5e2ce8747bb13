//! `POST /build?remote=URL` (docker-py's `build(path=URL)`, compose's URL contexts): berthd
//! fetches a tar context, or a `text/plain` Dockerfile, from a file server the test runs on
//! 127.0.0.1; Git URLs and failed fetches are clear errors.

mod common;

use common::{busybox_image, Daemon, FileServer};

/// A tar holding `files` (path, content).
fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, body.as_bytes())
            .expect("append");
    }
    tar.into_inner().expect("tar")
}

#[test]
fn remote_tar_and_dockerfile_contexts() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let files = d.dir.path().join("served");
    std::fs::create_dir_all(&files).expect("dir");
    let context = tar_of(&[
        (
            "Dockerfile",
            "FROM bb:1\nCOPY hello /hello\nCMD [\"cat\", \"/hello\"]\n",
        ),
        ("hello", "from a fetched context\n"),
    ]);
    std::fs::write(files.join("ctx.tar"), context).expect("ctx.tar");
    std::fs::write(
        files.join("Dockerfile.txt"),
        "FROM bb:1\nRUN echo fetched > /f\nCMD [\"cat\", \"/f\"]\n",
    )
    .expect("Dockerfile.txt");
    let server = FileServer::start(&files, None);
    let base = format!("http://127.0.0.1:{}", server.port);
    for (file, tag, want) in [
        ("ctx.tar", "rctx:1", "from a fetched context\n"),
        ("Dockerfile.txt", "rdf:1", "fetched\n"),
    ] {
        let path = format!("/build?remote={base}/{file}&t={tag}&networkmode=none");
        let (status, body) = d.http("POST", &path, b"");
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains("errorDetail"), "{body}");
        let run = d.docker(&["run", "--rm", "--network", "none", tag]);
        assert_eq!(run.ok().stdout, want, "{file}");
    }
    for (remote, message) in [
        (
            "https://example.com/repo.git".to_string(),
            "Git repositories are not fetched",
        ),
        (format!("{base}/missing.tar"), "server answered 404"),
        (
            "ftp://example.com/ctx.tar".to_string(),
            "only http:// and https://",
        ),
    ] {
        let (_, body) = d.http("POST", &format!("/build?remote={remote}"), b"");
        assert!(body.contains(message), "{remote}: {body}");
    }
}
