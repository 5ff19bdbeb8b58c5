//! Reading a `/metrics` scrape (Prometheus' text format) back, so tests can say
//! which series moved.

/// One scrape of `/metrics`: every sample line, as the exposition format writes it.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The raw text.
    pub text: String,
}

impl Scrape {
    /// Parses a scrape.
    pub fn new(text: String) -> Self {
        Self { text }
    }

    /// Whether the family `name` has a `# TYPE` line.
    pub fn has_family(&self, name: &str) -> bool {
        self.text.lines().any(|line| {
            line.strip_prefix("# TYPE ")
                .is_some_and(|rest| rest.split(' ').next() == Some(name))
        })
    }

    /// The sum of the samples of `name` whose labels include every pair in `labels`
    /// (0 when none match).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (metric, label_text) = match series.split_once('{') {
                    Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                if metric != name {
                    return None;
                }
                let matches = labels.iter().all(|(key, wanted)| {
                    label_text
                        .split(',')
                        .any(|pair| pair == format!("{key}=\"{wanted}\""))
                });
                matches.then(|| value.parse::<f64>().ok()).flatten()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_summed_over_the_matching_label_sets() {
        let scrape = Scrape::new(
            "# TYPE calls_total counter\n\
             calls_total{connector=\"a\",outcome=\"ok\"} 2\n\
             calls_total{connector=\"a\",outcome=\"error\"} 1\n\
             calls_total{connector=\"b\",outcome=\"ok\"} 5\n\
             latency_seconds_count{connector=\"a\"} 3\n"
                .to_owned(),
        );
        assert!(scrape.has_family("calls_total"));
        assert!(!scrape.has_family("latency_seconds"));
        assert_eq!(scrape.sum("calls_total", &[("connector", "a")]), 3.0);
        assert_eq!(scrape.sum("calls_total", &[("outcome", "ok")]), 7.0);
        assert_eq!(scrape.sum("calls_total", &[("connector", "c")]), 0.0);
        assert_eq!(scrape.sum("latency_seconds_count", &[]), 3.0);
    }
}
