//! The Dockerfile's syntax, as BuildKit's frontend reads it (frontend/dockerfile/parser):
//! parser directives, comments, line continuations, heredocs, and each instruction's
//! arguments split the way that instruction is split (JSON or shell form, name=value
//! pairs, whitespace-separated words). What the words mean is `instructions`' business.

use crate::error::{Error, Result};

/// The parser directives at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# escape=` (`\` by default, or a backtick).
    pub escape: char,
    /// `# syntax=`: a frontend image; berth has its own frontend, so it is only reported.
    pub syntax: Option<String>,
    /// `# check=`: BuildKit's lint settings; kept, not applied.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
        }
    }
}

/// A heredoc (`<<EOF` ... `EOF`) attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word (also the name COPY gives the file).
    pub name: String,
    /// Its lines, each with its newline.
    pub content: String,
    /// Whether variables are expanded in it (the terminator was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs were removed.
    pub chomp: bool,
    /// The file descriptor named before `<<` (`3<<EOF`), if any.
    pub fd: Option<u32>,
}

/// The arguments of an instruction as its parser split them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// Nothing after the instruction.
    None,
    /// A JSON array (exec form).
    Json(Vec<String>),
    /// The rest of the line as one string (shell form of RUN/CMD/ENTRYPOINT/SHELL, and the
    /// single-string instructions: USER, WORKDIR, STOPSIGNAL, MAINTAINER).
    Text(String),
    /// Whitespace-separated words (FROM, COPY, ADD, EXPOSE, VOLUME in shell form).
    Words(Vec<String>),
    /// name=value pairs (ENV, LABEL; ARG with optional values), the values unexpanded.
    Pairs(Vec<(String, Option<String>)>),
    /// HEALTHCHECK: NONE, or CMD with its command.
    Health(Option<Box<Args>>),
    /// ONBUILD's instruction.
    Sub(Box<Node>),
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction, lower-cased.
    pub cmd: String,
    /// The line as the legacy builder prints it in "Step N/M : ..." (continuations joined).
    pub original: String,
    /// `--name=value` flags before the arguments, as written (without the dashes).
    pub flags: Vec<String>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// First and last line of the instruction (1-based), heredocs included.
    pub start_line: usize,
    pub end_line: usize,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    pub nodes: Vec<Node>,
    /// Things worth telling the user that are not errors (an empty continuation line).
    pub warnings: Vec<String>,
}

/// Instructions that may carry heredocs.
fn can_contain_heredoc(cmd: &str) -> bool {
    matches!(cmd, "run" | "copy" | "add")
}

/// Parse `text`, a Dockerfile read from `file` (the name errors carry).
pub fn parse(text: &str, file: &str) -> Result<Dockerfile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    // A trailing newline does not make an extra line.
    let count = if text.ends_with('\n') {
        lines.len() - 1
    } else {
        lines.len()
    };
    let err = |line: usize, message: String| Error::Parse {
        file: file.to_string(),
        line,
        message,
    };
    let mut directives = Directives::default();
    let mut i = 0;
    let mut seen = Vec::new();
    // Directives come first; anything else (a blank line, another comment, an instruction)
    // ends them.
    while i < count {
        match directive(lines[i]) {
            Some((key, value)) => {
                if seen.contains(&key) {
                    return Err(err(
                        i + 1,
                        format!("only one {key} parser directive can be used"),
                    ));
                }
                match key.as_str() {
                    "escape" => {
                        directives.escape = match value.as_str() {
                            "\\" => '\\',
                            "`" => '`',
                            other => {
                                return Err(err(
                                    i + 1,
                                    format!(
                                        "invalid escape token '{other}' does not match ` or \\"
                                    ),
                                ))
                            }
                        }
                    }
                    "syntax" => directives.syntax = Some(value),
                    _ => directives.check = Some(value),
                }
                seen.push(key);
                i += 1;
            }
            None => break,
        }
    }
    let escape = directives.escape;
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    while i < count {
        let raw = lines[i];
        i += 1;
        let start_line = i;
        if is_comment(raw) {
            continue;
        }
        let first = raw.trim_start();
        let (mut line, mut end) = trim_continuation(first, escape);
        if end && line.trim().is_empty() {
            continue;
        }
        while !end && i < count {
            let next = lines[i];
            i += 1;
            if is_comment(next) {
                continue;
            }
            if next.trim().is_empty() {
                warnings.push(format!(
                    "{file}:{i}: empty continuation line (deprecated; a future version may treat it as the end of the instruction)"
                ));
                continue;
            }
            let (piece, e) = trim_continuation(next, escape);
            line.push_str(&piece);
            end = e;
        }
        let mut node = node_from_line(&line, escape).map_err(|m| err(start_line, m))?;
        node.start_line = start_line;
        if can_contain_heredoc(&node.cmd) && !matches!(node.args, Args::Json(_)) {
            for (name, expand, chomp, fd) in heredocs_in(&line, escape) {
                let mut content = String::new();
                let mut terminated = false;
                while i < count {
                    let l = lines[i];
                    i += 1;
                    let candidate = if chomp { l.trim_start_matches('\t') } else { l };
                    if candidate == name {
                        terminated = true;
                        break;
                    }
                    content.push_str(candidate);
                    content.push('\n');
                }
                if !terminated {
                    return Err(err(start_line, format!("unterminated heredoc {name}")));
                }
                node.heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                    chomp,
                    fd,
                });
            }
        }
        node.end_line = i;
        nodes.push(node);
    }
    Ok(Dockerfile {
        directives,
        nodes,
        warnings,
    })
}

