//! An editing session: one face's flow code, the attribute values set on it,
//! and an undo/redo history. The CLI's `edit` and the GUI both drive it.

use crate::error::{Error, Result};
use crate::formats::latents::Latents;
use crate::plugin::Plugin;

/// How many steps of history are kept.
pub const MAX_HISTORY: usize = 500;

/// One face being edited.
#[derive(Debug, Clone)]
pub struct EditSession {
    /// Flow codes, oldest first; `cursor` points at the current one.
    history: Vec<Vec<f32>>,
    cursor: usize,
}

impl EditSession {
    /// Starts from an existing latent (its flow code is the forward flow).
    pub fn from_latent(plugin: &Plugin, latent: &[f32]) -> Result<Self> {
        let code = plugin
            .encode(&Latents::new(latent.len(), latent.to_vec())?)?
            .data;
        Ok(Self::from_code(code))
    }

    /// Starts from a flow code.
    pub fn from_code(code: Vec<f32>) -> Self {
        Self {
            history: vec![code],
            cursor: 0,
        }
    }

    /// The current flow code.
    pub fn code(&self) -> &[f32] {
        &self.history[self.cursor]
    }

    /// The current latent (inverse flow of the code).
    pub fn latent(&self, plugin: &Plugin) -> Result<Vec<f32>> {
        let code = self.code().to_vec();
        Ok(plugin.decode(&Latents::new(code.len(), code)?)?.data)
    }

    /// Current attribute values in user units.
    pub fn values(&self, plugin: &Plugin) -> Vec<f32> {
        plugin.codes_to_values(self.code())
    }

    /// The code that setting attribute `k` to `value` (user units) would give, without recording it.
    pub fn preview(&self, plugin: &Plugin, k: usize, value: f32) -> Result<Vec<f32>> {
        let a = plugin
            .attributes()
            .get(k)
            .ok_or_else(|| Error::invalid(format!("no attribute #{k}")))?;
        let mut code = self.code().to_vec();
        code[k] = a.checked_flow_value(value)?;
        Ok(code)
    }

    /// Sets attribute `k` to `value` (user units) as a new history step.
    pub fn set(&mut self, plugin: &Plugin, k: usize, value: f32) -> Result<()> {
        let code = self.preview(plugin, k, value)?;
        self.push(code);
        Ok(())
    }

    /// Sets several `NAME=VALUE` pairs as one history step.
    pub fn set_named(&mut self, plugin: &Plugin, sets: &[(String, f32)]) -> Result<()> {
        let values = plugin.resolve(sets)?;
        let mut code = self.code().to_vec();
        for (c, v) in code.iter_mut().zip(&values) {
            if let Some(v) = v {
                *c = *v;
            }
        }
        self.push(code);
        Ok(())
    }

    /// Records `code` as the newest step, dropping any redo steps.
    pub fn push(&mut self, code: Vec<f32>) {
        if code.as_slice() == self.code() {
            return;
        }
        self.history.truncate(self.cursor + 1);
        self.history.push(code);
        if self.history.len() > MAX_HISTORY {
            self.history.remove(0);
        }
        self.cursor = self.history.len() - 1;
    }

    /// Steps back; false if there is nothing to undo.
    pub fn undo(&mut self) -> bool {
        if self.cursor == 0 {
            return false;
        }
        self.cursor -= 1;
        true
    }

    /// Steps forward; false if there is nothing to redo.
    pub fn redo(&mut self) -> bool {
        if self.cursor + 1 >= self.history.len() {
            return false;
        }
        self.cursor += 1;
        true
    }

    /// Number of recorded steps.
    pub fn len(&self) -> usize {
        self.history.len()
    }

    /// Always false: a session holds at least its starting face.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_redo_walk_the_history() {
        let mut s = EditSession::from_code(vec![0.0, 0.0]);
        s.push(vec![1.0, 0.0]);
        s.push(vec![1.0, 2.0]);
        assert_eq!(s.len(), 3);
        assert!(s.undo());
        assert_eq!(s.code(), &[1.0, 0.0]);
        assert!(s.undo());
        assert!(!s.undo());
        assert!(s.redo());
        s.push(vec![5.0, 5.0]); // drops the redo tail
        assert!(!s.redo());
        assert_eq!(s.len(), 3);
        s.push(vec![5.0, 5.0]); // no-op change is not a step
        assert_eq!(s.len(), 3);
    }
}
