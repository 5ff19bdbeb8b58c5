//! API key management through the real binary: `api-keys list` shows prefixes,
//! creation and last use but never a key, and `api-keys revoke` stops a key at once.

use patchbay_e2e::Patchbay;

/// How many leading characters of a key `api-keys list` shows.
const PREFIX_LEN: usize = 12;

fn run(patchbay: &Patchbay, args: &[&str]) -> (bool, String, String) {
    let output = patchbay.cli(args);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The listing line of the key starting with `prefix`.
fn line_of<'a>(listing: &'a str, prefix: &str) -> &'a str {
    listing
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line for {prefix} in:\n{listing}"))
}

async fn status_with(patchbay: &Patchbay, key: &str) -> u16 {
    patchbay
        .api("GET", "/api/connectors", key, None)
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_listed_by_prefix_and_a_revoked_key_stops_working() {
    let patchbay = Patchbay::start(&[]).await;
    let alice = patchbay.create_api_key("alice", Some("acme"));
    let bob = patchbay.create_api_key("bob", None);
    let (alice_prefix, bob_prefix) = (&alice[..PREFIX_LEN], &bob[..PREFIX_LEN]);
    assert_ne!(alice_prefix, bob_prefix);

    let (ok, listing, stderr) = run(&patchbay, &["api-keys", "list"]);
    assert!(ok, "{stderr}");
    assert!(
        !listing.contains(&alice) && !listing.contains(&bob),
        "{listing}"
    );
    let alice_line = line_of(&listing, alice_prefix);
    assert!(
        alice_line.contains("alice") && alice_line.contains("acme"),
        "{alice_line}"
    );
    assert!(alice_line.ends_with("never"), "{alice_line}");
    assert!(
        line_of(&listing, bob_prefix).ends_with("never"),
        "{listing}"
    );

    // A request records the key's last use.
    assert_eq!(status_with(&patchbay, &alice).await, 200);
    let (ok, listing, stderr) = run(&patchbay, &["api-keys", "list", "--user", "alice"]);
    assert!(ok, "{stderr}");
    assert!(!listing.contains(bob_prefix), "{listing}");
    let alice_line = line_of(&listing, alice_prefix);
    let last_used = alice_line.split_whitespace().last().unwrap();
    assert!(
        last_used.len() == "2025-01-01T00:00:00Z".len() && last_used.ends_with('Z'),
        "{alice_line}"
    );
    let (_, by_org, _) = run(&patchbay, &["api-keys", "list", "--org", "acme"]);
    assert!(
        by_org.contains(alice_prefix) && !by_org.contains(bob_prefix),
        "{by_org}"
    );

    // Revoking one key stops it at once; the other keeps working.
    assert_eq!(status_with(&patchbay, &bob).await, 200);
    let (ok, stdout, stderr) = run(&patchbay, &["api-keys", "revoke", bob_prefix]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(bob_prefix), "{stdout}");
    let refused = patchbay.api("GET", "/api/connectors", &bob, None).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(
        refused.json()["error"]["message"],
        "unknown or revoked API key"
    );
    assert_eq!(status_with(&patchbay, &alice).await, 200);
    let (_, listing, _) = run(&patchbay, &["api-keys", "list"]);
    assert!(listing.contains(alice_prefix), "{listing}");
    assert!(!listing.contains(bob_prefix), "{listing}");

    // Revoking an unknown prefix fails and says so.
    let (ok, _, stderr) = run(&patchbay, &["api-keys", "revoke", bob_prefix]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("no API key with prefix {bob_prefix}")),
        "{stderr}"
    );
}