/// `# key=value` with a known key (lower-cased).
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric());
    let key = key.to_ascii_lowercase();
    let value = value.trim();
    if !valid || value.is_empty() || !matches!(key.as_str(), "syntax" | "escape" | "check") {
        return None;
    }
    Some((key, value.to_string()))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The line without its continuation mark, and whether the instruction ends here.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(rest) => (rest.to_string(), false),
        None => (line.to_string(), true),
    }
}

/// Split `--flag` words off the front of `rest`.
fn extract_flags(rest: &str) -> (Vec<String>, String) {
    let mut flags = Vec::new();
    let mut rest = rest.trim_start();
    while let Some(after) = rest.strip_prefix("--") {
        let end = after
            .find(|c: char| c.is_whitespace())
            .unwrap_or(after.len());
        let word = &after[..end];
        if word.is_empty() {
            // A lone "--" ends the flags, as BuildKit's extractBuilderFlags.
            rest = after[end..].trim_start();
            break;
        }
        flags.push(word.to_string());
        rest = after[end..].trim_start();
    }
    (flags, rest.to_string())
}

fn node_from_line(line: &str, escape: char) -> std::result::Result<Node, String> {
    let trimmed = line.trim();
    let (cmd, rest) = match trimmed.find(char::is_whitespace) {
        Some(p) => (&trimmed[..p], trimmed[p..].trim_start()),
        None => (trimmed, ""),
    };
    let cmd = cmd.to_ascii_lowercase();
    let (flags, rest) = extract_flags(rest);
    let args = parse_args(&cmd, &rest, escape)?;
    Ok(Node {
        cmd,
        original: trimmed.to_string(),
        flags,
        args,
        heredocs: Vec::new(),
        start_line: 0,
        end_line: 0,
    })
}

fn parse_args(cmd: &str, rest: &str, escape: char) -> std::result::Result<Args, String> {
    if rest.is_empty() && cmd != "onbuild" {
        return Ok(Args::None);
    }
    Ok(match cmd {
        "run" | "cmd" | "entrypoint" | "shell" => maybe_json(rest),
        "copy" | "add" | "volume" => match maybe_json(rest) {
            Args::Json(v) => Args::Json(v),
            _ => words(rest),
        },
        "from" | "expose" => words(rest),
        "env" | "label" => name_val(cmd, rest, escape)?,
        "arg" => Args::Pairs(
            shell_words(rest, escape)
                .into_iter()
                .map(|w| match w.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (w, None),
                })
                .collect(),
        ),
        "healthcheck" => {
            let (kind, after) = match rest.find(char::is_whitespace) {
                Some(p) => (&rest[..p], rest[p..].trim_start()),
                None => (rest, ""),
            };
            match kind.to_ascii_uppercase().as_str() {
                "NONE" if after.is_empty() => Args::Health(None),
                "NONE" => return Err("HEALTHCHECK NONE takes no arguments".into()),
                "CMD" if after.is_empty() => {
                    return Err("Missing command after HEALTHCHECK CMD".into())
                }
                "CMD" => Args::Health(Some(Box::new(maybe_json(after)))),
                other => return Err(format!("Unknown type {other:?} in HEALTHCHECK (try CMD)")),
            }
        }
        "onbuild" => {
            if rest.trim().is_empty() {
                return Err("ONBUILD requires at least one argument".into());
            }
            let child = node_from_line(rest, escape)?;
            match child.cmd.as_str() {
                "onbuild" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                "maintainer" | "from" => {
                    return Err(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        child.cmd.to_ascii_uppercase()
                    ))
                }
                _ => {}
            }
            Args::Sub(Box::new(child))
        }
        // USER, WORKDIR, STOPSIGNAL, MAINTAINER, and what `instructions` will refuse.
        _ => Args::Text(rest.to_string()),
    })
}

