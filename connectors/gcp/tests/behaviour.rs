//! Behaviour users rely on, against the fake Google.
