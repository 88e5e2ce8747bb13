//! Variable substitution in instruction arguments, as BuildKit's shell lexer
//! (frontend/dockerfile/shell/lex.go): `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`,
//! `${VAR:+word}`, `${VAR+word}`, `${VAR:?message}`, `${VAR?message}`; single quotes keep
//! everything, double quotes keep all but `$` and escapes; quotes are removed.

use std::collections::HashMap;

/// The variables in scope (ARGs and ENVs of the stage so far).
pub type Env = HashMap<String, String>;

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(&'static str),
    #[error("bad substitution: {0}")]
    BadSubstitution(String),
    #[error("unsupported modifier ({0}) in substitution")]
    Modifier(char),
    #[error("{0}")]
    Required(String),
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'a Env,
}

/// Expand `word` in `env`.
pub fn expand(word: &str, env: &Env, escape: char) -> Result<String, ShellError> {
    let mut lx = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        escape,
        env,
    };
    lx.process(None)
}

/// Expand a heredoc's text: only `$` substitutions (and an escaped `$`); quotes are text.
pub fn expand_heredoc(text: &str, env: &Env, escape: char) -> Result<String, ShellError> {
    let mut lx = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        env,
    };
    let mut out = String::new();
    while let Some(c) = lx.next() {
        match c {
            '$' => out.push_str(&lx.dollar()?),
            c if c == escape && lx.peek() == Some('$') => {
                lx.pos += 1;
                out.push('$');
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    /// Until the end, or until an unescaped `stop` outside quotes (consumed).
    fn process(&mut self, stop: Option<char>) -> Result<String, ShellError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match c {
                '\'' => {
                    self.pos += 1;
                    out.push_str(&self.single_quoted()?);
                }
                '"' => {
                    self.pos += 1;
                    out.push_str(&self.double_quoted()?);
                }
                '$' => {
                    self.pos += 1;
                    out.push_str(&self.dollar()?);
                }
                c if c == self.escape => {
                    self.pos += 1;
                    match self.next() {
                        Some(n) => out.push(n),
                        // A trailing escape stays, as BuildKit's lexer keeps it.
                        None => out.push(c),
                    }
                }
                c => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
        match stop {
            Some('}') => Err(ShellError::Unterminated("'}'")),
            _ => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, ShellError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(ShellError::Unterminated("single-quote")),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ShellError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(ShellError::Unterminated("double-quote")),
                Some('"') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                name.push(c);
                self.pos += 1;
            }
            return name;
        }
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ShellError> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.env.get(&name).cloned().unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err(ShellError::BadSubstitution("missing variable name".into()));
        }
        let value = self.env.get(&name);
        let mut op = self.next();
        let colon = op == Some(':');
        if colon {
            op = self.next();
        }
        let unset_or_empty = value.is_none_or(|v| v.is_empty() && colon);
        match op {
            Some('}') if !colon => Ok(value.cloned().unwrap_or_default()),
            Some('-') => {
                let word = self.process(Some('}'))?;
                Ok(if unset_or_empty {
                    word
                } else {
                    value.cloned().unwrap_or_default()
                })
            }
            Some('+') => {
                let word = self.process(Some('}'))?;
                Ok(if unset_or_empty { String::new() } else { word })
            }
            Some('?') => {
                let word = self.process(Some('}'))?;
                if unset_or_empty {
                    let why = if word.is_empty() {
                        "is not allowed to be unset".to_string()
                    } else {
                        word
                    };
                    return Err(ShellError::Required(format!("{name}: {why}")));
                }
                Ok(value.cloned().unwrap_or_default())
            }
            None => Err(ShellError::Unterminated("'}'")),
            Some(c) => Err(ShellError::Modifier(c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        [("A", "a"), ("E", ""), ("P", "/usr/bin")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn x(w: &str) -> String {
        expand(w, &env(), '\\').unwrap_or_else(|e| panic!("{w}: {e}"))
    }

    #[test]
    fn substitution_forms() {
        assert_eq!(x("$A"), "a");
        assert_eq!(x("${A}b"), "ab");
        assert_eq!(x("$Ab"), "");
        assert_eq!(x("x$"), "x$");
        assert_eq!(x("${U:-def}"), "def");
        assert_eq!(x("${E:-def}"), "def");
        assert_eq!(x("${E-def}"), "");
        assert_eq!(x("${A:-def}"), "a");
        assert_eq!(x("${A:+set}"), "set");
        assert_eq!(x("${E:+set}"), "");
        assert_eq!(x("${E+set}"), "set");
        assert_eq!(x("${U+set}"), "");
        assert_eq!(x("${U:-$A-${P}}"), "a-/usr/bin");
        assert_eq!(
            expand("${U:?must be set}", &env(), '\\')
                .expect_err("must fail")
                .to_string(),
            "U: must be set"
        );
        assert!(matches!(
            expand("${A", &env(), '\\'),
            Err(ShellError::Unterminated(_))
        ));
        assert_eq!(
            expand("${A%%x}", &env(), '\\'),
            Err(ShellError::Modifier('%'))
        );
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$A'"), "$A");
        assert_eq!(x("\"$A b\""), "a b");
        assert_eq!(x("\\$A"), "$A");
        assert_eq!(x("\"\\$A \\\" \\x\""), "$A \" \\x");
        assert_eq!(x("a\\ b"), "a b");
        assert_eq!(expand("`$A", &env(), '`').expect("must succeed"), "$A");
        assert_eq!(
            expand("c:\\$A", &env(), '`').expect("must succeed"),
            "c:\\a"
        );
        assert!(expand("'open", &env(), '\\').is_err());
    }
}
