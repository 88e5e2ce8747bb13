//! Output as docker prints it: human sizes and ages, Go-template `--format`, aligned tables.

mod table;
mod template;

pub use table::Table;
pub use template::Template;

use std::io::Write;

use anyhow::Result;
use serde_json::Value;

/// Print `rows` with `format` (Go template, `table ...`, `json`) or the default table.
pub fn print_rows(
    rows: &[Value],
    format: Option<&str>,
    default: &str,
    header_name: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<()> {
    let format = format.unwrap_or(default);
    if format == "json" {
        for r in rows {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    let t = Template::parse(format)?;
    let mut out = String::new();
    if t.table {
        let mut table = Table::new();
        table.push_line(&t.header(header_name)?);
        for r in rows {
            table.push_line(&t.render(r)?);
        }
        out = table.render();
    } else {
        for r in rows {
            out.push_str(&t.render(r)?);
            out.push('\n');
        }
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

/// `inspect` output: each object through `--format`, or all of them as a JSON array.
pub fn print_inspected(all: &[Value], format: Option<&str>) -> Result<()> {
    match format {
        Some(f) => {
            let t = Template::parse(f)?;
            for v in all {
                println!("{}", t.render(v)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(all)?),
    }
    Ok(())
}

/// docker's HumanSize: decimal units, three significant digits ("1.98MB", "175MB").
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// docker's HumanDuration of the time since `unix`, with " ago".
pub fn since(unix: i64) -> String {
    use berth_api::humanize;
    format!("{} ago", humanize::duration(humanize::now_unix() - unix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1_980_000), "1.98MB");
        assert_eq!(human_size(175_400_000), "175MB");
        assert_eq!(human_size(12_345), "12.3kB");
    }
}
