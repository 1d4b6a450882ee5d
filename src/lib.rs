//! plugen: the editor (GUI) and the command line, thin front ends over
//! [`plugen_core`], which does the math.

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod gui;
