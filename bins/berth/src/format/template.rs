//! The part of Go's text/template that `--format` uses in practice: text, `{{.A.B}}` paths,
//! `{{json .X}}`, `{{len .X}}`, `{{upper .X}}`, `{{lower .X}}`, and the `table` prefix.
//! Anything else is an error that names it, never silently printed as text.

use anyhow::{bail, Result};
use serde_json::Value;

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Action {
        func: Option<String>,
        path: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
    /// `table ...`: print a header row first.
    pub table: bool,
}

fn parse_path(arg: &str) -> Result<Vec<String>> {
    if arg == "." {
        return Ok(Vec::new());
    }
    let Some(rest) = arg.strip_prefix('.') else {
        bail!("template: unsupported argument {arg:?} (only .Field paths are supported)");
    };
    Ok(rest.split('.').map(String::from).collect())
}

impl Template {
    pub fn parse(format: &str) -> Result<Template> {
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, format),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut pieces = Vec::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let end = rest[start..]
                .find("}}")
                .map(|e| start + e)
                .ok_or_else(|| anyhow::anyhow!("template: unclosed action in {format:?}"))?;
            let action = rest[start + 2..end]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim();
            let words: Vec<&str> = action.split_whitespace().collect();
            let piece = match words.as_slice() {
                [path] => Piece::Action { func: None, path: parse_path(path)? },
                [func @ ("json" | "len" | "upper" | "lower"), path] => Piece::Action {
                    func: Some(func.to_string()),
                    path: parse_path(path)?,
                },
                _ => bail!("template: {{{{{action}}}}} is not supported (paths, json, len, upper, lower are)"),
            };
            pieces.push(piece);
            rest = &rest[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces, table })
    }

    /// The header row: each field's name in capitals, docker's names for known ones.
    pub fn header(&self, names: &dyn Fn(&str) -> Option<&'static str>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action { path, .. } => {
                    let field = path.last().map(String::as_str).unwrap_or_default();
                    out.push_str(&names(field).map_or_else(|| field.to_uppercase(), String::from));
                }
            }
        }
        out
    }

    pub fn render(&self, value: &Value) -> Result<String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action { func, path } => {
                    let mut v = value;
                    for key in path {
                        v = v.get(key).unwrap_or(&Value::Null);
                    }
                    let text = match func.as_deref() {
                        Some("json") => serde_json::to_string(v)?,
                        Some("len") => match v {
                            Value::Array(a) => a.len().to_string(),
                            Value::Object(o) => o.len().to_string(),
                            Value::String(s) => s.len().to_string(),
                            _ => bail!("template: len of {v}"),
                        },
                        Some("upper") => go_print(v).to_uppercase(),
                        Some("lower") => go_print(v).to_lowercase(),
                        _ => go_print(v),
                    };
                    out.push_str(&text);
                }
            }
        }
        Ok(out)
    }
}

/// How Go's fmt prints a value: strings bare, lists as `[a b]`, maps as `map[k:v]`.
fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", go_print(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_functions_and_refusals() {
        let v = json!({"Repository": "busybox", "Tag": "latest", "Config": {"Cmd": ["sh", "-c"]}});
        assert_eq!(
            Template::parse("{{.Repository}}:{{.Tag}}")
                .expect("parse")
                .render(&v)
                .expect("render"),
            "busybox:latest"
        );
        assert_eq!(
            Template::parse("{{json .Config.Cmd}} {{len .Config.Cmd}}")
                .expect("parse")
                .render(&v)
                .expect("render"),
            "[\"sh\",\"-c\"] 2"
        );
        assert_eq!(
            Template::parse("{{.Config.Cmd}}")
                .expect("parse")
                .render(&v)
                .expect("render"),
            "[sh -c]"
        );
        let t = Template::parse("table {{.Repository}}\\t{{.Tag}}").expect("table");
        assert!(t.table);
        assert!(Template::parse("{{range .X}}{{end}}").is_err());
        assert!(Template::parse("{{.A").is_err());
    }
}
