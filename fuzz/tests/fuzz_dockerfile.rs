//! Fuzz the Dockerfile front end (crates/builder): the parser, the instructions' checks,
//! variable substitution and .dockerignore patterns, with Dockerfiles assembled from
//! fragments of real syntax (instructions, flags, JSON and shell forms, heredocs,
//! continuations, directives, quotes, `${...}` forms) and noise. Checks: nothing panics;
//! an error names the file and a line inside the text (`Dockerfile:N: ...`); every word of a
//! parsed plan expands or fails cleanly; a pattern file parses or names its line, and
//! matching never panics.

use berth_builder::ignore::Ignore;
use berth_builder::instructions::{self, Instruction};
use berth_builder::parser;
use berth_builder::shell;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

fn fail(what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(what.to_string())
}

const FRAGMENTS: &[&str] = &[
    "FROM",
    "from",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "ARG",
    "LABEL",
    "EXPOSE",
    "COPY",
    "ADD",
    "WORKDIR",
    "USER",
    "VOLUME",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "ONBUILD",
    "MAINTAINER",
    "NONE",
    "CMD",
    "AS",
    "as",
    "scratch",
    "busybox",
    "x:1",
    "--from=a",
    "--chown=1:2",
    "--chmod=755",
    "--mount=type=cache,target=/c",
    "--mount=type=bind",
    "--network=none",
    "--platform=$BUILDPLATFORM",
    "--interval=1s",
    "--retries=x",
    "--",
    "--x",
    "[\"a\", \"b\"]",
    "[\"unterminated",
    "[]",
    "[1]",
    "<<EOF",
    "<<-EOF",
    "<<'EOF'",
    "<<\"E\"",
    "3<<EOF",
    "EOF",
    "\tEOF",
    "a=b",
    "a=\"b c\"",
    "a='b'",
    "=x",
    "x=",
    "\\",
    "`",
    "# escape=`",
    "# syntax=x",
    "# check=skip=all",
    "#",
    "$A",
    "${A}",
    "${A:-d}",
    "${A:+s}",
    "${A:?m}",
    "${A",
    "${}",
    "${A%x}",
    "$",
    "'",
    "\"",
    "\\$A",
    "\\\"",
    "80/tcp",
    "1-3/udp",
    "/dst/",
    ".",
    "..",
    "../x",
    "*",
    "**",
    "\u{feff}",
    "é",
    "\0",
];

fn dockerfile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => select(FRAGMENTS.to_vec()).prop_map(String::from),
        1 => "[ -~]{0,12}",
    ];
    let sep = select(vec![
        " ",
        " ",
        " ",
        "\n",
        "\n",
        "\\\n",
        "\r\n",
        "\t",
        "\n\n",
        " \\\n#c\n",
    ]);
    vec((piece, sep), 0..40).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(p, s)| format!("{p}{s}"))
            .collect::<String>()
    })
}

fn words_of(i: &Instruction) -> Vec<String> {
    match i {
        Instruction::Env(p) | Instruction::Label(p) => {
            p.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect()
        }
        Instruction::Arg(p) => p
            .iter()
            .flat_map(|(k, v)| [Some(k.clone()), v.clone()])
            .flatten()
            .collect(),
        Instruction::Expose(v) | Instruction::Volume(v) | Instruction::Shell(v) => v.clone(),
        Instruction::Copy(c) => {
            let mut w = c.sources.clone();
            w.push(c.dest.clone());
            w.extend(c.chown.clone());
            w
        }
        Instruction::Workdir(s)
        | Instruction::User(s)
        | Instruction::StopSignal(s)
        | Instruction::Maintainer(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[test]
fn fuzz_dockerfile() {
    berth_fuzz::check("dockerfile", 3000, dockerfile(), |text| {
        let lines = text.split('\n').count().max(1);
        let located = |e: &berth_builder::Error| -> Result<(), TestCaseError> {
            let msg = e.to_string();
            let Some(rest) = msg.strip_prefix("Dockerfile:") else {
                return Err(fail(format!("error without the file: {msg}")));
            };
            let n: usize = rest
                .split(':')
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| fail(format!("error without a line: {msg}")))?;
            if n == 0 || n > lines {
                return Err(fail(format!("line {n} outside the {lines} lines: {msg}")));
            }
            Ok(())
        };
        let df = match parser::parse(&text, "Dockerfile") {
            Ok(df) => df,
            Err(e) => return located(&e),
        };
        let plan = match instructions::plan(&df, "Dockerfile") {
            Ok(p) => p,
            Err(e) => return located(&e),
        };
        let env: shell::Env = [("A".to_string(), "a b".to_string())].into_iter().collect();
        for stage in &plan.stages {
            let _ = shell::expand(&stage.base, &env, df.directives.escape);
            for c in &stage.commands {
                for w in words_of(&c.instruction) {
                    let _ = shell::expand(&w, &env, df.directives.escape);
                }
                for h in &c.node.heredocs {
                    let _ = shell::expand_heredoc(&h.content, &env, df.directives.escape);
                }
            }
        }
        Ok(())
    });
}

fn ignore_file() -> impl Strategy<Value = (String, Vec<String>)> {
    let line = prop_oneof![
        select(vec![
            "*", "**", "**/", "/**", "!", "!*", "a/**/b", "[a-", "[^x]", "\\", "a\\*", "?", "#c",
            " ", "../x", "./a/../b", "//", "[]", "[!]]",
        ])
        .prop_map(String::from),
        "[ -~]{0,10}",
    ];
    let path = prop_oneof![
        select(vec![
            "a", "a/b", "a/b/c", ".", "..", "x.log", "dir/", "/abs", ""
        ])
        .prop_map(String::from),
        "[a-z/.*]{0,12}",
    ];
    (vec(line, 0..8).prop_map(|l| l.join("\n")), vec(path, 1..6))
}

#[test]
fn fuzz_dockerignore() {
    berth_fuzz::check("dockerignore", 3000, ignore_file(), |(text, paths)| {
        match Ignore::parse(&text) {
            Ok(ig) => {
                for p in &paths {
                    let _ = ig.excludes(p);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                if !msg.starts_with(".dockerignore:") {
                    return Err(fail(format!("error without its line: {msg}")));
                }
            }
        }
        Ok(())
    });
}
