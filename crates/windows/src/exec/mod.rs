//! Applies a `WindowsPlan` on Windows: SIDs, security descriptors, the restricted token, the
//! job object, and the command's process.
