//! Joining the shards of one `sample` or `fill` run (computed on several
//! machines with `--shard I/N`) into one folder, the same bytes as the run
//! computed in one piece: images copied, manifests joined in image order,
//! `metadata.jsonl` rebuilt. The result is built in a temporary folder next to
//! `out` and renamed into place, so a failed merge leaves nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};
use crate::io::imaging;
use crate::io::sidecar;
use crate::jobs::dataset::{self, MANIFEST_FILE, RUN_FILE, SampleRequest};
use crate::jobs::fill::{self, FILL_FILE, FillPlan, REPORT_FILE};

/// What a merge joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeSummary {
    /// Images in the merged run.
    pub images: usize,
    /// Shard folders joined.
    pub shards: usize,
}

/// The run description a folder holds (`run.json` or `fill.json`) and its bytes.
fn description(dir: &Path) -> Result<(&'static str, Vec<u8>)> {
    for name in [RUN_FILE, FILL_FILE] {
        let path = dir.join(name);
        if path.exists() {
            return Ok((name, fsutil::read_limited(&path, 16 << 20)?));
        }
    }
    Err(Error::format(
        dir,
        "holds no run (no run.json or fill.json): not a plugen sample or fill folder",
    ))
}

/// Joins `shards` (folders of one run) into the new folder `out`.
pub fn merge(out: &Path, shards: &[PathBuf]) -> Result<MergeSummary> {
    if shards.is_empty() {
        return Err(Error::invalid("merge: name the shard folders to join"));
    }
    if out.exists() {
        return Err(Error::format(
            out,
            "already exists; merge writes a new folder",
        ));
    }
    let (kind, first) = description(&shards[0])?;
    // index → (manifest line, folder, image name)
    let mut lines: BTreeMap<u64, (Vec<u8>, &Path, String)> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    for dir in shards {
        let (k, bytes) = description(dir)?;
        if k != kind || bytes != first {
            return Err(Error::format(
                dir,
                format!(
                    "its {k} differs from {}'s: not a shard of the same run",
                    shards[0].display()
                ),
            ));
        }
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        for line in text.split_inclusive(|&b| b == b'\n') {
            if !line.ends_with(b"\n") {
                return Err(Error::format(
                    &path,
                    "ends in a torn line: finish that shard first (--resume)",
                ));
            }
            let s = sidecar::parse(&path, line)?;
            let (Some(index), Some(image)) = (s.index, s.image.clone()) else {
                return Err(Error::format(&path, "a line without an index or image"));
            };
            if names.is_empty() {
                names = s.readout.keys().cloned().collect();
            }
            if let Some((_, other, _)) = lines.insert(index, (line.to_vec(), dir, image)) {
                return Err(Error::format(
                    dir,
                    format!("image {index} is also in {}", other.display()),
                ));
            }
        }
    }
    if kind == RUN_FILE {
        let req: SampleRequest = serde_json::from_slice(&first)
            .map_err(|e| Error::format(&shards[0].join(RUN_FILE), e.to_string()))?;
        if let Some(missing) = (0..req.count as u64).find(|i| !lines.contains_key(i)) {
            return Err(Error::invalid(format!(
                "merge: image {missing} of {} is in none of the shards (missing shard, or one not finished?)",
                req.count
            )));
        }
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".plugen-merge-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let tmp = staging.path();
    let mut manifest = Vec::new();
    for (line, dir, image) in lines.values() {
        if !is_plain_file_name(image) {
            return Err(Error::format(
                &dir.join(MANIFEST_FILE),
                format!("image name {image:?} is not a file in the folder"),
            ));
        }
        let from = dir.join(image);
        std::fs::copy(&from, tmp.join(image)).map_err(|e| Error::io(&from, e))?;
        manifest.extend_from_slice(line);
    }
    let write = |name: &str, bytes: &[u8]| {
        let p = tmp.join(name);
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))
    };
    write(MANIFEST_FILE, &manifest)?;
    write(kind, &first)?;
    dataset::write_metadata(tmp, &names)?;
    if kind == FILL_FILE {
        #[derive(serde::Deserialize)]
        struct Described {
            plan: FillPlan,
        }
        let d: Described = serde_json::from_slice(&first)
            .map_err(|e| Error::format(&shards[0].join(FILL_FILE), e.to_string()))?;
        let indexes: Vec<u64> = lines.keys().copied().collect();
        imaging::save_png(
            &tmp.join(REPORT_FILE),
            &fill::chart_of_folder(&d.plan, &indexes),
            1,
            Overwrite::Allow,
        )?;
    }
    let kept = staging.keep();
    std::fs::rename(&kept, out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        Error::io(out, e)
    })?;
    Ok(MergeSummary {
        images: lines.len(),
        shards: shards.len(),
    })
}

/// Whether `name` is a plain file name inside a folder (no separators, not hidden).
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\']) && !name.starts_with('.')
}
