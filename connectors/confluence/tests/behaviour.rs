//! Behaviour users rely on, against the fake Atlassian.
