//! Profiles: partial specs shipped with rafter (from `profiles/`) that files and flags overlay.

/// An embedded profile: its name, the path it is reported under, and its YAML text.
pub struct Profile {
    pub name: &'static str,
    pub path: &'static str,
    pub text: &'static str,
}

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "dev-aws",
        path: "profiles/dev-aws.yaml",
        text: include_str!("../../profiles/dev-aws.yaml"),
    },
    Profile {
        name: "ha-aws",
        path: "profiles/ha-aws.yaml",
        text: include_str!("../../profiles/ha-aws.yaml"),
    },
    Profile {
        name: "ha-ssh",
        path: "profiles/ha-ssh.yaml",
        text: include_str!("../../profiles/ha-ssh.yaml"),
    },
];

pub fn find_profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|profile| profile.name == name)
}

pub fn profile_names() -> impl Iterator<Item = &'static str> {
    PROFILES.iter().map(|profile| profile.name)
}
