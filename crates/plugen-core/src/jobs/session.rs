//! Editing with undo: a generic [`History`] of settled steps, and an
//! [`EditSession`] (one face's flow code and the attribute values set on it)
//! built on it. The CLI's `edit` drives an `EditSession`; the GUI keeps a
//! `History` of its own, richer snapshots.

use crate::error::{Error, Result};
use crate::io::latents::Latents;
use crate::model::plugin::Plugin;

/// How many steps of history are kept.
pub const MAX_HISTORY: usize = 500;

/// A linear undo/redo history of states; pushing after an undo drops the redo tail.
#[derive(Debug, Clone)]
pub struct History<S> {
    steps: Vec<S>,
    cursor: usize,
}

impl<S: Clone + PartialEq> History<S> {
    /// A history holding only `initial`.
    pub fn new(initial: S) -> Self {
        Self {
            steps: vec![initial],
            cursor: 0,
        }
    }

    /// The current state.
    pub fn current(&self) -> &S {
        &self.steps[self.cursor]
    }

    /// Records `state` as the newest step (a state equal to the current one is not a step).
    pub fn push(&mut self, state: S) {
        if &state == self.current() {
            return;
        }
        self.steps.truncate(self.cursor + 1);
        self.steps.push(state);
        if self.steps.len() > MAX_HISTORY {
            self.steps.remove(0);
        }
        self.cursor = self.steps.len() - 1;
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
        if self.cursor + 1 >= self.steps.len() {
            return false;
        }
        self.cursor += 1;
        true
    }

    /// Jumps to step `index` (0 = oldest kept); false if out of range.
    pub fn jump(&mut self, index: usize) -> bool {
        if index >= self.steps.len() {
            return false;
        }
        self.cursor = index;
        true
    }

    /// Index of the current step.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// All kept steps, oldest first.
    pub fn steps(&self) -> &[S] {
        &self.steps
    }

    /// Number of kept steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Always false: a history holds at least its first state.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One face being edited: its flow code over time.
#[derive(Debug, Clone)]
pub struct EditSession {
    history: History<Vec<f32>>,
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
            history: History::new(code),
        }
    }

    /// The current flow code.
    pub fn code(&self) -> &[f32] {
        self.history.current()
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

    /// Sets attribute `k` to `value` (user units) as a new history step.
    pub fn set(&mut self, plugin: &Plugin, k: usize, value: f32) -> Result<()> {
        let a = plugin
            .attributes()
            .get(k)
            .ok_or_else(|| Error::invalid(format!("no attribute #{k}")))?;
        let mut code = self.code().to_vec();
        code[k] = a.checked_flow_value(value)?;
        self.history.push(code);
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
        self.history.push(code);
        Ok(())
    }

    /// Steps back; false if there is nothing to undo.
    pub fn undo(&mut self) -> bool {
        self.history.undo()
    }

    /// Steps forward; false if there is nothing to redo.
    pub fn redo(&mut self) -> bool {
        self.history.redo()
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
        let mut s = History::new(vec![0.0, 0.0]);
        s.push(vec![1.0, 0.0]);
        s.push(vec![1.0, 2.0]);
        assert_eq!(s.len(), 3);
        assert!(s.undo());
        assert_eq!(s.current(), &[1.0, 0.0]);
        assert!(s.undo());
        assert!(!s.undo());
        assert!(s.redo());
        s.push(vec![5.0, 5.0]); // drops the redo tail
        assert!(!s.redo());
        assert_eq!(s.len(), 3);
        s.push(vec![5.0, 5.0]); // no-op change is not a step
        assert_eq!(s.len(), 3);
        assert!(s.jump(0));
        assert_eq!(s.current(), &[0.0, 0.0]);
        assert!(!s.jump(3));
    }
}
