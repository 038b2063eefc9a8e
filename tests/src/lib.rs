//! Helpers shared by the workspace-level integration tests in `tests/`.

pub mod built;
pub mod readme_blocks;
