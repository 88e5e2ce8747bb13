//! `--format`: Go's text/template (through `gotmpl`, a port of it: paths, `index`, `range`,
//! `if`, `with`, variables, pipelines, `printf`...) with the functions the docker CLI adds
//! (`json`, `split`, `join`, `title`, `lower`, `upper`, `pad`, `truncate`), and its `table`
//! prefix.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use gotmpl::{FuncMap, TemplateError, Value};

#[derive(Clone)]
pub struct Template {
    inner: gotmpl::Template,
    /// The fields the template names (`.ID`, `.Name`): the header row's columns.
    fields: Vec<String>,
    /// `table ...`: print a header row first.
    pub table: bool,
}

impl Template {
    pub fn parse(format: &str) -> Result<Template> {
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, format),
        };
        // The docker CLI's shorthands for a tab and a newline in a flag's value.
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        check_blocks(&body).with_context(|| format!("template parsing error in {format:?}"))?;
        let inner = gotmpl::Template::new("")
            .funcs(docker_functions())
            .parse(&body)
            .with_context(|| format!("template parsing error in {format:?}"))?;
        Ok(Template {
            inner,
            fields: field_names(&body),
            table,
        })
    }

    /// The header row: the template run on each field's column name (docker's names for
    /// known ones, the field in capitals otherwise), as the docker CLI's header context.
    pub fn header(&self, names: &dyn Fn(&str) -> Option<&'static str>) -> Result<String> {
        let columns: BTreeMap<Arc<str>, Value> = self
            .fields
            .iter()
            .map(|f| {
                let column = names(f).map_or_else(|| f.to_uppercase(), String::from);
                (Arc::from(f.as_str()), Value::String(column.into()))
            })
            .collect();
        self.inner
            .execute_to_string(&Value::Map(Arc::new(columns)))
            .context("template: the header of a table takes plain .Field columns")
    }

    pub fn render(&self, value: &serde_json::Value) -> Result<String> {
        let data = gotmpl::to_value(value).context("template data")?;
        self.inner
            .execute_to_string(&data)
            .map_err(|e| anyhow::anyhow!("template: {e}"))
    }
}

/// Every `if`/`range`/`with`/`define`/`block` closed by its `end`, as Go's parser demands
/// ("unexpected EOF"); gotmpl's parser takes a template's end, or a stray `end`, as the end
/// of the open block and would print a truncated result without an error.
fn check_blocks(body: &str) -> Result<()> {
    let mut open = 0usize;
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            anyhow::bail!("unclosed action");
        };
        let action =
            rest[start + 2..start + len].trim_matches(|c: char| c == '-' || c.is_whitespace());
        match action.split_whitespace().next() {
            Some("if" | "range" | "with" | "define" | "block") => open += 1,
            Some("end") if open == 0 => anyhow::bail!("unexpected {{{{end}}}}"),
            Some("end") => open -= 1,
            _ => {}
        }
        rest = &rest[start + len + 2..];
    }
    if open > 0 {
        anyhow::bail!("unexpected EOF: {open} block(s) without {{{{end}}}}");
    }
    Ok(())
}

/// The `.Field` names a template's text mentions (the first of each path).
fn field_names(body: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let bytes = body.as_bytes();
    for (i, _) in body.match_indices('.') {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b')') {
            continue;
        }
        let name: String = body[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && !fields.contains(&name) {
            fields.push(name);
        }
    }
    fields
}

fn function(
    f: impl Fn(&[Value]) -> gotmpl::Result<Value> + Send + Sync + 'static,
) -> gotmpl::ValueFunc {
    Arc::new(f)
}

fn string_arg(args: &[Value], i: usize) -> gotmpl::Result<String> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.to_string()),
        Some(other) => Ok(other.to_string()),
        None => Err(TemplateError::Exec(format!("missing argument {}", i + 1))),
    }
}

fn int_arg(args: &[Value], i: usize) -> gotmpl::Result<usize> {
    args.get(i)
        .and_then(Value::as_int)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| TemplateError::Exec(format!("argument {} must be a number", i + 1)))
}

fn text(s: impl Into<Arc<str>>) -> gotmpl::Result<Value> {
    Ok(Value::String(s.into()))
}

