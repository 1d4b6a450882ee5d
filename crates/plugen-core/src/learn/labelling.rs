//! Labelling faces for a new attribute.
//!
//! [`LabelSet`] is a pair of files, latents (`.npy`) and labels (CSV), row for
//! row: what `plugen label` writes and extends from a sorted image folder or a
//! table of image names, and what `plugen train --extend` reads.
//!
//! [`LabelSession`] is the editor's label mode: seeded random faces (face `i`
//! of seed `s` is the latent drawn from random stream `i` of `s`, so a session
//! is reproducible and stored as numbers only), labels with undo, and the
//! choice of which faces to show next: at random, or, once a plugin reads the
//! attribute, the faces whose readout is most uncertain (active learning).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};
use crate::io::labels::{self, LabelTable};
use crate::io::latents::{self, Latents};
use crate::io::sidecar::{self, MANIFEST_FILE};
use crate::learn::train::AttributeMeta;
use crate::model::attributes::AttributeKind;
use crate::model::plugin::{LatentSource, Plugin, read_pair};
use crate::rng::SeededRng;

/// Latents with their labels, row for row.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSet {
    /// The faces.
    pub latents: Latents,
    /// Their labels.
    pub labels: LabelTable,
}

impl LabelSet {
    /// An empty set of `dim`-sized latents.
    pub fn empty(dim: usize) -> Self {
        Self {
            latents: Latents {
                dim,
                data: Vec::new(),
            },
            labels: LabelTable {
                names: Vec::new(),
                rows: Vec::new(),
            },
        }
    }

    /// Reads a pair of files.
    pub fn read(latents_path: &Path, labels_path: &Path, dim: usize) -> Result<Self> {
        let source = LatentSource::File(latents_path.to_path_buf());
        let (latents, labels) = read_pair(&source, labels_path, dim)?;
        Ok(Self { latents, labels })
    }

    /// Writes the pair, each file atomically.
    pub fn write(&self, latents_path: &Path, labels_path: &Path) -> Result<()> {
        latents::write_npy(latents_path, &self.latents, Overwrite::Allow)?;
        fsutil::write_atomic(
            labels_path,
            self.labels.to_csv().as_bytes(),
            Overwrite::Allow,
        )
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.rows.len()
    }

    /// Whether the set has no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.rows.is_empty()
    }

    /// Adds `other`'s rows. A row whose latent is already here (bit for bit)
    /// fills in that row's missing cells; two different labels for the same
    /// face and attribute are an error.
    pub fn merge(&mut self, other: &LabelSet) -> Result<()> {
        if other.latents.dim != self.latents.dim {
            return Err(Error::invalid("label sets of different latent sizes"));
        }
        let key = |row: &[f32]| row.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
        let mut at: HashMap<Vec<u32>, usize> = (0..self.len())
            .map(|i| (key(self.latents.row(i)), i))
            .collect();
        let mut table = self.labels.stack(&LabelTable {
            names: other.labels.names.clone(),
            rows: Vec::new(),
        });
        for (j, row) in other.labels.rows.iter().enumerate() {
            let latent = other.latents.row(j);
            let target = match at.get(&key(latent)) {
                Some(&i) => i,
                None => {
                    at.insert(key(latent), table.rows.len());
                    table.rows.push(vec![None; table.names.len()]);
                    self.latents.data.extend_from_slice(latent);
                    table.rows.len() - 1
                }
            };
            for (name, cell) in other.labels.names.iter().zip(row) {
                let Some(v) = cell else { continue };
                let k = table.column_index(name).unwrap_or(0);
                match table.rows[target][k] {
                    Some(old) if old != *v => {
                        return Err(Error::invalid(format!(
                            "face {target} is labelled {name} = {old} already and now {v}"
                        )));
                    }
                    _ => table.rows[target][k] = Some(*v),
                }
            }
        }
        self.labels = table;
        Ok(())
    }
}

