//! Attribute label tables: CSV with a header row of attribute names and one row
//! per latent; an empty cell is a missing label.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::fsutil;

/// Largest label file read (256 MiB).
pub const MAX_LABEL_FILE_BYTES: u64 = 256 << 20;

/// Labels: `rows[i][k]` is latent i's value for attribute `names[k]`, if labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelTable {
    /// Attribute identifiers, in column order.
    pub names: Vec<String>,
    /// One row per latent.
    pub rows: Vec<Vec<Option<f32>>>,
}

impl LabelTable {
    /// Column `k` as a vector.
    pub fn column(&self, k: usize) -> Vec<Option<f32>> {
        self.rows.iter().map(|r| r[k]).collect()
    }

    /// This table's rows followed by `other`'s, with the union of their columns
    /// (this table's first, then `other`'s new ones); a cell a table lacks is missing.
    pub fn stack(&self, other: &LabelTable) -> LabelTable {
        let mut names = self.names.clone();
        names.extend(
            other
                .names
                .iter()
                .filter(|n| !self.names.contains(n))
                .cloned(),
        );
        let widen = |table: &LabelTable| -> Vec<Vec<Option<f32>>> {
            let cols: Vec<Option<usize>> = names
                .iter()
                .map(|n| table.names.iter().position(|m| m == n))
                .collect();
            table
                .rows
                .iter()
                .map(|r| cols.iter().map(|c| c.and_then(|c| r[c])).collect())
                .collect()
        };
        let mut rows = widen(self);
        rows.extend(widen(other));
        LabelTable { names, rows }
    }

    /// Index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Encodes the table as CSV text.
    pub fn to_csv(&self) -> String {
        let mut s = self.names.join(",");
        s.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| c.map(|v| v.to_string()).unwrap_or_default())
                .collect();
            s.push_str(&cells.join(","));
            s.push('\n');
        }
        s
    }
}

/// Whether `name` is a valid attribute identifier: lowercase letters, digits and `_`,
/// starting with a letter, at most 64 characters.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Reads and validates a label CSV.
pub fn read(path: &Path) -> Result<LabelTable> {
    let bytes = fsutil::read_limited(path, MAX_LABEL_FILE_BYTES)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::format(path, "not UTF-8 text"))?;
    parse(path, text)
}

/// Parses label CSV text read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<LabelTable> {
    // A blank line is a row with every label missing: in a one-column file
    // that is how a missing label looks.
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or_else(|| {
        Error::format(
            path,
            "empty label file: expected a header row of attribute names",
        )
    })?;
    let names: Vec<String> = header.split(',').map(|s| s.trim().to_string()).collect();
    for name in &names {
        if !is_identifier(name) {
            return Err(Error::format(
                path,
                format!("header: {name:?} is not an attribute name (lowercase letters, digits, _)"),
            ));
        }
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(Error::format(
                path,
                format!("header: attribute {n:?} appears twice"),
            ));
        }
    }
    let mut rows = Vec::new();
    for (line_no, line) in lines {
        if line.trim().is_empty() {
            rows.push(vec![None; names.len()]);
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != names.len() {
            return Err(Error::format(
                path,
                format!(
                    "line {}: {} cells, the header has {}",
                    line_no + 1,
                    cells.len(),
                    names.len()
                ),
            ));
        }
        let row = cells
            .iter()
            .zip(&names)
            .map(|(c, n)| {
                let c = c.trim();
                if c.is_empty() {
                    return Ok(None);
                }
                match c.parse::<f32>() {
                    Ok(v) if v.is_finite() => Ok(Some(v)),
                    _ => Err(Error::format(
                        path,
                        format!("line {}: {n} = {c:?} is not a finite number", line_no + 1),
                    )),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        rows.push(row);
    }
    Ok(LabelTable { names, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_partial_labels() -> Result<()> {
        let t = parse(Path::new("l.csv"), "smile,yaw\n1,0.5\n,\n0,-2\n")?;
        assert_eq!(t.names, vec!["smile", "yaw"]);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[1], vec![None, None]);
        assert_eq!(t.rows[2], vec![Some(0.0), Some(-2.0)]);
        let again = parse(Path::new("l.csv"), &t.to_csv())?;
        assert_eq!(again, t);
        Ok(())
    }

    #[test]
    fn one_column_keeps_missing_rows() -> Result<()> {
        let t = parse(Path::new("g.csv"), "glasses\n1\n\n0\n\n")?;
        assert_eq!(
            t.rows,
            vec![vec![Some(1.0)], vec![None], vec![Some(0.0)], vec![None]]
        );
        let t = LabelTable {
            names: vec!["glasses".into()],
            rows: vec![vec![None], vec![Some(1.0)], vec![None]],
        };
        assert_eq!(parse(Path::new("g.csv"), &t.to_csv())?, t);
        Ok(())
    }

    #[test]
    fn stacks_with_the_union_of_columns() -> Result<()> {
        let a = parse(Path::new("a.csv"), "smile,yaw\n1,0.5\n0,\n")?;
        let b = parse(Path::new("b.csv"), "glasses,smile\n1,\n0,1\n")?;
        let s = a.stack(&b);
        assert_eq!(s.names, vec!["smile", "yaw", "glasses"]);
        assert_eq!(
            s.rows,
            vec![
                vec![Some(1.0), Some(0.5), None],
                vec![Some(0.0), None, None],
                vec![None, None, Some(1.0)],
                vec![Some(1.0), None, Some(0.0)],
            ]
        );
        Ok(())
    }

    #[test]
    fn names_the_problem() {
        let e = |s: &str| parse(Path::new("bad.csv"), s).unwrap_err().to_string();
        assert!(e("").contains("empty"));
        assert!(e("Smile\n1\n").contains("not an attribute name"));
        assert!(e("a,a\n1,1\n").contains("twice"));
        assert!(e("a,b\n1\n").contains("line 2"));
        assert!(e("a\nNaN\n").contains("not a finite number"));
        assert!(e("a\nyes\n").contains("bad.csv"));
    }
}
