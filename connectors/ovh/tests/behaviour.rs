//! OVHcloud behaviour against the fake.