/// Latents of a `plugen sample` run by image file name, from its `manifest.jsonl`.
fn run_latents(run: &Path, dim: usize) -> Result<BTreeMap<String, Vec<f32>>> {
    let path = run.join(MANIFEST_FILE);
    let bytes = fsutil::read_limited(&path, 1 << 30)?;
    let mut out = BTreeMap::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let s = sidecar::parse(&path, line)
            .map_err(|e| Error::format(&path, format!("line {}: {e}", n + 1)))?;
        let name = s
            .image
            .ok_or_else(|| Error::format(&path, format!("line {}: no image name", n + 1)))?;
        if s.latent.len() != dim || s.latent.iter().any(|v| !v.is_finite()) {
            return Err(Error::format(
                &path,
                format!("line {}: the latent is not {dim} finite numbers", n + 1),
            ));
        }
        out.insert(name, s.latent);
    }
    Ok(out)
}

/// Labels the images of the `plugen sample` run in `run` for `attribute` by the
/// folder they were sorted into: `sorted/VALUE/IMAGE.png` (VALUE a number,
/// e.g. `0` and `1`; IMAGE a file name from the run's manifest).
pub fn from_sorted_folders(
    run: &Path,
    sorted: &Path,
    attribute: &str,
    dim: usize,
) -> Result<LabelSet> {
    if !labels::is_identifier(attribute) {
        return Err(Error::invalid(format!(
            "{attribute:?} is not an attribute name (lowercase letters, digits, _)"
        )));
    }
    let by_name = run_latents(run, dim)?;
    let mut set = LabelSet::empty(dim);
    set.labels.names.push(attribute.into());
    let mut folders: Vec<PathBuf> = std::fs::read_dir(sorted)
        .map_err(|e| Error::io(sorted, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    for folder in folders {
        let name = folder.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        let value: f32 = name
            .parse()
            .ok()
            .filter(|v: &f32| v.is_finite())
            .ok_or_else(|| {
                Error::format(
                    &folder,
                    "folder name is not a label value (0, 1 or another number)",
                )
            })?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|e| Error::io(&folder, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
            .collect();
        files.sort();
        for file in files {
            let image = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let latent = by_name.get(image).ok_or_else(|| {
                Error::format(
                    &file,
                    format!("not an image of the run in {}", run.display()),
                )
            })?;
            set.latents.data.extend_from_slice(latent);
            set.labels.rows.push(vec![Some(value)]);
        }
    }
    if set.is_empty() {
        return Err(Error::format(
            sorted,
            "no labelled images found (expected VALUE/IMAGE.png)",
        ));
    }
    Ok(set)
}

/// Labels the images of the `plugen sample` run in `run` from a CSV whose first
/// column is `image` (file names from the run) and whose other columns are
/// attributes (empty = not labelled).
pub fn from_table(run: &Path, table: &Path, dim: usize) -> Result<LabelSet> {
    let by_name = run_latents(run, dim)?;
    let bytes = fsutil::read_limited(table, labels::MAX_LABEL_FILE_BYTES)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::format(table, "not UTF-8 text"))?;
    let mut images = Vec::new();
    let mut rest = String::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (first, others) = line.split_once(',').ok_or_else(|| {
            Error::format(
                table,
                format!("line {}: expected image,ATTRIBUTE,...", n + 1),
            )
        })?;
        if images.is_empty() && rest.is_empty() {
            if first.trim() != "image" {
                return Err(Error::format(
                    table,
                    "the first column must be called image",
                ));
            }
        } else {
            images.push((n + 1, first.trim().to_string()));
        }
        rest.push_str(others);
        rest.push('\n');
    }
    let labels = labels::parse(table, &rest)?;
    let mut set = LabelSet::empty(dim);
    for (line, image) in &images {
        let latent = by_name.get(image).ok_or_else(|| {
            Error::format(
                table,
                format!(
                    "line {line}: {image:?} is not an image of the run in {}",
                    run.display()
                ),
            )
        })?;
        set.latents.data.extend_from_slice(latent);
    }
    set.labels = labels;
    Ok(set)
}

/// What a user defines for a new attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeDefinition {
    /// Identifier (lowercase letters, digits, `_`).
    pub name: String,
    /// Binary or continuous.
    pub kind: AttributeKind,
    /// One-line description.
    #[serde(default)]
    pub description: String,
}

impl AttributeDefinition {
    /// Checks the name.
    pub fn validate(&self) -> Result<()> {
        if !labels::is_identifier(&self.name) {
            return Err(Error::invalid(format!(
                "{:?} is not an attribute name: use lowercase letters, digits and _, starting with a letter",
                self.name
            )));
        }
        Ok(())
    }