/// A JSON array of strings, else the text itself (BuildKit's parseMaybeJSON).
fn maybe_json(rest: &str) -> Args {
    let t = rest.trim();
    if t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
            return Args::Json(v);
        }
    }
    Args::Text(t.to_string())
}

fn words(rest: &str) -> Args {
    Args::Words(rest.split_whitespace().map(String::from).collect())
}

/// ENV and LABEL: `name=value ...`, or the legacy `name value` (the rest of the line).
fn name_val(cmd: &str, rest: &str, escape: char) -> std::result::Result<Args, String> {
    let ws = shell_words(rest, escape);
    let Some(first) = ws.first() else {
        return Ok(Args::None);
    };
    if !first.contains('=') {
        let mut parts = rest.splitn(2, char::is_whitespace);
        let name = parts.next().unwrap_or_default().to_string();
        let value = parts.next().map(str::trim).unwrap_or_default();
        if value.is_empty() {
            return Err(format!(
                "{} must have two arguments",
                cmd.to_ascii_uppercase()
            ));
        }
        return Ok(Args::Pairs(vec![(name, Some(value.to_string()))]));
    }
    let mut out = Vec::new();
    for w in ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ));
        };
        out.push((k.to_string(), Some(v.to_string())));
    }
    Ok(Args::Pairs(out))
}

