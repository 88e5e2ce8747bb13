//! pull, push, login, logout, search: the registry commands, through berthd (which talks to
//! the registry) with credentials from the docker CLI's config file.

mod credentials;
mod progress;

use std::io::{BufRead, IsTerminal, Read};

use anyhow::{bail, Context, Result};
use berth_api::client::{query, Client};
use clap::Args;
use serde_json::{json, Value};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Download every tagged image of the repository.
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// The platform to pull (os/arch[/variant]) from a multi-platform image.
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image's name.
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push every tag of the repository.
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Print only the pushed name.
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (visible to other users in the process list: prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (default: Docker Hub).
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub).
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    pub term: String,
}

/// The registry a name lives on, by Docker's rule (the image store's reference parser).
fn registry_of_name(name: &str) -> Result<String> {
    let reference = berth_image::Reference::parse(name)
        .with_context(|| format!("invalid reference format: {name}"))?;
    Ok(reference.domain().to_string())
}

/// `name` split as the API wants it: the repository, and a tag or digest.
fn split_name(name: &str) -> (&str, Option<&str>) {
    if let Some((repo, digest)) = name.split_once('@') {
        return (repo, Some(digest));
    }
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (name, None),
    }
}

/// Read a progress stream to its end, showing it; an error message fails.
async fn follow(
    resp: hyper::Response<hyper::body::Incoming>,
    renderer: &mut progress::Renderer,
) -> Result<()> {
    let result = super::for_each_message(resp, |line| {
        serde_json::from_slice::<Value>(line)
            .context("bad progress message from the daemon")
            .and_then(|m| renderer.show(&m))
    })
    .await;
    renderer.finish();
    result
}

/// Where a pull's progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Stdout,
    /// `run` and `create`: standard output belongs to the container.
    Stderr,
    Quiet,
}

/// Pull `name` (what `run` and `create` do for a missing image too).
pub async fn pull_image(
    client: &Client,
    name: &str,
    platform: Option<&str>,
    shown: Shown,
) -> Result<()> {
    let (repo, tag) = split_name(name);
    let mut q = vec![("fromImage", repo)];
    if let Some(t) = tag {
        q.push(("tag", t));
    }
    if let Some(p) = platform {
        q.push(("platform", p));
    }
    let auth = credentials::registry_auth_header(&registry_of_name(name)?)?;
    let resp = client
        .post_with_registry_auth(&format!("/images/create?{}", query(&q)), &auth)
        .await?;
    let mut renderer = progress::Renderer::new(shown == Shown::Quiet, shown == Shown::Stderr);
    follow(resp, &mut renderer).await
}

pub async fn pull(client: &Client, args: PullArgs) -> Result<()> {
    let (_, tag) = split_name(&args.name);
    let name = match (tag, args.all_tags) {
        (Some(_), true) => bail!("tag can't be used with --all-tags/-a"),
        (None, false) => {
            if !args.quiet {
                println!("Using default tag: latest");
            }
            format!("{}:latest", args.name)
        }
        _ => args.name.clone(),
    };
    let shown = if args.quiet {
        Shown::Quiet
    } else {
        Shown::Stdout
    };
    pull_image(client, &name, args.platform.as_deref(), shown).await?;
    if args.quiet {
        println!("{name}");
    }
    Ok(())
}

pub async fn push(client: &Client, args: PushArgs) -> Result<()> {
    let (repo, tag) = split_name(&args.name);
    if tag.is_some_and(|t| t.starts_with("sha256:")) {
        bail!("cannot push a digest reference {}", args.name);
    }
    let tag = match (tag, args.all_tags) {
        (Some(_), true) => bail!("tag can't be used with --all-tags/-a"),
        (None, false) => {
            if !args.quiet {
                println!("Using default tag: latest");
            }
            Some("latest")
        }
        (t, _) => t,
    };
    let q = query(&[("tag", tag.unwrap_or_default())]);
    let path = format!("{}?{q}", Client::image_path(repo, "/push"));
    let auth = credentials::registry_auth_header(&registry_of_name(repo)?)?;
    let resp = client.post_with_registry_auth(&path, &auth).await?;
    follow(resp, &mut progress::Renderer::new(args.quiet, false)).await?;
    if args.quiet {
        println!("{}", args.name);
    }
    Ok(())
}

fn prompt(label: &str) -> Result<String> {
    eprint!("{label}: ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Username and password from the flags, standard input, or prompts.
fn login_credentials(args: &LoginArgs) -> Result<(String, String)> {
    let interactive = std::io::stdin().is_terminal();
    if args.password_stdin && args.password.is_some() {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    let password = if args.password_stdin {
        if args.username.is_none() {
            bail!("Must provide --username with --password-stdin");
        }
        let mut p = String::new();
        std::io::stdin().read_to_string(&mut p)?;
        Some(p.trim_end_matches(['\r', '\n']).to_string())
    } else {
        args.password.clone()
    };
    if (args.username.is_none() || password.is_none()) && !interactive {
        bail!("Cannot perform an interactive login from a non TTY device");
    }
    let username = match &args.username {
        Some(u) => u.clone(),
        None => prompt("Username")?,
    };
    let password = match password {
        Some(p) => p,
        None => {
            eprint!("Password: ");
            crate::terminal::read_hidden_line()?
        }
    };
    if username.is_empty() {
        bail!("Error: Non-null Username Required");
    }
    if password.is_empty() {
        bail!("Error: Password Required");
    }
    Ok((username, password))
}

pub async fn login(client: &Client, args: LoginArgs) -> Result<()> {
    let server = args.server.clone().unwrap_or_else(|| "docker.io".into());
    let (username, password) = login_credentials(&args)?;
    let key = credentials::key_of(&server);
    let body = json!({"username": username, "password": password, "serveraddress": key});
    let answer: Value = client.post_body("/auth", &body).await?;
    credentials::store(&server, &username, &password)?;
    println!("{}", answer["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(())
}

pub fn logout(args: LogoutArgs) -> Result<()> {
    let server = args.server.unwrap_or_else(|| "docker.io".into());
    let key = credentials::key_of(&server);
    if credentials::remove(&server)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(())
}

pub async fn search(client: &Client, args: SearchArgs) -> Result<()> {
    let q = query(&[("term", args.term.as_str())]);
    let _: Value = client.get_json(&format!("/images/search?{q}")).await?;
    bail!("the daemon answered a search, which berth does not support")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            split_name("localhost:5000/app:1"),
            ("localhost:5000/app", Some("1"))
        );
        assert_eq!(
            split_name("localhost:5000/app"),
            ("localhost:5000/app", None)
        );
        assert_eq!(split_name("app@sha256:ab"), ("app", Some("sha256:ab")));
        assert_eq!(
            registry_of_name("localhost:5000/app").expect("r"),
            "localhost:5000"
        );
        assert_eq!(registry_of_name("user/app").expect("r"), "docker.io");
    }
}
