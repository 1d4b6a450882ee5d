//! `plugen judge`: what the judges read off images, as a table, and added to
//! a run folder's `metadata.jsonl` as `judge_NAME` columns.

use std::path::{Path, PathBuf};

use image::RgbImage;

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};
use crate::jobs::dataset::METADATA_FILE;
use crate::jobs::projection::load_target;
use crate::model::judges::{JudgeSet, READINGS, Reading};

/// Side of the faces the judges read.
const FACE: u32 = 64;
/// Images judged per batch.
const BATCH: usize = 64;

/// A face for the judges: a 64×64 image as it is, anything else centre-cropped
/// to a square and resized (as `plugen project` does).
pub fn load_face(path: &Path) -> Result<RgbImage> {
    load_target(path, FACE)
}

/// Judges every image; a file that cannot be read gets its error, the others go on.
pub fn judge_files(judges: &JudgeSet, paths: &[PathBuf]) -> Vec<Result<Reading>> {
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(BATCH) {
        let faces: Vec<Result<RgbImage>> = chunk.iter().map(|p| load_face(p)).collect();
        let good: Vec<&RgbImage> = faces.iter().filter_map(|f| f.as_ref().ok()).collect();
        let mut readings = match judges.read(&good) {
            Ok(r) => r.into_iter(),
            Err(e) => {
                let msg = e.to_string();
                out.extend(chunk.iter().map(|_| Err(Error::invalid(msg.clone()))));
                continue;
            }
        };
        for f in faces {
            out.push(match f {
                Ok(_) => readings
                    .next()
                    .ok_or_else(|| Error::invalid("internal error: a reading went missing")),
                Err(e) => Err(e),
            });
        }
    }
    out
}

/// The reading names as CSV columns: `judge_NAME`.
pub fn columns() -> Vec<String> {
    READINGS.iter().map(|n| format!("judge_{n}")).collect()
}

/// One CSV row: the file, then every reading (empty where a judge could not read it).
pub fn csv_row(file: &str, reading: &Reading) -> String {
    let mut row = file.replace(',', "_");
    for name in READINGS {
        row.push(',');
        if let Some(v) = reading.get(name) {
            row.push_str(&format!("{v:.6}"));
        }
    }
    row
}

/// Judges the images a run folder's `metadata.jsonl` lists and rewrites it
/// (atomically) with `judge_NAME` columns; earlier judge columns are
/// replaced. Returns the number of rows.
pub fn judge_run_folder(judges: &JudgeSet, dir: &Path) -> Result<usize> {
    let path = dir.join(METADATA_FILE);
    let text = fsutil::read_limited(&path, 1 << 30)?;
    let mut rows = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)
            .map_err(|e| Error::format(&path, format!("line {}: {e}", i + 1)))?;
        let Some(file) = row.get("file_name").and_then(|v| v.as_str()) else {
            return Err(Error::format(
                &path,
                format!("line {}: no file_name", i + 1),
            ));
        };
        if file.contains("..") || Path::new(file).is_absolute() {
            return Err(Error::format(
                &path,
                format!("line {}: file_name {file:?} leaves the folder", i + 1),
            ));
        }
        let image = dir.join(file);
        rows.push((row, image));
    }
    let paths: Vec<PathBuf> = rows.iter().map(|(_, p)| p.clone()).collect();
    let readings = judge_files(judges, &paths);
    let mut out = String::new();
    for ((mut row, _), reading) in rows.into_iter().zip(readings) {
        let reading = reading?;
        row.retain(|k, _| !k.starts_with("judge_"));
        for name in READINGS {
            let v = reading
                .get(name)
                .map_or(serde_json::Value::Null, |&v| v.into());
            row.insert(format!("judge_{name}"), v);
        }
        out.push_str(&serde_json::Value::Object(row).to_string());
        out.push('\n');
    }
    fsutil::write_atomic(&path, out.as_bytes(), Overwrite::Allow)?;
    Ok(paths.len())
}
