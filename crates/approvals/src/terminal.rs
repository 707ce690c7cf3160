//! Asking on the terminal (later).