    /// The description for training.
    pub fn meta(&self) -> AttributeMeta {
        AttributeMeta {
            display_name: String::new(),
            description: self.description.clone(),
            ends: None,
            labeller: "labelled by hand in plugen's label mode".into(),
            kind: Some(self.kind),
        }
    }
}

/// How the next faces to label are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suggest {
    /// Fresh faces in seed order.
    Random,
    /// The faces of a pool whose readout is most uncertain.
    Uncertain,
}

/// Faces a plugin's readout is scored over when suggesting faces.
pub const SUGGESTION_POOL: usize = 2000;

/// A label-mode session: one attribute, seeded faces, labels in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelSession {
    /// The attribute being labelled.
    pub attribute: AttributeDefinition,
    /// Seed of the faces.
    pub seed: u64,
    /// Latent size.
    pub dim: usize,
    /// File name of the plugin the session extends (next to the session file).
    pub base_plugin: String,
    /// (face index, label) in the order they were given.
    pub labels: Vec<(u64, f32)>,
    /// Faces already shown (labelled or skipped).
    pub shown: BTreeSet<u64>,
}

impl LabelSession {
    /// A new session.
    pub fn new(
        attribute: AttributeDefinition,
        seed: u64,
        dim: usize,
        base_plugin: String,
    ) -> Result<Self> {
        attribute.validate()?;
        Ok(Self {
            attribute,
            seed,
            dim,
            base_plugin,
            labels: Vec::new(),
            shown: BTreeSet::new(),
        })
    }

    /// The latent of face `index`.
    pub fn latent(&self, index: u64) -> Vec<f32> {
        SeededRng::new(self.seed, index).normal_vec(self.dim)
    }

    /// Labels face `index` (replacing an earlier label of it).
    pub fn set_label(&mut self, index: u64, value: f32) {
        self.labels.retain(|(i, _)| *i != index);
        self.labels.push((index, value));
        self.shown.insert(index);
    }

    /// Marks face `index` as seen without a label.
    pub fn skip(&mut self, index: u64) {
        self.shown.insert(index);
    }

    /// Removes the last label given; returns its face.
    pub fn undo(&mut self) -> Option<u64> {
        self.labels.pop().map(|(i, _)| i)
    }

    /// The label of face `index`, if any.
    pub fn label_of(&self, index: u64) -> Option<f32> {
        self.labels
            .iter()
            .find(|(i, _)| *i == index)
            .map(|&(_, v)| v)
    }

    /// (labels, positives) so far; positives count binary labels of 1.
    pub fn counts(&self) -> (usize, usize) {
        let pos = self.labels.iter().filter(|(_, v)| *v >= 0.5).count();
        (self.labels.len(), pos)
    }

    /// The labels as a label set (one column, the attribute).
    pub fn label_set(&self) -> LabelSet {
        let mut set = LabelSet::empty(self.dim);
        set.labels.names.push(self.attribute.name.clone());
        for &(i, v) in &self.labels {
            set.latents.data.extend(self.latent(i));
            set.labels.rows.push(vec![Some(v)]);
        }
        set
    }

    /// The next `count` faces to show. [`Suggest::Uncertain`] needs `plugin`
    /// to have the attribute; otherwise (or with [`Suggest::Random`]) the next
    /// unseen faces in seed order are returned.
    pub fn next_faces(
        &self,
        count: usize,
        how: Suggest,
        plugin: Option<&Plugin>,
    ) -> Result<Vec<u64>> {
        let unseen = |n: usize| -> Vec<u64> {
            (0u64..)
                .filter(|i| !self.shown.contains(i))
                .take(n)
                .collect()
        };
        let reader = plugin.and_then(|p| p.index_of(&self.attribute.name).ok().map(|k| (p, k)));
        let (Suggest::Uncertain, Some((plugin, k))) = (how, reader) else {
            return Ok(unseen(count));
        };
        let pool = unseen(SUGGESTION_POOL.max(count));
        let mut data = Vec::with_capacity(pool.len() * self.dim);
        for &i in &pool {
            data.extend(self.latent(i));
        }
        let codes = plugin.encode(&Latents::new(self.dim, data)?)?;
        let scores: Vec<f32> = (0..pool.len()).map(|j| codes.row(j)[k]).collect();
        Ok(match self.attribute.kind {
            // Closest to the boundary between the class means −1 and +1.
            AttributeKind::Binary => {
                let mut order: Vec<usize> = (0..pool.len()).collect();
                order.sort_by(|&a, &b| scores[a].abs().total_cmp(&scores[b].abs()));
                order.into_iter().take(count).map(|j| pool[j]).collect()
            }
            // Spread evenly over the readout's range, so every part of it gets labels.
            AttributeKind::Continuous => {
                let mut order: Vec<usize> = (0..pool.len()).collect();
                order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
                (0..count.min(pool.len()))
                    .map(|q| pool[order[(q * pool.len()) / count.min(pool.len())]])
                    .collect()
            }
        })
    }

