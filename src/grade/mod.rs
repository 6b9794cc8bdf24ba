//! Grading students' lab submissions: answers checked against what golab observes
//! when it runs the lab for that submission (in a sandbox) and against the Reference.

pub mod answers;
pub mod batch;
pub mod gradebook;
pub mod grader;
pub mod gradescope;
pub mod handout;
pub mod model;
pub mod reduced;
pub mod render;
pub mod sandbox;
pub mod sandboxed;
pub mod submission;
pub mod transcript;
pub mod variant;