/// Words split on unquoted whitespace, quotes and escapes kept (BuildKit's parseWords):
/// expansion removes them later.
pub fn shell_words(rest: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if quote.is_none() && c.is_whitespace() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            continue;
        }
        word.push(c);
        if c == escape && quote != Some('\'') {
            if let Some(n) = chars.next() {
                word.push(n);
            }
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            _ => {}
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The heredocs a line opens: (terminator, expand, chomp, fd), in order.
fn heredocs_in(line: &str, escape: char) -> Vec<(String, bool, bool, Option<u32>)> {
    let mut out = Vec::new();
    for w in shell_words(line, escape) {
        let Some(pos) = w.find("<<") else { continue };
        let (fd, after) = (&w[..pos], &w[pos + 2..]);
        if !fd.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let (chomp, after) = match after.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, after),
        };
        let (quoted, name) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => match after[1..].strip_suffix(q) {
                Some(n) => (true, n),
                None => continue,
            },
            _ => (false, after),
        };
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            continue;
        }
        out.push((name.to_string(), !quoted, chomp, fd.parse().ok()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let df = parse(text, "Dockerfile").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(df.nodes.len(), 1, "{:?}", df.nodes);
        df.nodes
            .into_iter()
            .next()
            .unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn directives_only_at_the_top() {
        let df =
            parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\n", "D").expect("must succeed");
        assert_eq!(df.directives.escape, '`');
        assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        // After a comment or an instruction, a directive is a plain comment.
        let df = parse("# hello\n# escape=`\nFROM x\n", "D").expect("must succeed");
        assert_eq!(df.directives.escape, '\\');
        let df = parse("FROM x\n# escape=`\n", "D").expect("must succeed");
        assert_eq!(df.directives.escape, '\\');
        let e = parse("# escape=`\n# ESCAPE=\\\nFROM x", "D").expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "D:2: only one escape parser directive can be used"
        );
        let e = parse("# escape=x\nFROM x", "D").expect_err("must fail");
        assert!(e.to_string().contains("invalid escape token 'x'"), "{e}");
    }

    #[test]
    fn continuations_and_comments() {
        let n = one("RUN echo a \\\n# a comment inside\n  && echo b\n");
        assert_eq!(n.args, Args::Text("echo a   && echo b".into()));
        assert_eq!((n.start_line, n.end_line), (1, 3));
        // The backtick escape continues lines; a backslash is then literal.
        let df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  /w\n", "D").expect("must succeed");
        assert_eq!(df.nodes[1].args, Args::Text("dir c:\\   /w".into()));
        let df = parse("FROM x\nRUN a \\\n\n b\n", "D").expect("must succeed");
        assert_eq!(df.nodes[1].args, Args::Text("a  b".into()));
        assert_eq!(df.warnings.len(), 1);
        let n = one("\u{feff}  from   busybox  AS  base \r\n");
        assert_eq!(n.cmd, "from");
        assert_eq!(
            n.args,
            Args::Words(vec!["busybox".into(), "AS".into(), "base".into()])
        );
    }

    #[test]
    fn json_or_shell_form() {
        assert_eq!(
            one(r#"CMD ["echo", "a b"]"#).args,
            Args::Json(vec!["echo".into(), "a b".into()])
        );
        // Not valid JSON: shell form, as BuildKit.
        assert_eq!(one("CMD [echo, hi]").args, Args::Text("[echo, hi]".into()));
        assert_eq!(one("CMD ['a']").args, Args::Text("['a']".into()));
        assert_eq!(
            one(r#"COPY ["a b", "/x/"]"#).args,
            Args::Json(vec!["a b".into(), "/x/".into()])
        );
        assert_eq!(
            one("COPY --from=b --chown=1:1 a  b /c").flags,
            vec!["from=b".to_string(), "chown=1:1".to_string()]
        );
    }

    #[test]
    fn env_label_arg_pairs() {
        assert_eq!(
            one(r#"ENV A=1 B="two words" C=x\ y"#).args,
            Args::Pairs(vec![
                ("A".into(), Some("1".into())),
                ("B".into(), Some("\"two words\"".into())),
                ("C".into(), Some("x\\ y".into())),
            ])
        );
        assert_eq!(
            one("ENV NAME the rest  of it").args,
            Args::Pairs(vec![("NAME".into(), Some("the rest  of it".into()))])
        );
        let e = parse("ENV A=1 B", "D").expect_err("must fail");
        assert!(e.to_string().contains("can't find = in \"B\""), "{e}");
        let e = parse("ENV A", "Dockerfile.x").expect_err("must fail");
        assert_eq!(e.to_string(), "Dockerfile.x:1: ENV must have two arguments");
        assert_eq!(
            one("ARG A B=2").args,
            Args::Pairs(vec![("A".into(), None), ("B".into(), Some("2".into()))])
        );
    }

    #[test]
    fn heredocs() {
        let df = parse("FROM x\nRUN <<EOF\necho $A\n\tindented\nEOF\nRUN x\n", "D")
            .expect("must succeed");
        let h = &df.nodes[1].heredocs[0];
        assert_eq!(h.name, "EOF");
        assert_eq!(h.content, "echo $A\n\tindented\n");
        assert!(h.expand && !h.chomp);
        assert_eq!((df.nodes[1].start_line, df.nodes[1].end_line), (2, 5));
        assert_eq!(df.nodes[2].start_line, 6);
        let n = one("COPY <<-'A' <<B /dst/\n\tone\n\tA\ntwo\nB\n");
        assert_eq!(n.heredocs.len(), 2);
        assert_eq!(n.heredocs[0].content, "one\n");
        assert!(!n.heredocs[0].expand && n.heredocs[0].chomp);
        assert_eq!(n.heredocs[1].content, "two\n");
        let n = one("RUN python3 3<<EOF\nprint(1)\nEOF\n");
        assert_eq!(n.heredocs[0].fd, Some(3));
        // Only RUN, COPY and ADD take heredocs; exec form takes none.
        assert!(one("CMD cat <<EOF").heredocs.is_empty());
        assert!(one(r#"RUN ["cat", "<<EOF"]"#).heredocs.is_empty());
        let e = parse("FROM x\nRUN <<EOF\nno end\n", "D").expect_err("must fail");
        assert_eq!(e.to_string(), "D:2: unterminated heredoc EOF");
    }

    #[test]
    fn healthcheck_and_onbuild() {
        assert_eq!(one("HEALTHCHECK NONE").args, Args::Health(None));
        let n = one("HEALTHCHECK --interval=5s CMD [\"true\"]");
        assert_eq!(n.flags, vec!["interval=5s".to_string()]);
        assert_eq!(
            n.args,
            Args::Health(Some(Box::new(Args::Json(vec!["true".into()]))))
        );
        assert!(parse("HEALTHCHECK CMD", "D").is_err());
        assert!(parse("HEALTHCHECK FOO x", "D").is_err());
        let Args::Sub(child) = one("ONBUILD RUN echo hi").args else {
            panic!("not a sub-instruction")
        };
        assert_eq!(child.cmd, "run");
        assert_eq!(child.original, "RUN echo hi");
        let e = parse("ONBUILD ONBUILD RUN x", "D").expect_err("must fail");
        assert!(e.to_string().contains("Chaining ONBUILD"), "{e}");
        let e = parse("ONBUILD FROM x", "D").expect_err("must fail");
        assert!(e.to_string().contains("FROM isn't allowed"), "{e}");
    }
}
