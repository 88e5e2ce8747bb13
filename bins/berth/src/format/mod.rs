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

/// The docker CLI's size columns (`images`, `ps -s`): go-units' HumanSizeWithPrecision with
/// three significant digits ("1.98MB", "175MB").
pub fn human_size(bytes: u64) -> String {
    human_size_precision(bytes, 3)
}

/// go-units' HumanSize, four significant digits ("1.982MB"): `system df` and the
/// "Total reclaimed space" of the prune commands.
pub fn human_size_4(bytes: u64) -> String {
    human_size_precision(bytes, 4)
}

/// go-units' BytesSize (`docker info`'s Total Memory): binary units, four significant
/// digits ("7.775GiB").
pub fn bytes_size(bytes: u64) -> String {
    scaled(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"], 4)
}

/// Decimal units and `precision` significant digits, trailing zeros dropped (Go's `%.*g`).
fn human_size_precision(bytes: u64, precision: usize) -> String {
    scaled(
        bytes,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB"],
        precision,
    )
}

/// `bytes` in the largest of `units` (each `base` times the last) that keeps it at or above
/// one, with `precision` significant digits as Go's `%.*g` prints them.
fn scaled(bytes: u64, base: f64, units: &[&str], precision: usize) -> String {
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as usize + 1
    };
    let digits = precision.saturating_sub(int_digits);
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
        assert_eq!(human_size_4(1_982_464), "1.982MB");
        assert_eq!(human_size_4(300_000), "300kB");
        assert_eq!(human_size_4(999), "999B");
        assert_eq!(bytes_size(8_348_655_616), "7.775GiB");
        assert_eq!(bytes_size(512), "512B");
    }
}
