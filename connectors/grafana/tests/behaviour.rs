//! Behaviour users rely on, against the fake Grafana.
