//! The shared connector contract, run against the fake Google.
