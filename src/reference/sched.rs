//! Placeholder until the scheduler model lands.