    /// Where a session for `name` is kept: `labelling-NAME.json` in the plugin's folder.
    pub fn path_for(plugin_dir: &Path, name: &str) -> PathBuf {
        plugin_dir.join(format!("labelling-{name}.json"))
    }

    /// Reads a saved session.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = fsutil::read_limited(path, 64 << 20)?;
        let s: LabelSession = serde_json::from_slice(&bytes)
            .map_err(|e| Error::format(path, format!("not a plugen label session: {e}")))?;
        s.attribute
            .validate()
            .map_err(|e| Error::format(path, e.to_string()))?;
        if s.dim == 0 || s.dim > 1 << 16 || s.labels.iter().any(|(_, v)| !v.is_finite()) {
            return Err(Error::format(path, "bad latent size or a non-finite label"));
        }
        Ok(s)
    }

    /// Saves the session atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string(self).map_err(|e| Error::invalid(e.to_string()))?;
        fsutil::write_atomic(path, text.as_bytes(), Overwrite::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(rows: &[(f32, Option<f32>)], name: &str) -> LabelSet {
        let mut s = LabelSet::empty(2);
        s.labels.names.push(name.into());
        for &(x, v) in rows {
            s.latents.data.extend([x, -x]);
            s.labels.rows.push(vec![v]);
        }
        s
    }

    #[test]
    fn merge_joins_rows_of_the_same_face() -> Result<()> {
        let mut a = set(&[(1.0, Some(1.0)), (2.0, Some(0.0))], "glasses");
        let b = set(&[(2.0, Some(1.0)), (3.0, Some(0.0))], "hat");
        a.merge(&b)?;
        assert_eq!(a.len(), 3);
        assert_eq!(a.labels.names, vec!["glasses", "hat"]);
        assert_eq!(a.labels.rows[1], vec![Some(0.0), Some(1.0)]);
        assert_eq!(a.labels.rows[2], vec![None, Some(0.0)]);
        assert_eq!(a.latents.row(2), &[3.0, -3.0]);
        let clash = set(&[(1.0, Some(0.0))], "glasses");
        assert!(a.merge(&clash).unwrap_err().to_string().contains("already"));
        Ok(())
    }

    #[test]
    fn session_is_reproducible_and_undoable() -> Result<()> {
        let def = AttributeDefinition {
            name: "glasses".into(),
            kind: AttributeKind::Binary,
            description: String::new(),
        };
        let mut s = LabelSession::new(def, 5, 8, "plugin.json".into())?;
        assert_eq!(s.latent(3), s.latent(3));
        assert_ne!(s.latent(3), s.latent(4));
        assert_eq!(s.next_faces(3, Suggest::Random, None)?, vec![0, 1, 2]);
        s.set_label(0, 1.0);
        s.skip(1);
        s.set_label(2, 0.0);
        assert_eq!(s.next_faces(2, Suggest::Uncertain, None)?, vec![3, 4]);
        assert_eq!(s.counts(), (2, 1));
        assert_eq!(s.undo(), Some(2));
        assert_eq!(s.label_of(2), None);
        let set = s.label_set();
        assert_eq!(set.len(), 1);
        assert_eq!(set.latents.row(0), s.latent(0).as_slice());
        let bad = AttributeDefinition {
            name: "Has Glasses".into(),
            kind: AttributeKind::Binary,
            description: String::new(),
        };
        assert!(LabelSession::new(bad, 0, 8, String::new()).is_err());
        Ok(())
    }
}
