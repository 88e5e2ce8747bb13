//! Output as docker prints it: human sizes and ages, Go-template `--format`, aligned tables.

mod table;
mod template;

pub use table::Table;
pub use template::Template;

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