/// The docker CLI's template functions (cli/templates/templates.go).
fn docker_functions() -> FuncMap {
    let mut m = FuncMap::new();
    m.insert(
        "json".into(),
        function(|a| {
            let v = a.first().map(to_json).unwrap_or(serde_json::Value::Null);
            text(serde_json::to_string(&v).unwrap_or_default())
        }),
    );
    m.insert(
        "split".into(),
        function(|a| {
            let (s, sep) = (string_arg(a, 0)?, string_arg(a, 1)?);
            let parts: Vec<Value> = s
                .split(sep.as_str())
                .map(|p| Value::String(p.into()))
                .collect();
            Ok(Value::List(parts.into()))
        }),
    );
    m.insert(
        "join".into(),
        function(|a| {
            let sep = string_arg(a, 1)?;
            let items: Vec<String> = match a.first() {
                Some(Value::List(l)) => l.iter().map(plain).collect(),
                Some(other) => vec![plain(other)],
                None => Vec::new(),
            };
            text(items.join(&sep))
        }),
    );
    m.insert(
        "lower".into(),
        function(|a| text(string_arg(a, 0)?.to_lowercase())),
    );
    m.insert(
        "upper".into(),
        function(|a| text(string_arg(a, 0)?.to_uppercase())),
    );
    m.insert(
        "title".into(),
        function(|a| text(title(&string_arg(a, 0)?))),
    );
    m.insert(
        "pad".into(),
        function(|a| {
            let (s, before, after) = (string_arg(a, 0)?, int_arg(a, 1)?, int_arg(a, 2)?);
            text(format!("{}{s}{}", " ".repeat(before), " ".repeat(after)))
        }),
    );
    m.insert(
        "truncate".into(),
        function(|a| {
            let (s, n) = (string_arg(a, 0)?, int_arg(a, 1)?);
            text(s.chars().take(n).collect::<String>())
        }),
    );
    m
}

/// strings.Title: each word's first letter in capitals.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// A value as Go's fmt prints it (strings bare).
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// A template value back as JSON (for `json`).
fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil | Value::Function(_) => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Uint(u) => J::from(*u),
        Value::Float(f) => J::from(*f),
        Value::String(s) => J::String(s.to_string()),
        Value::List(l) => J::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(format: &str, v: &serde_json::Value) -> String {
        Template::parse(format)
            .expect("parse")
            .render(v)
            .expect("render")
    }

    #[test]
    fn go_templates_with_the_docker_functions() {
        let v = json!({
            "Repository": "busybox", "Tag": "latest", "Config": {"Cmd": ["sh", "-c"]},
            "NetworkSettings": {"Networks": {"front": {"IPAddress": "10.0.0.2"}, "back": {"IPAddress": "10.1.0.2"}}},
            "Size": 1234
        });
        assert_eq!(render("{{.Repository}}:{{.Tag}}", &v), "busybox:latest");
        assert_eq!(
            render("{{json .Config.Cmd}} {{len .Config.Cmd}}", &v),
            "[\"sh\",\"-c\"] 2"
        );
        assert_eq!(render("{{.Config.Cmd}} {{.Size}}", &v), "[sh -c] 1234");
        assert_eq!(
            render(
                "{{(index .NetworkSettings.Networks \"front\").IPAddress}}",
                &v
            ),
            "10.0.0.2"
        );
        assert_eq!(
            render(
                "{{range $k, $n := .NetworkSettings.Networks}}{{$k}}={{$n.IPAddress}} {{end}}",
                &v
            ),
            "back=10.1.0.2 front=10.0.0.2 "
        );
        assert_eq!(
            render(
                "{{join .Config.Cmd \",\"}} {{upper .Tag}} {{title \"a b\"}}",
                &v
            ),
            "sh,-c LATEST A B"
        );
        assert_eq!(
            render("{{truncate .Repository 4}}|{{pad .Tag 1 2}}|", &v),
            "busy| latest  |"
        );
        assert_eq!(
            render("{{if eq .Tag \"latest\"}}yes{{end}} {{.Missing}}", &v),
            "yes <no value>"
        );
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{range .X}}").is_err());
        assert!(Template::parse("a{{end}}b").is_err());
        let undefined = Template::parse("{{nosuchfunction .Tag}}").and_then(|t| t.render(&v));
        assert!(undefined.is_err_and(|e| e.to_string().contains("nosuchfunction")));
    }

    #[test]
    fn a_tables_header_names_its_columns() {
        let t = Template::parse("table {{.ID}}\\t{{.Name}}\\t{{json .Labels}}").expect("table");
        assert!(t.table);
        let names = |f: &str| (f == "ID").then_some("NETWORK ID");
        assert_eq!(
            t.header(&names).expect("header"),
            "NETWORK ID\tNAME\t\"LABELS\""
        );
    }
}
