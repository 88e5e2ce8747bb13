//! Columns aligned as docker's tabwriter does (minimum width 10, padding 3).

pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new() -> Table {
        Table { rows: Vec::new() }
    }

    /// A row, its cells separated by tabs.
    pub fn push_line(&mut self, line: &str) {
        self.rows.push(line.split('\t').map(String::from).collect());
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    widths[i] = widths[i].max((cell.chars().count() + 3).max(10));
                }
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    out.push_str(&format!("{cell:<w$}", w = widths[i]));
                } else {
                    out.push_str(cell);
                }
            }
            out.push('\n');
        }
        out
    }
}
