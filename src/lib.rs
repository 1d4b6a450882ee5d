//! plugen: the editor (GUI) and the command line, thin front ends over
//! [`plugen_core`], which does the math.

pub mod bench;
pub mod cli;
pub mod gui;
