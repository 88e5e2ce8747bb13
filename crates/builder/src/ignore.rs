//! `.dockerignore` with moby/patternmatcher's rules: patterns are cleaned paths relative to
//! the context root (a leading `/` dropped), `*` and `?` stop at `/`, `**` crosses
//! directories, `!` makes an exception, the last matching pattern wins, and a pattern that
//! matches a directory matches everything under it.

use regex::Regex;

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    regex: Regex,
    exclusion: bool,
}

/// The patterns of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// Lexically clean a slash path as Go's filepath.Clean.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

impl Ignore {
    /// Read the file's text (ignorefile.ReadAll).
    pub fn parse(text: &str) -> Result<Ignore> {
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, pat) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if pat.is_empty() {
                continue;
            }
            let mut pat = clean(pat);
            if pat.len() > 1 && pat.starts_with('/') {
                pat.remove(0);
            }
            let regex = compile(&pat).map_err(|e| Error::Ignore {
                line: n + 1,
                message: format!("{pat:?}: {e}"),
            })?;
            patterns.push(Pattern {
                text: pat,
                regex,
                exclusion,
            });
        }
        Ok(Ignore { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context, slash-separated) is excluded: the last
    /// pattern matching it or one of its parent directories decides.
    pub fn excludes(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion == matched {
                // Only patterns that can change the answer are worth testing.
                let hit = p.regex.is_match(&path) || parents.iter().any(|d| p.regex.is_match(d));
                if hit {
                    matched = !p.exclusion;
                }
            }
        }
        matched
    }

    /// Whether some exception pattern could re-include something under `dir` (then a walk
    /// must look inside an excluded directory, as moby's does).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// The patterns as written (after cleaning), `!` kept.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exclusion {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }
}

/// patternmatcher's pattern to a regular expression.
fn compile(pattern: &str) -> std::result::Result<Regex, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                // `**/` counts as `**`; at the end it accepts everything, elsewhere any
                // number of directories (none too), as patternmatcher's.
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 == chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == ']')
                    .ok_or("unterminated character class")?;
                let class: String = chars[i + 1..i + 1 + end].iter().collect();
                let class = match class.strip_prefix('^').or_else(|| class.strip_prefix('!')) {
                    Some(neg) => format!("^{}", neg.replace('\\', "\\\\")),
                    None => class.replace('\\', "\\\\"),
                };
                re.push('[');
                re.push_str(&class);
                re.push(']');
                i += end + 1;
            }
            '\\' => {
                i += 1;
                let n = chars.get(i).ok_or("trailing escape")?;
                re.push_str(&regex::escape(&n.to_string()));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> Ignore {
        Ignore::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn patterns_as_moby() {
        let i = ig("# comment\n*.md\n!README.md\n/build\nsecret/**\n**/*.tmp\n");
        assert!(i.excludes("a.md"));
        assert!(!i.excludes("README.md"));
        assert!(!i.excludes("docs/a.md"), "* stops at /");
        assert!(i.excludes("build"));
        assert!(
            i.excludes("build/out/x"),
            "a directory's pattern covers its files"
        );
        assert!(!i.excludes("src/build"));
        assert!(i.excludes("secret/a/b"));
        assert!(i.excludes("x.tmp"));
        assert!(i.excludes("a/b/c.tmp"));
        assert!(!i.excludes("main.rs"));
    }

    #[test]
    fn exceptions_and_order() {
        let i = ig("*\n!keep\n!dir/one\n");
        assert!(i.excludes("x"));
        assert!(!i.excludes("keep"));
        assert!(i.excludes("dir/two"));
        assert!(!i.excludes("dir/one"));
        // The last match wins.
        let i = ig("!a\na\n");
        assert!(i.excludes("a"));
        let i = ig("a?c\n[x-z]1\n\\*\n");
        assert!(i.excludes("abc") && !i.excludes("a/c"));
        assert!(i.excludes("y1") && !i.excludes("a1"));
        assert!(i.excludes("*") && !i.excludes("q"));
        let i = ig("./a/../b\n");
        assert!(i.excludes("b"));
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("a//b/./c/"), "a/b/c");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean("../x"), "../x");
        assert_eq!(clean("a/.."), ".");
    }
}
