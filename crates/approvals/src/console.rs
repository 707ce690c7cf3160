//! The web console (later).
